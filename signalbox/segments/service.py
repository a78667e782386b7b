"""Segments: apply a definition, keep its members current, read them.

Membership is evaluated in Python over each person's traits, scores and profile fields (the
same condition language as playbooks), a page of people at a time. `refresh` on the whole
workspace runs when a segment is applied (or on demand); afterwards the journeys consumer
refreshes just the people whose traits or scores changed. Every entry and exit is a `segment`
row in the change log (the `enters: {segment: NAME}` trigger reads those).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session

from signalbox.changes import service as changes
from signalbox.changes.schemas import NewChange
from signalbox.core import yamlsource
from signalbox.core.db import Database
from signalbox.core.errors import InvalidInputError, NotFoundError
from signalbox.profiles import service as profiles
from signalbox.profiles.schemas import ProfileState, Signals
from signalbox.segments import conditions, spec
from signalbox.segments.models import Segment, SegmentMember
from signalbox.segments.schemas import MemberInfo, RefreshResult, SegmentInfo

PAGE = 2000


class InvalidSegmentError(InvalidInputError):
    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def context_of(
    traits: dict[str, Any],
    signals: Signals | None,
    first_seen: datetime | None,
    last_seen: datetime | None,
    user_id: str | None,
) -> dict[str, dict[str, Any]]:
    """What a condition can read of a person: `traits.`, `scores.`, `profile.` (one shape for
    segments, `enters` triggers and branches)."""
    return {
        "traits": traits,
        "scores": {
            "at_risk_score": signals.at_risk_score if signals else None,
            "at_risk_band": signals.at_risk_band if signals else None,
            "churn_probability": signals.churn_probability if signals else None,
        },
        "profile": {
            "user_id": user_id,
            "first_seen": first_seen.isoformat() if first_seen else None,
            "last_seen": last_seen.isoformat() if last_seen else None,
            "timezone": traits.get("timezone"),
            "home_location": traits.get("home_location"),
        },
    }


def context_of_state(state: ProfileState, user_id: str | None) -> dict[str, dict[str, Any]]:
    return context_of(state.traits, state.signals, state.first_seen, state.last_seen, user_id)


def known(session: Session, workspace_id: str) -> set[str]:
    return set(session.scalars(select(Segment.key).where(Segment.workspace_id == workspace_id)))


def any_defined(workspace_id: str) -> ColumnElement[bool]:
    """Whether the workspace has any segment, as a condition for a caller's own statement."""
    return exists().where(Segment.workspace_id == workspace_id)


def apply(db: Database, workspace_id: str, files: Sequence[tuple[str, str]], now: datetime) -> list[dict[str, Any]]:
    """Check every file, store the changed ones as new versions, refresh their members."""
    checked: list[tuple[str, dict[str, Any]]] = []
    problems: list[str] = []
    for label, text in files:
        try:
            parsed = yamlsource.load(text)
        except yamlsource.SourceError as exc:
            problems.append(f"{label}:{exc.line}: (document): {exc.message}")
            continue
        definition, found = spec.check_segment(parsed.data)
        problems += [f"{label}:{parsed.line_of(p.path)}: {yamlsource.dotted(p.path)}: {p.message}" for p in found]
        if not found:
            checked.append((label, definition))
    if problems:
        raise InvalidSegmentError(problems)
    out: list[dict[str, Any]] = []
    for _, definition in checked:
        version, changed = _store(db, workspace_id, definition, now)
        members = refresh(db, workspace_id, definition["segment"], now).members if changed else None
        out.append({"segment": definition["segment"], "version": version, "changed": changed, "members": members})
    return out


def _store(db: Database, workspace_id: str, definition: dict[str, Any], now: datetime) -> tuple[int, bool]:
    digest = hashlib.sha256(orjson.dumps(definition, option=orjson.OPT_SORT_KEYS)).hexdigest()
    with db.transaction() as session:
        row = session.scalar(
            select(Segment).where(Segment.workspace_id == workspace_id, Segment.key == definition["segment"])
        )
        if row is not None and row.digest == digest:
            return row.version, False
        if row is None:
            session.add(
                Segment(
                    workspace_id=workspace_id,
                    key=definition["segment"],
                    name=definition.get("name"),
                    version=1,
                    digest=digest,
                    definition=definition,
                    members=0,
                    refreshed_at=None,
                    created_at=now,
                    updated_at=now,
                )
            )
            return 1, True
        row.version, row.digest, row.definition = row.version + 1, digest, definition
        row.name, row.updated_at = definition.get("name"), now
        return row.version, True


