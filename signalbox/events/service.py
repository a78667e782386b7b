"""Writes and reads of the append-only event log. Rows are never updated."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import orjson
from numpy.typing import NDArray
from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from signalbox.changes import service as changes
from signalbox.changes.schemas import NewChange
from signalbox.core.clock import ensure_utc
from signalbox.core.db import bulk_insert, driver_one_of, driver_rows, epoch_seconds, epoch_sql, one_of, time_param
from signalbox.events.models import Event
from signalbox.events.schemas import StoredEvent

_CHUNK = 2000
_NODES = " /*nodes*/"  # where a read for some nodes only adds its node filter
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


@dataclass(frozen=True)
class TrackColumns:
    """Track events as columns: row k is node `nodes[k]`, event `names[codes[k]]` at epoch
    second `ts[k]`, with each asked-for property as a float (NaN when absent or not a number)."""

    names: tuple[str, ...]
    nodes: list[str]
    codes: NDArray[np.int64]
    ts: NDArray[np.float64]
    props: dict[str, NDArray[np.float64]]

    def __len__(self) -> int:
        return len(self.nodes)


def track_columns(
    session: Session,
    workspace_id: str,
    names: Sequence[str],
    start: datetime,
    end: datetime,
    properties: Sequence[str] = (),
    nodes: Sequence[str] | None = None,
    *,
    property_events: Sequence[str] | None = None,
) -> TrackColumns:
    """Track events in [start, end) of every node or only of `nodes`, as columns.

    Property values that are numbers or numeric strings become floats, booleans 1.0/0.0,
    anything else NaN; they are read only for `property_events` (default: every event), the
    other rows get NaN. Read through the driver and converted column by column: a million
    people's events are millions of rows, and per-row result processing was most of the
    scoring job's time. Rows without properties come from the event/time index alone."""
    names = tuple(names)
    with_props = tuple(e for e in names if property_events is None or e in property_events) if properties else ()
    plain = tuple(e for e in names if e not in with_props)
    parts = [_track_part(session, workspace_id, plain, start, end, (), nodes)]
    parts.append(_track_part(session, workspace_id, with_props, start, end, properties, nodes))
    index = {name: k for k, name in enumerate(names)}
    codes = [np.fromiter(map(index.__getitem__, part[1]), dtype=np.int64, count=len(part[1])) for part in parts]
    missing = np.full(len(parts[0][0]), np.nan)
    return TrackColumns(
        names,
        [*parts[0][0], *parts[1][0]],
        np.concatenate(codes),
        np.concatenate([epoch_seconds(session, part[2]) for part in parts]),
        {prop: np.concatenate([missing, _numbers(parts[1][3 + k])]) for k, prop in enumerate(properties)},
    )


def _track_part(
    session: Session,
    workspace_id: str,
    names: Sequence[str],
    start: datetime,
    end: datetime,
    properties: Sequence[str],
    nodes: Sequence[str] | None,
) -> list[Sequence[Any]]:
    """The columns (node, event, time, *properties) of one read of `track_columns`."""
    if not names:
        return [()] * (3 + len(properties))
    pg = session.get_bind().dialect.name == "postgresql"
    params: dict[str, Any] = {"ws": workspace_id, "start": time_param(session, start), "end": time_param(session, end)}
    params.update({f"e{k}": name for k, name in enumerate(names)})
    exprs = []
    for k, prop in enumerate(properties):
        params[f"p{k}"] = prop if pg else _json_path(prop)
        exprs.append(_PG_PROPERTY.format(k=k) if pg else _SQLITE_PROPERTY.format(k=k))
    columns = ", ".join(["profile_id", "event", epoch_sql(session, "timestamp"), *exprs])
    events_in = ", ".join(f":e{k}" for k in range(len(names)))
    sql = (
        f"SELECT {columns} FROM events WHERE workspace_id = :ws AND type = 'track' "  # noqa: S608 (constants only)
        f"AND event IN ({events_in}) AND timestamp >= :start AND timestamp < :end{_NODES}"
    )
    rows = _driver_rows_of_nodes(session, sql, params, nodes)
    return list(zip(*rows, strict=True)) if rows else [()] * (3 + len(properties))


