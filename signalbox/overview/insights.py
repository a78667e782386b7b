"""Insights: how the business is doing over months, for the people a viewer may see.

Every number here is computed only from people whose `home_location` is one of the viewer's
locations (every person for an unscoped viewer) and from tasks of those locations. Months are
calendar months in the workspace's time zone; the current month is partial and shown apart.

Definitions (also printed on the page, so an operator can check a number by hand):

* **Member at an instant t**: `member_since` (trait) is before t, and they have no
  `subscription_cancelled` before t, or their last one is older than their latest
  `member_since` or a later `payment_succeeded` (a payment after a cancellation is a rejoin).
* **Monthly churn** of month M: members at the start of M who have a `subscription_cancelled`
  during M, divided by members at the start of M. People who join during M are in neither.
* **Cohort retention**: cohort = the month of `member_since`; cell N = the share of the cohort
  with an activity event (`visit`, `check_in`, `class_attended`) in the N-th month after it.
  Complete months only.
* **Reactivation (30/60/90 days)**: of the cancellations at least N days old (in the last 12
  months), the share followed by an activity event within N days.
* **ARPU**: revenue (`payment_succeeded` and `purchase` amounts) of members, over the last three
  complete months, per member-month. **CLV** = ARPU / monthly churn of the same three months
  (the expected lifetime is 1 / churn months).
* **NRR** (month over month): revenue in the last complete month from the people who paid
  the month before, divided by what they paid the month before. New payers are left out, so it
  shows churn and contraction (below 100 %) against expansion (above).
* **Recovered revenue**: the goal revenue (the amount on the goal event) of playbook
  enrollments in the treated arm, and the incremental part of it against the holdout
  ((treated revenue per enrolled - holdout revenue per enrolled) x treated enrolled), as the
  playbook report computes it, but over visible people only.
* **Lead response time**: median time from `lead_created` (last 90 days) to the first response
  to that person: a message sent or a staff task done for them.
* **Payment recovery rate**: of the people with a `payment_failed` in the last 90 days, the
  share with a `payment_succeeded` after their first failure there.
* **Task completion**: of the staff tasks created in the last 90 days and already due, the
  share done.
* **Score bands over time**: the band each person was in at the end of each week, rebuilt
  backwards from today's band through the change log's score changes (each holds the band
  before and after). The log is trimmed after at most 30 days, so weeks before its oldest row
  cannot be rebuilt; the page says from when history exists.

Reads are a handful of aggregate queries (events grouped by person, event and month) and one
pass in Python; nothing is queried per person.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, String, case, func, literal, select, type_coerce
from sqlalchemy.orm import Session, aliased

from signalbox.changes.models import Change, ChangeSequence
from signalbox.channels.models import Send, StaffTask
from signalbox.core.clock import ensure_utc
from signalbox.core.db import Database
from signalbox.events.models import Event
from signalbox.journeys import report
from signalbox.journeys.models import Enrollment
from signalbox.journeys.report import Arm
from signalbox.profiles import service as profiles
from signalbox.profiles.models import Profile
from signalbox.scoring.schemas import BAND_NAMES

ACTIVITY = ("visit", "check_in", "class_attended")
REVENUE = ("payment_succeeded", "purchase")
CANCEL = "subscription_cancelled"
PAYMENT = "payment_succeeded"
MONTHS = 12  # complete months shown; the current, partial month comes after them
BAND_WEEKS = 8
RECENT_DAYS = 90
REACTIVATION_DAYS = (30, 60, 90)
NOT_SCORED = "Not scored"
_CHUNK = 2000


# ---- results ---------------------------------------------------------------------------------


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True, slots=True)
class MonthRow:
    month: str  # YYYY-MM
    partial: bool
    members_at_start: int
    cancellations: int
    churn: float | None
    revenue: float
    nrr: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "partial": self.partial,
            "members_at_start": self.members_at_start,
            "cancellations": self.cancellations,
            "churn": _r(self.churn),
            "revenue": round(self.revenue, 2),
            "nrr": _r(self.nrr),
        }


@dataclass(frozen=True, slots=True)
class CohortRow:
    cohort: str  # YYYY-MM
    size: int
    active: tuple[int, ...]  # people active in month 0, 1, ... after the cohort's month

    @property
    def shares(self) -> tuple[float, ...]:
        return tuple(n / self.size for n in self.active) if self.size else ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "cohort": self.cohort,
            "size": self.size,
            "active": list(self.active),
            "retention": [round(s, 4) for s in self.shares],
        }


@dataclass(frozen=True, slots=True)
class BandPoint:
    week_ending: str  # YYYY-MM-DD, the day the week ends (workspace time zone); today for the last
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def share(self, band: str) -> float | None:
        return self.counts.get(band, 0) / self.total if self.total else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "week_ending": self.week_ending,
            "counts": dict(self.counts),
            "shares": {band: _r(self.share(band)) for band in self.counts},
        }


@dataclass(frozen=True, slots=True)
class BandHistory:
    bands: tuple[str, ...]
    current: dict[str, int]
    points: tuple[BandPoint, ...]
    history_from: str | None  # the oldest moment the change log still covers (ISO), None: no score change at all
    complete: bool  # the log was never trimmed: every score change since the first is there

    def to_dict(self) -> dict[str, Any]:
        return {
            "bands": list(self.bands),
            "current": dict(self.current),
            "weeks": [p.to_dict() for p in self.points],
            "history_from": self.history_from,
            "complete": self.complete,
        }


@dataclass(frozen=True, slots=True)
class Reactivation:
    days: int
    eligible: int  # cancellations at least `days` old
    returned: int

    @property
    def rate(self) -> float | None:
        return self.returned / self.eligible if self.eligible else None

    def to_dict(self) -> dict[str, Any]:
        return {"days": self.days, "eligible": self.eligible, "returned": self.returned, "rate": _r(self.rate)}


@dataclass(frozen=True, slots=True)
class PlaybookRevenue:
    playbook: str
    treated: Arm
    holdout: Arm

    @property
    def incremental(self) -> float | None:
        if not (self.treated.enrolled and self.holdout.enrolled):
            return None
        per_treated = self.treated.revenue / self.treated.enrolled
        per_held = self.holdout.revenue / self.holdout.enrolled
        return (per_treated - per_held) * self.treated.enrolled

    def to_dict(self) -> dict[str, Any]:
        return {
            "playbook": self.playbook,
            "treated": self.treated.to_dict(),
            "holdout": self.holdout.to_dict(),
            "incremental": _r(self.incremental, 2),
        }


@dataclass(frozen=True, slots=True)
class LocationRow:
    location: str
    members: int
    lead_response_minutes: float | None
    leads: int
    payment_recovery: float | None
    failed_payers: int
    retention: float | None
    task_completion: float | None
    tasks_due: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "members": self.members,
            "lead_response_minutes": _r(self.lead_response_minutes, 1),
            "leads": self.leads,
            "payment_recovery": _r(self.payment_recovery),
            "failed_payers": self.failed_payers,
            "retention": _r(self.retention),
            "task_completion": _r(self.task_completion),
            "tasks_due": self.tasks_due,
        }


@dataclass(frozen=True, slots=True)
class Kpis:
    churn: float | None  # last complete month
    churn_month: str
    reactivation: tuple[Reactivation, ...]
    arpu: float | None
    churn_3m: float | None
    clv: float | None
    nrr: float | None
    recovered_revenue: float
    recovered_incremental: float | None
    lead_response_minutes: float | None
    leads: int
    leads_answered: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "churn": _r(self.churn),
            "churn_month": self.churn_month,
            "reactivation": [r.to_dict() for r in self.reactivation],
            "arpu": _r(self.arpu, 2),
            "churn_3m": _r(self.churn_3m),
            "clv": _r(self.clv, 2),
            "nrr": _r(self.nrr),
            "recovered_revenue": round(self.recovered_revenue, 2),
            "recovered_incremental": _r(self.recovered_incremental, 2),
            "lead_response_minutes": _r(self.lead_response_minutes, 1),
            "leads": self.leads,
            "leads_answered": self.leads_answered,
        }


@dataclass(frozen=True, slots=True)
class Insights:
    as_of: datetime
    timezone: str
    locations: tuple[str, ...] | None  # the scope the numbers are computed for (None: every location)
    people: int
    kpis: Kpis
    months: tuple[MonthRow, ...]
    cohorts: tuple[CohortRow, ...]
    bands: BandHistory
    playbooks: tuple[PlaybookRevenue, ...]
    by_location: tuple[LocationRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "timezone": self.timezone,
            "locations": None if self.locations is None else list(self.locations),
            "people": self.people,
            "kpis": self.kpis.to_dict(),
            "months": [m.to_dict() for m in self.months],
            "cohorts": [c.to_dict() for c in self.cohorts],
            "bands": self.bands.to_dict(),
            "playbooks": [p.to_dict() for p in self.playbooks],
            "by_location": [row.to_dict() for row in self.by_location],
        }


# ---- the facts one pass works on ---------------------------------------------------------------


@dataclass(slots=True)
class Track:
    """What one person did, month by month (bucket -1: before the first month shown)."""

    active: set[int] = field(default_factory=set)
    revenue: dict[int, float] = field(default_factory=dict)
    cancelled: set[int] = field(default_factory=set)
    last_cancel: dict[int, datetime] = field(default_factory=dict)
    last_payment: dict[int, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Person:
    root: str
    location: str | None
    member_since: datetime | None
    band: str | None


def month_starts(now: datetime, zone: ZoneInfo, months: int = MONTHS) -> list[datetime]:
    """The starts (UTC) of the `months` complete months before now's month, then now's month."""
    local = now.astimezone(zone)
    year, month = local.year, local.month
    out: list[datetime] = []
    for back in range(months, -1, -1):
        y, m = divmod(year * 12 + month - 1 - back, 12)
        out.append(datetime(y, m + 1, 1, tzinfo=zone).astimezone(UTC))
    return out


def bucket_of(at: datetime, starts: Sequence[datetime]) -> int:
    found = -1
    for i, start in enumerate(starts):
        if at >= start:
            found = i
    return found


def member_at(person: Person, track: Track | None, k: int, starts: Sequence[datetime]) -> bool:
    """A member at the start of month `k` (see the module's definition)."""
    since = person.member_since
    if since is None or since >= starts[k]:
        return False
    if track is None:
        return True
    cancels = [at for b, at in track.last_cancel.items() if b < k]
    if not cancels:
        return True
    payments = [at for b, at in track.last_payment.items() if b < k]
    renewed = max([since, *payments])
    return max(cancels) < renewed


def monthly(people: Sequence[Person], tracks: dict[str, Track], starts: Sequence[datetime]) -> list[MonthRow]:
    rows: list[MonthRow] = []
    last = len(starts) - 1
    revenue_by_month: list[dict[str, float]] = [{} for _ in starts]
    for person in people:
        track = tracks.get(person.root)
        if track is None:
            continue
        for b, amount in track.revenue.items():
            if b >= 0 and amount:
                revenue_by_month[b][person.root] = amount
    ever = [p for p in people if p.member_since is not None]  # leads never count as members
    for k, start in enumerate(starts):
        at_start = [p for p in ever if member_at(p, tracks.get(p.root), k, starts)]
        cancels = sum(1 for p in at_start if k in (tracks.get(p.root) or Track()).cancelled)
        nrr = None
        if k > 0:
            before = revenue_by_month[k - 1]
            base = sum(before.values())
            if base > 0:
                nrr = sum(revenue_by_month[k].get(root, 0.0) for root in before) / base
        rows.append(
            MonthRow(
                _month_label(start),
                k == last,
                len(at_start),
                cancels,
                cancels / len(at_start) if at_start else None,
                sum(revenue_by_month[k].values()),
                nrr,
            )
        )
    return rows


def _month_label(start: datetime) -> str:
    # The start is midnight on the 1st in the workspace's zone; in UTC it may be the day before,
    # so the label comes from the middle of the month, safe in every zone.
    middle = start + timedelta(days=15)
    return f"{middle.year:04d}-{middle.month:02d}"


def member_revenue(people: Sequence[Person], tracks: dict[str, Track], starts: Sequence[datetime], k: int) -> float:
    total = 0.0
    for p in people:
        track = tracks.get(p.root)
        if track is not None and member_at(p, track, k, starts):
            total += track.revenue.get(k, 0.0)
    return total


def cohorts(
    people: Sequence[Person], tracks: dict[str, Track], starts: Sequence[datetime], complete: int
) -> list[CohortRow]:
    """Cohorts of the complete months `0 .. complete-1`; cells up to the last complete month."""
    sizes = [0] * complete
    active = [[0] * (complete - c) for c in range(complete)]
    for p in people:
        if p.member_since is None:
            continue
        c = bucket_of(p.member_since, starts)
        if not 0 <= c < complete:
            continue
        sizes[c] += 1
        track = tracks.get(p.root)
        if track is None:
            continue
        for n in range(complete - c):
            if c + n in track.active:
                active[c][n] += 1
    return [CohortRow(_month_label(starts[c]), sizes[c], tuple(active[c])) for c in range(complete) if sizes[c]]


def reactivation(
    cancels: Iterable[tuple[str, datetime]], returns: dict[str, list[datetime]], now: datetime
) -> tuple[Reactivation, ...]:
    out = []
    listed = list(cancels)
    for days in REACTIVATION_DAYS:
        span = timedelta(days=days)
        eligible = [(root, at) for root, at in listed if at + span <= now]
        back = sum(1 for root, at in eligible if any(at < t <= at + span for t in returns.get(root, ())))
        out.append(Reactivation(days, len(eligible), back))
    return tuple(out)


def median_minutes(waits: Sequence[timedelta]) -> float | None:
    return statistics.median(w.total_seconds() / 60 for w in waits) if waits else None


def first_after(times: Sequence[datetime], after: datetime) -> datetime | None:
    later = [t for t in times if t > after]
    return min(later) if later else None


def band_history(
    people: Sequence[Person],
    score_changes: dict[str, list[tuple[datetime, str | None]]],
    week_ends: Sequence[datetime],
    labels: Sequence[str],
) -> list[BandPoint]:
    """Each person's band at each moment of `week_ends`: the band before their first score
    change after that moment, or today's band when nothing changed since."""
    points: list[BandPoint] = []
    for end, label in zip(week_ends, labels, strict=True):
        counts: dict[str, int] = {band: 0 for band in (*BAND_NAMES, NOT_SCORED)}
        for p in people:
            band = p.band
            for at, old_band in score_changes.get(p.root, ()):  # oldest first
                if at > end:
                    band = old_band
                    break
            key = band if band in counts else NOT_SCORED
            counts[key] += 1
        points.append(BandPoint(label, counts))
    return points


# ---- reading the store -----------------------------------------------------------------------


def _amount_expr(dialect: str) -> ColumnElement[Any]:
    """The `amount` property as a number where it is one, else NULL (a junk value must not
    fail the whole aggregate, and PostgreSQL's cast would)."""
    if dialect == "postgresql":
        value = Event.properties["amount"]
        return case((func.jsonb_typeof(value) == "number", value.as_float()), else_=None)
    return case(
        (
            func.json_type(Event.properties, "$.amount").in_(["integer", "real"]),
            func.json_extract(Event.properties, "$.amount"),
        ),
        else_=None,
    )


def _parse_since(value: Any, zone: ZoneInfo) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=zone).astimezone(UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError):  # a junk trait (year 1 east of UTC) is no date, not a 500
        return None


