"""Triggers, goals and resumed waits, read from the change log in order.

One consumer (`journeys`) per workspace reads a window of changes and, in the same transaction
that advances its position, enrols people, ends enrolments whose goal arrived and resumes
those waiting for an event. So every accepted event is seen exactly once, also after a crash:
either the enrolments and the new position commit together, or neither does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import bindparam, exists, func, select, text, update
from sqlalchemy.orm import Session

from signalbox.changes import service as changes
from signalbox.core.db import Database, UTCDateTime, dialect_insert
from signalbox.core.ids import new_id
from signalbox.core.logging import get_logger
from signalbox.events import service as events
from signalbox.events.schemas import StoredEvent
from signalbox.identity import service as identity
from signalbox.journeys import dates
from signalbox.journeys import service as journeys
from signalbox.journeys.engine import holdout_of
from signalbox.journeys.flow import Flow
from signalbox.journeys.models import Enrollment, Playbook, PlaybookVersion
from signalbox.profiles import service as profiles
from signalbox.segments import conditions
from signalbox.segments import service as segments
from signalbox.workspaces.schemas import WorkspaceInfo

log = get_logger("journeys.triggers")
CONSUMER = "journeys"
KINDS = ("event", "score", "traits", "merge", "unmerge", "segment")
# An event older than this when it arrives (a history import, a replay) ends enrolments and
# resumes waits, but enrols nobody: a year-old failed payment must not send an e-mail today.
MAX_TRIGGER_AGE = timedelta(days=1)


@dataclass
class _Batch:
    session: Session
    workspace: WorkspaceInfo
    now: datetime
    flows: dict[str, Flow]  # active playbooks, current versions
    enrolled: int = 0
    entries: list[EnrollRequest] = field(default_factory=list)  # event triggers, enrolled together


def process(db: Database, workspace: WorkspaceInfo, now: datetime, *, limit: int = 1000) -> int:
    """Read up to `limit` unread changes and act on them. Returns how many were read: history
    skipped whole (nothing could act on it) is not counted, so a worker fed a stream of
    batches before any playbook neither ticks again at once nor looks for due steps."""
    with db.transaction() as session:
        win = changes.window(session, workspace.id, CONSUMER)
        after = win.after
        if win.upto <= after:
            return 0
        if not win.complete:
            log.warning("journeys read behind the trimmed change log", extra={"workspace_id": workspace.id})
        floor = _nothing_before(session, workspace.id, win.upto)
        if floor > after:
            # History no playbook acts on and no enrolment or segment can feel: skip it whole
            # (an import of a year of events before the first playbook is applied).
            changes.advance(session, workspace.id, CONSUMER, floor, now)
            after = floor
            if after >= win.upto:
                return 0
        rows = changes.read(session, workspace.id, after=after, upto=win.upto, kinds=KINDS, limit=limit)
        position = rows[-1].seq if len(rows) == limit else win.upto
        if rows:
            batch = _Batch(session, workspace, now, _active_flows(session, workspace.id))
            _act(batch, rows)
        if position > after:
            changes.advance(session, workspace.id, CONSUMER, position, now)
        return len(rows)


def _nothing_before(session: Session, workspace_id: str, upto: int) -> int:
    """The change number up to which reading could not matter: the first apply of any playbook
    (triggers act only after it), when no enrolment is active and no segment exists. 0 else."""
    # One statement: a worker asks this after every batch it is woken by.
    first_apply, felt = session.execute(
        select(
            select(func.min(Playbook.start_seq)).where(Playbook.workspace_id == workspace_id).scalar_subquery(),
            exists().where(Enrollment.workspace_id == workspace_id, Enrollment.status == "active")
            | segments.any_defined(workspace_id),
        )
    ).one()
    if first_apply is None:
        first_apply = upto  # no playbook at all: nothing acts on any change yet
    if first_apply <= 0 or felt:
        return 0
    return int(min(first_apply, upto))


def _active_flows(session: Session, workspace_id: str) -> dict[str, Flow]:
    rows = session.execute(
        select(Playbook.key, Playbook.current_version, PlaybookVersion.definition, Playbook.start_seq)
        .join(
            PlaybookVersion,
            (PlaybookVersion.workspace_id == Playbook.workspace_id)
            & (PlaybookVersion.playbook_key == Playbook.key)
            & (PlaybookVersion.version == Playbook.current_version),
        )
        .where(Playbook.workspace_id == workspace_id, Playbook.status == "active")
    )
    return {key: Flow.of(key, version, definition, start) for key, version, definition, start in rows}


def _act(batch: _Batch, rows: list[Any]) -> None:
    session, ws = batch.session, batch.workspace
    found = events.by_message_ids(session, ws.id, [r.ref for r in rows if r.kind == "event" and r.ref])
    named = {r.profile_id for r in rows} | {node for node, _ in found.values()}
    root_of = {n.id: n.canonical_id for n in profiles.nodes(session, ws.id, named).values()}
    active = _active_enrollments(session, ws.id, set(root_of.values()), root_of)
    touched: dict[str, _Before] = {}
    entrants: dict[str, list[tuple[str, int]]] = defaultdict(list)  # segment -> (person, change)
    for change in rows:
        root = root_of.get(change.profile_id)
        if change.kind == "segment":
            if root is not None and (change.data or {}).get("entered"):
                entrants[change.name or ""].append((root, change.seq))
            continue
        if change.kind != "event":
            if root is not None:
                touched.setdefault(root, _Before()).add(change)
            continue
        hit = found.get(change.ref or "")
        if hit is None:
            continue
        node, event = hit
        root = root_of.get(node)
        if root is None:
            continue
        _goals_and_waits(batch, active.get(root, []), event)
        if event.type == "track" and event.event and event.timestamp >= batch.now - MAX_TRIGGER_AGE:
            _event_triggers(batch, root, event, change.seq)
    enroll_many(session, ws.id, batch.entries, batch.now)
    batch.entries.clear()
    for segment, people in entrants.items():
        _segment_triggers(batch, segment, people)
    if touched:
        _enters(batch, touched)
        dates.schedule(session, ws, _with_trait_changes(batch.flows.values(), touched), touched, batch.now)
        # Segment membership follows the same changes; the moves it logs are read next window.
        segments.update_members(session, ws.id, touched, batch.now)


def _with_trait_changes(flows: Iterable[Flow], touched: dict[str, _Before]) -> list[Flow]:
    """Date-triggered playbooks whose trait changed for someone in this window."""
    keys = {
        k
        for before in touched.values()
        for c in before.changes
        if c.kind == "traits"
        for k in (c.data or {}).get("keys", [])
    }
    return [f for f in flows if "date" in f.definition["trigger"] and f.definition["trigger"]["date"]["trait"] in keys]


def fire_dates(db: Database, workspace: WorkspaceInfo, now: datetime, *, limit: int = 1000) -> int:
    """Enrol the people whose date trigger's moment has come. Returns how many fired."""
    with db.transaction() as session:
        fired = dates.due(session, workspace.id, now, limit)
        if not fired:
            return 0
        flows = _active_flows(session, workspace.id)
        for key, root, value in fired:
            flow = flows.get(key)
            if flow is not None:
                enroll(session, workspace.id, flow, root, {"kind": "date", "value": value}, now)
        return len(fired)


