"""A customer as the people who serve them see it: who they are (every identifier, every
merge), what they agreed to (consent per channel and its ledger), how at risk they are and why,
whether automation is paused for them, and one timeline of everything that happened to them —
events, sends, the engine's decisions with their reasons, staff tasks, consent changes and
merges — so nobody texts a person without seeing that a colleague called yesterday.

Every read is scoped: a viewer with a list of locations finds only people whose `home_location`
is in it; anyone else is "not found", exactly like a person who does not exist."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, literal, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from signalbox.channels.models import Send, StaffTask
from signalbox.consent.models import ConsentChange
from signalbox.core.db import Database
from signalbox.core.errors import InvalidInputError, NotFoundError
from signalbox.events.models import Event
from signalbox.identity import service as identity
from signalbox.identity.models import Identifier, MergeLogEntry
from signalbox.identity.schemas import ProfileDocument
from signalbox.journeys.models import AutomationHold, Decision
from signalbox.profiles.models import Profile
from signalbox.scoring.models import ChurnModel

PAGE_SIZE = 50
TIMELINE_LIMIT = 100
MAX_TIMELINE_LIMIT = 500
MAX_QUERY = 200
MAX_OFFSET = 100_000
# The name traits a search looks in, besides every identifier (user id, e-mail, phone, ...).
NAME_TRAITS = ("name", "first_name", "last_name")
_CURSOR = re.compile(r"^(?P<at>[0-9T:.+\-Z ]{10,40})~(?P<kind>[a-z_]{1,20})~(?P<id>[0-9]{1,18})$")


# ---- the search ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerRow:
    user_id: str | None
    profile_id: str
    name: str | None
    email: str | None
    phone: str | None
    home_location: str | None
    at_risk_score: int | None
    at_risk_band: str | None
    last_seen: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "profile_id": self.profile_id,
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "home_location": self.home_location,
            "at_risk_score": self.at_risk_score,
            "at_risk_band": self.at_risk_band,
            "last_seen": _iso(self.last_seen),
        }


@dataclass(frozen=True, slots=True)
class CustomerList:
    q: str
    offset: int
    rows: list[CustomerRow]
    next_offset: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "q": self.q,
            "offset": self.offset,
            "customers": [r.to_dict() for r in self.rows],
            "next_offset": self.next_offset,
        }


def clean_query(q: str | None) -> str:
    """The search text, or a 400 for what no person's name or identifier can contain."""
    text = (q or "").strip()
    if len(text) > MAX_QUERY:
        raise InvalidInputError(f"the search is longer than {MAX_QUERY} characters")
    if any(ord(ch) < 32 for ch in text):  # a NUL byte would even be refused by PostgreSQL
        raise InvalidInputError("the search contains control characters")
    return text


