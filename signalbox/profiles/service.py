"""Profile nodes (the person graph's vertices) and the read model on each tree's root.

Identity decides *who* is who; this module only moves pointers it is told to move and keeps
traits and counters consistent with the event log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.orm import Session

from signalbox.changes import service as changes
from signalbox.changes.schemas import ChangeColumns, NewChange
from signalbox.core.clock import ensure_utc
from signalbox.core.db import (
    bulk_insert,
    bulk_update,
    driver_one_of,
    driver_rows,
    json_dumps,
    one_of,
    pg_array,
    update_by_id,
)
from signalbox.events import service as events
from signalbox.profiles import components, trait_docs
from signalbox.profiles.models import Profile
from signalbox.profiles.schemas import Contribution, ProfileNode, ProfileState, Signals

_CHUNK = 2000
_MISSING = object()
PROFILES: Table = Profile.__table__  # type: ignore[assignment]


def empty_counts() -> dict[str, Any]:
    return {"total": 0, "by_type": {}, "by_event": {}}


def node_row(workspace_id: str, node_id: str, user_id: str | None, now: datetime) -> dict[str, Any]:
    return {
        "id": node_id,
        "workspace_id": workspace_id,
        "canonical_id": node_id,
        "merged_into_id": None,
        "user_id": user_id,
        "traits": {},
        "event_counts": empty_counts(),
        "traits_at": None,
        "first_seen": None,
        "last_seen": None,
        "created_at": now,
        "updated_at": now,
    }


def insert_nodes(session: Session, rows: list[dict[str, Any]]) -> None:
    # New ids only (new_id), so a plain COPY / driver executemany (see core.db.bulk_insert).
    bulk_insert(session, PROFILES, rows)


def set_node_users(session: Session, workspace_id: str, users: dict[str, str]) -> None:
    if users:
        session.execute(
            update(PROFILES)
            .where(PROFILES.c.workspace_id == workspace_id)
            .where(PROFILES.c.id == bindparam("node"))
            .values(user_id=bindparam("uid")),
            [{"node": node, "uid": uid} for node, uid in users.items()],
        )


def nodes(session: Session, workspace_id: str, node_ids: Iterable[str]) -> dict[str, ProfileNode]:
    ids = list(node_ids)
    out: dict[str, ProfileNode] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(Profile.id, Profile.canonical_id, Profile.merged_into_id, Profile.user_id, Profile.created_at).where(
                Profile.workspace_id == workspace_id, one_of(session, Profile.id, ids[start : start + _CHUNK])
            )
        )
        for row in rows:
            out[row[0]] = ProfileNode(*row)
    return out


def tree(session: Session, workspace_id: str, canonical_id: str) -> list[ProfileNode]:
    rows = session.execute(
        select(Profile.id, Profile.canonical_id, Profile.merged_into_id, Profile.user_id, Profile.created_at)
        .where(Profile.workspace_id == workspace_id, Profile.canonical_id == canonical_id)
        .order_by(Profile.created_at, Profile.id)
    )
    return [ProfileNode(*row) for row in rows]


def tree_user_ids(session: Session, workspace_id: str, canonical_ids: Iterable[str]) -> dict[str, str]:
    """For each tree, the user_id of its oldest node that has one."""
    ids = list(canonical_ids)
    out: dict[str, str] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(Profile.canonical_id, Profile.user_id)
            .where(
                Profile.workspace_id == workspace_id,
                one_of(session, Profile.canonical_id, ids[start : start + _CHUNK]),
                Profile.user_id.is_not(None),
            )
            .order_by(Profile.created_at.desc(), Profile.id.desc())
        )
        for canon, uid in rows:
            if uid is not None:
                out[canon] = uid
    return out


def point_tree(session: Session, workspace_id: str, source: str, target: str) -> None:
    """Hang tree `source` (a root) under root `target`."""
    table = PROFILES
    session.execute(
        update(table).where(table.c.workspace_id == workspace_id, table.c.id == source).values(merged_into_id=target)
    )
    session.execute(
        update(table)
        .where(table.c.workspace_id == workspace_id, table.c.canonical_id == source)
        .values(canonical_id=target)
    )


def detach(session: Session, workspace_id: str, node_id: str) -> tuple[str, str]:
    """Cut `node_id` from its parent; it becomes the root of its own subtree.
    Returns (old root, new root)."""
    table = PROFILES
    node = nodes(session, workspace_id, [node_id])[node_id]
    members = tree(session, workspace_id, node.canonical_id)
    children: dict[str | None, list[str]] = {}
    for member in members:
        children.setdefault(member.merged_into_id, []).append(member.id)
    subtree: list[str] = []
    stack: list[str] = [node_id]
    while stack:
        current = stack.pop()
        subtree.append(current)
        stack.extend(children.get(current, []))
    session.execute(
        update(table).where(table.c.workspace_id == workspace_id, table.c.id == node_id).values(merged_into_id=None)
    )
    session.execute(
        update(table).where(table.c.workspace_id == workspace_id, table.c.id.in_(subtree)).values(canonical_id=node_id)
    )
    return node.canonical_id, node_id


def _fold_traits(
    traits: dict[str, Any], traits_at: datetime | None, updates: list[tuple[datetime, dict[str, Any]]]
) -> tuple[dict[str, Any], datetime | None]:
    merged = dict(traits)
    for at, incoming in sorted(updates, key=lambda pair: pair[0]):
        if traits_at is None or at >= traits_at:
            merged.update(incoming)
            traits_at = at
        else:
            for key, value in incoming.items():
                merged.setdefault(key, value)
    return merged, traits_at


def _merge_counts(counts: dict[str, Any], add: Contribution) -> dict[str, Any]:
    by_type = dict(counts.get("by_type", {}))
    by_event = dict(counts.get("by_event", {}))
    for key, n in add.by_type.items():
        by_type[key] = by_type.get(key, 0) + n
    for key, n in add.by_event.items():
        by_event[key] = by_event.get(key, 0) + n
    return {"total": int(counts.get("total", 0)) + add.total, "by_type": by_type, "by_event": by_event}


_READ_MODEL_COLUMNS = (
    ("event_counts", "text", "::jsonb"),
    ("first_seen", "timestamptz", ""),
    ("last_seen", "timestamptz", ""),
    ("updated_at", "timestamptz", ""),
)
_TRAIT_COLUMNS = (("traits", "text", "::jsonb"), ("traits_at", "timestamptz", ""))


def _write_read_models(session: Session, workspace_id: str, rows: list[dict[str, Any]], with_traits: bool) -> None:
    """Write many roots' read models: rows of `pid` and the read-model columns (with `traits`
    and `traits_at` when `with_traits`).

    On PostgreSQL the rows travel as one array per column and are joined with UPDATE ... FROM
    unnest(...): psycopg's executemany sends, and the server parses and plans, one UPDATE per
    row, which the import profile showed as the largest single cost of a batch (30 % of it).
    On SQLite, one driver-level executemany (`bulk_update`)."""
    if not rows:
        return
    columns = _READ_MODEL_COLUMNS + (_TRAIT_COLUMNS if with_traits else ())
    if session.get_bind().dialect.name != "postgresql":
        keyed = [
            {**{name: row[name] for name, _, _ in columns}, "workspace_id": workspace_id, "id": row["pid"]}
            for row in rows
        ]
        bulk_update(session, PROFILES, ("workspace_id", "id"), keyed)
        return
    sets = ", ".join(f"{name} = v.{name}{cast}" for name, _, cast in columns)
    arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind, _ in columns)
    names = ", ".join(name for name, _, _ in columns)
    stmt = text(
        f"UPDATE profiles AS p SET {sets} FROM unnest(CAST(:pid AS varchar[]), {arrays}) AS v(pid, {names}) "  # noqa: S608
        "WHERE p.workspace_id = :workspace_id AND p.id = v.pid"
    )
    # Each array goes as one literal (`pg_array`): psycopg's per-element list dumping was most
    # of this statement's client cost.
    params: dict[str, Any] = {"workspace_id": workspace_id, "pid": pg_array([row["pid"] for row in rows])}
    for name, _, cast in columns:
        values = [row[name] for row in rows]
        # The JSON columns go as text and are cast on the server; written as the engine's
        # own serializer writes them (orjson, non-string keys allowed).
        if cast:
            params[name] = pg_array([json_dumps(v) for v in values])
        else:
            params[name] = pg_array([None if v is None else ensure_utc(v).isoformat() for v in values])
    session.execute(stmt, params)


def apply_contributions(
    session: Session, workspace_id: str, contributions: dict[str, Contribution], now: datetime
) -> None:
    """Fold one batch into each root's read model: one SELECT and one executemany UPDATE per
    shape. Traits are read and rewritten only for people whose batch carried an identify."""
    if not contributions:
        return
    counters: list[dict[str, Any]] = []
    with_traits: list[dict[str, Any]] = []
    ids = list(contributions)
    wants_traits = {pid for pid, add in contributions.items() if add.traits}
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(Profile.id, Profile.event_counts, Profile.first_seen, Profile.last_seen).where(
                Profile.workspace_id == workspace_id, one_of(session, Profile.id, ids[start : start + _CHUNK])
            )
        )
        for pid, counts, first, last in rows:
            add = contributions[pid]
            counters.append(
                {
                    "pid": pid,
                    "event_counts": _merge_counts(counts, add),
                    "first_seen": min(x for x in (first, add.first_seen) if x is not None),
                    "last_seen": max(x for x in (last, add.last_seen) if x is not None),
                    "updated_at": now,
                }
            )
    traited = sorted(wants_traits)
    current: dict[str, tuple[dict[str, Any], datetime | None]] = {}
    for start in range(0, len(traited), _CHUNK):
        rows = session.execute(
            select(Profile.id, Profile.traits, Profile.traits_at).where(
                Profile.workspace_id == workspace_id, one_of(session, Profile.id, traited[start : start + _CHUNK])
            )
        )
        current.update({pid: (traits, at) for pid, traits, at in rows})
    plain = [row for row in counters if row["pid"] not in wants_traits]
    changed: list[NewChange] = []
    for row in counters:
        if row["pid"] in wants_traits:
            traits, traits_at = current[row["pid"]]
            new_traits, new_at = _fold_traits(traits, traits_at, contributions[row["pid"]].traits)
            with_traits.append({**row, "traits": new_traits, "traits_at": new_at})
            changed.extend(_traits_change(row["pid"], traits, new_traits))
    for batch, shape in ((plain, False), (with_traits, True)):
        _write_read_models(session, workspace_id, batch, shape)
    changes.append(session, workspace_id, changed, now)


def _traits_change(pid: str, old: dict[str, Any], new: dict[str, Any]) -> list[NewChange]:
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k, _MISSING) != new.get(k, _MISSING))
    if not keys:
        return []
    # The values before the change (a key absent here did not exist): what an `enters`
    # trigger compares with to tell "started matching" from "still matches".
    return [NewChange("traits", pid, data={"keys": keys, "old": {k: old[k] for k in keys if k in old}})]


def recompute(session: Session, workspace_id: str, canonical_ids: Iterable[str], now: datetime) -> None:
    """Rebuild each root's read model from the event log of its whole tree (after a merge or
    unmerge, when adding counters would be wrong). A handful of queries for all roots."""
    roots = sorted(set(canonical_ids))
    if not roots:
        return
    root_of: dict[str, str] = {}
    for start in range(0, len(roots), _CHUNK):
        rows = session.execute(
            select(Profile.id, Profile.canonical_id).where(
                Profile.workspace_id == workspace_id,
                one_of(session, Profile.canonical_id, roots[start : start + _CHUNK]),
            )
        )
        root_of.update({node: canon for node, canon in rows})
    members = sorted(root_of)
    before = _traits_of(session, workspace_id, roots)
    totals = {root: Contribution() for root in roots}
    for node, kind, name, count, first, last in events.aggregate_by_node(session, workspace_id, members):
        add = totals[root_of[node]]
        add.total += count
        add.by_type[kind] = add.by_type.get(kind, 0) + count
        if kind == "track" and name is not None:
            add.by_event[name] = add.by_event.get(name, 0) + count
        add.first_seen = first if add.first_seen is None or first < add.first_seen else add.first_seen
        add.last_seen = last if add.last_seen is None or last > add.last_seen else add.last_seen
    for node, at, traits in events.identify_traits_by_node(session, workspace_id, members):
        if traits:
            totals[root_of[node]].traits.append((at, traits))
    updates = []
    changed: list[NewChange] = []
    for root, add in totals.items():
        traits, traits_at = _fold_traits({}, None, add.traits)
        changed.extend(_traits_change(root, before.get(root, {}), traits))
        updates.append(
            {
                "pid": root,
                "traits": traits,
                "traits_at": traits_at,
                "event_counts": _merge_counts(empty_counts(), add),
                "first_seen": add.first_seen,
                "last_seen": add.last_seen,
                "updated_at": now,
            }
        )
    _write_read_models(session, workspace_id, updates, True)
    changes.append(session, workspace_id, changed, now)


def _traits_of(session: Session, workspace_id: str, pids: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(pids), _CHUNK):
        rows = session.execute(
            select(Profile.id, Profile.traits).where(
                Profile.workspace_id == workspace_id, one_of(session, Profile.id, pids[start : start + _CHUNK])
            )
        )
        out.update({pid: traits for pid, traits in rows})
    return out


def node_roots(session: Session, workspace_id: str) -> dict[str, str]:
    """Every node of the workspace and the root it belongs to now."""
    return dict(
        driver_rows(session, "SELECT id, canonical_id FROM profiles WHERE workspace_id = :ws", {"ws": workspace_id})
    )


def node_roots_and_user_ids(session: Session, workspace_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """`node_roots`, and `tree_user_ids` of every tree, in one read of the workspace's nodes
    (no sort of a million rows): a tree of one node, nearly every tree, has its node's user
    id; only the nodes of merged trees are ordered, oldest first, to find theirs."""
    rows = driver_rows(
        session,
        "SELECT id, canonical_id, user_id, created_at FROM profiles WHERE workspace_id = :ws",
        {"ws": workspace_id},
    )
    root_of = {node: root for node, root, _, _ in rows}
    size = Counter(root_of.values())
    users = {root: uid for _, root, uid, _ in rows if uid is not None and size[root] == 1}
    merged = sorted(
        (created, node, root, uid) for node, root, uid, created in rows if uid is not None and size[root] > 1
    )
    for _, _, root, uid in merged:
        users.setdefault(root, uid)
    return root_of, users


def nodes_of_roots(session: Session, workspace_id: str, roots: Iterable[str]) -> dict[str, str]:
    """Every node of the given trees and its root: the people asked for, nobody else."""
    ids = sorted(set(roots))
    out: dict[str, str] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(Profile.id, Profile.canonical_id).where(
                Profile.workspace_id == workspace_id, Profile.canonical_id.in_(ids[start : start + _CHUNK])
            )
        )
        out.update({node: root for node, root in rows})
    return out


def current_roots(session: Session, workspace_id: str, node_ids: Iterable[str]) -> list[str]:
    """Where the given nodes belong today (merges since they were named move them)."""
    return sorted({n.canonical_id for n in nodes(session, workspace_id, node_ids).values()})


SIGNAL_COLUMNS: tuple[str, ...] = (
    "computed_traits",
    "traits_computed_at",
    "at_risk_score",
    "at_risk_band",
    "at_risk_components",
    "score_as_of",
    "scored_at",
    "churn_probability",
    "churn_model_id",
    "predicted_at",
)
JSON_SIGNALS = frozenset({"computed_traits", "at_risk_components"})


def store_signal_columns(
    session: Session, workspace_id: str, pids: Sequence[str], columns: Mapping[str, Sequence[Any]], now: datetime
) -> None:
    """The one write path for computed traits, scores and predictions: for each profile in
    `pids`, the value at the same position of each column given (any of `SIGNAL_COLUMNS`; the
    two documents as JSON text, see `profiles.components` for the components). A score or band
    that moves is logged with its old and new value, in the caller's transaction."""
    unknown = set(columns) - set(SIGNAL_COLUMNS)
    if unknown:
        raise ValueError(f"not a signal column: {', '.join(sorted(unknown))}")
    ragged = [name for name, values in columns.items() if len(values) != len(pids)]
    if ragged:
        raise ValueError(f"column {ragged[0]}: {len(columns[ragged[0]])} values for {len(pids)} ids")
    if not pids:
        return
    if "at_risk_score" not in columns:
        update_by_id(session, PROFILES, workspace_id, pids, columns, json_text=JSON_SIGNALS)
        return
    moved, at = _score_changes(session, workspace_id, pids, columns["at_risk_score"], columns.get("at_risk_band"))
    if len(at) == len(pids):
        update_by_id(session, PROFILES, workspace_id, pids, columns, json_text=JSON_SIGNALS)
    else:
        # The score and band are indexed: rewriting an unchanged value still moves its index
        # entry (a daily re-run of a million, whose scores mostly stay, spent ~4 s on that).
        same = sorted(set(range(len(pids))) - set(at))
        for rows, names in ((at, list(columns)), (same, [n for n in columns if n not in _SCORE_COLUMNS])):
            if rows and names:
                part = {name: _take(columns[name], rows) for name in names}
                update_by_id(session, PROFILES, workspace_id, _take(pids, rows), part, json_text=JSON_SIGNALS)
    changes.append_columns(session, workspace_id, moved, now)