def _people(session: Session, workspace_id: str, scope: tuple[str, ...] | None, zone: ZoneInfo) -> list[Person]:
    rows = session.execute(
        select(Profile.id, Profile.traits, Profile.at_risk_band).where(
            Profile.workspace_id == workspace_id, Profile.merged_into_id.is_(None)
        )
    )
    out = []
    for root, stored, band in rows:
        traits = stored or {}
        home = traits.get("home_location")
        location = None if home in (None, "") else str(home)
        if scope is not None and location not in scope:
            continue
        out.append(Person(root, location, _parse_since(traits.get("member_since"), zone), band))
    return out


def _tracks(
    session: Session,
    workspace_id: str,
    root_of: dict[str, str],
    starts: Sequence[datetime],
    now: datetime,
    narrow: bool = False,
) -> dict[str, Track]:
    """One grouped scan of the events: per node, event and month, the amount and the last time.
    The last time comes back unconverted and is parsed only for cancellations and payments:
    converting one per row costs more than the scan on a large table."""
    dialect = session.get_bind().dialect.name
    bucket = case(*((Event.timestamp < starts[i], i - 1) for i in range(len(starts))), else_=len(starts) - 1)
    # Visits, check-ins and classes are one kind here: a month is active or not.
    kind = case((Event.event.in_(ACTIVITY), literal(ACTIVITY[0])), else_=Event.event)
    stmt = (
        select(
            Event.profile_id,
            kind,
            bucket,
            type_coerce(func.max(Event.timestamp), String),
            func.sum(_amount_expr(dialect)),
        )
        .where(
            Event.workspace_id == workspace_id,
            Event.type == "track",
            Event.event.in_([*ACTIVITY, *REVENUE, CANCEL]),
            Event.timestamp < now,
            (Event.timestamp >= starts[0]) | Event.event.in_([CANCEL, PAYMENT]),
        )
        .group_by(Event.profile_id, kind, bucket)
    )
    rows: list[Any] = []
    if narrow:
        # A few locations' people: their nodes by index beats reading every event row.
        nodes = sorted(root_of)
        for start in range(0, len(nodes), _CHUNK):
            rows.extend(session.execute(stmt.where(Event.profile_id.in_(nodes[start : start + _CHUNK]))))
    else:
        rows = list(session.execute(stmt))
    tracks: dict[str, Track] = {}
    for node, name, month, newest, amount in rows:
        root = root_of.get(node)
        if root is None:
            continue
        track = tracks.get(root)
        if track is None:
            track = tracks[root] = Track()
        b = int(month)
        if name in ACTIVITY:
            track.active.add(b)
            continue
        if amount is not None and b >= 0:
            track.revenue[b] = track.revenue.get(b, 0.0) + float(amount)
        if name in (CANCEL, PAYMENT):
            at = _stamp(newest)
            seen = track.last_cancel if name == CANCEL else track.last_payment
            if b not in seen or at > seen[b]:
                seen[b] = at
            if name == CANCEL:
                track.cancelled.add(b)
    return tracks


