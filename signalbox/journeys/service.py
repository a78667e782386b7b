"""Apply, list, pause and resume playbooks and templates (the engine comes next).

`apply` checks every file whole and stores nothing unless all are valid; a file becomes a new
version only when its definition changed, so re-applying a directory from git is a no-op, and
an enrolment keeps running the version it started on while new ones take the newest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from signalbox.changes import service as changes
from signalbox.core import yamlsource as yaml_source
from signalbox.core.db import Database, dialect_insert
from signalbox.core.errors import InvalidInputError, NotFoundError
from signalbox.identity import service as identity
from signalbox.journeys import dates, spec
from signalbox.journeys.flow import Flow
from signalbox.journeys.models import (
    AutomationHold,
    Decision,
    Enrollment,
    MessageTemplate,
    Playbook,
    PlaybookVersion,
    TemplateVersion,
)
from signalbox.journeys.schemas import Applied, DecisionInfo, EnrollmentInfo, PlaybookInfo, TemplateInfo
from signalbox.segments import conditions
from signalbox.segments import service as segments
from signalbox.workspaces import service as workspaces


class InvalidFilesError(InvalidInputError):
    """Every problem of every file, one `PATH:LINE: field.path: message` line each."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _digest(definition: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(definition, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _check(
    kind: str, label: str, text: str, templates: dict[str, str], segment_keys: set[str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    try:
        parsed = yaml_source.load(text)
    except yaml_source.SourceError as exc:
        return {}, [f"{label}:{exc.line}: (document): {exc.message}"]
    if kind == "playbook":
        definition, problems = spec.check_playbook(parsed.data, templates, segment_keys)
    else:
        definition, problems = spec.check_template(parsed.data)
    lines = [f"{label}:{parsed.line_of(p.path)}: {yaml_source.dotted(p.path)}: {p.message}" for p in problems]
    return definition, lines


def template_channels(session: Session, workspace_id: str) -> dict[str, str]:
    rows = session.execute(
        select(MessageTemplate.key, MessageTemplate.channel).where(MessageTemplate.workspace_id == workspace_id)
    )
    return {key: channel for key, channel in rows}


def apply(db: Database, workspace_id: str, kind: str, files: Sequence[tuple[str, str]], now: datetime) -> list[Applied]:
    """Check and store (label, text) files of one kind (`playbook` or `template`): all or none."""
    if kind not in ("playbook", "template"):
        raise ValueError(f"unknown kind {kind!r}")
    if not files:
        raise InvalidInputError("no files to apply (a directory is read for *.yaml and *.yml)")
    with db.transaction() as session:
        known = template_channels(session, workspace_id)
        segment_keys = segments.known(session, workspace_id)
        checked: list[tuple[str, dict[str, Any]]] = []
        problems: list[str] = []
        seen: dict[str, str] = {}
        for label, text in files:
            definition, lines = _check(kind, label, text, known, segment_keys)
            key = str(definition.get(kind))
            if not lines and key in seen:
                lines = [f"{label}:1: {kind}: {key!r} is also defined in {seen[key]}"]
            problems.extend(lines)
            if not lines:
                seen[key] = label
                checked.append((label, definition))
        if problems:
            raise InvalidFilesError(problems)
        store = _store_playbook if kind == "playbook" else _store_template
        applied = [store(session, workspace_id, label, definition, now) for label, definition in checked]
    if kind == "playbook":
        _plan_dates(db, workspace_id, applied, now)
    return applied


def _plan_dates(db: Database, workspace_id: str, applied: list[Applied], now: datetime) -> None:
    """A new or changed date-triggered playbook computes everyone's moment at once."""
    for done in applied:
        if not done.changed:
            continue
        version, found = definition(db, workspace_id, done.key)
        if "date" in found["trigger"]:
            ws = workspaces.get_workspace(db, workspace_id)
            dates.backfill(db, ws, Flow.of(done.key, version, found), now)


def _new_version(
    session: Session,
    model: type[PlaybookVersion] | type[TemplateVersion],
    key_field: str,
    workspace_id: str,
    key: str,
    current: int | None,
    definition: dict[str, Any],
    label: str,
    now: datetime,
) -> int | None:
    """Store the definition as the next version, or None when it equals the current one."""
    digest = _digest(definition)
    key_column = getattr(model, key_field)
    if current is not None:
        latest = session.scalar(
            select(model.digest).where(model.workspace_id == workspace_id, key_column == key, model.version == current)
        )
        if latest == digest:
            return None
    version = 1 if current is None else current + 1
    session.add(
        model(
            workspace_id=workspace_id,
            version=version,
            digest=digest,
            definition=definition,
            source=label[:500],
            created_at=now,
            **{key_field: key},
        )
    )
    return version


def _store_playbook(
    session: Session, workspace_id: str, label: str, definition: dict[str, Any], now: datetime
) -> Applied:
    key, name = definition["playbook"], definition["name"][:200]
    row = session.scalar(select(Playbook).where(Playbook.workspace_id == workspace_id, Playbook.key == key))
    current = None if row is None else row.current_version
    version = _new_version(session, PlaybookVersion, "playbook_key", workspace_id, key, current, definition, label, now)
    if version is None:
        return Applied("playbook", key, int(current or 0), False, label)
    if row is None:
        start = changes.head(session, workspace_id)
        session.add(
            Playbook(
                workspace_id=workspace_id,
                key=key,
                name=name,
                status="active",
                current_version=version,
                start_seq=start,
                created_at=now,
                updated_at=now,
            )
        )
    else:
        row.current_version, row.name, row.updated_at = version, name, now
    session.flush()
    return Applied("playbook", key, version, True, label)


def _store_template(
    session: Session, workspace_id: str, label: str, definition: dict[str, Any], now: datetime
) -> Applied:
    key, channel = definition["template"], definition["channel"]
    row = session.scalar(
        select(MessageTemplate).where(MessageTemplate.workspace_id == workspace_id, MessageTemplate.key == key)
    )
    if row is not None and row.channel != channel:
        # Playbooks were checked against the old channel; a send step must not change medium.
        raise InvalidFilesError([f"{label}:1: channel: template {key!r} is for {row.channel}; use a new id"])
    current = None if row is None else row.current_version
    version = _new_version(session, TemplateVersion, "template_key", workspace_id, key, current, definition, label, now)
    if version is None:
        return Applied("template", key, int(current or 0), False, label)
    if row is None:
        session.add(
            MessageTemplate(
                workspace_id=workspace_id,
                key=key,
                channel=channel,
                current_version=version,
                created_at=now,
                updated_at=now,
            )
        )
    else:
        row.current_version, row.updated_at = version, now
    session.flush()
    return Applied("template", key, version, True, label)


def list_playbooks(db: Database, workspace_id: str) -> list[PlaybookInfo]:
    with db.session() as session:
        rows = session.execute(
            select(Playbook, PlaybookVersion.definition)
            .join(
                PlaybookVersion,
                (PlaybookVersion.workspace_id == Playbook.workspace_id)
                & (PlaybookVersion.playbook_key == Playbook.key)
                & (PlaybookVersion.version == Playbook.current_version),
            )
            .where(Playbook.workspace_id == workspace_id)
            .order_by(Playbook.updated_at.desc(), Playbook.key)
        )
        return [_info(row, definition) for row, definition in rows]


def _info(row: Playbook, definition: dict[str, Any]) -> PlaybookInfo:
    trigger = definition["trigger"]
    kind = f"event:{trigger['event']}" if "event" in trigger else ("enters" if "enters" in trigger else "date")
    return PlaybookInfo(
        row.key,
        row.name,
        definition["purpose"],
        kind,
        row.current_version,
        row.status,
        row.updated_at,
    )


def set_status(db: Database, workspace_id: str, key: str, status: str, now: datetime) -> PlaybookInfo:
    """Pause (no new entries; due steps wait) or resume a playbook."""
    if status not in ("active", "paused"):
        raise ValueError(f"unknown status {status!r}")
    with db.transaction() as session:
        found = session.execute(
            update(Playbook)
            .where(Playbook.workspace_id == workspace_id, Playbook.key == key)
            .values(status=status, updated_at=now)
        )
        if not getattr(found, "rowcount", 0):
            raise NotFoundError(f"no playbook {key!r} in this workspace (see `signalbox playbooks list`)")
    return next(p for p in list_playbooks(db, workspace_id) if p.playbook == key)


def definition(db: Database, workspace_id: str, key: str, version: int | None = None) -> tuple[int, dict[str, Any]]:
    """A playbook version's definition (the current one by default)."""
    with db.session() as session:
        return definition_in(session, workspace_id, key, version)


def definition_in(
    session: Session, workspace_id: str, key: str, version: int | None = None
) -> tuple[int, dict[str, Any]]:
    if version is None:
        version = session.scalar(
            select(Playbook.current_version).where(Playbook.workspace_id == workspace_id, Playbook.key == key)
        )
        if version is None:
            raise NotFoundError(f"no playbook {key!r} in this workspace")
    found = session.scalar(
        select(PlaybookVersion.definition).where(
            PlaybookVersion.workspace_id == workspace_id,
            PlaybookVersion.playbook_key == key,
            PlaybookVersion.version == version,
        )
    )
    if found is None:
        raise NotFoundError(f"playbook {key!r} has no version {version}")
    return version, found


def list_templates(db: Database, workspace_id: str) -> list[TemplateInfo]:
    with db.session() as session:
        rows = session.scalars(
            select(MessageTemplate).where(MessageTemplate.workspace_id == workspace_id).order_by(MessageTemplate.key)
        )
        return [TemplateInfo(r.key, r.channel, r.current_version, r.updated_at) for r in rows]


def template_definition(db: Database, workspace_id: str, key: str) -> dict[str, Any]:
    """The current version of a template (a send renders what the template says now)."""
    with db.session() as session:
        found = session.scalar(
            select(TemplateVersion.definition)
            .join(
                MessageTemplate,
                (MessageTemplate.workspace_id == TemplateVersion.workspace_id)
                & (MessageTemplate.key == TemplateVersion.template_key)
                & (MessageTemplate.current_version == TemplateVersion.version),
            )
            .where(TemplateVersion.workspace_id == workspace_id, TemplateVersion.template_key == key)
        )
    if found is None:
        raise NotFoundError(f"no template {key!r} in this workspace")
    return dict(found)


def goal_matches(goals: list[dict[str, Any]], name: str, properties: dict[str, Any], trigger: dict[str, Any]) -> bool:
    """Does an event with this name and these properties meet one of the goals?"""
    for goal in goals:
        if goal["event"] != name:
            continue
        prop = goal.get("match")
        if prop and properties.get(prop) != trigger.get("properties", {}).get(prop):
            continue
        if goal.get("where") and not conditions.evaluate(goal["where"], {"event": properties}):
            continue
        return True
    return False


# ---- reads for the CLI and the API -----------------------------------------------------------


def list_enrollments(
    db: Database, workspace_id: str, *, playbook: str | None = None, user_id: str | None = None, limit: int = 10_000
) -> list[EnrollmentInfo]:
    with db.session() as session:
        stmt = select(Enrollment).where(Enrollment.workspace_id == workspace_id)
        if playbook:
            stmt = stmt.where(Enrollment.playbook_key == playbook)
        if user_id:
            stmt = stmt.where(Enrollment.user_id == user_id)
        rows = session.scalars(stmt.order_by(Enrollment.created_at.desc(), Enrollment.id.desc()).limit(limit))
        return [
            EnrollmentInfo(
                r.id,
                r.playbook_key,
                r.version,
                r.user_id,
                r.entry_key,
                r.status,
                r.exit_reason,
                r.holdout,
                r.position,
                r.due_at,
                r.created_at,
            )
            for r in rows
        ]


def list_decisions(
    db: Database,
    workspace_id: str,
    *,
    enrollment_id: str | None = None,
    user_id: str | None = None,
    limit: int = 10_000,
) -> list[DecisionInfo]:
    with db.session() as session:
        stmt = select(Decision).where(Decision.workspace_id == workspace_id)
        if enrollment_id:
            stmt = stmt.where(Decision.enrollment_id == enrollment_id)
        if user_id:
            stmt = stmt.where(Decision.user_id == user_id)
        rows = session.scalars(stmt.order_by(Decision.id.desc()).limit(limit))
        return [
            DecisionInfo(
                r.enrollment_id, r.user_id, r.playbook_key, r.step_id, r.outcome, r.reason, r.channel, r.at, r.detail
            )
            for r in rows
        ]


def set_automation(db: Database, workspace_id: str, user_id: str, paused: bool, now: datetime) -> str | None:
    """Take a person (every node of their tree) out of, or back into, every playbook's
    automated steps. Returns their user_id."""
    doc = identity.profile_document(db, workspace_id, user_id)
    profile_ids = doc.profile_ids
    with db.transaction() as session:
        if paused:
            base = dialect_insert(session, AutomationHold)
            session.execute(
                base.values(
                    [{"workspace_id": workspace_id, "profile_id": p, "paused_at": now} for p in profile_ids]
                ).on_conflict_do_nothing(index_elements=["workspace_id", "profile_id"])
            )
        else:
            session.execute(
                delete(AutomationHold).where(
                    AutomationHold.workspace_id == workspace_id, AutomationHold.profile_id.in_(profile_ids)
                )
            )
    return doc.user_id


# ---- the decision trace ------------------------------------------------------------------


def decision_row(
    workspace_id: str,
    playbook: str,
    profile_id: str,
    user_id: str | None,
    outcome: str,
    reason: str | None,
    at: datetime,
    *,
    enrollment_id: str | None = None,
    step_id: str | None = None,
    channel: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One row of the decision trace, in the shape `record_decisions` writes."""
    return {
        "workspace_id": workspace_id,
        "enrollment_id": enrollment_id,
        "profile_id": profile_id,
        "user_id": user_id,
        "playbook_key": playbook,
        "step_id": step_id,
        "outcome": outcome,
        "reason": reason,
        "channel": channel,
        "detail": detail,
        "at": at,
    }


def record_decisions(session: Session, rows: list[dict[str, Any]]) -> None:
    """The one write path for decisions (the engine's, the triggers', set enrolment's)."""
    if rows:
        session.execute(insert(Decision), rows)