_SCORE_COLUMNS = frozenset({"at_risk_score", "at_risk_band"})


def _take(values: Sequence[Any], rows: Sequence[int]) -> list[Any]:
    return list(itemgetter(*rows)(values)) if len(rows) > 1 else [values[k] for k in rows]


def store_signals(session: Session, workspace_id: str, rows: list[dict[str, Any]], now: datetime) -> None:
    """`store_signal_columns` for rows given one by one (`pid` plus the same signal keys in
    each row, documents as Python values)."""
    if not rows:
        return
    keys = [k for k in rows[0] if k != "pid"]
    columns = {
        k: [None if r[k] is None else json_dumps(r[k]) for r in rows] if k in JSON_SIGNALS else [r[k] for r in rows]
        for k in keys
    }
    store_signal_columns(session, workspace_id, [r["pid"] for r in rows], columns, now)


def _signal_values(session: Session, workspace_id: str, pids: Sequence[str]) -> list[tuple[str, Any, Any]]:
    """(id, at_risk_score, at_risk_band) of the given profiles, in one read."""
    where, value = driver_one_of(session, "id", "ids", pids)
    sql = f"SELECT id, at_risk_score, at_risk_band FROM profiles WHERE workspace_id = :ws AND {where}"  # noqa: S608
    return driver_rows(session, sql, {"ws": workspace_id, "ids": value})


