"""Writes and reads of the append-only event log. Rows are never updated."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, case, func, select
from sqlalchemy.orm import Session

from signalbox.changes import service as changes
from signalbox.changes.schemas import NewChange
from signalbox.core.clock import ensure_utc
from signalbox.core.db import bulk_insert, one_of
from signalbox.events.models import Event
from signalbox.events.schemas import StoredEvent

_CHUNK = 2000
EVENTS: Table = Event.__table__  # type: ignore[assignment]


def existing_message_ids(session: Session, workspace_id: str, message_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(message_ids), _CHUNK):
        chunk = message_ids[start : start + _CHUNK]
        found.update(
            session.scalars(
                select(Event.message_id).where(
                    Event.workspace_id == workspace_id, one_of(session, Event.message_id, chunk)
                )
            )
        )
    return found


def insert_events(session: Session, workspace_id: str, rows: list[dict[str, Any]], now: datetime) -> int:
    """Insert rows the caller already checked against the log under the workspace lock, with
    one change-log row each (the journey engine's event triggers read those), in the caller's
    transaction. Returns the rows inserted (all of them, or it raises).

    The rows go in as one COPY (PostgreSQL) or one driver executemany (SQLite) with no ON
    CONFLICT: the profile showed the per-row parameter handling of the Core executemany, and
    on PostgreSQL one round trip per row, as most of the write's cost. The unique
    (workspace_id, message_id) key stays the last guard: should a caller skip the check, a
    message already stored fails the statement and with it the batch (dead-lettered, and a
    replay then finds it stored), so a message is never stored twice and never half-stored."""
    if not rows:
        return 0
    if any(row["workspace_id"] != workspace_id for row in rows):
        raise ValueError("insert_events: every row must belong to the workspace given")
    bulk_insert(session, EVENTS, rows)
    changes.append(
        session,
        workspace_id,
        [NewChange("event", r["profile_id"], r["message_id"], r["event"] or r["type"]) for r in rows],
        now,
    )
    return len(rows)


def holds_events(session: Session, workspace_id: str) -> bool:
    found = session.scalar(select(Event.id).where(Event.workspace_id == workspace_id).limit(1))
    return found is not None


def aggregate_by_node(
    session: Session, workspace_id: str, node_ids: Sequence[str]
) -> list[tuple[str, str, str | None, int, datetime, datetime]]:
    """(node, type, event, count, first, last) for every node, for folding into their roots."""
    out: list[tuple[str, str, str | None, int, datetime, datetime]] = []
    for start in range(0, len(node_ids), _CHUNK):
        rows = session.execute(
            select(Event.profile_id, Event.type, Event.event, func.count(), func.min(Event.timestamp))
            .add_columns(func.max(Event.timestamp))
            .where(
                Event.workspace_id == workspace_id, one_of(session, Event.profile_id, node_ids[start : start + _CHUNK])
            )
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
                one_of(session, Event.profile_id, node_ids[start : start + _CHUNK]),
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


def by_message_ids(
    session: Session, workspace_id: str, message_ids: Sequence[str]
) -> dict[str, tuple[str, StoredEvent]]:
    """message_id -> (node, event) for the given ids (what a change-log reader joins)."""
    out: dict[str, tuple[str, StoredEvent]] = {}
    for start in range(0, len(message_ids), _CHUNK):
        rows = session.scalars(
            select(Event).where(
                Event.workspace_id == workspace_id, Event.message_id.in_(message_ids[start : start + _CHUNK])
            )
        )
        for r in rows:
            out[r.message_id] = (
                r.profile_id,
                StoredEvent(r.message_id, r.type, r.event, r.properties, r.traits, r.timestamp, r.received_at),
            )
    return out


def latest_context_value(session: Session, workspace_id: str, node_ids: Sequence[str], key: str) -> Any:
    """The newest `context.<key>` any of these nodes' recent messages carried (e.g. the
    timezone analytics.js sets), or None. Reads at most the 50 newest messages."""
    rows = session.scalars(
        select(Event.context)
        .where(Event.workspace_id == workspace_id, Event.profile_id.in_(list(node_ids)))
        .order_by(Event.timestamp.desc(), Event.id.desc())
        .limit(50)
    )
    for context in rows:
        if isinstance(context, dict) and context.get(key) not in (None, ""):
            return context[key]
    return None


def latest_context_values(
    session: Session, workspace_id: str, trees: dict[str, Sequence[str]], key: str
) -> dict[str, Any]:
    """`latest_context_value` for many people (root -> its nodes) at once: the 50 newest
    messages of each node, of which each person's 50 newest are the same as above."""
    owner = {node: root for root, nodes in trees.items() for node in nodes}
    seen: dict[str, list[tuple[datetime, int, Any]]] = {}
    nodes = list(owner)
    for start in range(0, len(nodes), 500):
        ranked = (
            select(
                Event.profile_id,
                Event.timestamp,
                Event.id,
                Event.context,
                func.row_number()
                .over(partition_by=Event.profile_id, order_by=(Event.timestamp.desc(), Event.id.desc()))
                .label("n"),
            )
            .where(Event.workspace_id == workspace_id, Event.profile_id.in_(nodes[start : start + 500]))
            .subquery()
        )
        rows = session.execute(
            select(ranked.c.profile_id, ranked.c.timestamp, ranked.c.id, ranked.c.context).where(ranked.c.n <= 50)
        )
        for node, at, row_id, context in rows:
            seen.setdefault(owner[node], []).append((at, row_id, context))
    out: dict[str, Any] = {}
    for root, found in seen.items():
        found.sort(key=lambda item: (item[0], item[1]), reverse=True)
        for _, _, context in found[:50]:
            if isinstance(context, dict) and context.get(key) not in (None, ""):
                out[root] = context[key]
                break
    return out


