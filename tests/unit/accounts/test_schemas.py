"""A user without a list sees every location; with one, only those."""

from __future__ import annotations

from datetime import UTC, datetime

from signalbox.accounts.schemas import UserInfo

AT = datetime(2026, 3, 8, tzinfo=UTC)


def user(locations: tuple[str, ...] | None) -> UserInfo:
    return UserInfo("usr_1", "ws_1", "a@example.com", "staff", locations, None, AT, None)


def test_no_list_means_every_location():
    assert user(None).sees_location("loc-99")
    assert user(None).to_dict()["locations"] is None


def test_a_list_means_only_those():
    scoped = user(("loc-01", "loc-02"))
    assert scoped.sees_location("loc-02") and not scoped.sees_location("loc-03")
    assert scoped.to_dict()["locations"] == ["loc-01", "loc-02"]
