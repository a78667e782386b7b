"""Today: the manager's morning questions, one read per panel, each scoped to what the viewer
may see (`locations`: None for every location, else a tuple of location ids).

A person belongs to the location of their `home_location` trait (people without one belong to
no location and so only to an unscoped viewer); a task to its own `location`. Every number on
the page is computed from those rows alone, so a scoped viewer cannot learn anything about
another location from a total.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, literal_column, select
from sqlalchemy.orm import Session, aliased

from signalbox.channels.models import Send, StaffTask
from signalbox.core.db import Database
from signalbox.core.errors import NotFoundError
from signalbox.events.models import Event
from signalbox.journeys import report as journey_report
from signalbox.journeys import service as journeys
from signalbox.journeys.models import Enrollment
from signalbox.profiles import components as parts
from signalbox.profiles.models import Profile
from signalbox.workspaces import service as workspaces

Scope = tuple[str, ...] | None

ATTENTION_LIMIT = 20
TASK_LIMIT = 100
LIST_LIMIT = 50
FAILED_PAYMENT_DAYS = 30
LEAD_DAYS = 7
# A call is worth a staff member's minutes only for the few most at risk; everyone else gets
# a message (SMS when we hold a phone number, e-mail otherwise).
CALL_SCORE = 70
OPEN_STATUSES = ("open", "snoozed")
BOOKING_EVENTS = ("class_booked", "appointment_booked")
OUTCOMES = ("reached", "no_answer", "left_voicemail", "booked", "not_interested")


# ---- small pure helpers ------------------------------------------------------------------


def human_duration(delta: timedelta) -> str:
    """`2 h 5 min`, `3 d 4 h`, `12 min`, `under 1 min`: how long, as a person says it."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min" if mins else "under 1 min"


def suggested_action(band: str | None, score: int, has_phone: bool) -> str:
    """The one documented rule: High band with a score of 70 or more → call; otherwise SMS when
    a phone number is known, else e-mail."""
    if band == "High" and score >= CALL_SCORE:
        return "call"
    return "sms" if has_phone else "email"


def top_reasons(components: Sequence[dict[str, Any]] | None, count: int = 3) -> list[dict[str, Any]]:
    """The components that add the most points (only those that add any), biggest first."""
    scored = [c for c in components or [] if int(c.get("points") or 0) > 0]
    scored.sort(key=lambda c: (-int(c.get("points") or 0), str(c.get("component", ""))))
    return [
        {
            "component": c.get("component"),
            "points": int(c.get("points") or 0),
            "reason": c.get("reason"),
            "detail": c.get("detail"),
        }
        for c in scored[:count]
    ]


def behind_flags(rows: Sequence[LocationRow]) -> None:
    """Mark the measures where a location is worse than the average of the rows shown; a
    location is *behind* when it is worse on at least two of the three. One row has nothing to
    compare with and is never behind."""
    if len(rows) < 2:
        return
    measures = ("high_share", "overdue_tasks", "leads_waiting")
    means = {m: sum(float(getattr(r, m)) for r in rows) / len(rows) for m in measures}
    for row in rows:
        row.worse_on = [m for m in measures if float(getattr(row, m)) > means[m] + 1e-9]
        row.behind = len(row.worse_on) >= 2


def display_name(user_id: str | None, traits: dict[str, Any] | None) -> str:
    traits = traits or {}
    parts = [str(traits[k]).strip() for k in ("first_name", "last_name") if traits.get(k)]
    name = " ".join(p for p in parts if p)
    return name or user_id or "(unnamed)"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


# ---- panels' rows -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    profile_id: str  # the root
    user_id: str | None
    name: str
    home_location: str | None
    traits: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AttentionRow:
    person: Person
    band: str | None
    score: int
    reasons: list[dict[str, Any]]
    action: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.person.user_id,
            "profile_id": self.person.profile_id,
            "name": self.person.name,
            "location": self.person.home_location,
            "band": self.band,
            "score": self.score,
            "reasons": self.reasons,
            "suggested_action": self.action,
        }


