"""Date-relative triggers ("30 days before membership_expires_at, at 09:00"), in each
person's own zone.

A person's firing moment is computed when their trait changes (the journeys consumer) or when
the playbook is applied (a pass over everyone), and kept in `date_triggers`; the worker enrols
those whose moment has come. A moment already more than a day past when it is computed never
fires: a date trigger acts on what is ahead, not on history.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from signalbox.core.db import Database, dialect_insert
from signalbox.journeys import policy
from signalbox.journeys.flow import Flow
from signalbox.journeys.models import DateTrigger
from signalbox.profiles import service as profiles
from signalbox.workspaces.schemas import WorkspaceInfo

LATE = timedelta(days=1)
PAGE = 2000


def moment(value: Any, spec: dict[str, Any], zone: str) -> datetime | None:
    """When the trigger fires for a trait value (an ISO date or timestamp), or None."""
    if not isinstance(value, str) or not value:
        return None
    tz = ZoneInfo(zone)
    try:
        day = date.fromisoformat(value[:10]) if len(value) == 10 else datetime.fromisoformat(value)
    except ValueError:
        return None
    local_day = day.astimezone(tz).date() if isinstance(day, datetime) and day.tzinfo else _date(day)
    at = time.fromisoformat(spec["at"])
    return datetime.combine(local_day, at, tzinfo=tz).astimezone(UTC) + timedelta(seconds=spec["offset"])


def _date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def schedule(
    session: Session, workspace: WorkspaceInfo, flows: Iterable[Flow], roots: Iterable[str], now: datetime
) -> int:
    """(Re)compute the firing moment of these people for these date-triggered playbooks."""
    date_flows = [f for f in flows if "date" in f.definition["trigger"]]
    ids = sorted(set(roots))
    if not date_flows or not ids:
        return 0
    states = profiles.states(session, workspace.id, ids)
    trees = profiles.nodes_of_roots(session, workspace.id, ids)
    nodes_of: dict[str, list[str]] = {}
    for node, root in trees.items():
        nodes_of.setdefault(root, []).append(node)
    # Every person's zone in one query, not one per person.
    zones = policy.zones_of(
        session, workspace.id, {r: (s.traits, nodes_of.get(r, [r])) for r, s in states.items()}, workspace.timezone
    )
    planned = 0
    for root in ids:
        state = states.get(root)
        if state is None:
            continue
        zone = zones[root]
        for flow in date_flows:
            spec = flow.definition["trigger"]["date"]
            value = state.traits.get(spec["trait"])
            fires = moment(value, spec, zone)
            session.execute(
                delete(DateTrigger).where(
                    DateTrigger.workspace_id == workspace.id,
                    DateTrigger.playbook_key == flow.key,
                    DateTrigger.profile_id == root,
                )
            )
            if fires is None or fires < now - LATE:
                continue
            session.execute(
                dialect_insert(session, DateTrigger).values(
                    workspace_id=workspace.id,
                    playbook_key=flow.key,
                    profile_id=root,
                    fire_at=fires,
                    value=str(value)[:64],
                )
            )
            planned += 1
    return planned


def backfill(db: Database, workspace: WorkspaceInfo, flow: Flow, now: datetime) -> int:
    """Everyone's moment for a newly applied (or changed) date-triggered playbook."""
    planned, after = 0, ""
    while True:
        with db.transaction() as session:
            roots = profiles.root_ids_after(session, workspace.id, after, PAGE)
            if not roots:
                return planned
            planned += schedule(session, workspace, [flow], roots, now)
            after = roots[-1]


def due(session: Session, workspace_id: str, now: datetime, limit: int) -> list[tuple[str, str, str]]:
    """(playbook, person, value) whose moment has come, removed as they are read: the caller
    enrols them in the same transaction."""
    rows = session.execute(
        select(DateTrigger.playbook_key, DateTrigger.profile_id, DateTrigger.value)
        .where(DateTrigger.workspace_id == workspace_id, DateTrigger.fire_at <= now)
        .order_by(DateTrigger.fire_at)
        .limit(limit)
    ).all()
    for key, root, _ in rows:
        session.execute(
            delete(DateTrigger).where(
                DateTrigger.workspace_id == workspace_id,
                DateTrigger.playbook_key == key,
                DateTrigger.profile_id == root,
            )
        )
    return [(k, r, v) for k, r, v in rows]
