"""Local-day arithmetic and trait definitions, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pytest

from signalbox.profiles.traits import TraitDef, TraitTable, day_start, local_days_before

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