@dataclass(frozen=True, slots=True)
class FailedPayment:
    person: Person
    invoice_id: str | None
    amount: float | None
    currency: str | None
    failed_at: datetime
    days_since: int
    recovery_playbook: str | None  # the active (treated) recovery enrollment's playbook

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.person.user_id,
            "name": self.person.name,
            "location": self.person.home_location,
            "invoice_id": self.invoice_id,
            "amount": self.amount,
            "currency": self.currency,
            "failed_at": self.failed_at.isoformat(),
            "days_since": self.days_since,
            "recovery_running": self.recovery_playbook is not None,
            "recovery_playbook": self.recovery_playbook,
        }


@dataclass(frozen=True, slots=True)
class Lead:
    person: Person
    created_at: datetime
    waited: timedelta

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.person.user_id,
            "name": self.person.name,
            "location": self.person.home_location,
            "created_at": self.created_at.isoformat(),
            "waited_seconds": int(self.waited.total_seconds()),
            "waited": human_duration(self.waited),
        }


@dataclass(frozen=True, slots=True)
class TaskRow:
    id: int
    title: str
    user_id: str | None
    name: str
    location: str | None
    priority: str
    status: str
    due_at: datetime
    due_in: timedelta  # negative: overdue

    @property
    def overdue(self) -> bool:
        return self.due_in < timedelta(0)

    @property
    def countdown(self) -> str:
        span = human_duration(self.due_in)
        return f"overdue by {span}" if self.overdue else f"due in {span}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "user_id": self.user_id,
            "name": self.name,
            "location": self.location,
            "priority": self.priority,
            "status": self.status,
            "due_at": self.due_at.isoformat(),
            "due_in_seconds": int(self.due_in.total_seconds()),
            "overdue": self.overdue,
            "countdown": self.countdown,
        }


@dataclass(frozen=True, slots=True)
class PlaybookRow:
    playbook: str
    name: str
    treated: dict[str, Any]
    holdout: dict[str, Any]
    lift: float | None
    ci95: list[float] | None
    incremental_revenue: float | None

    @property
    def proven(self) -> bool:
        return self.ci95 is not None and (self.ci95[0] > 0 or self.ci95[1] < 0)

    @property
    def verdict(self) -> str:
        if self.ci95 is None:
            return "no holdout to compare yet"
        return "proven" if self.proven else "not yet proven"

    def to_dict(self) -> dict[str, Any]:
        return {
            "playbook": self.playbook,
            "name": self.name,
            "treated": self.treated,
            "holdout": self.holdout,
            "lift": self.lift,
            "ci95": self.ci95,
            "proven": self.proven,
            "verdict": self.verdict,
            "incremental_revenue": self.incremental_revenue,
        }


@dataclass(slots=True)
class LocationRow:
    id: str
    name: str | None
    members: int
    high: int
    overdue_tasks: int = 0
    leads_waiting: int = 0
    worse_on: list[str] = field(default_factory=list)
    behind: bool = False

    @property
    def high_share(self) -> float:
        return self.high / self.members if self.members else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "members": self.members,
            "high_band": self.high,
            "high_share": round(self.high_share, 4),
            "overdue_tasks": self.overdue_tasks,
            "leads_waiting": self.leads_waiting,
            "worse_than_average_on": self.worse_on,
            "behind": self.behind,
        }


REVIEWS_MESSAGE = "Reviews arrive in a later release: nothing to answer here yet."


@dataclass(frozen=True, slots=True)
class Today:
    location: str | None
    locations: list[LocationRow]  # the viewer's, for the picker and the comparison panel
    attention: list[AttentionRow]
    failed_payments: list[FailedPayment]
    leads: list[Lead]
    tasks: list[TaskRow]
    playbooks: list[PlaybookRow]
    timezone: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "panels": {
                "attention": [r.to_dict() for r in self.attention],
                "failed_payments": [r.to_dict() for r in self.failed_payments],
                "leads": [r.to_dict() for r in self.leads],
                "tasks": [r.to_dict() for r in self.tasks],
                "reviews": {"available": False, "message": REVIEWS_MESSAGE},
                "playbooks": [r.to_dict() for r in self.playbooks],
                "locations": [r.to_dict() for r in self.locations],
            },
        }


# ---- queries ------------------------------------------------------------------------------


def home_location(session: Session, traits: Any = None) -> ColumnElement[str]:
    """A root's `home_location` trait. On SQLite written exactly as migration 0014's index is
    (a literal path, no bound parameter), so the planner answers from that index."""
    column = Profile.traits if traits is None else traits
    if session.get_bind().dialect.name == "postgresql":
        found: ColumnElement[str] = column.op("->>")(literal_column("'home_location'"))
        return found
    return func.json_extract(column, literal_column("'$.home_location'"))