def _stamp(value: Any) -> datetime:
    # SQLite hands back its stored text, PostgreSQL a datetime: both are UTC.
    if isinstance(value, datetime):
        return ensure_utc(value)
    return ensure_utc(datetime.fromisoformat(str(value)))


def _raw(
    session: Session,
    workspace_id: str,
    names: Sequence[str],
    since: datetime,
    now: datetime,
    nodes: Sequence[str] | None = None,
) -> list[tuple[str, str, datetime]]:
    stmt = select(Event.profile_id, Event.event, Event.timestamp).where(
        Event.workspace_id == workspace_id,
        Event.type == "track",
        Event.event.in_(list(names)),
        Event.timestamp >= since,
        Event.timestamp < now,
    )
    if nodes is None:
        return [(n, e or "", ensure_utc(t)) for n, e, t in session.execute(stmt)]
    out: list[tuple[str, str, datetime]] = []
    for start in range(0, len(nodes), _CHUNK):
        chunk = stmt.where(Event.profile_id.in_(nodes[start : start + _CHUNK]))
        out.extend((n, e or "", ensure_utc(t)) for n, e, t in session.execute(chunk))
    return out


def _cancellations(
    session: Session, workspace_id: str, root_of: dict[str, str], since: datetime, now: datetime
) -> tuple[list[tuple[str, datetime]], dict[str, list[datetime]]]:
    """(root, when) of each cancellation since `since`, and per root the first activity after
    each of them: one query that walks the person's nodes by index, not every visit."""
    cancel, back = aliased(Event), aliased(Event)
    cancel_node, back_node = aliased(Profile), aliased(Profile)
    stmt = (
        select(cancel.profile_id, cancel.timestamp, func.min(back.timestamp))
        .select_from(cancel)
        .join(cancel_node, (cancel_node.workspace_id == workspace_id) & (cancel_node.id == cancel.profile_id))
        .outerjoin(
            back_node,
            (back_node.workspace_id == workspace_id) & (back_node.canonical_id == cancel_node.canonical_id),
        )
        .outerjoin(
            back,
            (back.workspace_id == workspace_id)
            & (back.profile_id == back_node.id)
            & (back.type == "track")
            & back.event.in_(ACTIVITY)
            & (back.timestamp > cancel.timestamp)
            & (back.timestamp < now),
        )
        .where(
            cancel.workspace_id == workspace_id,
            cancel.type == "track",
            cancel.event == CANCEL,
            cancel.timestamp >= since,
            cancel.timestamp < now,
        )
        .group_by(cancel.id, cancel.profile_id, cancel.timestamp)
    )
    cancels: list[tuple[str, datetime]] = []
    returns: dict[str, list[datetime]] = defaultdict(list)
    for node, at, first in session.execute(stmt):
        root = root_of.get(node)
        if root is None:
            continue
        cancels.append((root, ensure_utc(at)))
        if first is not None:
            returns[root].append(ensure_utc(first))
    return cancels, returns


