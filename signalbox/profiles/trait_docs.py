"""The computed-traits document as stored on a profile: compact, rendered on read.

A million profiles' traits documents were most of the bytes a scoring run writes (key names
repeated in every row, moments as ISO text). The traits every workspace computes have fixed
names, so a profile stores only the values in that order ({"v": 1, "as_of", "c": numbers, "l":
zone and labels}); `render` gives readers the document `TraitTable.row` describes, exactly: the
numbers are the same float64 values (JSON keeps them to the last bit) put through the same
rules. Documents of other shapes, and those stored before this format, pass through unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

FORMAT = 1
# The names of `traits.default_traits()` in order (a test keeps the two equal) and the labels.
VALUE_NAMES: tuple[str, ...] = (
    "last_activity_at",
    "first_activity_at",
    "activity_total",
    "activity_30d",
    "activity_prior_90d",
    "payment_failures_30d",
    "last_payment_failed_at",
    "last_payment_succeeded_at",
    "messages_sent_30d",
    "messages_engaged_30d",
    "messages_sent_prior_30d",
    "messages_engaged_prior_30d",
    "min_nps_90d",
    "escalated_tickets_90d",
    "negative_reviews_90d",
    "total_spend",
    "cancelled_at",
)
LABEL_NAMES: tuple[str, ...] = ("plan", "home_location", "timezone", "member_since")


def encode(as_of: str, values: list[NDArray[np.float64]], labels: list[list[str]]) -> list[str]:
    """Each row's stored document as JSON text: `values` in VALUE_NAMES order (one orjson pass
    over a matrix, NaN as null), `labels` already JSON literals (the zone first, then
    LABEL_NAMES)."""
    if not len(values[0]):
        return []
    text = orjson.dumps(np.column_stack(values), option=orjson.OPT_SERIALIZE_NUMPY).decode()
    # A matrix of numbers has no "],[" inside a row: splitting there gives each row's numbers.
    numbers = text[2:-2].split("],[")
    head = f'{{"v":{FORMAT},"as_of":{orjson.dumps(as_of).decode()},"c":['
    return [
        f'{head}{nums}],"l":[{",".join(row)}]}}' for nums, row in zip(numbers, zip(*labels, strict=True), strict=True)
    ]


def render(stored: Any) -> Any:
    """A stored traits document as readers get it (`TraitTable.row`'s document)."""
    if not isinstance(stored, dict) or stored.get("v") != FORMAT:
        return stored
    doc: dict[str, Any] = {"as_of": stored["as_of"], "timezone": stored["l"][0]}
    for name, value in zip(VALUE_NAMES, stored["c"], strict=True):
        if value is None:
            doc[name] = None
        elif name.endswith("_at"):
            doc[name] = datetime.fromtimestamp(value, UTC).isoformat()
        else:
            number = float(value)
            doc[name] = round(number, 2) if number % 1 else int(number)
    doc.update(zip(LABEL_NAMES, stored["l"][1:], strict=True))
    return doc
