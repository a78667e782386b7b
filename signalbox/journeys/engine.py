"""The interpreter: one enrolment's steps, run from its position until it waits, exits or ends.

Every step commits its effect with the enrolment's new position in one transaction, guarded
by the position it started from, so a goal or a resumed wait that moved the enrolment in the
meantime wins and nothing runs twice. A send commits its ledger row (key `<enrolment>:<step>`)
before the provider call; if we crash after that, the next run finds the row and reconciles
it through the provider's lookup instead of calling again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from signalbox.channels import service as channels
from signalbox.channels.schemas import Delivery, Email, EmailSender, Sms, SmsSender
from signalbox.core.clock import Clock
from signalbox.core.db import Database
from signalbox.core.logging import get_logger
from signalbox.core.settings import Settings
from signalbox.events import service as events
from signalbox.identity import service as identity
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import policy
from signalbox.journeys import service as journeys
from signalbox.journeys.flow import Flow
from signalbox.journeys.models import Decision, Enrollment, Playbook
from signalbox.journeys.spec import DAYS
from signalbox.segments import conditions
from signalbox.segments import service as segments
from signalbox.workspaces import service as workspaces
from signalbox.workspaces.schemas import WorkspaceInfo

log = get_logger("journeys")
PAUSED_RECHECK = timedelta(minutes=1)
MAX_STEPS_PER_RUN = 200
COMPILED_TEMPLATES = 512


@dataclass
class Step:
    """What running one step decided."""

    position: str | None  # where the enrolment goes next
    due_at: datetime | None = None  # set: wait until then; None: go on at once
    waiting: dict[str, Any] | None = None
    exit_reason: str | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    task: dict[str, Any] | None = None
    # (tasks per day, location, start of today, when overflow may go, step id)
    capacity: tuple[int, str | None, datetime, datetime, str] | None = None


@dataclass(frozen=True)
class Snapshot:
    id: str
    workspace_id: str
    playbook_key: str
    version: int
    profile_id: str
    user_id: str | None
    entry_lock: str | None
    holdout: bool
    trigger: dict[str, Any]
    position: str | None
    waiting: dict[str, Any] | None
    created_at: datetime


def holdout_of(workspace_id: str, playbook: str, profile_id: str, share: float) -> bool:
    """Deterministic and sticky across versions and re-entries: a hash of who and which playbook."""
    digest = hashlib.sha256(f"{workspace_id}:{playbook}:{profile_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def next_local_time(now: datetime, zone: str, at: str, days: list[str] | None, if_past: str) -> datetime | None:
    """The next `at` (HH:MM) in `zone` on an allowed weekday; None when `if_past: skip` and
    today's moment has passed (the step is skipped, not moved to tomorrow)."""
    tz, clock_time = ZoneInfo(zone), time.fromisoformat(at)
    today = now.astimezone(tz).date()
    for offset in range(8):
        day = today + timedelta(days=offset)
        if days is not None and DAYS[day.weekday()] not in days:
            continue
        moment = datetime.combine(day, clock_time, tzinfo=tz).astimezone(UTC)
        if moment > now:
            return moment
        if offset == 0 and if_past == "skip":
            return None
    raise ValueError(f"no {at} on {days} within a week")