def _nodes_of(root_of: dict[str, str], roots: set[str]) -> list[str]:
    return sorted(node for node, root in root_of.items() if root in roots)


def _band_history(
    session: Session,
    workspace_id: str,
    people: Sequence[Person],
    root_of: dict[str, str],
    now: datetime,
    zone: ZoneInfo,
) -> BandHistory:
    current: dict[str, int] = {band: 0 for band in (*BAND_NAMES, NOT_SCORED)}
    for p in people:
        current[p.band if p.band in current else NOT_SCORED] += 1
    trimmed = session.scalar(select(ChangeSequence.trimmed_through).where(ChangeSequence.workspace_id == workspace_id))
    oldest = session.scalar(
        select(func.min(Change.created_at)).where(Change.workspace_id == workspace_id, Change.seq > (trimmed or 0))
    )
    today = now.astimezone(zone).date()
    # Week ends: each Sunday 24:00 local (Monday 00:00) of the last weeks, then now.
    monday = today - timedelta(days=today.weekday())
    ends = [
        datetime.combine(monday - timedelta(weeks=w), datetime.min.time(), tzinfo=zone).astimezone(UTC)
        for w in range(BAND_WEEKS - 1, -1, -1)
    ]
    covered_from = None if oldest is None else ensure_utc(oldest)
    if covered_from is not None and trimmed:
        ends = [e for e in ends if e >= covered_from]
    visible = {p.root for p in people}
    changes: dict[str, list[tuple[datetime, str | None]]] = defaultdict(list)
    if ends:
        rows = session.execute(
            select(Change.profile_id, Change.created_at, Change.data)
            .where(Change.workspace_id == workspace_id, Change.kind == "score", Change.created_at > ends[0])
            .order_by(Change.seq)
        )
        for pid, at, data in rows:
            root = root_of.get(pid, pid)
            if root in visible:
                changes[root].append((ensure_utc(at), (data or {}).get("old_band")))
    labels = [(e.astimezone(zone) - timedelta(days=1)).date().isoformat() for e in ends]
    points = band_history(people, changes, [*ends, now], [*labels, today.isoformat()])
    return BandHistory(
        tuple((*BAND_NAMES, NOT_SCORED)),
        current,
        tuple(points),
        None if covered_from is None else covered_from.isoformat(),
        not trimmed,
    )