# The property as a number where it is one (or a boolean), its text where it is a string
# (`_numbers` parses those), NULL otherwise.
_SQLITE_PROPERTY = (
    "CASE json_type(properties, :p{k}) WHEN 'integer' THEN json_extract(properties, :p{k}) "
    "WHEN 'real' THEN json_extract(properties, :p{k}) WHEN 'true' THEN 1.0 WHEN 'false' THEN 0.0 "
    "WHEN 'text' THEN json_extract(properties, :p{k}) END"
)
_PG_PROPERTY = (
    "CASE jsonb_typeof(properties -> :p{k}) WHEN 'number' THEN properties ->> :p{k} "
    "WHEN 'string' THEN properties ->> :p{k} "
    "WHEN 'boolean' THEN CASE WHEN properties -> :p{k} = 'true'::jsonb THEN '1' ELSE '0' END END"
)


def _json_path(name: str) -> str:
    return "$." + orjson.dumps(name).decode()


def _numbers(values: Sequence[Any]) -> NDArray[np.float64]:
    """A property column as floats: NumPy converts numbers, NULLs and numeric strings in one
    pass; a column holding a non-numeric string falls back to one value at a time."""
    try:
        out = np.array(values, dtype=np.float64)
    except (ValueError, TypeError):
        out = np.array([np.nan if (v := _number(x)) is None else v for x in values], dtype=np.float64)
    out[~np.isfinite(out)] = np.nan
    return out


HistoryAgg = Literal["count", "sum", "first_at", "last_at"]


@dataclass(frozen=True)
class HistorySpec:
    """One aggregate over a node's track events of `events` before the read's end."""

    agg: HistoryAgg
    events: tuple[str, ...]
    prop: str | None = None  # summed (JSON numbers only), for "sum"


@dataclass(frozen=True)
class TrackHistory:
    """Per node (`nodes[k]`), the value of each spec (epoch seconds for moments; NaN where
    the node has no such event, 0 for counts and sums)."""

    nodes: list[str]
    values: list[NDArray[np.float64]]


def track_history(
    session: Session,
    workspace_id: str,
    specs: Sequence[HistorySpec],
    end: datetime,
    nodes: Sequence[str] | None = None,
) -> TrackHistory:
    """Each spec's aggregate per node over track events before `end`, in one grouped read
    with one row per node. Only JSON numbers are summed: a junk value in one event must not
    make the whole aggregate fail (PostgreSQL's cast would raise). Without a sum, the read
    needs nothing but the event/time index."""
    names = sorted({e for spec in specs for e in spec.events})
    if not names:
        return TrackHistory([], [np.zeros(0) for _ in specs])
    pg = session.get_bind().dialect.name == "postgresql"
    params: dict[str, Any] = {"ws": workspace_id, "end": time_param(session, end)}
    params.update({f"e{k}": name for k, name in enumerate(names)})
    exprs = []
    for k, spec in enumerate(specs):
        params.update({f"s{k}_{j}": name for j, name in enumerate(spec.events)})
        member = f"event IN ({', '.join(f':s{k}_{j}' for j in range(len(spec.events)))})"
        if spec.agg == "count":
            exprs.append(f"count(CASE WHEN {member} THEN 1 END)")
        elif spec.agg == "sum":
            if spec.prop is None:
                raise ValueError("a sum needs a property")
            params[f"p{k}"] = spec.prop if pg else _json_path(spec.prop)
            number = (
                f"CASE WHEN jsonb_typeof(properties -> :p{k}) = 'number' THEN (properties ->> :p{k})::float8 END"
                if pg
                else f"CASE WHEN json_type(properties, :p{k}) IN ('integer', 'real') "
                f"THEN json_extract(properties, :p{k}) END"
            )
            exprs.append(f"sum(CASE WHEN {member} THEN {number} END)")
        else:
            pick = "min" if spec.agg == "first_at" else "max"
            exprs.append(epoch_sql(session, f"{pick}(CASE WHEN {member} THEN timestamp END)"))
    events_in = ", ".join(f":e{k}" for k in range(len(names)))
    sql = (
        f"SELECT profile_id, {', '.join(exprs)} FROM events "  # noqa: S608 (constants only)
        f"WHERE workspace_id = :ws AND type = 'track' AND event IN ({events_in}) AND timestamp < :end{_NODES} "
        "GROUP BY profile_id"
    )
    rows = _driver_rows_of_nodes(session, sql, params, nodes)
    cols: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [()] * (1 + len(specs))
    values = []
    for k, spec in enumerate(specs):
        column = cols[1 + k]
        if spec.agg in ("count", "sum"):
            values.append(np.nan_to_num(np.array(column, dtype=np.float64)))
        else:
            values.append(epoch_seconds(session, column))
    return TrackHistory(list(cols[0]), values)


