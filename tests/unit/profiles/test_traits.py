"""Local-day arithmetic and trait definitions, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pytest

from signalbox.profiles import trait_docs
from signalbox.profiles.traits import LABEL_TRAITS, TraitDef, TraitTable, day_start, default_traits, local_days_before

ZONES = ["America/New_York", "America/Los_Angeles", "Europe/London", "Australia/Sydney", "America/Phoenix"]


@pytest.mark.parametrize("as_of", [date(2026, 3, 8), date(2026, 11, 1), date(2026, 3, 31), date(2027, 1, 1)])
def test_local_days_before_matches_calendar_arithmetic_across_dst(as_of):
    rng = np.random.default_rng(3)
    end = day_start(as_of, "UTC").timestamp() + 86400 - 1
    moments = end - rng.uniform(0, 400 * 86400, 3000)
    zones = [ZONES[i % len(ZONES)] for i in range(len(moments))]
    got = local_days_before(moments, as_of, zones)
    for m, zone, days in zip(moments, zones, got, strict=True):
        local_day = datetime.fromtimestamp(m, ZoneInfo(zone)).date()
        if local_day <= as_of:
            assert days == (as_of - local_day).days


def test_local_midnight_decides_the_day_not_utc():
    # 23:30 in Los Angeles on 1 March is 07:30 UTC on 2 March.
    moment = datetime(2026, 3, 1, 23, 30, tzinfo=ZoneInfo("America/Los_Angeles")).timestamp()
    days = local_days_before(
        np.array([moment, moment, np.nan]), date(2026, 3, 2), ["America/Los_Angeles", "UTC", "UTC"]
    )
    assert days[0] == 1 and days[1] == 0 and np.isnan(days[2])


def test_very_old_moments_are_counted_in_plain_days():
    old = datetime(2010, 1, 1, tzinfo=UTC).timestamp()
    days = local_days_before(np.array([old]), date(2026, 1, 1), ["UTC"])
    assert days[0] == (date(2026, 1, 1) - date(2010, 1, 1)).days


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "x", "agg": "sum", "events": ("purchase",)}, "needs a property"),
        ({"name": "x", "agg": "count", "events": ("visit",), "window_days": 0}, "at least 1"),
        ({"name": "x", "agg": "min", "events": ("nps_submitted",), "prop": "score"}, "need a window"),
    ],
)
def test_trait_definitions_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TraitDef(**kwargs)


def test_documents_equal_row_for_every_profile():
    rng = np.random.default_rng(11)
    n = 2000
    stamps = 1.79e9 + rng.integers(0, 10**6, n) + rng.integers(0, 10**6, n) / 1e6
    stamps[rng.random(n) < 0.3] = np.nan
    stamps[:5] = [1.79e9, 1.79e9 + 0.5, 1.79e9 + 1e-6, np.nan, 0.0]  # whole seconds drop the fraction
    spend = np.round(rng.uniform(0, 500, n), 2)
    spend[rng.random(n) < 0.3] = np.nan
    spend[:4] = [12.0, 0.1 + 0.2, -3.5, 1e16]
    table = TraitTable(
        date(2026, 3, 8),
        np.zeros(n),
        [f"p{i}" for i in range(n)],
        [None] * n,
        [ZONES[i % len(ZONES)] for i in range(n)],
        values={
            "last_activity_at": stamps,
            "activity_30d": rng.integers(0, 9, n).astype(np.float64),
            "total_spend": spend,
        },
        labels={"plan": [["gold", None, 1, True, 1.0, {"a": [1]}, "", "50% off"][i % 8] for i in range(n)]},
    )
    docs = table.documents()
    assert len(docs) == n
    for i, text in enumerate(docs):
        assert orjson.loads(text) == orjson.loads(orjson.dumps(table.row(i)))
        assert text == orjson.dumps(table.row(i)).decode()


def test_default_traits_are_stored_compact_and_render_to_row_exactly():
    assert tuple(d.name for d in default_traits()) == trait_docs.VALUE_NAMES
    assert LABEL_TRAITS == trait_docs.LABEL_NAMES
    rng = np.random.default_rng(12)
    n = 1500
    values = {}
    for name in trait_docs.VALUE_NAMES:
        if name.endswith("_at"):
            column = 1.79e9 + rng.integers(0, 10**7, n) + rng.integers(0, 10**6, n) / 1e6
            column[rng.random(n) < 0.4] = np.nan
            column[:2] = [1.79e9, 1.79e9 + 0.25]
        elif name == "total_spend":
            column = np.round(rng.uniform(0, 900, n), 2)
            column[:3] = [0.1 + 0.2, 1e16, 7.0]
        elif name == "min_nps_90d":
            column = rng.integers(0, 11, n).astype(np.float64)
            column[rng.random(n) < 0.7] = np.nan
        else:
            column = rng.integers(0, 40, n).astype(np.float64)
        values[name] = column
    labels = {
        "plan": [["gold", None, 1, True][i % 4] for i in range(n)],
        "home_location": [["loc-1", "", {"id": 2}][i % 3] for i in range(n)],
        "timezone": [ZONES[i % len(ZONES)] for i in range(n)],
        "member_since": [[None, "2024-01-01", 2024.5][i % 3] for i in range(n)],
    }
    table = TraitTable(
        date(2026, 3, 8), np.zeros(n), [f"p{i}" for i in range(n)], [None] * n, labels["timezone"], values, labels
    )
    docs = table.documents()
    assert len(docs) == n and len(docs[0]) < len(orjson.dumps(table.row(0)))
    for i, text in enumerate(docs):
        assert trait_docs.render(orjson.loads(text)) == table.row(i)
    old = table.row(0)
    assert trait_docs.render(old) == old and trait_docs.render(None) is None