def _people(session: Session, workspace_id: str, node_ids: Sequence[str]) -> dict[str, Person]:
    """Each node's person today (its tree's root), for a few nodes."""
    ids = sorted(set(node_ids))
    if not ids:
        return {}
    root_of: dict[str, str] = {}
    for start in range(0, len(ids), 2000):
        rows = session.execute(
            select(Profile.id, Profile.canonical_id).where(
                Profile.workspace_id == workspace_id, Profile.id.in_(ids[start : start + 2000])
            )
        )
        root_of.update({node: root for node, root in rows})
    roots = sorted(set(root_of.values()))
    found: dict[str, Person] = {}
    for start in range(0, len(roots), 2000):
        documents = session.execute(
            select(Profile.id, Profile.user_id, Profile.traits).where(
                Profile.workspace_id == workspace_id, Profile.id.in_(roots[start : start + 2000])
            )
        )
        for pid, uid, traits in documents:
            home = (traits or {}).get("home_location")
            found[pid] = Person(
                pid, uid, display_name(uid, traits), None if home in (None, "") else str(home), traits or {}
            )
    return {node: found[root] for node, root in root_of.items() if root in found}


def _visible(person: Person, scope: Scope) -> bool:
    return scope is None or (person.home_location is not None and person.home_location in scope)