def _segment_triggers(batch: _Batch, segment: str, people: list[tuple[str, int]]) -> None:
    """Everyone who entered a segment in this window, enrolled as one set per playbook."""
    for flow in batch.flows.values():
        enters = flow.definition["trigger"].get("enters") or {}
        if enters.get("segment") != segment:
            continue
        roots = [root for root, seq in people if seq > flow.start_seq]
        if roots:
            origin = {"kind": "segment", "segment": segment}
            enroll_set(batch.session, batch.workspace.id, flow, roots, origin, batch.now)


def _active_enrollments(
    session: Session, workspace_id: str, roots: set[str], root_of: dict[str, str]
) -> dict[str, list[Enrollment]]:
    nodes = profiles.nodes_of_roots(session, workspace_id, roots)
    out: dict[str, list[Enrollment]] = defaultdict(list)
    ids = sorted(nodes)
    for start in range(0, len(ids), 2000):
        rows = session.scalars(
            select(Enrollment).where(
                Enrollment.workspace_id == workspace_id,
                Enrollment.status == "active",
                Enrollment.profile_id.in_(ids[start : start + 2000]),
            )
        )
        for row in rows:
            out[nodes[row.profile_id]].append(row)
    return out


def _flow_of(batch: _Batch, enrollment: Enrollment) -> Flow:
    current = batch.flows.get(enrollment.playbook_key)
    if current is not None and current.version == enrollment.version:
        return current
    _, definition = journeys.definition_in(
        batch.session, batch.workspace.id, enrollment.playbook_key, enrollment.version
    )
    return Flow.of(enrollment.playbook_key, enrollment.version, definition)