def named_events_of(
    session: Session, workspace_id: str, node_ids: Sequence[str], names: Sequence[str], since: datetime
) -> list[tuple[str, StoredEvent]]:
    """Track events of these names on these nodes at or after `since` (goals, also those seen out
    of order), each with its node."""
    out: list[tuple[str, StoredEvent]] = []
    ids = list(node_ids)
    for start in range(0, len(ids), 500):
        rows = session.scalars(
            select(Event)
            .where(
                Event.workspace_id == workspace_id,
                Event.profile_id.in_(ids[start : start + 500]),
                Event.type == "track",
                Event.event.in_(list(names)),
                Event.timestamp >= since,
            )
            .order_by(Event.timestamp, Event.id)
        )
        out.extend(
            (
                r.profile_id,
                StoredEvent(r.message_id, r.type, r.event, r.properties, r.traits, r.timestamp, r.received_at),
            )
            for r in rows
        )
    return out


def track_rows(
    session: Session,
    workspace_id: str,
    names: Sequence[str],
    start: datetime,
    end: datetime,
    properties: Sequence[str] = (),
    nodes: Sequence[str] | None = None,
) -> list[tuple[Any, ...]]:
    """(node, event, timestamp, *property values as floats) of track events in [start, end),
    of every node or only of `nodes`.

    Property values that are not numbers come back as None (booleans as 1.0/0.0)."""
    if not names:
        return []
    columns = [Event.profile_id, Event.event, Event.timestamp, *(Event.properties[p] for p in properties)]
    stmt = select(*columns).where(
        Event.workspace_id == workspace_id,
        Event.type == "track",
        Event.event.in_(list(names)),
        Event.timestamp >= start,
        Event.timestamp < end,
    )
    rows = _of_nodes(session, stmt, nodes)
    return [(node, name, ensure_utc(ts), *(_number(v) for v in values)) for node, name, ts, *values in rows]


def track_aggregates(
    session: Session,
    workspace_id: str,
    names: Sequence[str],
    end: datetime,
    amount_property: str | None = None,
    nodes: Sequence[str] | None = None,
) -> list[tuple[str, str, int, datetime, datetime, float]]:
    """(node, event, count, first, last, sum of `amount_property`) of track events before `end`."""
    if not names:
        return []
    dialect = session.get_bind().dialect.name
    total = func.sum(_numeric_property(amount_property, dialect)) if amount_property else func.sum(0.0)
    stmt = (
        select(Event.profile_id, Event.event, func.count(), func.min(Event.timestamp), func.max(Event.timestamp))
        .add_columns(total)
        .where(
            Event.workspace_id == workspace_id,
            Event.type == "track",
            Event.event.in_(list(names)),
            Event.timestamp < end,
        )
        .group_by(Event.profile_id, Event.event)
    )
    rows = _of_nodes(session, stmt, nodes)
    return [
        (node, name, n, ensure_utc(lo), ensure_utc(hi), float(amount or 0.0)) for node, name, n, lo, hi, amount in rows
    ]


def identify_rows(
    session: Session, workspace_id: str, end: datetime, nodes: Sequence[str] | None = None
) -> list[tuple[str, datetime, dict[str, Any]]]:
    """(node, timestamp, traits) of every identify before `end`, oldest first."""
    stmt = select(Event.profile_id, Event.timestamp, Event.id, Event.traits).where(
        Event.workspace_id == workspace_id, Event.type == "identify", Event.timestamp < end
    )
    rows = sorted(((node, ensure_utc(ts), i, t) for node, ts, i, t in _of_nodes(session, stmt, nodes)), key=_time_id)
    return [(node, ts, traits) for node, ts, _, traits in rows]


def _time_id(row: tuple[str, datetime, int, Any]) -> tuple[datetime, int]:
    return row[1], row[2]


def _of_nodes(session: Session, stmt: Select[Any], nodes: Sequence[str] | None) -> list[Any]:
    """Run `stmt` for the whole workspace, or chunk by chunk for only these nodes."""
    if nodes is None:
        return list(session.execute(stmt))
    out: list[Any] = []
    for start in range(0, len(nodes), _CHUNK):
        out.extend(session.execute(stmt.where(Event.profile_id.in_(nodes[start : start + _CHUNK]))))
    return out


def _numeric_property(name: str, dialect: str) -> ColumnElement[float]:
    """The property as a float where it is a JSON number, else NULL: a junk value in one
    event must not make the whole aggregate fail (PostgreSQL's cast would raise)."""
    if dialect == "postgresql":
        value = Event.properties[name]
        return case(
            (func.jsonb_typeof(value) == "number", Event.properties[name].as_float()),
            else_=None,
        )
    path = f"$.{name}" if name.isidentifier() else f'$."{name}"'
    return case(
        (func.json_type(Event.properties, path).in_(["integer", "real"]), func.json_extract(Event.properties, path)),
        else_=None,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None