def _playbooks(
    session: Session, workspace_id: str, root_of: dict[str, str], visible: set[str]
) -> list[PlaybookRevenue]:
    rows = session.execute(
        select(
            Enrollment.id, Enrollment.playbook_key, Enrollment.profile_id, Enrollment.holdout, Enrollment.exit_reason
        ).where(Enrollment.workspace_id == workspace_id)
    ).all()
    mine: dict[str, list[tuple[str, bool, str | None]]] = defaultdict(list)
    for enrollment_id, key, profile_id, holdout, exit_reason in rows:
        if root_of.get(profile_id, profile_id) in visible:
            mine[key].append((enrollment_id, bool(holdout), exit_reason))
    out = []
    for key, enrolled in sorted(mine.items()):
        # The playbook report's own arms and goal revenue, over the viewer's enrolments only.
        converted = any(exit_reason == "goal_met" for _, _, exit_reason in enrolled)
        amounts = report.goal_amounts(session, workspace_id, key) if converted else {}
        out.append(PlaybookRevenue(key, *report.arms_of(enrolled, amounts)))
    return out


def _responses(
    session: Session, workspace_id: str, root_of: dict[str, str], roots: set[str], since: datetime
) -> dict[str, list[datetime]]:
    """When each of these people was answered: a message sent, or a staff task done for them."""
    out: dict[str, list[datetime]] = defaultdict(list)
    if not roots:
        return out
    nodes = _nodes_of(root_of, roots)
    for start in range(0, len(nodes), _CHUNK):
        chunk = nodes[start : start + _CHUNK]
        sends = session.execute(
            select(Send.profile_id, Send.created_at).where(
                Send.workspace_id == workspace_id,
                Send.status == "sent",
                Send.created_at >= since,
                Send.profile_id.in_(chunk),
            )
        )
        tasks = session.execute(
            select(StaffTask.profile_id, StaffTask.done_at).where(
                StaffTask.workspace_id == workspace_id,
                StaffTask.status == "done",
                StaffTask.done_at >= since,
                StaffTask.profile_id.in_(chunk),
            )
        )
        for pid, at in [*sends, *tasks]:
            if at is not None:
                out[root_of.get(pid, pid)].append(ensure_utc(at))
    return out


