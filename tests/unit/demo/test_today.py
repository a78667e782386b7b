"""The demo's today is the world's local date, not UTC's: a world ending 'yesterday' leaves no
event in any of its locations' future, also on a US evening when UTC is already tomorrow."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from signalbox.core.clock import FixedClock
from signalbox.core.errors import InvalidInputError
from signalbox.demo import service as demo
from signalbox.demo.schemas import WorldConfig
from signalbox.demo.world import build_world


@pytest.mark.parametrize(
    ("now", "locations", "today"),
    [
        (datetime(2026, 3, 8, 3, 30, tzinfo=UTC), 6, date(2026, 3, 7)),  # 22:30 in New York, UTC says the 8th
        (datetime(2026, 3, 8, 6, 30, tzinfo=UTC), 1, date(2026, 3, 8)),  # New York only: 01:30 on the 8th
        (datetime(2026, 3, 8, 6, 30, tzinfo=UTC), 6, date(2026, 3, 7)),  # Santa Monica: 22:30 on the 7th
        (datetime(2026, 3, 8, 9, 0, tzinfo=UTC), 6, date(2026, 3, 8)),  # past midnight everywhere
    ],
)
def test_world_today_is_the_earliest_local_date_of_its_locations(now, locations, today):
    assert demo.world_today(now, locations) == today


def test_default_end_leaves_every_event_in_the_past():
    now = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)
    clock = FixedClock(now)
    end = demo.world_end(None, 3, clock)
    assert end == date(2026, 3, 6)
    world = build_world(WorldConfig(end=end, members=8, locations=3, months=1, seed=3))
    latest = max(datetime.fromisoformat(m["timestamp"]) for m in world.messages())
    assert latest < now
    with pytest.raises(InvalidInputError, match="would put events in the future"):
        demo.world_end(date(2026, 3, 7), 3, clock)