@dataclass(frozen=True)
class IdentifyLabels:
    """Every identify of a read, oldest first, as columns: its node and, per key asked for,
    the value it carries (None where absent)."""

    nodes: list[str]
    values: list[Sequence[Any]]


def identify_labels(
    session: Session, workspace_id: str, end: datetime, keys: Sequence[str], nodes: Sequence[str] | None = None
) -> IdentifyLabels:
    """The identifies before `end`, oldest first: only the traits asked for are read out of
    each document."""
    pg = session.get_bind().dialect.name == "postgresql"
    params: dict[str, Any] = {"ws": workspace_id, "end": time_param(session, end)}
    if pg:
        params.update({f"k{k}": key for k, key in enumerate(keys)})
        exprs = [f"traits -> :k{k}" for k in range(len(keys))]
    else:
        # One JSON array of all the keys' values per row: SQLite parses each document once,
        # and a number or a boolean trait comes out as the document holds it (as in PostgreSQL).
        # (With one path json_extract gives the bare value, so a single key is asked twice.)
        paths = list(keys) if len(keys) > 1 else [*keys, *keys]
        params.update({f"k{k}": _json_path(key) for k, key in enumerate(paths)})
        exprs = [f"json_extract(traits, {', '.join(f':k{k}' for k in range(len(paths)))})"]
    sql = (
        f"SELECT {', '.join(['profile_id', 'timestamp', 'id', *exprs])} FROM events "  # noqa: S608 (constants only)
        f"WHERE workspace_id = :ws AND type = 'identify' AND timestamp < :end{_NODES} ORDER BY timestamp, id"
    )
    rows = _driver_rows_of_nodes(session, sql, params, nodes)
    if not rows:
        return IdentifyLabels([], [[] for _ in keys])
    cols = list(zip(*rows, strict=True))
    if pg:
        return IdentifyLabels(list(cols[0]), list(cols[3:]))
    # Few distinct label sets among a million identifies: each array parsed once, then the
    # rows' arrays transposed into one column per key.
    absent = [None] * len(keys)
    decoded = {doc: orjson.loads(doc)[: len(keys)] if doc is not None else absent for doc in set(cols[3])}
    return IdentifyLabels(list(cols[0]), list(zip(*map(decoded.__getitem__, cols[3]), strict=True)))


def _driver_rows_of_nodes(
    session: Session, sql: str, params: dict[str, Any], nodes: Sequence[str] | None
) -> list[tuple[Any, ...]]:
    """`sql` for the whole workspace, or for only these nodes (the node filter goes where
    `sql` holds `_NODES`), in one statement either way."""
    if nodes is None:
        return driver_rows(session, sql.replace(_NODES, ""), params)
    where, value = driver_one_of(session, "profile_id", "nodes", nodes)
    return driver_rows(session, sql.replace(_NODES, f" AND {where}"), {**params, "nodes": value})


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