def _nodes_of(session: Session, workspace_id: str, roots: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    ids = sorted(set(roots))
    for start in range(0, len(ids), 2000):
        rows = session.execute(
            select(Profile.id, Profile.canonical_id).where(
                Profile.workspace_id == workspace_id, Profile.canonical_id.in_(ids[start : start + 2000])
            )
        )
        out.update({node: root for node, root in rows})
    return out


def attention(session: Session, workspace_id: str, scope: Scope, limit: int = ATTENTION_LIMIT) -> list[AttentionRow]:
    stmt = select(
        Profile.id,
        Profile.user_id,
        Profile.traits,
        Profile.at_risk_band,
        Profile.at_risk_score,
        Profile.at_risk_components,
    ).where(
        Profile.workspace_id == workspace_id,
        Profile.merged_into_id.is_(None),
        Profile.at_risk_score.is_not(None),
        Profile.at_risk_band.in_(("High", "Medium")),
    )
    if scope is not None:
        stmt = stmt.where(home_location(session).in_(scope))
    rows = session.execute(stmt.order_by(Profile.at_risk_score.desc(), Profile.id).limit(limit))
    out = []
    for pid, uid, found_traits, band, score, components in rows:
        traits = found_traits or {}
        home = traits.get("home_location")
        person = Person(pid, uid, display_name(uid, traits), None if home in (None, "") else str(home), traits)
        out.append(
            AttentionRow(
                person,
                band,
                int(score or 0),
                top_reasons(parts.render(components)),
                suggested_action(band, int(score or 0), bool(traits.get("phone"))),
            )
        )
    return out


def failed_payments(session: Session, workspace_id: str, scope: Scope, now: datetime) -> list[FailedPayment]:
    since = now - timedelta(days=FAILED_PAYMENT_DAYS)
    window = (Event.workspace_id == workspace_id, Event.timestamp >= since, Event.timestamp <= now)
    # Failures are few; successes are every member's monthly payment. So: the people who failed,
    # kept only when the viewer sees them, then those people's payments alone.
    failed_nodes = session.scalars(
        select(Event.profile_id).where(*window, Event.event == "payment_failed").distinct()
    ).all()
    people = {node: p for node, p in _people(session, workspace_id, failed_nodes).items() if _visible(p, scope)}
    by_root = {p.profile_id: p for p in people.values()}
    node_root = _nodes_of(session, workspace_id, list(by_root))
    nodes = sorted(node_root)
    rows: list[Any] = []
    for start in range(0, len(nodes), 2000):
        rows.extend(
            session.execute(
                select(Event.profile_id, Event.event, Event.properties, Event.timestamp, Event.id).where(
                    *window,
                    Event.event.in_(("payment_failed", "payment_succeeded")),
                    Event.profile_id.in_(nodes[start : start + 2000]),
                )
            )
        )
    rows.sort(key=lambda r: (_aware(r[3]), r[4]))
    # The newest failure per invoice (per person when the invoice is not named), forgotten
    # again when a later success for the same invoice arrives.
    open_failures: dict[tuple[str, str | None], tuple[Person, dict[str, Any], datetime]] = {}
    for node, name, found_props, at, _ in rows:
        person = by_root[node_root[node]]
        props = found_props or {}
        invoice = props.get("invoice_id")
        key = (person.profile_id, str(invoice) if invoice not in (None, "") else None)
        if name == "payment_failed":
            open_failures[key] = (person, props, _aware(at))
        elif key in open_failures:
            del open_failures[key]
        elif key[1] is None:
            # A success without an invoice id settles whatever that person owed before it.
            for other in [k for k in open_failures if k[0] == person.profile_id]:
                del open_failures[other]
    running = _recovery_enrollments(session, workspace_id, sorted({k[0] for k in open_failures}))
    out = []
    for (root, invoice), (person, props, at) in open_failures.items():
        currency = props.get("currency")
        out.append(
            FailedPayment(
                person,
                invoice,
                _number(props.get("amount")),
                str(currency) if currency else None,
                at,
                (now - at).days,
                running.get(root),
            )
        )
    out.sort(key=lambda f: f.failed_at, reverse=True)
    return out[:LIST_LIMIT]


def _recovery_enrollments(session: Session, workspace_id: str, roots: Sequence[str]) -> dict[str, str]:
    """root → the playbook of an active, treated enrollment triggered by a failed payment."""
    if not roots:
        return {}
    node_root = _nodes_of(session, workspace_id, roots)
    out: dict[str, str] = {}
    nodes = sorted(node_root)
    for start in range(0, len(nodes), 2000):
        rows = session.execute(
            select(Enrollment.profile_id, Enrollment.playbook_key, Enrollment.trigger).where(
                Enrollment.workspace_id == workspace_id,
                Enrollment.profile_id.in_(nodes[start : start + 2000]),
                Enrollment.status == "active",
                Enrollment.holdout.is_(False),
            )
        )
        for node, key, trigger in rows:
            if (trigger or {}).get("event") == "payment_failed" or "recover" in key:
                out.setdefault(node_root[node], key)
    return out


def leads(session: Session, workspace_id: str, scope: Scope, now: datetime) -> list[Lead]:
    since = now - timedelta(days=LEAD_DAYS)
    rows = session.execute(
        select(Event.profile_id, Event.timestamp).where(
            Event.workspace_id == workspace_id,
            Event.event == "lead_created",
            Event.timestamp >= since,
            Event.timestamp <= now,
        )
    ).all()
    people = _people(session, workspace_id, [r[0] for r in rows])
    lead_times: dict[str, list[datetime]] = {}
    who: dict[str, Person] = {}
    for node, stamp in rows:
        person = people.get(node)
        if person is None or not _visible(person, scope):
            continue
        who[person.profile_id] = person
        lead_times.setdefault(person.profile_id, []).append(_aware(stamp))
    if not lead_times:
        return []
    last_answer = _last_responses(session, workspace_id, list(lead_times), since)
    out = []
    for root, times in lead_times.items():
        # Waiting since their oldest lead that no response has followed yet.
        answered = last_answer.get(root)
        waiting = [at for at in times if answered is None or at > answered]
        if waiting:
            start = min(waiting)
            out.append(Lead(who[root], start, now - start))
    out.sort(key=lambda lead: lead.created_at)
    return out


def _last_responses(session: Session, workspace_id: str, roots: list[str], since: datetime) -> dict[str, datetime]:
    """Per root, the latest moment they heard from us (a send, a finished task of theirs) or
    booked (a class or an appointment), within the window."""
    node_root = _nodes_of(session, workspace_id, roots)
    nodes = sorted(node_root)
    latest: dict[str, datetime] = {}
    for start in range(0, len(nodes), 2000):
        chunk = nodes[start : start + 2000]
        sends = session.execute(
            select(Send.profile_id, Send.created_at).where(
                Send.workspace_id == workspace_id, Send.profile_id.in_(chunk), Send.created_at >= since
            )
        )
        tasks = session.execute(
            select(StaffTask.profile_id, StaffTask.done_at).where(
                StaffTask.workspace_id == workspace_id,
                StaffTask.profile_id.in_(chunk),
                StaffTask.status == "done",
                StaffTask.done_at >= since,
            )
        )
        bookings = session.execute(
            select(Event.profile_id, Event.timestamp).where(
                Event.workspace_id == workspace_id,
                Event.profile_id.in_(chunk),
                Event.event.in_(BOOKING_EVENTS),
                Event.timestamp >= since,
            )
        )
        for node, at in [*sends, *tasks, *bookings]:
            if at is None:
                continue
            root, when = node_root[node], _aware(at)
            if root not in latest or when > latest[root]:
                latest[root] = when
    return latest


def _task_scope(stmt: Any, scope: Scope) -> Any:
    return stmt if scope is None else stmt.where(StaffTask.location.in_(scope))


_TASK_COLUMNS = (
    StaffTask.id,
    StaffTask.title,
    StaffTask.profile_id,
    StaffTask.user_id,
    StaffTask.location,
    StaffTask.priority,
    StaffTask.status,
    StaffTask.due_at,
)


def _task_rows(session: Session, workspace_id: str, rows: Sequence[Any], now: datetime) -> list[TaskRow]:
    """Rows of `_TASK_COLUMNS` as the Tasks panel shows them, with each person's name."""
    people = _people(session, workspace_id, [r[2] for r in rows])
    out = []
    for tid, title, node, uid, location, priority, status, stored_due in rows:
        person = people.get(node)
        name = person.name if person else (uid or "(unknown person)")
        due = _aware(stored_due)
        out.append(TaskRow(tid, title, uid, name, location, priority, status, due, due - now))
    return out


def tasks(session: Session, workspace_id: str, scope: Scope, now: datetime, end_of_day: datetime) -> list[TaskRow]:
    stmt = select(*_TASK_COLUMNS).where(
        StaffTask.workspace_id == workspace_id,
        StaffTask.status.in_(OPEN_STATUSES),
        StaffTask.due_at <= end_of_day,
    )
    rows = session.execute(_task_scope(stmt, scope).order_by(StaffTask.due_at, StaffTask.id).limit(TASK_LIMIT)).all()
    return _task_rows(session, workspace_id, rows, now)


def playbooks(session: Session, db: Database, workspace_id: str, scope: Scope) -> list[PlaybookRow]:
    out = []
    for info in journeys.list_playbooks(db, workspace_id):
        if info.status != "active":
            continue
        # Unscoped: the journeys report as it is; scoped: the same measures over the enrollments
        # of the viewer's people only.
        found = (
            journey_report.report(db, workspace_id, info.playbook)
            if scope is None
            else _scoped_report(session, workspace_id, info.playbook, scope)
        )
        lift = found["lift"]
        out.append(
            PlaybookRow(
                info.playbook,
                info.name,
                found["arms"]["treated"],
                found["arms"]["holdout"],
                lift["absolute"],
                lift["ci95"],
                found["revenue"]["incremental"],
            )
        )
    return out


def _scoped_report(session: Session, workspace_id: str, key: str, scope: tuple[str, ...]) -> dict[str, Any]:
    root = aliased(Profile)
    node = aliased(Profile)
    rows = session.execute(
        select(Enrollment.id, Enrollment.holdout, Enrollment.exit_reason)
        .join(node, and_(node.workspace_id == Enrollment.workspace_id, node.id == Enrollment.profile_id))
        .join(root, and_(root.workspace_id == node.workspace_id, root.id == node.canonical_id))
        .where(
            Enrollment.workspace_id == workspace_id,
            Enrollment.playbook_key == key,
            home_location(session, root.traits).in_(scope),
        )
    ).all()
    # The report's own statistics over the viewer's enrolments only.
    amounts = journey_report.goal_amounts(session, workspace_id, key)
    return journey_report.summarize(key, [(e, bool(h), r) for e, h, r in rows], amounts)


def location_rows(session: Session, workspace_id: str, visible: Scope, now: datetime) -> list[LocationRow]:
    """Members and High-band members per location the viewer sees, plus open overdue tasks."""
    home = home_location(session)
    roots = (Profile.workspace_id == workspace_id, Profile.merged_into_id.is_(None))
    label = Profile.traits["location_name"].as_string()
    # PostgreSQL reads each row anyway, so the name comes with the counts; SQLite answers the
    # counts from migration 0014's index alone, and reading a name per row would undo that.
    with_names = session.get_bind().dialect.name == "postgresql"
    name_column: ColumnElement[Any] = func.max(label) if with_names else literal_column("NULL")
    stmt = (
        select(home, func.count(), func.sum(case((Profile.at_risk_band == "High", 1), else_=0)), name_column)
        .where(*roots, home.is_not(None))
        .group_by(home)
    )
    if visible is not None:
        stmt = stmt.where(home.in_(visible))
    rows = {
        str(loc): LocationRow(str(loc), str(name) if name else None, int(n or 0), int(high or 0))
        for loc, n, high, name in session.execute(stmt)
        if str(loc) != ""
    }
    for named in [] if with_names else rows.values():
        # One member's name is enough for a label, found through the index on home_location.
        name = session.scalar(select(label).where(*roots, home == named.id, label.is_not(None)).limit(1))
        named.name = str(name) if name else None
    overdue = select(StaffTask.location, func.count()).where(
        StaffTask.workspace_id == workspace_id,
        StaffTask.status.in_(OPEN_STATUSES),
        StaffTask.due_at < now,
        StaffTask.location.is_not(None),
    )
    for loc, n in session.execute(_task_scope(overdue, visible).group_by(StaffTask.location)):
        row = rows.get(str(loc))
        if row is None and (visible is None or loc in visible):
            row = rows[str(loc)] = LocationRow(str(loc), None, 0, 0)
        if row is not None:
            row.overdue_tasks = int(n)
    for loc in visible or ():
        rows.setdefault(loc, LocationRow(loc, None, 0, 0))
    return [rows[k] for k in sorted(rows)]


def day_end(now: datetime, zone: str) -> datetime:
    """The end of the workspace's today (its next midnight), in UTC."""
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)