def _score_changes(
    session: Session,
    workspace_id: str,
    pids: Sequence[str],
    scores: Sequence[int | None],
    bands: Sequence[str | None] | None,
) -> tuple[ChangeColumns, list[int]]:
    """A change per profile whose score or band moves, its data the old and new of both, and
    those profiles' positions in `pids`: built as columns, a first scoring moves everyone's (a
    million rows)."""
    old = {pid: (score, band) for pid, score, band in _signal_values(session, workspace_id, pids)}
    new_bands = bands if bands is not None else [None] * len(pids)
    was = [old.get(pid, _NO_SCORE) for pid in pids]
    moved = [k for k, (w, s, b) in enumerate(zip(was, scores, new_bands, strict=True)) if w != (s, b)]
    # Each value's JSON literal made once (scores are 0-100, bands a handful): the same text
    # `json_dumps` gives the whole document, in a fraction of the time per row.
    literal: dict[tuple[type, Any], str] = {}

    def lit(value: Any) -> str:
        got = literal.get((type(value), value))
        if got is None:
            got = literal[(type(value), value)] = json_dumps(value)
        return got

    data = [
        f'{{"old_score":{lit(was[k][0])},"new_score":{lit(scores[k])},'
        f'"old_band":{lit(was[k][1])},"new_band":{lit(new_bands[k])}}}'
        for k in moved
    ]
    return ChangeColumns("score", [pids[k] for k in moved], [new_bands[k] for k in moved], data), moved