def _task_counts(
    session: Session, workspace_id: str, scope: tuple[str, ...] | None, since: datetime, now: datetime
) -> dict[str, tuple[int, int]]:
    """(tasks due, tasks done) per location, of tasks created since `since` and due by now."""
    stmt = (
        select(StaffTask.location, StaffTask.status, func.count())
        .where(StaffTask.workspace_id == workspace_id, StaffTask.created_at >= since, StaffTask.due_at <= now)
        .group_by(StaffTask.location, StaffTask.status)
    )
    if scope is not None:
        stmt = stmt.where(StaffTask.location.in_(list(scope)))
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for location, status, n in session.execute(stmt):
        key = location or ""
        out[key][0] += int(n)
        if status == "done":
            out[key][1] += int(n)
    return {k: (v[0], v[1]) for k, v in out.items()}


def insights(  # noqa: PLR0915 (one read, then one pass: split, it would pass a dozen locals around)
    db: Database, workspace_id: str, timezone: str, scope: tuple[str, ...] | None, now: datetime
) -> Insights:
    """Everything the Insights page shows, for the people of `scope` (None: everyone)."""
    zone = ZoneInfo(timezone)
    starts = month_starts(now, zone)
    complete = len(starts) - 1
    recent = now - timedelta(days=RECENT_DAYS)
    with db.session() as session:
        people = _people(session, workspace_id, scope, zone)
        visible = {p.root for p in people}
        every_node = profiles.node_roots(session, workspace_id)
        root_of = {n: r for n, r in every_node.items() if r in visible}
        narrow = scope is not None and len(root_of) * 2 < len(every_node)
        tracks = _tracks(session, workspace_id, root_of, starts, now, narrow)
        # Cancellations of the last 12 months and, for those people only, what they did after.
        # Cancellations of the last 12 months, each with the first visit after it.
        cancel_rows, returns = _cancellations(session, workspace_id, root_of, starts[0], now)
        leads = [
            (root_of[n], t) for n, _, t in _raw(session, workspace_id, ["lead_created"], recent, now) if n in root_of
        ]
        answered = _responses(session, workspace_id, root_of, {r for r, _ in leads}, recent)
        failed = [
            (root_of[n], t) for n, _, t in _raw(session, workspace_id, ["payment_failed"], recent, now) if n in root_of
        ]
        failed_roots = {r for r, _ in failed}
        paid: dict[str, list[datetime]] = defaultdict(list)
        for n, _, t in _raw(session, workspace_id, [PAYMENT], recent, now, _nodes_of(root_of, failed_roots)):
            paid[root_of[n]].append(t)
        tasks = _task_counts(session, workspace_id, scope, recent, now)
        bands = _band_history(session, workspace_id, people, root_of, now, zone)
        books = _playbooks(session, workspace_id, root_of, visible)

    months = monthly(people, tracks, starts)
    last_three = months[complete - 3 : complete]
    starts_3 = sum(m.members_at_start for m in last_three)
    cancels_3 = sum(m.cancellations for m in last_three)
    revenue_3 = sum(member_revenue(people, tracks, starts, k) for k in range(complete - 3, complete))
    arpu = revenue_3 / starts_3 if starts_3 else None
    churn_3 = cancels_3 / starts_3 if starts_3 else None
    clv = arpu / churn_3 if arpu is not None and churn_3 else None

    location_of = {p.root: p.location for p in people}
    waits: dict[str | None, list[timedelta]] = defaultdict(list)
    lead_count: dict[str | None, int] = defaultdict(int)
    for root, at in leads:
        lead_count[location_of.get(root)] += 1
        first = first_after(answered.get(root, []), at)
        if first is not None:
            waits[location_of.get(root)].append(first - at)
    first_failure: dict[str, datetime] = {}
    for root, at in failed:
        first_failure[root] = min(at, first_failure.get(root, at))

    recovered_total = sum(p.treated.revenue for p in books)
    increments = [p.incremental for p in books if p.incremental is not None]
    kpis = Kpis(
        churn=months[complete - 1].churn,
        churn_month=months[complete - 1].month,
        reactivation=reactivation(cancel_rows, returns, now),
        arpu=arpu,
        churn_3m=churn_3,
        clv=clv,
        nrr=months[complete - 1].nrr,
        recovered_revenue=recovered_total,
        recovered_incremental=sum(increments) if increments else None,
        lead_response_minutes=median_minutes([w for ws in waits.values() for w in ws]),
        leads=len(leads),
        leads_answered=sum(len(ws) for ws in waits.values()),
    )

    shown = sorted({p.location for p in people if p.location is not None} | {k for k in tasks if k})
    if scope is not None:
        shown = [loc for loc in shown if loc in scope]
    by_location = []
    for loc in shown:
        here = [p for p in people if p.location == loc]
        here_roots = {p.root for p in here}
        rows = monthly(here, tracks, starts)[complete - 3 : complete]
        s3, c3 = sum(m.members_at_start for m in rows), sum(m.cancellations for m in rows)
        failures = [r for r in first_failure if r in here_roots]
        recovered = sum(1 for r in failures if first_after(paid.get(r, []), first_failure[r]) is not None)
        due, done = tasks.get(loc, (0, 0))
        by_location.append(
            LocationRow(
                loc,
                sum(1 for p in here if member_at(p, tracks.get(p.root), complete, starts)),
                median_minutes(waits.get(loc, [])),
                lead_count.get(loc, 0),
                recovered / len(failures) if failures else None,
                len(failures),
                1 - c3 / s3 if s3 else None,
                done / due if due else None,
                due,
            )
        )
    return Insights(
        now,
        timezone,
        scope,
        len(people),
        kpis,
        tuple(months),
        tuple(cohorts(people, tracks, starts, complete)),
        bands,
        tuple(books),
        tuple(by_location),
    )