def tomorrow_morning(now: datetime, zone: str, hour: int = 9) -> datetime:
    """09:00 tomorrow, workspace time, in UTC (a snooze's "tomorrow")."""
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    return datetime.combine(local.date() + timedelta(days=1), time(hour), tzinfo=tz).astimezone(UTC)


def workspace_zone(db: Database, workspace_id: str) -> str:
    return workspaces.get_workspace(db, workspace_id).timezone


def build_today(db: Database, workspace_id: str, visible: Scope, picked: str | None, now: datetime) -> Today:
    """Every panel. `visible`: the viewer's locations (None: all); `picked`: the location asked
    for, already checked to be one of them (None: all the viewer's)."""
    zone = workspace_zone(db, workspace_id)
    scope: Scope = (picked,) if picked else visible
    with db.session() as session:
        loc_rows = location_rows(session, workspace_id, visible, now)
        if picked and picked not in {row.id for row in loc_rows}:
            # Every viewer's own locations are rows; for one who sees all, a location is one
            # that people or tasks carry. Anything else does not exist.
            raise NotFoundError(f"no location {picked!r}")
        waiting = leads(session, workspace_id, visible, now)
        for row in loc_rows:
            row.leads_waiting = sum(1 for lead in waiting if lead.person.home_location == row.id)
        behind_flags(loc_rows)
        shown_leads = [lead for lead in waiting if _visible(lead.person, scope)]
        return Today(
            picked,
            loc_rows,
            attention(session, workspace_id, scope),
            failed_payments(session, workspace_id, scope, now),
            shown_leads[:LIST_LIMIT],
            tasks(session, workspace_id, scope, now, day_end(now, zone)),
            playbooks(session, db, workspace_id, scope),
            zone,
        )


# ---- a single task, for the actions ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskRef:
    id: int
    location: str | None
    user_id: str | None
    profile_id: str
    status: str


def task_ref(db: Database, workspace_id: str, task_id: int) -> TaskRef | None:
    with db.session() as session:
        row = session.execute(
            select(StaffTask.id, StaffTask.location, StaffTask.user_id, StaffTask.profile_id, StaffTask.status).where(
                StaffTask.workspace_id == workspace_id, StaffTask.id == task_id
            )
        ).first()
    return None if row is None else TaskRef(*row)


def task_row(db: Database, workspace_id: str, task_id: int, now: datetime) -> TaskRow | None:
    """One task as the Tasks panel shows it (whatever its status), for an htmx row swap."""
    with db.session() as session:
        row = session.execute(
            select(*_TASK_COLUMNS).where(StaffTask.workspace_id == workspace_id, StaffTask.id == task_id)
        ).first()
        return None if row is None else _task_rows(session, workspace_id, [row], now)[0]
