"""Timeline merging and its cursor, without a database: newest first across sources, ties in
one second broken the same way on every page, and `next_before` that walks every item once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from signalbox.core.errors import InvalidInputError
from signalbox.overview.customer import (
    Cursor,
    TimelineItem,
    clean_query,
    display_name,
    evidence_summary,
    merge_sources,
    parse_cursor,
)

T0 = datetime(2026, 1, 13, 8, 0, tzinfo=UTC)


def item(kind: str, minutes: int, row_id: int) -> TimelineItem:
    return TimelineItem(kind, T0 + timedelta(minutes=minutes), row_id, f"{kind} {row_id}")


def older_than(items: list[TimelineItem], cursor: Cursor | None) -> list[TimelineItem]:
    """What each source's SQL returns for a cursor, written plainly."""
    if cursor is None:
        return items
    if cursor.kind is None:
        return [i for i in items if i.at < cursor.at]
    return [i for i in items if i.order < (cursor.at, cursor.kind, cursor.id)]


SOURCES = {
    "event": [item("event", 0, 1), item("event", 5, 2), item("event", 5, 3), item("event", 30, 4)],
    "send": [item("send", 5, 1), item("send", 20, 2)],
    "decision": [item("decision", 5, 7), item("decision", 20, 8)],
    "task": [item("task", 25, 1)],
    "task_done": [item("task_done", 40, 1)],
    "consent": [item("consent", -10, 1)],
    "merge": [item("merge", 3, 1)],
}


def test_every_kind_newest_first_with_ties_in_a_fixed_order():
    page = merge_sources(SOURCES.values(), limit=100)
    assert page.next_before is None
    got = [(i.kind, i.id) for i in page.items]
    assert got[0] == ("task_done", 1) and got[-1] == ("consent", 1)
    # Four things at 08:05: by kind, then id, newest (largest) first.
    assert got[5:9] == [("send", 1), ("event", 3), ("event", 2), ("decision", 7)]
    assert [i.at for i in page.items] == sorted((i.at for i in page.items), reverse=True)


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 13])
def test_walking_next_before_gives_every_item_once(limit):
    everything = merge_sources(SOURCES.values(), limit=100).items
    walked: list[TimelineItem] = []
    cursor: Cursor | None = None
    for _ in range(50):
        page = merge_sources(
            (
                [i for i in sorted(older_than(s, cursor), key=lambda i: i.order, reverse=True)][: limit + 1]
                for s in SOURCES.values()
            ),
            limit,
        )
        walked += page.items
        if page.next_before is None:
            break
        cursor = parse_cursor(page.next_before)
    assert walked == everything


def test_cursor_round_trip_and_plain_times():
    one = item("task_done", 40, 12)
    assert parse_cursor(one.cursor) == Cursor(one.at, "task_done", 12)
    assert parse_cursor("2026-01-13T08:05:00Z") == Cursor(T0 + timedelta(minutes=5))
    assert parse_cursor("2026-01-13T02:05:00-06:00") == Cursor(T0 + timedelta(minutes=5))
    assert parse_cursor("2026-01-13T08:05:00") == Cursor(T0 + timedelta(minutes=5))  # naive: UTC
    assert parse_cursor(None) is None and parse_cursor("") is None
    for bad in ("yesterday", "2026-13-45", "x~event~1", "2026-01-13T08:05:00~event~-1", "9999-12-31T23:00:00-14:00"):
        with pytest.raises(InvalidInputError):
            parse_cursor(bad)


def test_a_plain_time_excludes_everything_at_that_moment():
    cursor = parse_cursor((T0 + timedelta(minutes=5)).isoformat())
    page = merge_sources((older_than(s, cursor) for s in SOURCES.values()), limit=100)
    assert [(i.kind, i.id) for i in page.items] == [("merge", 1), ("event", 1), ("consent", 1)]


def test_query_cleaning():
    assert clean_query("  pat  ") == "pat" and clean_query(None) == ""
    assert clean_query("100%_") == "100%_"
    for bad in ("a\x00b", "tab\there", "x" * 201):
        with pytest.raises(InvalidInputError):
            clean_query(bad)


def test_names_and_evidence_read_well():
    assert display_name({"first_name": "Pat", "last_name": "Lee"}) == "Pat Lee"
    assert display_name({"name": "Sam Roe", "first_name": "Sam"}) == "Sam Roe"
    assert display_name({"email": "x@example.com"}) is None
    assert evidence_summary({"keyword": "STOP", "from": "+14155550132"}) == "keyword: STOP, from: +14155550132"
    assert evidence_summary(None) == "" and len(evidence_summary({"k": "v" * 500})) <= 120
