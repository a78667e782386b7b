"""The at-risk score's components as stored on a profile, and the sentences a manager reads.

A million profiles' component documents took longer to build than to score, so a profile
stores only the numbers (`encode`, built for all rows at once) and the reasons are rendered
when somebody reads them (`render`): the points and reason code of each component, and the
score inputs its sentence quotes. Rendering is exact: it runs the same sentence code on the
same float64 values (JSON keeps them to the last bit), and documents stored before this
format (a list of components) are handed back unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

FORMAT = 1
COMPONENTS: tuple[str, ...] = (
    "recency",
    "frequency_change",
    "payment_friction",
    "engagement_decay",
    "support_sentiment",
)
MAX_POINTS = {
    "recency": 30,
    "frequency_change": 25,
    "payment_friction": 25,
    "engagement_decay": 15,
    "support_sentiment": 5,
}
# Reason codes per component, indexed by the score's code arrays.
REASONS = {
    "recency": ("active_recently", "inactive_15_30d", "inactive_over_30d"),
    "frequency_change": ("frequency_steady", "frequency_down", "no_baseline"),
    "payment_friction": ("no_payment_issues", "payment_failed_30d", "payment_failed_recovered"),
    "engagement_decay": ("engagement_steady", "engagement_down", "no_messages"),
    "support_sentiment": ("no_negative_signal", "negative_nps", "escalated_or_negative_review"),
}
# The score inputs the sentences quote, in stored order.
INPUTS: tuple[str, ...] = (
    "days_since_activity",
    "activity_30d",
    "activity_prior_90d",
    "payment_failures_30d",
    "messages_sent_30d",
    "messages_engaged_30d",
    "messages_sent_prior_30d",
    "messages_engaged_prior_30d",
    "min_nps_90d",
)


def encode(
    points: Mapping[str, NDArray[np.int64]],
    codes: Mapping[str, NDArray[np.int64]],
    inputs: Mapping[str, NDArray[np.float64]],
    rows: NDArray[np.int64],
) -> list[str]:
    """The stored document of each of `rows`, as JSON text: {"v": 1, "c": [points of each
    component, then codes, then the inputs (null when NaN)]}. One orjson pass over a matrix."""
    if not len(rows):
        return []
    matrix = np.column_stack(
        [
            *(points[c][rows] for c in COMPONENTS),
            *(codes[c][rows] for c in COMPONENTS),
            *(inputs[k][rows] for k in INPUTS),
        ]
    ).astype(np.float64)
    text = orjson.dumps(matrix, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    # A matrix of numbers has no "],[" inside a row: splitting there gives each row's numbers.
    head = f'{{"v":{FORMAT},"c":['
    return [head + numbers + "]}" for numbers in text[2:-2].split("],[")]


def render(stored: Any) -> list[dict[str, Any]] | None:
    """A stored components document as the list a reader gets (see `component`)."""
    if not isinstance(stored, dict) or stored.get("v") != FORMAT:
        return stored  # type: ignore[no-any-return]  # None, or a document in the older full form
    values = stored["c"]
    k = len(COMPONENTS)
    inputs = {name: math.nan if v is None else float(v) for name, v in zip(INPUTS, values[2 * k :], strict=True)}
    return [component(name, int(values[j]), int(values[k + j]), inputs) for j, name in enumerate(COMPONENTS)]


def component(name: str, points: int, code: int, inputs: Mapping[str, float]) -> dict[str, Any]:
    """One component as readers see it, with the sentence a manager reads."""
    return {
        "component": name,
        "points": points,
        "max": MAX_POINTS[name],
        "reason": REASONS[name][code],
        "detail": _DETAILS[name](code, inputs),
    }


def _recency_detail(code: int, x: Mapping[str, float]) -> str:
    days = x["days_since_activity"]
    return "no activity recorded" if math.isnan(days) else f"last activity {int(days)} days ago"


def _frequency_detail(code: int, x: Mapping[str, float]) -> str:
    if code == 2:
        return "not enough history for a personal baseline"
    return f"{int(x['activity_30d'])} visits in the last 30 days vs a usual {x['activity_prior_90d'] / 3.0:.1f}"


def _payment_detail(code: int, x: Mapping[str, float]) -> str:
    if code == 0:
        return "no failed payment in the last 30 days"
    failures = int(_zero_if_nan(x["payment_failures_30d"]))
    suffix = ", since recovered" if code == 2 else ""
    return f"{failures} failed payment{'s' if failures != 1 else ''} in the last 30 days{suffix}"


def _engagement_detail(code: int, x: Mapping[str, float]) -> str:
    if code == 2:
        return "too few messages to compare"
    now = _rate(x["messages_engaged_30d"], x["messages_sent_30d"])
    before = _rate(x["messages_engaged_prior_30d"], x["messages_sent_prior_30d"])
    return f"responded to {now:.0%} of messages in the last 30 days vs {before:.0%} before"


def _sentiment_detail(code: int, x: Mapping[str, float]) -> str:
    if code == 2:
        return "escalated support ticket or a review of 2 stars or fewer in the last 90 days"
    if code == 1:
        return f"NPS of {int(x['min_nps_90d'])} in the last 90 days"
    return "no negative feedback in the last 90 days"


_DETAILS: dict[str, Callable[[int, Mapping[str, float]], str]] = {
    "recency": _recency_detail,
    "frequency_change": _frequency_detail,
    "payment_friction": _payment_detail,
    "engagement_decay": _engagement_detail,
    "support_sentiment": _sentiment_detail,
}


def _zero_if_nan(value: float) -> float:
    return 0.0 if math.isnan(value) else value


def _rate(engaged: float, sent: float) -> float:
    return 0.0 if not sent or math.isnan(sent) else min(1.0, _zero_if_nan(engaged) / sent)