def refresh(db: Database, workspace_id: str, key: str, now: datetime) -> RefreshResult:
    """Re-evaluate every person (a page at a time, each page its own transaction)."""
    with db.session() as session:
        if key not in known(session, workspace_id):
            raise NotFoundError(f"no segment {key!r} in this workspace (see `signalbox segments list`)")
    entered = left = 0
    after = ""
    while True:
        with db.transaction() as session:
            roots = profiles.root_ids_after(session, workspace_id, after, PAGE)
            if not roots:
                break
            moved = update_members(session, workspace_id, roots, now, only=[key])
            entered, left = entered + moved[0], left + moved[1]
            after = roots[-1]
    with db.transaction() as session:
        count = _count(session, workspace_id, key)
        session.execute(
            update(Segment)
            .where(Segment.workspace_id == workspace_id, Segment.key == key)
            .values(members=count, refreshed_at=now)
        )
    return RefreshResult(key, count, entered, left)


def update_members(
    session: Session, workspace_id: str, roots: Iterable[str], now: datetime, *, only: Sequence[str] | None = None
) -> tuple[int, int]:
    """Evaluate these people against the workspace's segments (or `only` these), write who
    entered and left, and log each move. Returns (entered, left)."""
    stmt = select(Segment.key, Segment.definition).where(Segment.workspace_id == workspace_id)
    if only is not None:
        stmt = stmt.where(Segment.key.in_(list(only)))
    definitions: dict[str, dict[str, Any]] = {k: d for k, d in session.execute(stmt)}
    ids = sorted(set(roots))
    if not definitions or not ids:
        return 0, 0
    states = profiles.states(session, workspace_id, ids)
    users = profiles.tree_user_ids(session, workspace_id, ids)
    current: set[tuple[str, str]] = set()
    for start in range(0, len(ids), PAGE):
        rows = session.execute(
            select(SegmentMember.segment_key, SegmentMember.profile_id).where(
                SegmentMember.workspace_id == workspace_id,
                SegmentMember.segment_key.in_(list(definitions)),
                SegmentMember.profile_id.in_(ids[start : start + PAGE]),
            )
        )
        current.update((k, p) for k, p in rows)
    joins: list[dict[str, Any]] = []
    leaves: list[tuple[str, str]] = []
    moves: list[NewChange] = []
    for pid in ids:
        state = states.get(pid)
        context = context_of_state(state, users.get(pid)) if state is not None else None
        for key, definition in definitions.items():
            matched = context is not None and conditions.evaluate(definition["where"], context)
            was = (key, pid) in current
            if matched and not was:
                joins.append({"workspace_id": workspace_id, "segment_key": key, "profile_id": pid, "entered_at": now})
                moves.append(NewChange("segment", pid, name=key, data={"entered": True}))
            elif was and not matched:
                leaves.append((key, pid))
                moves.append(NewChange("segment", pid, name=key, data={"entered": False}))
    if joins:
        session.execute(insert(SegmentMember), joins)
    for key, pid in leaves:
        session.execute(
            delete(SegmentMember).where(
                SegmentMember.workspace_id == workspace_id,
                SegmentMember.segment_key == key,
                SegmentMember.profile_id == pid,
            )
        )
    changes.append(session, workspace_id, moves, now)
    return len(joins), len(leaves)


def _count(session: Session, workspace_id: str, key: str) -> int:
    found = session.scalar(
        select(func.count())
        .select_from(SegmentMember)
        .where(SegmentMember.workspace_id == workspace_id, SegmentMember.segment_key == key)
    )
    return int(found or 0)


def list_segments(db: Database, workspace_id: str) -> list[SegmentInfo]:
    with db.session() as session:
        rows = session.scalars(select(Segment).where(Segment.workspace_id == workspace_id).order_by(Segment.key))
        return [
            SegmentInfo(r.key, r.name, r.version, _count(session, workspace_id, r.key), r.refreshed_at, r.updated_at)
            for r in rows
        ]


def members(db: Database, workspace_id: str, key: str, *, limit: int = 10_000) -> list[MemberInfo]:
    with db.session() as session:
        if key not in known(session, workspace_id):
            raise NotFoundError(f"no segment {key!r} in this workspace (see `signalbox segments list`)")
        rows = session.execute(
            select(SegmentMember.profile_id, SegmentMember.entered_at)
            .where(SegmentMember.workspace_id == workspace_id, SegmentMember.segment_key == key)
            .order_by(SegmentMember.entered_at.desc(), SegmentMember.profile_id)
            .limit(limit)
        ).all()
        users = profiles.tree_user_ids(session, workspace_id, [pid for pid, _ in rows])
        return [MemberInfo(users.get(pid), pid, at) for pid, at in rows]