def _like(text: str) -> str:
    """`%text%` with the user's own % and _ matched literally (escape character: backslash)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _home(column: InstrumentedAttribute[dict[str, Any]]) -> ColumnElement[str]:
    found: ColumnElement[str] = column["home_location"].as_string()
    return found


def search(
    db: Database, workspace_id: str, locations: tuple[str, ...] | None, q: str | None, *, offset: int = 0
) -> CustomerList:
    """People matching `q` in any identifier or name, highest at-risk first (everyone when `q`
    is empty), 50 a page, only among the people the viewer may see."""
    text = clean_query(q)
    if offset < 0 or offset > MAX_OFFSET:
        raise InvalidInputError(f"offset must be between 0 and {MAX_OFFSET}")
    stmt = select(Profile).where(Profile.workspace_id == workspace_id, Profile.merged_into_id.is_(None))
    if locations is not None:
        stmt = stmt.where(_home(Profile.traits).in_(locations)) if locations else stmt.where(false())
    if text:
        pattern = _like(text)
        matches: list[ColumnElement[bool]] = [
            func.lower(Profile.traits[key].as_string()).like(pattern, escape="\\") for key in NAME_TRAITS
        ]
        node = aliased(Profile)  # any node of the tree may hold the identifier; the root is listed
        by_identifier = (
            select(node.canonical_id)
            .join(Identifier, and_(Identifier.workspace_id == node.workspace_id, Identifier.profile_id == node.id))
            .where(node.workspace_id == workspace_id)
        )
        id_match: list[ColumnElement[bool]] = [func.lower(Identifier.value).like(pattern, escape="\\")]
        digits = re.sub(r"\D", "", text)
        if len(digits) >= 4 and re.fullmatch(r"[\d\s()+.\-]+", text):  # a phone typed with spaces
            id_match.append(Identifier.value.like(f"%{digits}%"))
        matches.append(Profile.id.in_(by_identifier.where(or_(*id_match))))
        stmt = stmt.where(or_(*matches))
    stmt = stmt.order_by(
        Profile.at_risk_score.is_(None), Profile.at_risk_score.desc(), Profile.last_seen.desc(), Profile.id
    )
    with db.session() as session:
        found = list(session.scalars(stmt.offset(offset).limit(PAGE_SIZE + 1)))
        users = _user_ids(session, workspace_id, [p.id for p in found])
    rows = [_row(p, users.get(p.id)) for p in found[:PAGE_SIZE]]
    return CustomerList(text, offset, rows, offset + PAGE_SIZE if len(found) > PAGE_SIZE else None)


def _user_ids(session: Session, workspace_id: str, roots: Sequence[str]) -> dict[str, str]:
    """Each root's user id: its own, else its oldest node's that has one."""
    out: dict[str, str] = {}
    if not roots:
        return out
    rows = session.execute(
        select(Profile.canonical_id, Profile.id, Profile.user_id)
        .where(
            Profile.workspace_id == workspace_id,
            Profile.canonical_id.in_(list(roots)),
            Profile.user_id.is_not(None),
        )
        .order_by(Profile.created_at.desc(), Profile.id.desc())
    )
    own: dict[str, str] = {}
    for root, node, uid in rows:
        if uid is None:
            continue
        out[root] = uid
        if node == root:
            own[root] = uid
    return {**out, **own}


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def display_name(traits: dict[str, Any]) -> str | None:
    name = _text(traits.get("name"))
    if name:
        return name
    parts = [_text(traits.get(k)) for k in ("first_name", "last_name")]
    return " ".join(p for p in parts if p) or None


def _row(p: Profile, user_id: str | None) -> CustomerRow:
    traits = p.traits or {}
    return CustomerRow(
        user_id,
        p.id,
        display_name(traits),
        _text(traits.get("email")),
        _text(traits.get("phone")),
        _text(traits.get("home_location")),
        p.at_risk_score,
        p.at_risk_band,
        p.last_seen,
    )


# ---- the timeline ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineItem:
    kind: str  # event | send | decision | task | task_done | consent | merge
    at: datetime
    id: int
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def cursor(self) -> str:
        return format_cursor(self.at, self.kind, self.id)

    @property
    def order(self) -> tuple[datetime, str, int]:
        return (self.at, self.kind, self.id)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": _iso(self.at), "summary": self.summary, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Timeline:
    items: list[TimelineItem]
    next_before: str | None  # the cursor for the next (older) page; None: this was the last

    def to_dict(self) -> dict[str, Any]:
        return {"items": [i.to_dict() for i in self.items], "next_before": self.next_before}


@dataclass(frozen=True, slots=True)
class Cursor:
    """Items strictly older than this, in the timeline's order (time, then kind, then id):
    several items of one second never fall between two pages."""

    at: datetime
    kind: str | None = None  # None: everything at `at` is excluded too
    id: int = 0


def format_cursor(at: datetime, kind: str, row_id: int) -> str:
    return f"{at.astimezone(UTC).isoformat()}~{kind}~{row_id}"


def parse_cursor(text: str | None) -> Cursor | None:
    """`next_before` as given by a previous page, or a plain ISO 8601 moment."""
    if text in (None, ""):
        return None
    assert text is not None
    found = _CURSOR.match(text)
    try:
        if found:
            return Cursor(_aware(datetime.fromisoformat(found["at"])), found["kind"], int(found["id"]))
        return Cursor(_aware(datetime.fromisoformat(text.strip())))
    except (ValueError, OverflowError):  # overflow: year 9999 in a zone behind UTC
        raise InvalidInputError("`before` is not a timeline cursor or an ISO 8601 time") from None


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def merge_sources(sources: Iterable[Sequence[TimelineItem]], limit: int) -> Timeline:
    """Newest first across every source, `limit` of them. Each source holds its own newest
    `limit + 1` items older than the cursor, so the merged page is exact, and there is an
    older page when anything was left over."""
    everything = sorted((i for source in sources for i in source), key=lambda i: i.order, reverse=True)
    page = everything[:limit]
    more = len(everything) > limit
    return Timeline(page, page[-1].cursor if more and page else None)


def _older(
    at: InstrumentedAttribute[datetime] | InstrumentedAttribute[datetime | None],
    row_id: InstrumentedAttribute[int],
    kind: str,
    cursor: Cursor | None,
) -> ColumnElement[bool]:
    if cursor is None:
        return literal(True)
    if cursor.kind is None or kind > cursor.kind:
        return at < cursor.at
    if kind < cursor.kind:
        return at <= cursor.at
    return or_(at < cursor.at, and_(at == cursor.at, row_id < cursor.id))


def _newest(
    stmt: Select[Any],
    at: InstrumentedAttribute[datetime] | InstrumentedAttribute[datetime | None],
    row_id: InstrumentedAttribute[int],
    kind: str,
    cursor: Cursor | None,
    n: int,
) -> Select[Any]:
    """A timeline source's page: its rows older than the cursor, newest first, at most n."""
    return stmt.where(_older(at, row_id, kind, cursor)).order_by(at.desc(), row_id.desc()).limit(n)