_NO_SCORE: tuple[None, None] = (None, None)


def trees(session: Session, workspace_id: str, roots: Sequence[str]) -> dict[str, list[ProfileNode]]:
    """The nodes of several trees, oldest first in each: one query per 2,000 roots."""
    out: dict[str, list[ProfileNode]] = {root: [] for root in roots}
    ids = list(out)
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(Profile.id, Profile.canonical_id, Profile.merged_into_id, Profile.user_id, Profile.created_at)
            .where(Profile.workspace_id == workspace_id, Profile.canonical_id.in_(ids[start : start + _CHUNK]))
            .order_by(Profile.created_at, Profile.id)
        )
        for row in rows:
            out[row[1]].append(ProfileNode(*row))
    return out


def states(session: Session, workspace_id: str, roots: Sequence[str]) -> dict[str, ProfileState]:
    """The read model of several roots: one query per 2,000 roots."""
    ids = list(dict.fromkeys(roots))
    out: dict[str, ProfileState] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = session.scalars(
            select(Profile).where(Profile.workspace_id == workspace_id, Profile.id.in_(ids[start : start + _CHUNK]))
        )
        out.update({row.id: _state(row) for row in rows})
    return out


def state(session: Session, workspace_id: str, canonical_id: str) -> ProfileState | None:
    return states(session, workspace_id, [canonical_id]).get(canonical_id)


