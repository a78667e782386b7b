"""Writes and reads of the append-only event log. Rows are never updated."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from signalbox.core.clock import ensure_utc
from signalbox.events.models import Event
from signalbox.events.schemas import StoredEvent

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


def insert_events(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert rows the caller already checked against the log under the workspace lock.

    ``ON CONFLICT DO NOTHING`` stays as the last guard so a message can never be stored twice
    even if a caller forgets the check; without RETURNING the rows go in as one executemany,
    which is what keeps ingestion near the raw insert rate. Returns the rows inserted."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    table: Table = Event.__table__  # type: ignore[assignment]
    base = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    stmt = base.on_conflict_do_nothing(index_elements=["workspace_id", "message_id"])
    result = session.connection().execute(stmt, rows)
    count = result.rowcount
    return count if count is not None and count >= 0 else len(rows)


def insert_events_plain(session: Session, rows: list[dict[str, Any]]) -> None:
    """The benchmark's reference: the same rows with a bare executemany."""
    session.execute(insert(Event), rows)


def aggregate_by_node(
    session: Session, workspace_id: str, node_ids: Sequence[str]
) -> list[tuple[str, str, str | None, int, datetime, datetime]]:
    """(node, type, event, count, first, last) for every node, for folding into their roots."""
    out: list[tuple[str, str, str | None, int, datetime, datetime]] = []
    for start in range(0, len(node_ids), _CHUNK):
        rows = session.execute(
            select(Event.profile_id, Event.type, Event.event, func.count(), func.min(Event.timestamp))
            .add_columns(func.max(Event.timestamp))
            .where(Event.workspace_id == workspace_id, Event.profile_id.in_(node_ids[start : start + _CHUNK]))
            .group_by(Event.profile_id, Event.type, Event.event)
        )
        out.extend((node, kind, name, n, ensure_utc(lo), ensure_utc(hi)) for node, kind, name, n, lo, hi in rows)
    return out


def identify_traits_by_node(
    session: Session, workspace_id: str, node_ids: Sequence[str]
) -> list[tuple[str, datetime, dict[str, Any]]]:
    """(node, timestamp, traits) of every identify of the nodes, oldest first."""
    out: list[tuple[str, datetime, int, dict[str, Any]]] = []
    for start in range(0, len(node_ids), _CHUNK):
        rows = session.execute(
            select(Event.profile_id, Event.timestamp, Event.id, Event.traits).where(
                Event.workspace_id == workspace_id,
                Event.profile_id.in_(node_ids[start : start + _CHUNK]),
                Event.type == "identify",
            )
        )
        out.extend((node, ensure_utc(ts), row_id, traits) for node, ts, row_id, traits in rows)
    out.sort(key=lambda row: (row[1], row[2]))
    return [(node, ts, traits) for node, ts, _, traits in out]


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