def _short(value: Any, width: int = 80) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _props_line(props: dict[str, Any], keys: int = 3) -> str:
    shown = [f"{k}={_short(v, 30)}" for k, v in list(props.items())[:keys] if not isinstance(v, dict | list)]
    return ", ".join(shown)


def _events(session: Session, ws: str, nodes: list[str], cursor: Cursor | None, n: int) -> list[TimelineItem]:
    rows = session.scalars(
        _newest(select(Event), Event.timestamp, Event.id, "event", cursor, n).where(
            Event.workspace_id == ws, Event.profile_id.in_(nodes)
        )
    )
    out = []
    for e in rows:
        if e.type == "track":
            props = _props_line(e.properties or {})
            summary = f"{e.event}" + (f" ({props})" if props else "")
            detail: dict[str, Any] = {"type": e.type, "event": e.event, "properties": e.properties}
        elif e.type == "identify":
            keys = sorted((e.traits or {}).keys())
            summary = "Profile updated: " + (_short(", ".join(keys), 60) if keys else "no traits")
            detail = {"type": e.type, "traits": e.traits}
        else:
            summary = f"{e.type}" + (f": {e.event}" if e.event else "")
            detail = {"type": e.type, "event": e.event, "properties": e.properties}
        detail["message_id"] = e.message_id
        out.append(TimelineItem("event", e.timestamp, e.id, summary, detail))
    return out


def _sends(session: Session, ws: str, nodes: list[str], cursor: Cursor | None, n: int) -> list[TimelineItem]:
    rows = session.scalars(
        _newest(select(Send), Send.created_at, Send.id, "send", cursor, n).where(
            Send.workspace_id == ws, Send.profile_id.in_(nodes)
        )
    )
    return [
        TimelineItem(
            "send",
            s.created_at,
            s.id,
            f"{s.channel.upper() if s.channel == 'sms' else s.channel.capitalize()} {s.status}"
            + (f" · {s.playbook}/{s.step_id}" if s.playbook else ""),
            {
                "channel": s.channel,
                "playbook": s.playbook,
                "step": s.step_id,
                "purpose": s.purpose,
                "status": s.status,
                "to": s.to,
                "error": s.error,
            },
        )
        for s in rows
    ]