# ---- a short cache -------------------------------------------------------------------------------

# On a 12,000-member world on SQLite the grouped events queries take seconds (they read every
# event row of the months shown), too long for every page view; these numbers move by the day.
# So each (workspace, zone, scope) is computed once and then served from memory: fresh for
# CACHE_SECONDS, after that still served while one background thread recomputes it, and
# dropped after STALE_SECONDS (a page nobody opened for a while is computed while it waits).
# `as_of` on the page says when the numbers were computed.
CACHE_SECONDS = 300.0
STALE_SECONDS = 3600.0
_Key = tuple[str, str, tuple[str, ...] | None]
_cache: dict[_Key, tuple[float, Insights]] = {}
_refreshing: set[_Key] = set()
_cache_lock = threading.Lock()


def _store(key: _Key, found: Insights) -> None:
    with _cache_lock:
        if len(_cache) > 256:  # many scopes over time: forget them all rather than grow
            _cache.clear()
        _cache[key] = (time.monotonic(), found)
        _refreshing.discard(key)


def _refresh(db: Database, key: _Key, now: datetime) -> None:
    try:
        _store(key, insights(db, key[0], key[1], key[2], now))
    finally:
        with _cache_lock:
            _refreshing.discard(key)


def cached_insights(
    db: Database, workspace_id: str, timezone: str, scope: tuple[str, ...] | None, now: datetime
) -> Insights:
    key: _Key = (workspace_id, timezone, scope)
    with _cache_lock:
        hit = _cache.get(key)
        age = None if hit is None else time.monotonic() - hit[0]
        refresh = hit is not None and age is not None and CACHE_SECONDS <= age < STALE_SECONDS
        if refresh and key not in _refreshing:
            _refreshing.add(key)
            threading.Thread(target=_refresh, args=(db, key, now), daemon=True, name="insights-refresh").start()
    if hit is not None and age is not None and age < STALE_SECONDS:
        return hit[1]
    found = insights(db, workspace_id, timezone, scope, now)
    _store(key, found)
    return found


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