def _goals_and_waits(batch: _Batch, enrollments: list[Enrollment], event: StoredEvent) -> None:
    """A goal ends an enrolment at once, also mid-wait; a matching event resumes a wait_for."""
    for enr in enrollments:
        if enr.status != "active":
            continue
        flow = _flow_of(batch, enr)
        trigger = dict(enr.trigger or {})
        if event.timestamp >= _when(trigger, enr.created_at) and journeys.goal_matches(
            flow.goals(), event.event or "", event.properties, trigger
        ):
            _exit(batch, enr, "goal_met", {"event": event.event, "message_id": event.message_id})
            continue
        waiting = enr.waiting or {}
        if waiting and waiting.get("event") == event.event:
            prop = waiting.get("match")
            if prop and event.properties.get(prop) != waiting.get("value"):
                continue
            step = enr.position
            batch.session.execute(
                update(Enrollment)
                .where(Enrollment.id == enr.id, Enrollment.status == "active", Enrollment.position == step)
                .values(position=flow.after.get(step or ""), waiting=None, due_at=batch.now, updated_at=batch.now)
            )
            enr.waiting = None


def _exit(batch: _Batch, enr: Enrollment, reason: str, detail: dict[str, Any]) -> None:
    values: dict[str, Any] = {
        "status": "exited",
        "exit_reason": reason,
        "exited_at": batch.now,
        "position": None,
        "due_at": None,
        "waiting": None,
        "updated_at": batch.now,
    }
    if (enr.entry_lock or "").startswith("active|"):
        values["entry_lock"] = None
    moved = batch.session.execute(
        update(Enrollment).where(Enrollment.id == enr.id, Enrollment.status == "active").values(**values)
    )
    if getattr(moved, "rowcount", 0):
        enr.status = "exited"
        _decide(batch, enr, "exited", reason, detail)


def _event_triggers(batch: _Batch, root: str, event: StoredEvent, seq: int) -> None:
    for flow in batch.flows.values():
        trigger = flow.definition["trigger"]
        if trigger.get("event") != event.event or seq <= flow.start_seq:
            continue
        context = {"event": event.properties}
        if trigger.get("where") and not conditions.evaluate(trigger["where"], context):
            continue
        origin = {
            "kind": "event",
            "message_id": event.message_id,
            "event": event.event,
            "properties": event.properties,
            "timestamp": event.timestamp.isoformat(),
        }
        batch.entries.append(EnrollRequest(flow, root, origin))