_OUTCOMES = {
    "sent": "sent",
    "held_out": "held out (the control group: nothing sent)",
    "suppressed": "suppressed",
    "delayed": "delayed",
}


def _decisions(session: Session, ws: str, nodes: list[str], cursor: Cursor | None, n: int) -> list[TimelineItem]:
    rows = session.scalars(
        _newest(select(Decision), Decision.at, Decision.id, "decision", cursor, n).where(
            Decision.workspace_id == ws, Decision.profile_id.in_(nodes)
        )
    )
    out = []
    for d in rows:
        where = d.playbook_key + (f"/{d.step_id}" if d.step_id else "")
        outcome = _OUTCOMES.get(d.outcome, d.outcome)
        summary = f"{where}: {outcome}" + (f" — {d.reason}" if d.reason else "")
        detail = {
            "playbook": d.playbook_key,
            "step": d.step_id,
            "outcome": d.outcome,
            "reason": d.reason,
            "channel": d.channel,
            "enrollment_id": d.enrollment_id,
            "detail": d.detail,
        }
        out.append(TimelineItem("decision", d.at, d.id, summary, detail))
    return out


def _task_detail(t: StaffTask) -> dict[str, Any]:
    return {
        "task_id": t.id,
        "title": t.title,
        "status": t.status,
        "role": t.role,
        "location": t.location,
        "priority": t.priority,
        "playbook": t.playbook,
        "due_at": _iso(t.due_at),
        "done_at": _iso(t.done_at),
    }


def _tasks(session: Session, ws: str, nodes: list[str], cursor: Cursor | None, n: int) -> list[TimelineItem]:
    """A task is two items: created (with its state now: open, snoozed until …, done) and done."""
    mine = (StaffTask.workspace_id == ws, StaffTask.profile_id.in_(nodes))
    created = session.scalars(
        _newest(select(StaffTask), StaffTask.created_at, StaffTask.id, "task", cursor, n).where(*mine)
    )
    out = []
    for t in created:
        state = {"snoozed": f"snoozed until {_iso(t.due_at)}", "open": f"open, due {_iso(t.due_at)}"}.get(
            t.status, t.status
        )
        out.append(
            TimelineItem("task", t.created_at, t.id, f"Task created: {_short(t.title)} ({state})", _task_detail(t))
        )
    done = session.scalars(
        _newest(select(StaffTask), StaffTask.done_at, StaffTask.id, "task_done", cursor, n).where(
            *mine, StaffTask.done_at.is_not(None)
        )
    )
    for t in done:
        assert t.done_at is not None
        out.append(TimelineItem("task_done", t.done_at, t.id, f"Task done: {_short(t.title)}", _task_detail(t)))
    return out


def evidence_summary(evidence: dict[str, Any] | None) -> str:
    if not evidence:
        return ""
    return _short(", ".join(f"{k}: {_short(v, 40)}" for k, v in evidence.items()), 120)


def _consents(session: Session, ws: str, nodes: list[str], cursor: Cursor | None, n: int) -> list[TimelineItem]:
    rows = session.scalars(
        _newest(select(ConsentChange), ConsentChange.at, ConsentChange.id, "consent", cursor, n).where(
            ConsentChange.workspace_id == ws, ConsentChange.profile_id.in_(nodes)
        )
    )
    return [
        TimelineItem(
            "consent",
            c.at,
            c.id,
            f"{c.channel.upper() if c.channel == 'sms' else c.channel.capitalize()} consent {c.status}"
            f" ({c.purpose}, via {c.source})",
            {
                "channel": c.channel,
                "status": c.status,
                "purpose": c.purpose,
                "source": c.source,
                "evidence": c.evidence,
                "evidence_summary": evidence_summary(c.evidence),
            },
        )
        for c in rows
    ]