class Engine:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        *,
        email: EmailSender | None = None,
        sms: SmsSender | None = None,
    ) -> None:
        self.db, self.clock = db, clock
        self.lease = timedelta(seconds=settings.worker_lease_seconds)
        sandbox = channels.SandboxProvider(db, clock)
        self.email: EmailSender = email or sandbox
        self.sms: SmsSender = sms or sandbox
        self.pipeline = Pipeline(db, settings, clock)
        self._flows: dict[tuple[str, str, int], Flow] = {}
        self._jinja = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        self._compiled: dict[str, Template] = {}

    # ---- claiming ----------------------------------------------------------------------

    def claim(self, limit: int = 100) -> list[str]:
        """Lease due enrolments (SKIP LOCKED on PostgreSQL; SQLite has one writer). A lease
        that expires (a crashed worker, `worker_lease_seconds`) makes them claimable again."""
        now = self.clock.now()
        with self.db.transaction() as session:
            stmt = (
                select(Enrollment.id)
                .where(
                    Enrollment.status == "active",
                    Enrollment.due_at <= now,
                    (Enrollment.lease_until.is_(None)) | (Enrollment.lease_until < now),
                )
                .order_by(Enrollment.due_at)
                .limit(limit)
            )
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            ids = list(session.scalars(stmt))
            if ids:
                session.execute(update(Enrollment).where(Enrollment.id.in_(ids)).values(lease_until=now + self.lease))
        return ids

    def run_due(self, limit: int = 100) -> int:
        ids = self.claim(limit)
        for enrollment_id in ids:
            try:
                self.advance(enrollment_id)
            except Exception:
                # One person's failure must not stop everyone else's steps; the lease runs out
                # and the step is tried again.
                log.exception("step failed", extra={"enrollment_id": enrollment_id})
        return len(ids)

    # ---- one enrolment -----------------------------------------------------------------

    def flow(self, session: Session, workspace_id: str, key: str, version: int) -> Flow:
        cached = self._flows.get((workspace_id, key, version))
        if cached is None:
            # Versions never change once stored, so caching them is safe.
            _, definition = journeys.definition_in(session, workspace_id, key, version)
            cached = self._flows[(workspace_id, key, version)] = Flow.of(key, version, definition)
        return cached

    def advance(self, enrollment_id: str) -> None:
        with self.db.session() as session:
            row = session.get(Enrollment, enrollment_id)
            if row is None or row.status != "active":
                return
            enr = _snapshot(row)
            status = session.scalar(
                select(Playbook.status).where(
                    Playbook.workspace_id == enr.workspace_id, Playbook.key == enr.playbook_key
                )
            )
            flow = self.flow(session, enr.workspace_id, enr.playbook_key, enr.version)
        ws = workspaces.get_workspace(self.db, enr.workspace_id)
        now = self.clock.now()
        if status == "paused":
            self._commit(
                enr,
                Step(
                    enr.position,
                    now + PAUSED_RECHECK,
                    enr.waiting,
                    decisions=[self._decision(enr, enr.position, "delayed", "playbook_paused", now)],
                ),
                now,
                quiet_repeat=True,
            )
            return
        with self.db.session() as session:
            person = self._recipient(session, ws, enr)
            goal = self._goal_seen(session, enr, flow, person)
        if goal is not None:
            self._commit(
                enr,
                Step(
                    None,
                    exit_reason="goal_met",
                    decisions=[self._decision(enr, enr.position, "exited", "goal_met", now, detail=goal)],
                ),
                now,
            )
            return
        position, waiting = enr.position, enr.waiting
        for _ in range(MAX_STEPS_PER_RUN):
            if position is None:
                self._commit(enr, Step(None, exit_reason="completed"), now)
                return
            result = self._run(flow, flow.steps[position], enr, waiting, person, ws, now)
            if not self._commit(enr, result, now):
                return  # moved by someone else (a goal, a resumed wait): their move wins
            if result.exit_reason is not None or result.due_at is not None:
                return
            enr = _moved(enr, result.position, result.waiting)
            position, waiting = result.position, result.waiting
        log.error("step limit reached", extra={"enrollment_id": enr.id})

    def _run(  # noqa: PLR0911 - one return per verb of the exhaustive match
        self,
        flow: Flow,
        step: dict[str, Any],
        enr: Snapshot,
        waiting: dict[str, Any] | None,
        person: policy.Recipient,
        ws: WorkspaceInfo,
        now: datetime,
    ) -> Step:
        verb: str = step["verb"]
        after = flow.after[step["id"]]
        match verb:
            case "send":
                return self._send(flow, step, enr, person, ws, now)
            case "wait":
                return Step(after, due_at=now + timedelta(seconds=step["wait"]["seconds"]))
            case "wait_until":
                spec = step["wait_until"]
                moment = next_local_time(now, person.zone, spec["time"], spec.get("days"), spec["if_past"])
                return Step(after, due_at=moment)
            case "wait_for":
                if waiting is None:
                    spec = step["wait_for"]
                    match_value = enr.trigger.get("properties", {}).get(spec["match"]) if spec.get("match") else None
                    wait = {"event": spec["event"], "match": spec.get("match"), "value": match_value}
                    return Step(step["id"], due_at=now + timedelta(seconds=spec["timeout"]), waiting=wait)
                # Due while still waiting: the timeout passed with no matching event.
                first = step["on_timeout"][0]["id"] if step["on_timeout"] else after
                return Step(first, decisions=[self._decision(enr, step["id"], "skipped", "timeout", now)])
            case "branch":
                for arm in step["branch"]["arms"]:
                    if conditions.evaluate(arm["when"], person.context):
                        return Step(arm["steps"][0]["id"])
                otherwise = step["branch"]["else"]
                return Step(otherwise[0]["id"] if otherwise else after)
            case "task":
                return self._task(step, after, enr, person, now)
            case "set":
                return self._set(step, after, enr, person, ws, now)
            case "exit":
                return Step(
                    None,
                    exit_reason="exit_step",
                    decisions=[self._decision(enr, step["id"], "exited", "exit_step", now)],
                )
            case _:
                raise AssertionError(f"unknown verb {verb!r}: the schema lets no such step through")

    # ---- verbs with effects --------------------------------------------------------------

    def _send(  # noqa: PLR0911 - each rule that stops a send returns its own decision
        self,
        flow: Flow,
        step: dict[str, Any],
        enr: Snapshot,
        person: policy.Recipient,
        ws: WorkspaceInfo,
        now: datetime,
    ) -> Step:
        spec, after = step["send"], flow.after[step["id"]]
        channel: str = spec["channel"]
        key = f"{enr.id}:{step['id']}"

        def decided(outcome: str, reason: str | None, **detail: Any) -> Step:
            return Step(
                after, decisions=[self._decision(enr, step["id"], outcome, reason, now, channel, detail or None)]
            )

        existing = channels.ledger_row(self.db, enr.workspace_id, key)
        if existing is not None and existing.status in ("sent", "failed"):
            return Step(after)  # done before a crash; the decision was recorded then
        to = person.email if channel == "email" else person.phone
        settings = person.settings
        window = policy.quiet_hours(settings, channel, spec.get("window"), person.phone)
        if existing is None and window is not None:
            allowed = window.next_allowed(now, person.zone)
            if allowed > now:
                return Step(
                    step["id"],
                    due_at=allowed,
                    decisions=[
                        self._decision(
                            enr, step["id"], "delayed", "quiet_hours", now, channel, {"until": allowed.isoformat()}
                        )
                    ],
                )
        if enr.holdout:
            return decided("held_out", "holdout", template=spec["template"])
        if not to:
            return decided("suppressed", "no_address")
        try:
            message = self._render(enr.workspace_id, spec["template"], channel, to, person, ws)
        except TemplateError as exc:
            return decided("failed", "template_error", error=str(exc)[:300])
        if existing is not None:
            return self._reconcile(existing.status, key, channel, message, enr, after, step["id"], now)
        cap = settings.caps.get(channel)
        _row, refused = channels.begin_send(
            self.db,
            enr.workspace_id,
            idempotency_key=key,
            profile_id=person.root,
            user_id=person.user_id,
            playbook=enr.playbook_key,
            step_id=step["id"],
            channel=channel,
            purpose=flow.purpose,
            to=to,
            now=now,
            precheck=lambda session: policy.precheck(session, person, channel, flow.purpose, cap, now),
        )
        if refused is not None:
            return decided("suppressed", refused)
        return self._deliver(key, channel, message, enr, after, step["id"], now)

    def _deliver(
        self,
        key: str,
        channel: str,
        message: Email | Sms,
        enr: Snapshot,
        after: str | None,
        step_id: str,
        now: datetime,
    ) -> Step:
        try:
            if isinstance(message, Email):
                delivery: Delivery = self.email.send_email(enr.workspace_id, message, key)
            else:
                delivery = self.sms.send_sms(enr.workspace_id, message, key)
        except Exception as exc:
            # The provider may or may not have acted: `unknown`, never a blind retry.
            channels.finish_send(self.db, enr.workspace_id, key, "unknown", self.clock.now(), error=type(exc).__name__)
            return Step(after, decisions=[self._decision(enr, step_id, "failed", "provider_error", now, channel)])
        status = "failed" if delivery.status == "failed" else "sent"
        channels.finish_send(self.db, enr.workspace_id, key, status, self.clock.now(), provider_id=delivery.provider_id)
        reason = "provider_refused" if status == "failed" else None
        return Step(after, decisions=[self._decision(enr, step_id, status, reason, now, channel)])

    def _reconcile(
        self,
        status: str,
        key: str,
        channel: str,
        message: Email | Sms,
        enr: Snapshot,
        after: str | None,
        step_id: str,
        now: datetime,
    ) -> Step:
        """A ledger row without an outcome: we crashed around the provider call."""
        port = self.email if channel == "email" else self.sms
        found = port.lookup(enr.workspace_id, key)
        if found is not None:
            channels.finish_send(self.db, enr.workspace_id, key, "sent", now, provider_id=found.provider_id)
            return Step(after, decisions=[self._decision(enr, step_id, "sent", "reconciled", now, channel)])
        if status == "pending":
            # The provider never saw the call: sending it now is the first and only time.
            return self._deliver(key, channel, message, enr, after, step_id, now)
        return Step(after, decisions=[self._decision(enr, step_id, "failed", "unknown_delivery", now, channel)])

    def _render(
        self, workspace_id: str, template: str, channel: str, to: str, person: policy.Recipient, ws: WorkspaceInfo
    ) -> Email | Sms:
        definition = journeys.template_definition(self.db, workspace_id, template)
        variables = {**person.context, "links": {}, "workspace": {"name": ws.name}, "location": {}}
        body = self._compile(definition["body"]).render(variables)
        if channel == "sms":
            return Sms(to, body)
        subject = self._compile(definition.get("subject") or "").render(variables)
        html = definition.get("html")
        return Email(to, subject, body, self._compile(html).render(variables) if html else None)

    def _compile(self, source: str) -> Template:
        """Compiling was a tenth of a send's cost. Keyed by the text itself, so a template
        changed by `apply` is a new key and never served stale; cleared when full."""
        compiled = self._compiled.get(source)
        if compiled is None:
            if len(self._compiled) >= COMPILED_TEMPLATES:
                self._compiled.clear()
            compiled = self._compiled[source] = self._jinja.from_string(source)
        return compiled

    def _task(
        self, step: dict[str, Any], after: str | None, enr: Snapshot, person: policy.Recipient, now: datetime
    ) -> Step:
        spec = step["task"]
        if enr.holdout:
            return Step(after, decisions=[self._decision(enr, step["id"], "held_out", "holdout", now, "task")])
        location = spec["location"]
        if location == "home":
            home = person.context["traits"].get("home_location")
            location = str(home) if home not in (None, "") else None
        task = {
            "idempotency_key": f"{enr.id}:{step['id']}",
            "profile_id": person.root,
            "user_id": person.user_id,
            "playbook": enr.playbook_key,
            "title": spec["title"],
            "role": spec["role"],
            "location": location,
            "priority": spec["priority"],
            "due_at": now + timedelta(seconds=spec["sla"]),
        }
        result = Step(after, task=task, decisions=[self._decision(enr, step["id"], "sent", None, now, "task")])
        capacity = person.settings.capacity_for(location)
        if capacity is not None:
            # Checked again under a lock when the task is written (`_commit`): two workers must
            # not both take the last slot of the day.
            opens = policy.next_day_start(now, person.zone_of_workspace, spec["priority"])
            result.capacity = (capacity, location, policy.day_start(now, person.zone_of_workspace), opens, step["id"])
        return result

    def _set(
        self,
        step: dict[str, Any],
        after: str | None,
        enr: Snapshot,
        person: policy.Recipient,
        ws: WorkspaceInfo,
        now: datetime,
    ) -> Step:
        if enr.holdout:
            return Step(after, decisions=[self._decision(enr, step["id"], "held_out", "holdout", now)])
        traits = {path.removeprefix("traits."): value for path, value in step["set"].items()}
        message: dict[str, Any] = {"type": "identify", "messageId": f"{enr.id}:{step['id']}", "traits": traits}
        if person.user_id:
            message["userId"] = person.user_id
        elif person.anonymous_id:
            message["anonymousId"] = person.anonymous_id
        else:
            return Step(after, decisions=[self._decision(enr, step["id"], "failed", "no_identifier", now)])
        # Through the pipeline: the event log stays the one source of a profile's traits, and
        # the message id makes a repeated step a duplicate, not a second write.
        result = self.pipeline.ingest(ws, BatchInput([message], source="playbook"))
        if result.rejected or result.dead_lettered:
            return Step(after, decisions=[self._decision(enr, step["id"], "failed", "set_rejected", now)])
        return Step(after)

    # ---- reading and writing -------------------------------------------------------------

    def _recipient(self, session: Session, ws: WorkspaceInfo, enr: Snapshot) -> policy.Recipient:
        doc = identity.person(session, ws.id, enr.profile_id)
        if doc is None:
            raise LookupError(f"enrolment {enr.id}: profile {enr.profile_id} is gone")
        kinds: dict[str, str] = {}
        for ident in doc.identifiers:
            kinds.setdefault(ident.type, ident.value)
        zone = policy.zone_of(session, ws.id, doc.traits, doc.profile_ids, ws.timezone)
        context: dict[str, Any] = segments.context_of(
            doc.traits, doc.signals, doc.first_seen, doc.last_seen, doc.user_id
        )
        context["profile"].update(email=kinds.get("email"), phone=kinds.get("phone"), timezone=zone)
        context["event"] = enr.trigger.get("properties", {})
        return policy.Recipient(
            ws.id,
            doc.id,
            doc.profile_ids,
            doc.user_id,
            kinds.get("email"),
            kinds.get("phone"),
            zone,
            context,
            kinds.get("anonymous_id"),
            ws.timezone,
            policy.get_settings(self.db, ws.id),
        )

    def _goal_seen(
        self, session: Session, enr: Snapshot, flow: Flow, person: policy.Recipient
    ) -> dict[str, Any] | None:
        """A goal event at or after the trigger, also one that arrived before it (out of order)."""
        goals = flow.goals()
        if not goals:
            return None
        since = _trigger_time(enr)
        found = events.named_events_since(session, enr.workspace_id, person.nodes, [g["event"] for g in goals], since)
        for event in found:
            if journeys.goal_matches(goals, event.event or "", event.properties, enr.trigger):
                return {"event": event.event, "message_id": event.message_id}
        return None

    def _decision(
        self,
        enr: Snapshot,
        step_id: str | None,
        outcome: str,
        reason: str | None,
        at: datetime,
        channel: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return journeys.decision_row(
            enr.workspace_id,
            enr.playbook_key,
            enr.profile_id,
            enr.user_id,
            outcome,
            reason,
            at,
            enrollment_id=enr.id,
            step_id=step_id,
            channel=channel,
            detail=detail,
        )

    def _commit(self, enr: Snapshot, result: Step, now: datetime, *, quiet_repeat: bool = False) -> bool:
        """The step's effect, its decisions and the enrolment's new position, together; only if
        the enrolment is still where this run found it."""
        with self.db.transaction() as session:
            if result.capacity is not None and result.task is not None:
                result = self._within_capacity(session, enr, result, now)
            guard = [Enrollment.id == enr.id, Enrollment.status == "active"]
            guard.append(Enrollment.position.is_(None) if enr.position is None else Enrollment.position == enr.position)
            values: dict[str, Any] = {"updated_at": now, "lease_until": None}
            if result.exit_reason is not None:
                status = "completed" if result.exit_reason == "completed" else "exited"
                values.update(
                    status=status,
                    exit_reason=None if status == "completed" else result.exit_reason,
                    exited_at=now,
                    position=None,
                    due_at=None,
                    waiting=None,
                )
                if (enr.entry_lock or "").startswith("active|"):
                    values["entry_lock"] = None  # after_exit may enter again (after its cooldown)
            else:
                values.update(position=result.position, waiting=result.waiting, due_at=result.due_at or now)
            moved = session.execute(update(Enrollment).where(*guard).values(**values))
            if not getattr(moved, "rowcount", 0):
                return False
            decisions = result.decisions
            if quiet_repeat and decisions and _same_as_last(session, enr, decisions[0]):
                decisions = []
            journeys.record_decisions(session, decisions)
            if result.task is not None:
                channels.create_task(session, enr.workspace_id, now=now, **result.task)
        return True

    def _within_capacity(self, session: Session, enr: Snapshot, result: Step, now: datetime) -> Step:
        """The task as planned, or (the location's tasks for today are used up) a delay to the
        next day, higher priorities first."""
        assert result.capacity is not None
        per_day, location, today, opens, step_id = result.capacity
        if channels.tasks_created_since(session, enr.workspace_id, location, today, lock=True) < per_day:
            return result
        decision = self._decision(enr, step_id, "delayed", "task_capacity", now, "task", {"until": opens.isoformat()})
        return Step(step_id, due_at=opens, decisions=[decision])


def _same_as_last(session: Session, enr: Snapshot, decision: dict[str, Any]) -> bool:
    last = session.execute(
        select(Decision.step_id, Decision.outcome, Decision.reason)
        .where(Decision.workspace_id == enr.workspace_id, Decision.enrollment_id == enr.id)
        .order_by(Decision.id.desc())
        .limit(1)
    ).first()
    return last is not None and tuple(last) == (decision["step_id"], decision["outcome"], decision["reason"])


def _trigger_time(enr: Snapshot) -> datetime:
    raw = enr.trigger.get("timestamp")
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            pass
    return enr.created_at


def _snapshot(row: Enrollment) -> Snapshot:
    return Snapshot(
        row.id,
        row.workspace_id,
        row.playbook_key,
        row.version,
        row.profile_id,
        row.user_id,
        row.entry_lock,
        row.holdout,
        dict(row.trigger or {}),
        row.position,
        dict(row.waiting) if row.waiting else None,
        row.created_at,
    )


def _moved(enr: Snapshot, position: str | None, waiting: dict[str, Any] | None) -> Snapshot:
    return Snapshot(
        enr.id,
        enr.workspace_id,
        enr.playbook_key,
        enr.version,
        enr.profile_id,
        enr.user_id,
        enr.entry_lock,
        enr.holdout,
        enr.trigger,
        position,
        waiting,
        enr.created_at,
    )