@dataclass
class _Before:
    """A person's changes in this batch, to rebuild their traits and scores as they were
    before the ones a playbook may act on."""

    changes: list[Any] = field(default_factory=list)

    def add(self, change: Any) -> None:
        self.changes.append(change)

    @property
    def seq(self) -> int:
        return max(int(c.seq) for c in self.changes)

    def context(self, now: dict[str, dict[str, Any]], after_seq: int) -> dict[str, dict[str, Any]]:
        """The state before the first change after `after_seq` (the oldest old value wins)."""
        traits: dict[str, Any] = {}
        gone: set[str] = set()
        scores: dict[str, Any] | None = None
        for change in self.changes:
            if change.seq <= after_seq:
                continue
            data = change.data or {}
            if change.kind == "traits":
                old = data.get("old", {})
                for key in data.get("keys", []):
                    if key in traits or key in gone:
                        continue
                    if key in old:
                        traits[key] = old[key]
                    else:
                        gone.add(key)
            elif change.kind == "score" and scores is None:
                scores = {"at_risk_score": data.get("old_score"), "at_risk_band": data.get("old_band")}
        kept = {k: v for k, v in now["traits"].items() if k not in gone} | traits
        return {**now, "traits": kept, "scores": {**now["scores"], **(scores or {})}}


def _enters(batch: _Batch, roots: dict[str, _Before]) -> None:
    """`enters` triggers: a person who did not match before this batch's changes and matches
    now. No state is kept: each change is read once, and it says what it changed from."""
    flows = [
        f
        for f in batch.flows.values()
        if "enters" in f.definition["trigger"] and "segment" not in f.definition["trigger"]["enters"]
    ]
    if not flows:
        return
    session, ws = batch.session, batch.workspace
    for root, before in sorted(roots.items()):
        doc = identity.person(session, ws.id, root)
        if doc is None or doc.id != root:
            continue
        context = segments.context_of(doc.traits, doc.signals, doc.first_seen, doc.last_seen, doc.user_id)
        for flow in flows:
            condition = flow.definition["trigger"]["enters"]
            if before.seq <= flow.start_seq or not conditions.evaluate(condition, context):
                continue
            if not conditions.evaluate(condition, before.context(context, flow.start_seq)):
                enroll(session, ws.id, flow, root, {"kind": "enters"}, batch.now, context=context)


@dataclass(frozen=True)
class EnrollRequest:
    flow: Flow
    root: str
    origin: dict[str, Any]
    context: dict[str, Any] | None = None


def enroll(
    session: Session,
    workspace_id: str,
    flow: Flow,
    root: str,
    origin: dict[str, Any],
    now: datetime,
    *,
    context: dict[str, Any] | None = None,
) -> str | None:
    """One enrolment through `enroll_many`. Returns the new id or None."""
    return enroll_many(session, workspace_id, [EnrollRequest(flow, root, origin, context)], now)[0]


def enroll_many(session: Session, workspace_id: str, requests: list[EnrollRequest], now: datetime) -> list[str | None]:
    """The one write path for triggered enrolments, a window's at once: the entry rule is a
    unique index, so a repeated trigger is a `skipped` decision, never a second enrolment (also
    within one call: the later request is the one skipped). Returns, per request, the new id
    or None."""
    if not requests:
        return []
    users = profiles.tree_user_ids(session, workspace_id, sorted({r.root for r in requests}))
    last_exit = _last_exits(session, workspace_id, [r for r in requests if r.flow.definition["entry"].get("cooldown")])
    rows: list[dict[str, Any]] = []
    out: list[str | None] = []
    skipped: list[tuple[EnrollRequest, str]] = []
    for request in requests:
        flow, root, origin = request.flow, request.root, request.origin
        entry = flow.definition["entry"]
        key_value: Any = None
        if entry.get("key"):
            looked = conditions.lookup({"event": origin.get("properties", {}), **(request.context or {})}, entry["key"])
            key_value = None if looked is conditions.MISSING else looked
        if key_value is None and origin.get("kind") == "date":
            key_value = origin.get("value")  # a renewed date is a new entry, the same one is not
        entry_key = "" if key_value is None else str(key_value)[:255]
        reentry = entry["reentry"]
        if reentry == "every_time":
            lock = f"event:{origin.get('message_id') or new_id('chg')}"
        elif reentry == "once":
            lock = f"once|{root}|{entry_key}"
        else:
            lock = f"active|{root}|{entry_key}"
            last = last_exit.get((flow.key, root, entry_key))
            if entry.get("cooldown") and last is not None and last > now - timedelta(seconds=entry["cooldown"]):
                skipped.append((request, "cooldown"))
                out.append(None)
                continue
        enrollment_id = new_id("enr")
        out.append(enrollment_id)
        rows.append(_row(enrollment_id, workspace_id, flow, root, users.get(root), entry_key, lock, origin, now))
    done: set[str] = set()
    for start in range(0, len(rows), _SET_CHUNK):
        # RETURNING, not rowcount: psycopg reports -1 for this statement on PostgreSQL.
        stmt = (
            dialect_insert(session, Enrollment)
            .on_conflict_do_nothing(index_elements=["workspace_id", "playbook_key", "entry_lock"])
            .returning(Enrollment.id)
        )
        done.update(session.scalars(stmt, rows[start : start + _SET_CHUNK]))
    for i, made in enumerate(out):
        if made is not None and made not in done:
            skipped.append((requests[i], "already_enrolled"))
            out[i] = None
    if skipped:
        journeys.record_decisions(
            session,
            [
                journeys.decision_row(workspace_id, r.flow.key, r.root, users.get(r.root), "skipped", reason, now)
                for r, reason in skipped
            ],
        )
    return out