def _merge_rows(session: Session, ws: str, nodes: list[str]) -> Any:
    return select(MergeLogEntry).where(
        MergeLogEntry.workspace_id == ws,
        or_(MergeLogEntry.source_profile_id.in_(nodes), MergeLogEntry.target_profile_id.in_(nodes)),
    )


def _merge_item(m: MergeLogEntry) -> TimelineItem:
    verb = "Merged" if m.action == "merge" else "Unmerged"
    return TimelineItem(
        "merge",
        m.created_at,
        m.id,
        f"{verb}: {_short(m.reason, 100)} (by {m.actor})",
        {
            "merge_id": m.id,
            "action": m.action,
            "source_profile_id": m.source_profile_id,
            "target_profile_id": m.target_profile_id,
            "reason": m.reason,
            "actor": m.actor,
            "undoes_id": m.undoes_id,
        },
    )


def _merges(session: Session, ws: str, nodes: list[str], cursor: Cursor | None, n: int) -> list[TimelineItem]:
    rows = session.scalars(
        _newest(_merge_rows(session, ws, nodes), MergeLogEntry.created_at, MergeLogEntry.id, "merge", cursor, n)
    )
    return [_merge_item(m) for m in rows]


_SOURCES = (_events, _sends, _decisions, _tasks, _consents, _merges)


def timeline_of(
    session: Session, workspace_id: str, nodes: list[str], *, before: Cursor | None, limit: int
) -> Timeline:
    if not 1 <= limit <= MAX_TIMELINE_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_TIMELINE_LIMIT}")
    return merge_sources((source(session, workspace_id, nodes, before, limit + 1) for source in _SOURCES), limit)


# ---- the customer page -----------------------------------------------------------------------


def find_person(db: Database, workspace_id: str, locations: tuple[str, ...] | None, user_id: str) -> ProfileDocument:
    """The person, or NotFoundError when there is none or the viewer may not see them."""
    uid = user_id.strip()
    if not uid or len(uid) > 255 or any(ord(ch) < 32 for ch in uid):
        raise NotFoundError("not found")
    try:
        doc = identity.profile_document(db, workspace_id, uid)
    except NotFoundError:
        raise NotFoundError("not found") from None
    home = _text((doc.traits or {}).get("home_location"))
    if locations is not None and (home is None or home not in locations):
        raise NotFoundError("not found")
    return doc


@dataclass(frozen=True, slots=True)
class ConsentChannel:
    channel: str
    status: str
    purpose: str | None
    source: str | None
    at: datetime | None
    ledger: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "status": self.status,
            "purpose": self.purpose,
            "source": self.source,
            "at": _iso(self.at),
            "ledger": self.ledger,
        }


@dataclass(frozen=True, slots=True)
class ScoreView:
    score: int | None
    band: str | None
    as_of: date | None
    components: list[dict[str, Any]]
    churn_probability: float | None
    churn_model_id: int | None
    churn_model_as_of: date | None
    predicted_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "at_risk_score": self.score,
            "at_risk_band": self.band,
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "components": self.components,
            "churn_probability": self.churn_probability,
            "churn_model_id": self.churn_model_id,
            "churn_model_as_of": None if self.churn_model_as_of is None else self.churn_model_as_of.isoformat(),
            "predicted_at": _iso(self.predicted_at),
        }


@dataclass(frozen=True, slots=True)
class CustomerPage:
    user_id: str | None
    profile_id: str
    name: str | None
    home_location: str | None
    timezone: str | None
    traits: dict[str, Any]
    first_seen: datetime | None
    last_seen: datetime | None
    identifiers: list[dict[str, str]]
    merges: list[dict[str, Any]]
    consent: list[ConsentChannel]
    score: ScoreView
    automation_paused: bool
    automation_paused_at: datetime | None
    timeline: Timeline

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "profile_id": self.profile_id,
            "name": self.name,
            "home_location": self.home_location,
            "timezone": self.timezone,
            "traits": self.traits,
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "identifiers": self.identifiers,
            "merges": self.merges,
            "consent": [c.to_dict() for c in self.consent],
            "score": self.score.to_dict(),
            "automation": {"paused": self.automation_paused, "paused_at": _iso(self.automation_paused_at)},
            "timeline": self.timeline.to_dict(),
        }


