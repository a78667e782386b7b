"""Writes and reads of the append-only event log. Rows are never updated."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from signalbox.core.clock import ensure_utc
from signalbox.events.models import Event
from signalbox.events.schemas import EventAggregate, StoredEvent

_CHUNK = 2000


def existing_message_ids(session: Session, workspace_id: str, message_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(message_ids), _CHUNK):
        chunk = message_ids[start : start + _CHUNK]
        found.update(
            session.scalars(
                select(Event.message_id).where(Event.workspace_id == workspace_id, Event.message_id.in_(chunk))
            )
        )
    return found


def insert_events(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert rows; a (workspace, message_id) already stored is skipped by the database, so a
    concurrent retry can never store a message twice. Returns the message ids inserted."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    base = postgresql.insert(Event) if dialect == "postgresql" else sqlite.insert(Event)
    stmt = base.on_conflict_do_nothing(index_elements=["workspace_id", "message_id"]).returning(Event.message_id)
    return set(session.scalars(stmt, rows))


def insert_events_plain(session: Session, rows: list[dict[str, Any]]) -> None:
    """The benchmark's reference: the same rows with a bare executemany."""
    session.execute(insert(Event), rows)


def aggregate(session: Session, workspace_id: str, profile_ids: Iterable[str]) -> EventAggregate:
    ids = list(profile_ids)
    where = (Event.workspace_id == workspace_id, Event.profile_id.in_(ids))
    by_type: dict[str, int] = {}
    by_event: dict[str, int] = {}
    total = 0
    first: datetime | None = None
    last: datetime | None = None
    grouped = session.execute(
        select(Event.type, Event.event, func.count(), func.min(Event.timestamp), func.max(Event.timestamp))
        .where(*where)
        .group_by(Event.type, Event.event)
    )
    for kind, name, count, lo, hi in grouped:
        total += count
        by_type[kind] = by_type.get(kind, 0) + count
        if kind == "track" and name is not None:
            by_event[name] = by_event.get(name, 0) + count
        low, high = ensure_utc(lo), ensure_utc(hi)
        first = low if first is None or low < first else first
        last = high if last is None or high > last else last
    return EventAggregate(total, by_type, by_event, first, last)


def identify_traits_in_order(
    session: Session, workspace_id: str, profile_ids: Iterable[str]
) -> list[tuple[datetime, dict[str, Any]]]:
    rows = session.execute(
        select(Event.timestamp, Event.traits)
        .where(
            Event.workspace_id == workspace_id,
            Event.profile_id.in_(list(profile_ids)),
            Event.type == "identify",
        )
        .order_by(Event.timestamp, Event.id)
    )
    return [(ensure_utc(ts), traits) for ts, traits in rows]


def list_events(
    session: Session,
    workspace_id: str,
    profile_ids: Iterable[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 10_000,
) -> list[StoredEvent]:
    stmt = select(Event).where(Event.workspace_id == workspace_id, Event.profile_id.in_(list(profile_ids)))
    if since is not None:
        stmt = stmt.where(Event.timestamp >= since)
    if until is not None:
        stmt = stmt.where(Event.timestamp <= until)
    rows = session.scalars(stmt.order_by(Event.timestamp, Event.id).limit(limit))
    return [
        StoredEvent(r.message_id, r.type, r.event, r.properties, r.traits, r.timestamp, r.received_at) for r in rows
    ]
