"""Quiet hours in the recipient's zone: a property test over every US zone across both DST
changes (no send outside the window, every moment delayed to the next allowed one, never
dropped), and the stricter states."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from signalbox.consent.quiet_hours import QuietHours, parse_window, state_of_phone
from signalbox.journeys.engine import next_local_time

US_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",  # no DST
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",  # no DST
    "America/Puerto_Rico",
)
# Around 2026's changes: 8 March and 1 November.
SPANS = (datetime(2026, 3, 6, tzinfo=UTC), datetime(2026, 10, 30, tzinfo=UTC))


def _allowed(moment: datetime, zone: str, hours: QuietHours) -> bool:
    local = moment.astimezone(ZoneInfo(zone))
    start, end = hours.window(local.date())
    return start <= local.time().replace(tzinfo=None) < end


@pytest.mark.parametrize("zone", US_ZONES)
@pytest.mark.parametrize("state", [None, "FL", "TX"])
def test_every_moment_is_sent_inside_the_window_or_delayed_to_its_next_opening(zone, state):
    rng = random.Random(f"{zone}{state}")
    hours = QuietHours(state=state)
    for span in SPANS:
        for _ in range(400):
            now = span + timedelta(minutes=rng.randrange(0, 5 * 24 * 60), seconds=rng.randrange(60))
            sent = hours.next_allowed(now, zone)
            assert sent >= now and sent - now < timedelta(days=2)  # delayed, never dropped
            assert _allowed(sent, zone, hours), (zone, state, now, sent)
            if sent > now:
                # Nothing earlier was allowed: the send waits for the very next opening.
                local = sent.astimezone(ZoneInfo(zone))
                assert local.time().replace(tzinfo=None) == hours.window(local.date())[0]
                assert not _allowed(now, zone, hours)
            else:
                assert _allowed(now, zone, hours)


def test_a_failed_card_at_two_am_texts_at_eight_local_across_the_spring_change():
    # 02:13 on the night the clocks go forward in Chicago (02:00 CST -> 03:00 CDT).
    at = datetime(2026, 3, 8, 8, 13, tzinfo=UTC)
    sent = QuietHours().next_allowed(at, "America/Chicago")
    assert sent.astimezone(ZoneInfo("America/Chicago")).replace(tzinfo=None) == datetime(2026, 3, 8, 8, 0)
    assert sent == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)  # CDT: UTC-5 from that morning


def test_stricter_states():
    assert state_of_phone("+13055550123") == "FL" and state_of_phone("+12145550123") == "TX"
    assert state_of_phone("+14155550123") is None and state_of_phone("+447700900123") is None
    florida = QuietHours(state="FL")
    evening = datetime(2026, 6, 10, 0, 30, tzinfo=UTC)  # 20:30 in Miami (EDT)
    assert florida.next_allowed(evening, "America/New_York") > evening
    assert QuietHours().next_allowed(evening, "America/New_York") == evening
    sunday_morning = datetime(2026, 6, 14, 15, 0, tzinfo=UTC)  # Sunday 10:00 in Dallas (CDT)
    opened = QuietHours(state="TX").next_allowed(sunday_morning, "America/Chicago")
    assert opened.astimezone(ZoneInfo("America/Chicago")).time() == time(12, 0)


def test_window_parsing():
    assert parse_window("08:00-21:00") == (time(8), time(21))
    for bad in ("21:00-08:00", "8-9", "08:00"):
        with pytest.raises(ValueError):
            parse_window(bad)


@pytest.mark.parametrize(
    ("zone", "now", "expected_local"),
    [
        # The Saturday before the spring change, asking for 09:00: Sunday 09:00 CDT.
        ("America/Chicago", datetime(2026, 3, 7, 16, 0, tzinfo=UTC), datetime(2026, 3, 8, 9, 0)),
        # The autumn change in Los Angeles: 09:00 PST on 1 November.
        ("America/Los_Angeles", datetime(2026, 10, 31, 17, 0, tzinfo=UTC), datetime(2026, 11, 1, 9, 0)),
        # Europe changes a week earlier; the same rule holds there.
        ("Europe/Berlin", datetime(2026, 3, 28, 9, 0, tzinfo=UTC), datetime(2026, 3, 29, 9, 0)),
    ],
)
def test_wait_until_is_local_time_across_dst(zone, now, expected_local):
    moment = next_local_time(now, zone, "09:00", None, "next_day")
    assert moment is not None
    assert moment.astimezone(ZoneInfo(zone)).replace(tzinfo=None) == expected_local


def test_wait_until_days_and_skip():
    monday_noon = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)  # 12:00 in Chicago
    friday = next_local_time(monday_noon, "America/Chicago", "09:00", ["fri"], "next_day")
    assert friday is not None and friday.astimezone(ZoneInfo("America/Chicago")).date().isoformat() == "2026-03-06"
    assert next_local_time(monday_noon, "America/Chicago", "09:00", None, "skip") is None
    later_today = next_local_time(monday_noon, "America/Chicago", "17:00", None, "skip")
    assert later_today == datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