def _state(row: Profile) -> ProfileState:
    signals = Signals(
        trait_docs.render(row.computed_traits),
        row.traits_computed_at,
        row.at_risk_score,
        row.at_risk_band,
        components.render(row.at_risk_components),
        row.score_as_of,
        row.scored_at,
        row.churn_probability,
        row.churn_model_id,
        row.predicted_at,
    )
    return ProfileState(row.id, row.traits, row.event_counts, row.first_seen, row.last_seen, row.created_at, signals)


def root_ids_after(session: Session, workspace_id: str, after: str, limit: int) -> list[str]:
    """Root ids in id order after `after` (a page of everyone, for whole-workspace passes)."""
    rows = session.scalars(
        select(Profile.id)
        .where(Profile.workspace_id == workspace_id, Profile.merged_into_id.is_(None), Profile.id > after)
        .order_by(Profile.id)
        .limit(limit)
    )
    return list(rows)


def list_roots(
    session: Session, workspace_id: str, *, limit: int, after: tuple[datetime, str] | None = None
) -> list[str]:
    """Root ids, newest activity first, keyset-paginated on (last_seen, id)."""
    stmt = select(Profile.id, Profile.last_seen).where(
        Profile.workspace_id == workspace_id,
        Profile.merged_into_id.is_(None),
        Profile.last_seen.is_not(None),
    )
    if after is not None:
        at, pid = after
        stmt = stmt.where((Profile.last_seen < at) | ((Profile.last_seen == at) & (Profile.id < pid)))
    rows = session.execute(stmt.order_by(Profile.last_seen.desc(), Profile.id.desc()).limit(limit))
    return [r[0] for r in rows]