def _row(
    enrollment_id: str,
    workspace_id: str,
    flow: Flow,
    root: str,
    user_id: str | None,
    entry_key: str,
    lock: str,
    origin: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """A new enrolment's row: due at once at the playbook's first step, its arm fixed by the hash."""
    return {
        "id": enrollment_id,
        "workspace_id": workspace_id,
        "playbook_key": flow.key,
        "version": flow.version,
        "profile_id": root,
        "user_id": user_id,
        "entry_key": entry_key,
        "entry_lock": lock[:400],
        "status": "active",
        "exit_reason": None,
        "holdout": holdout_of(workspace_id, flow.key, root, float(flow.definition["holdout"])),
        "trigger": origin,
        "position": flow.first,
        "waiting": None,
        "due_at": now,
        "lease_until": None,
        "created_at": now,
        "updated_at": now,
        "exited_at": None,
    }


def _last_exits(
    session: Session, workspace_id: str, requests: list[EnrollRequest]
) -> dict[tuple[str, str, str], datetime]:
    """(playbook, person, entry key) -> when the last enrolment of it ended."""
    if not requests:
        return {}
    rows = session.execute(
        select(Enrollment.playbook_key, Enrollment.profile_id, Enrollment.entry_key, func.max(Enrollment.exited_at))
        .where(
            Enrollment.workspace_id == workspace_id,
            Enrollment.playbook_key.in_(sorted({r.flow.key for r in requests})),
            Enrollment.profile_id.in_(sorted({r.root for r in requests})),
        )
        .group_by(Enrollment.playbook_key, Enrollment.profile_id, Enrollment.entry_key)
    )
    return {(key, root, entry_key): last for key, root, entry_key, last in rows if last is not None}


def _decide(batch: _Batch, enr: Enrollment, outcome: str, reason: str, detail: dict[str, Any]) -> None:
    row = journeys.decision_row(
        batch.workspace.id,
        enr.playbook_key,
        enr.profile_id,
        enr.user_id,
        outcome,
        reason,
        batch.now,
        enrollment_id=enr.id,
        detail=detail,
    )
    journeys.record_decisions(batch.session, [row])


def _when(trigger: dict[str, Any], fallback: datetime) -> datetime:
    raw = trigger.get("timestamp")
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            pass
    return fallback


def enroll_set(
    session: Session, workspace_id: str, flow: Flow, roots: list[str], origin: dict[str, Any], now: datetime
) -> int:
    """`enroll` for a whole set of people (a segment) in a few statements per thousand instead
    of a few per person: the same entry rule (the unique index), holdout, cooldown and
    `skipped` decisions. There is no trigger event, so the entry key is empty. Returns how many
    were enrolled."""
    entry = flow.definition["entry"]
    reentry, cooldown = entry["reentry"], entry.get("cooldown")
    insert_rows = dialect_insert(session, Enrollment)
    enrolled = 0
    for start in range(0, len(roots), _SET_CHUNK):
        chunk = sorted(set(roots[start : start + _SET_CHUNK]))
        users = profiles.tree_user_ids(session, workspace_id, chunk)
        cooling = _cooling_set(session, workspace_id, flow.key, chunk, now, cooldown) if cooldown else set()
        rows: list[dict[str, Any]] = []
        skipped = [(root, "cooldown") for root in chunk if root in cooling]
        for root in chunk:
            if root in cooling:
                continue
            # The same locks as `enroll` with an empty entry key; every_time: one per call.
            if reentry == "every_time":
                lock = f"set:{new_id('set')}|{root}"
            else:
                lock = f"{'once' if reentry == 'once' else 'active'}|{root}|"
            rows.append(_row(new_id("enr"), workspace_id, flow, root, users.get(root), "", lock, origin, now))
        if rows:
            stmt = insert_rows.on_conflict_do_nothing(index_elements=["workspace_id", "playbook_key", "entry_lock"])
            if session.get_bind().dialect.name == "postgresql":
                done = _insert_unnest(session, rows)
            else:
                done = set(session.scalars(stmt.returning(Enrollment.profile_id), rows))
            enrolled += len(done)
            skipped += [(str(r["profile_id"]), "already_enrolled") for r in rows if r["profile_id"] not in done]
        if skipped:
            journeys.record_decisions(
                session,
                [
                    journeys.decision_row(workspace_id, flow.key, root, users.get(root), "skipped", reason, now)
                    for root, reason in skipped
                ],
            )
    return enrolled


# The per-person columns as five arrays: psycopg parses a 19,000-parameter VALUES list on the
# client for every chunk (it caches only short statements), which made this 6x slower there.
_UNNEST = text(
    """
INSERT INTO enrollments (id, workspace_id, playbook_key, version, profile_id, user_id, entry_key,
    entry_lock, status, exit_reason, holdout, "trigger", position, waiting, due_at, lease_until,
    created_at, updated_at, exited_at)
SELECT u.id, :ws, :key, :version, u.profile_id, u.user_id, '', u.lock, 'active', NULL, u.holdout,
    CAST(:trigger AS jsonb), :position, NULL, :now, NULL, :now, :now, NULL
FROM unnest(CAST(:ids AS text[]), CAST(:profiles AS text[]), CAST(:users AS text[]),
    CAST(:locks AS text[]), CAST(:holdouts AS boolean[])) AS u(id, profile_id, user_id, lock, holdout)
ON CONFLICT (workspace_id, playbook_key, entry_lock) DO NOTHING
RETURNING profile_id
"""
).bindparams(bindparam("now", type_=UTCDateTime()))


def _insert_unnest(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    first = rows[0]
    params = {
        "ws": first["workspace_id"],
        "key": first["playbook_key"],
        "version": first["version"],
        "trigger": orjson.dumps(first["trigger"]).decode(),
        "position": first["position"],
        "now": first["created_at"],
        "ids": [r["id"] for r in rows],
        "profiles": [r["profile_id"] for r in rows],
        "users": [r["user_id"] for r in rows],
        "locks": [r["entry_lock"] for r in rows],
        "holdouts": [r["holdout"] for r in rows],
    }
    return set(session.scalars(_UNNEST, params))


# 19 columns a row: 1,000 rows stay under SQLite's 32,766 bound parameters per statement.
_SET_CHUNK = 1000


def _cooling_set(
    session: Session, workspace_id: str, key: str, roots: list[str], now: datetime, seconds: int
) -> set[str]:
    rows = session.execute(
        select(Enrollment.profile_id, func.max(Enrollment.exited_at))
        .where(
            Enrollment.workspace_id == workspace_id,
            Enrollment.playbook_key == key,
            Enrollment.profile_id.in_(roots),
            Enrollment.entry_key == "",
        )
        .group_by(Enrollment.profile_id)
    )
    return {root for root, last in rows if last is not None and last > now - timedelta(seconds=seconds)}