def customer_page(
    db: Database,
    workspace_id: str,
    locations: tuple[str, ...] | None,
    user_id: str,
    *,
    before: str | None = None,
    limit: int = TIMELINE_LIMIT,
) -> CustomerPage:
    doc = find_person(db, workspace_id, locations, user_id)
    cursor = parse_cursor(before)
    nodes = list(doc.profile_ids) or [doc.id]
    with db.session() as session:
        timeline = timeline_of(session, workspace_id, nodes, before=cursor, limit=limit)
        merges = [
            _merge_item(m).to_dict()
            for m in session.scalars(
                _merge_rows(session, workspace_id, nodes).order_by(
                    MergeLogEntry.created_at.desc(), MergeLogEntry.id.desc()
                )
            )
        ]
        ledger = list(
            session.scalars(
                select(ConsentChange)
                .where(ConsentChange.workspace_id == workspace_id, ConsentChange.profile_id.in_(nodes))
                .order_by(ConsentChange.at.desc(), ConsentChange.id.desc())
                .limit(200)
            )
        )
        held = session.scalar(
            select(func.min(AutomationHold.paused_at)).where(
                AutomationHold.workspace_id == workspace_id, AutomationHold.profile_id.in_(nodes)
            )
        )
        signals = doc.signals
        model_as_of = None
        if signals is not None and signals.churn_model_id is not None:
            model_as_of = session.scalar(
                select(ChurnModel.as_of).where(
                    ChurnModel.workspace_id == workspace_id, ChurnModel.id == signals.churn_model_id
                )
            )
    consent = []
    for channel, state in doc.consent.items():
        rows = [
            {
                "status": c.status,
                "purpose": c.purpose,
                "source": c.source,
                "at": _iso(c.at),
                "evidence_summary": evidence_summary(c.evidence),
            }
            for c in ledger
            if c.channel == channel
        ]
        consent.append(
            ConsentChannel(
                channel,
                str(state.get("status") or "unknown"),
                state.get("purpose"),
                state.get("source"),
                _parse_iso(state.get("updated_at")),
                rows,
            )
        )
    score = ScoreView(
        signals.at_risk_score if signals else None,
        signals.at_risk_band if signals else None,
        signals.score_as_of if signals else None,
        list(signals.at_risk_components or []) if signals else [],
        signals.churn_probability if signals else None,
        signals.churn_model_id if signals else None,
        model_as_of,
        signals.predicted_at if signals else None,
    )
    traits = doc.traits or {}
    return CustomerPage(
        user_id=doc.user_id,
        profile_id=doc.id,
        name=display_name(traits),
        home_location=_text(traits.get("home_location")),
        timezone=_text(traits.get("timezone")),
        traits=traits,
        first_seen=doc.first_seen,
        last_seen=doc.last_seen,
        identifiers=[{"type": i.type, "value": i.value} for i in doc.identifiers],
        merges=merges,
        consent=consent,
        score=score,
        automation_paused=held is not None,
        automation_paused_at=held,
        timeline=timeline,
    )


def timeline(
    db: Database,
    workspace_id: str,
    locations: tuple[str, ...] | None,
    user_id: str,
    *,
    before: str | None = None,
    limit: int = TIMELINE_LIMIT,
) -> Timeline:
    doc = find_person(db, workspace_id, locations, user_id)
    cursor = parse_cursor(before)
    with db.session() as session:
        return timeline_of(session, workspace_id, list(doc.profile_ids) or [doc.id], before=cursor, limit=limit)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _parse_iso(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None
