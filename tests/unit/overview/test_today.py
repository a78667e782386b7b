"""The Today read model's pure rules: durations as a person says them, the suggested action,
the top reasons, which location is behind, and the workspace's day boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from signalbox.overview.today import (
    LocationRow,
    PlaybookRow,
    behind_flags,
    day_end,
    display_name,
    human_duration,
    suggested_action,
    tomorrow_morning,
    top_reasons,
)


@pytest.mark.parametrize(
    ("delta", "said"),
    [
        (timedelta(seconds=30), "under 1 min"),
        (timedelta(minutes=12), "12 min"),
        (timedelta(hours=2, minutes=5), "2 h 5 min"),
        (timedelta(hours=3), "3 h"),
        (timedelta(days=1, hours=4, minutes=59), "1 d 4 h"),
        (timedelta(days=2), "2 d"),
        (-timedelta(hours=1, minutes=1), "1 h 1 min"),
    ],
)
def test_human_duration(delta, said):
    assert human_duration(delta) == said


def test_suggested_action_rule():
    assert suggested_action("High", 70, has_phone=False) == "call"
    assert suggested_action("High", 69, has_phone=True) == "sms"
    assert suggested_action("Medium", 90, has_phone=False) == "email"


def test_top_reasons_are_the_biggest_non_zero_components():
    components = [
        {"component": "recency", "points": 10, "reason": "r", "detail": "d1"},
        {"component": "payment_friction", "points": 25, "reason": "p", "detail": "d2"},
        {"component": "frequency_change", "points": 0, "reason": "f", "detail": "d3"},
        {"component": "engagement_decay", "points": 10, "reason": "e", "detail": "d4"},
        {"component": "support_sentiment", "points": 5, "reason": "s", "detail": "d5"},
    ]
    assert [r["component"] for r in top_reasons(components)] == ["payment_friction", "engagement_decay", "recency"]
    assert top_reasons(None) == []
    assert top_reasons([{"component": "recency", "points": 0}]) == []


def test_a_location_is_behind_when_worse_than_average_on_two_measures():
    a = LocationRow("loc-01", None, members=100, high=30, overdue_tasks=5, leads_waiting=0)
    b = LocationRow("loc-02", None, members=100, high=10, overdue_tasks=1, leads_waiting=0)
    c = LocationRow("loc-03", None, members=100, high=10, overdue_tasks=0, leads_waiting=4)
    behind_flags([a, b, c])
    assert (a.behind, a.worse_on) == (True, ["high_share", "overdue_tasks"])
    assert (b.behind, b.worse_on) == (False, [])
    assert (c.behind, c.worse_on) == (False, ["leads_waiting"])
    alone = LocationRow("loc-04", None, members=10, high=9, overdue_tasks=9, leads_waiting=9)
    behind_flags([alone])
    assert alone.behind is False and alone.worse_on == []


def test_day_boundaries_follow_the_workspace_zone_across_dst():
    now = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)  # 01:30 EST; clocks go forward at 02:00
    assert day_end(now, "America/New_York") == datetime(2026, 3, 9, 4, 0, tzinfo=UTC)  # midnight EDT
    assert tomorrow_morning(now, "America/New_York") == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)
    assert tomorrow_morning(now, "Europe/Paris") == datetime(2026, 3, 9, 8, 0, tzinfo=UTC)


def test_display_name_and_verdict():
    assert display_name("u1", {"first_name": "Ann", "last_name": "Lee"}) == "Ann Lee"
    assert display_name("u1", {}) == "u1"
    assert display_name(None, None) == "(unnamed)"
    arm = {"enrolled": 10, "converted": 5, "rate": 0.5}
    unproven = PlaybookRow("k", "K", arm, arm, 0.1, [-0.05, 0.25], None)
    proven = PlaybookRow("k", "K", arm, arm, 0.3, [0.1, 0.5], 120.0)
    assert (unproven.proven, unproven.verdict) == (False, "not yet proven")
    assert (proven.proven, proven.verdict) == (True, "proven")
    assert PlaybookRow("k", "K", arm, arm, None, None, None).verdict == "no holdout to compare yet"