def list_band(
    session: Session, workspace_id: str, band: str, *, limit: int, after: tuple[int, str] | None = None
) -> list[tuple[str, int]]:
    """(root id, score) of one at-risk band, highest score first, keyset-paginated on (score, id)."""
    stmt = select(Profile.id, Profile.at_risk_score).where(
        Profile.workspace_id == workspace_id,
        Profile.merged_into_id.is_(None),
        Profile.at_risk_band == band,
    )
    if after is not None:
        score, pid = after
        stmt = stmt.where((Profile.at_risk_score < score) | ((Profile.at_risk_score == score) & (Profile.id < pid)))
    rows = session.execute(stmt.order_by(Profile.at_risk_score.desc(), Profile.id.desc()).limit(limit))
    return [(r[0], int(r[1] or 0)) for r in rows]


def locations(session: Session, workspace_id: str) -> list[tuple[str, str | None, int]]:
    """The workspace's locations as people carry them: each distinct `home_location` trait,
    its most common `location_name`, and how many people call it home."""
    counts: dict[str, int] = {}
    names: dict[str, dict[str, int]] = {}
    rows = session.execute(
        select(Profile.traits).where(Profile.workspace_id == workspace_id, Profile.merged_into_id.is_(None))
    )
    for (traits,) in rows:
        home = (traits or {}).get("home_location")
        if home in (None, ""):
            continue
        key = str(home)
        counts[key] = counts.get(key, 0) + 1
        name = traits.get("location_name")
        if isinstance(name, str) and name:
            by_name = names.setdefault(key, {})
            by_name[name] = by_name.get(name, 0) + 1
    return [
        (key, max(names[key], key=lambda n: names[key][n]) if key in names else None, counts[key])
        for key in sorted(counts)
    ]
