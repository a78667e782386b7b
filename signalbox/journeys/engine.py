"""The interpreter: one enrolment's steps, run from its position until it waits, exits or ends.

Every step commits its effect with the enrolment's new position in one transaction, guarded
by the position it started from, so a goal or a resumed wait that moved the enrolment in the
meantime wins and nothing runs twice. A send commits its ledger row (key `<enrolment>:<step>`)
before the provider call; if we crash after that, the next run finds the row and reconciles
it through the provider's lookup instead of calling again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from signalbox.channels import links as tracked
from signalbox.channels import service as channels
from signalbox.channels.schemas import Delivery, Email, EmailSender, Sms, SmsSender
from signalbox.consent import unsubscribe
from signalbox.consent.schemas import ConsentState
from signalbox.core.clock import Clock
from signalbox.core.db import Database
from signalbox.core.logging import get_logger
from signalbox.core.settings import Settings
from signalbox.events import service as events
from signalbox.events.schemas import StoredEvent
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


@dataclass(frozen=True)
class _Live:
    """An enrolment in a running batch, with what its steps read."""

    enr: Snapshot
    flow: Flow
    person: policy.Recipient
    ws: WorkspaceInfo


@dataclass(frozen=True)
class _Outgoing:
    """A send that passed the rules needing no transaction, to begin with the round's others."""

    live: _Live
    key: str
    channel: str
    to: str
    message: Email | Sms
    step_id: str
    after: str | None
    purpose: str
    cap: policy.Cap | None
    note: dict[str, Any] | None = None  # a fallback: which channel was passed over, and why
    links: tuple[tracked.Link, ...] = ()


@dataclass
class _Result:
    enr: Snapshot
    step: Step
    live: _Live | None = None  # None: decided without running (a paused playbook)
    quiet_repeat: bool = False  # a repeated "still paused" decision is not written again


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
        self.secret_key = settings.secret_key  # signs the unsubscribe links of marketing e-mail
        self.lease = timedelta(seconds=settings.worker_lease_seconds)
        sandbox = channels.SandboxProvider(db, clock)
        self.email: EmailSender = email or sandbox
        self.sms: SmsSender = sms or sandbox
        self.pipeline = Pipeline(db, settings, clock)
        self._flows: dict[tuple[str, str, int], Flow] = {}
        self._jinja = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        self._compiled: dict[str, Template] = {}
        # Templates as they are when a batch starts: read once per batch, not once per send.
        self._templates: dict[tuple[str, str], dict[str, Any]] = {}
        self._bases: dict[str, str | None] = {}  # public base URL by workspace, per batch

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
        if ids:
            self.advance_many(ids)
        return len(ids)

    # ---- a claimed batch -----------------------------------------------------------------

    def flow(self, session: Session, workspace_id: str, key: str, version: int) -> Flow:
        cached = self._flows.get((workspace_id, key, version))
        if cached is None:
            # Versions never change once stored, so caching them is safe.
            _, definition = journeys.definition_in(session, workspace_id, key, version)
            cached = self._flows[(workspace_id, key, version)] = Flow.of(key, version, definition)
        return cached

    def advance_many(self, ids: list[str]) -> None:
        """Run claimed enrolments from their positions until each waits, exits or ends.

        A batch moves in rounds of one step per enrolment: what the steps need is read once
        for all of them, the sends of a round begin in one transaction, go to the provider one
        by one, and every outcome commits in one more. If the batch as a whole fails, each
        enrolment is tried alone, so one person's failure never holds up everyone else's."""
        try:
            self._advance_batch(ids)
        except Exception:
            if len(ids) == 1:
                # The lease runs out and the step is tried again.
                log.exception("step failed", extra={"enrollment_id": ids[0]})
                return
            log.warning("batch failed; running its enrolments one by one", exc_info=True)
            for enrollment_id in ids:
                self.advance_many([enrollment_id])

    def _advance_batch(self, ids: list[str]) -> None:
        now = self.clock.now()
        self._templates.clear()
        self._bases.clear()
        live, pending = self._load(ids, now)
        for _ in range(MAX_STEPS_PER_RUN):
            if not live and not pending:
                return
            ledger = self._ledger_for(live)
            outgoing: list[_Outgoing] = []
            for lv in live:
                try:
                    result = self._next(lv, ledger, now)
                except Exception:
                    log.exception("step failed", extra={"enrollment_id": lv.enr.id})
                    continue
                if isinstance(result, _Outgoing):
                    outgoing.append(result)
                else:
                    pending.append(_Result(lv.enr, result, lv))
            sent, finished = self._send_all(outgoing, now)
            pending.extend(sent)
            moved = self._commit_all(pending, finished, now)
            live = [
                _Live(_moved(r.live.enr, r.step.position, r.step.waiting), r.live.flow, r.live.person, r.live.ws)
                for r in pending
                if r.live is not None
                and r.live.enr.id in moved  # else moved by someone else (a goal, a resumed wait): theirs wins
                and r.step.exit_reason is None
                and r.step.due_at is None
            ]
            pending = []
        for lv in live:
            log.error("step limit reached", extra={"enrollment_id": lv.enr.id})

    def _load(self, ids: list[str], now: datetime) -> tuple[list[_Live], list[_Result]]:
        """The batch's enrolments with all their steps will read: flows, playbook states,
        people (with zone, settings and consent), goals already seen. Paused playbooks and met
        goals are decided here."""
        live: list[_Live] = []
        decided: list[_Result] = []
        with self.db.session() as session:
            snaps = [
                _snapshot(row)
                for row in session.scalars(
                    select(Enrollment).where(Enrollment.id.in_(ids), Enrollment.status == "active")
                )
            ]
            by_workspace: dict[str, list[Snapshot]] = {}
            for enr in snaps:
                by_workspace.setdefault(enr.workspace_id, []).append(enr)
            for workspace_id, group in by_workspace.items():
                ws = self._workspace(workspace_id)
                paused = set(
                    session.scalars(
                        select(Playbook.key).where(
                            Playbook.workspace_id == workspace_id,
                            Playbook.key.in_({e.playbook_key for e in group}),
                            Playbook.status == "paused",
                        )
                    )
                )
                running: list[Snapshot] = []
                for enr in group:
                    if enr.playbook_key in paused:
                        step = Step(
                            enr.position,
                            now + PAUSED_RECHECK,
                            enr.waiting,
                            decisions=[self._decision(enr, enr.position, "delayed", "playbook_paused", now)],
                        )
                        decided.append(_Result(enr, step, quiet_repeat=True))
                    else:
                        running.append(enr)
                people = self._recipients(session, ws, running)
                for enr in running:
                    person = people.get(enr.profile_id)
                    if person is None:
                        log.error("profile is gone", extra={"enrollment_id": enr.id, "profile_id": enr.profile_id})
                        continue
                    flow = self.flow(session, enr.workspace_id, enr.playbook_key, enr.version)
                    live.append(_Live(enr, flow, _with_event(person, enr), ws))
            goals = self._goals_seen(session, live)
        going: list[_Live] = []
        for lv in live:
            goal = goals.get(lv.enr.id)
            if goal is None:
                going.append(lv)
                continue
            step = Step(
                None,
                exit_reason="goal_met",
                decisions=[self._decision(lv.enr, lv.enr.position, "exited", "goal_met", now, detail=goal)],
            )
            decided.append(_Result(lv.enr, step, lv))
        return going, decided

    def _workspace(self, workspace_id: str) -> WorkspaceInfo:
        return workspaces.get_workspace(self.db, workspace_id)

    def _next(self, lv: _Live, ledger: dict[str, channels.LedgerRow], now: datetime) -> Step | _Outgoing:
        if lv.enr.position is None:
            return Step(None, exit_reason="completed")
        return self._run(lv.flow, lv.flow.steps[lv.enr.position], lv, ledger, now)

    def _ledger_for(self, live: list[_Live]) -> dict[str, channels.LedgerRow]:
        """The ledger rows of the sends this round is about to run (a send begun before a crash)."""
        keys = [
            (lv.enr.workspace_id, f"{lv.enr.id}:{lv.enr.position}")
            for lv in live
            if lv.enr.position is not None and lv.flow.steps[lv.enr.position]["verb"] == "send"
        ]
        if not keys:
            return {}
        with self.db.session() as session:
            return channels.ledger_rows(session, keys)

    def _run(  # noqa: PLR0911 - one return per verb of the exhaustive match
        self,
        flow: Flow,
        step: dict[str, Any],
        lv: _Live,
        ledger: dict[str, channels.LedgerRow],
        now: datetime,
    ) -> Step | _Outgoing:
        enr, waiting, person, ws = lv.enr, lv.enr.waiting, lv.person, lv.ws
        verb: str = step["verb"]
        after = flow.after[step["id"]]
        match verb:
            case "send":
                return self._send(flow, step, lv, ledger.get(f"{enr.id}:{step['id']}"), now)
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
                # `exit: {reason: unhappy_customer}` names why; a bare `exit` is `exit_step`.
                reason = str(step["exit"].get("reason") or "exit_step")[:64]
                return Step(
                    None, exit_reason=reason, decisions=[self._decision(enr, step["id"], "exited", reason, now)]
                )
            case _:
                raise AssertionError(f"unknown verb {verb!r}: the schema lets no such step through")

    # ---- verbs with effects --------------------------------------------------------------

    def _send(  # noqa: PLR0911 - each rule that stops a send returns its own decision
        self,
        flow: Flow,
        step: dict[str, Any],
        lv: _Live,
        existing: channels.LedgerRow | None,
        now: datetime,
    ) -> Step | _Outgoing:
        """What the rules that need no transaction decide (quiet hours, holdout, address,
        rendering), or the send to begin with the batch's others."""
        enr, person = lv.enr, lv.person
        spec, after = step["send"], flow.after[step["id"]]
        channel: str = spec["channel"]
        template: str = spec["template"]
        key = f"{enr.id}:{step['id']}"
        note: dict[str, Any] = {}
        if spec.get("fallback"):
            why = person.unreachable(channel, flow.purpose)
            if why is not None and person.unreachable(spec["fallback"], flow.purpose) is None:
                # The decision says which channel went and why the first did not.
                note = {"fallback_from": channel, "fallback_reason": why}
                channel, template = spec["fallback"], spec["fallback_template"]

        def decided(outcome: str, reason: str | None, **detail: Any) -> Step:
            detail = {**note, **detail}
            return Step(
                after, decisions=[self._decision(enr, step["id"], outcome, reason, now, channel, detail or None)]
            )

        if existing is not None and existing.status in ("sent", "failed"):
            return Step(after)  # done before a crash; the decision was recorded then
        to = person.address(channel)
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
                            enr,
                            step["id"],
                            "delayed",
                            "quiet_hours",
                            now,
                            channel,
                            {**note, "until": allowed.isoformat()},
                        )
                    ],
                )
        if enr.holdout:
            return decided("held_out", "holdout", template=template)
        if not to:
            return decided("suppressed", "no_address")
        try:
            message = self._render(enr.workspace_id, template, channel, to, person, lv.ws)
        except TemplateError as exc:
            return decided("failed", "template_error", error=str(exc)[:300])
        message, links = tracked.track(
            message,
            tracked.Tagging(self._base(enr.workspace_id), self.secret_key, key, channel, enr.playbook_key, step["id"]),
        )
        if isinstance(message, Email) and flow.purpose == "marketing":
            # The sender turns it into List-Unsubscribe headers; transactional mail carries none.
            token = unsubscribe.issue(self.secret_key, enr.workspace_id, person.root, "email", key, now)
            message = replace(message, unsubscribe_token=token)
        if existing is not None:
            return self._reconcile(existing.status, key, channel, message, enr, after, step["id"], now)
        cap = settings.caps.get(channel)
        return _Outgoing(
            lv, key, channel, to, message, step["id"], after, flow.purpose, cap, note or None, tuple(links)
        )

    def _send_all(self, outgoing: list[_Outgoing], now: datetime) -> tuple[list[_Result], list[channels.SendOutcome]]:
        """A round's sends: ledger rows (after consent, holds and caps) in one transaction,
        then each provider call; the outcomes commit with the round's moves."""
        if not outgoing:
            return [], []
        requests = [
            channels.SendRequest(
                o.live.enr.workspace_id,
                o.key,
                o.live.person.root,
                o.live.person.user_id,
                o.live.enr.playbook_key,
                o.step_id,
                o.channel,
                o.purpose,
                o.to,
                o.links,
            )
            for o in outgoing
        ]
        asks = {o.key: policy.Outgoing(o.key, o.live.person, o.channel, o.purpose, o.cap) for o in outgoing}
        _rows, fresh, refused = channels.begin_sends(
            self.db,
            requests,
            now,
            lambda session, new: policy.precheck_many(session, [asks[r.idempotency_key] for r in new], now),
        )
        results: list[_Result] = []
        outcomes: list[channels.SendOutcome] = []
        for o in outgoing:
            enr = o.live.enr
            if o.key in refused:
                decision = self._decision(enr, o.step_id, "suppressed", refused[o.key], now, o.channel, o.note)
                results.append(_Result(enr, Step(o.after, decisions=[decision]), o.live))
            elif o.key not in fresh:
                # Another worker began this send since the round started (an expired lease);
                # it owns the outcome, and the guarded commit leaves the enrolment to it.
                results.append(_Result(enr, Step(o.after), o.live))
            else:
                step, outcome = self._deliver(o.key, o.channel, o.message, enr, o.after, o.step_id, now, o.note)
                results.append(_Result(enr, step, o.live))
                outcomes.append(outcome)
        return results, outcomes

    def _deliver(
        self,
        key: str,
        channel: str,
        message: Email | Sms,
        enr: Snapshot,
        after: str | None,
        step_id: str,
        now: datetime,
        note: dict[str, Any] | None = None,
    ) -> tuple[Step, channels.SendOutcome]:
        try:
            if isinstance(message, Email):
                delivery: Delivery = self.email.send_email(enr.workspace_id, message, key)
            else:
                delivery = self.sms.send_sms(enr.workspace_id, message, key)
        except Exception as exc:
            # The provider may or may not have acted: `unknown`, never a blind retry.
            outcome = channels.SendOutcome(enr.workspace_id, key, "unknown", error=type(exc).__name__)
            return Step(
                after, decisions=[self._decision(enr, step_id, "failed", "provider_error", now, channel, note)]
            ), outcome
        if delivery.status == "unknown":
            # The call began and its answer was lost: neither sent nor free to send again.
            outcome = channels.SendOutcome(enr.workspace_id, key, "unknown", delivery.provider_id, "answer_unknown")
            return Step(
                after, decisions=[self._decision(enr, step_id, "failed", "unknown_delivery", now, channel, note)]
            ), outcome
        status = "failed" if delivery.status == "failed" else "sent"
        reason = "provider_refused" if status == "failed" else None
        outcome = channels.SendOutcome(enr.workspace_id, key, status, delivery.provider_id, delivery.error)
        return Step(after, decisions=[self._decision(enr, step_id, status, reason, now, channel, note)]), outcome

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
        if found is not None and found.status == "unknown":
            # A call was begun and its outcome never learnt: it may have gone out, so it is
            # never made again; `unknown` in the ledger, flagged for review.
            channels.finish_send(
                self.db,
                enr.workspace_id,
                key,
                "unknown",
                now,
                provider_id=found.provider_id or None,
                error=found.error or "call started, outcome unknown",
            )
            return Step(after, decisions=[self._decision(enr, step_id, "failed", "unknown_delivery", now, channel)])
        if found is not None and found.status == "failed":
            channels.finish_send(
                self.db, enr.workspace_id, key, "failed", now, provider_id=found.provider_id or None, error=found.error
            )
            return Step(after, decisions=[self._decision(enr, step_id, "failed", "provider_refused", now, channel)])
        if found is not None:
            channels.finish_send(self.db, enr.workspace_id, key, "sent", now, provider_id=found.provider_id)
            return Step(after, decisions=[self._decision(enr, step_id, "sent", "reconciled", now, channel)])
        if status == "pending":
            # The provider never saw the call: sending it now is the first and only time.
            step, outcome = self._deliver(key, channel, message, enr, after, step_id, now)
            channels.finish_send(
                self.db,
                enr.workspace_id,
                key,
                outcome.status,
                now,
                provider_id=outcome.provider_id,
                error=outcome.error,
            )
            return step
        return Step(after, decisions=[self._decision(enr, step_id, "failed", "unknown_delivery", now, channel)])

    def _render(
        self, workspace_id: str, template: str, channel: str, to: str, person: policy.Recipient, ws: WorkspaceInfo
    ) -> Email | Sms:
        definition = self._templates.get((workspace_id, template))
        if definition is None:
            definition = self._templates[(workspace_id, template)] = journeys.template_definition(
                self.db, workspace_id, template
            )
        variables = {**person.context, "links": _links_of(person), "workspace": {"name": ws.name}, "location": {}}
        body = self._compile(definition["body"]).render(variables)
        if channel == "sms":
            return Sms(to, body)
        subject = self._compile(definition.get("subject") or "").render(variables)
        html = definition.get("html")
        return Email(to, subject, body, self._compile(html).render(variables) if html else None)

    def _base(self, workspace_id: str) -> str | None:
        if workspace_id not in self._bases:
            self._bases[workspace_id] = workspaces.public_base_url(self.db, workspace_id)
        return self._bases[workspace_id]

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

    def _recipients(self, session: Session, ws: WorkspaceInfo, enrolled: list[Snapshot]) -> dict[str, policy.Recipient]:
        """By enrolled profile id: who each person is today, in a handful of queries."""
        if not enrolled:
            return {}
        docs = identity.people(session, ws.id, sorted({e.profile_id for e in enrolled}))
        zones = policy.zones_of(session, ws.id, {d.id: (d.traits, d.profile_ids) for d in docs.values()}, ws.timezone)
        settings = policy.get_settings(self.db, ws.id)
        out: dict[str, policy.Recipient] = {}
        for node, doc in docs.items():
            kinds: dict[str, str] = {}
            for ident in doc.identifiers:
                kinds.setdefault(ident.type, ident.value)
            zone = zones[doc.id]
            context: dict[str, Any] = segments.context_of(
                doc.traits, doc.signals, doc.first_seen, doc.last_seen, doc.user_id
            )
            context["profile"].update(email=kinds.get("email"), phone=kinds.get("phone"), timezone=zone)
            out[node] = policy.Recipient(
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
                settings,
                {ch: ConsentState(c["status"], c["purpose"], None, None) for ch, c in doc.consent.items()},
            )
        return out

    def _goals_seen(self, session: Session, live: list[_Live]) -> dict[str, dict[str, Any]]:
        """By enrolment: a goal event at or after the trigger, also one that arrived before
        it (out of order)."""
        out: dict[str, dict[str, Any]] = {}
        by_workspace: dict[str, list[_Live]] = {}
        for lv in live:
            if lv.flow.goals():
                by_workspace.setdefault(lv.enr.workspace_id, []).append(lv)
        for workspace_id, group in by_workspace.items():
            names = sorted({g["event"] for lv in group for g in lv.flow.goals()})
            nodes = sorted({node for lv in group for node in lv.person.nodes})
            since = min(_trigger_time(lv.enr) for lv in group)
            by_node: dict[str, list[StoredEvent]] = {}
            for node, event in events.named_events_of(session, workspace_id, nodes, names, since):
                by_node.setdefault(node, []).append(event)
            for lv in group:
                goals, start = lv.flow.goals(), _trigger_time(lv.enr)
                mine = sorted(
                    (e for node in lv.person.nodes for e in by_node.get(node, []) if e.timestamp >= start),
                    key=lambda e: e.timestamp,
                )
                for event in mine:
                    if journeys.goal_matches(goals, event.event or "", event.properties, lv.enr.trigger):
                        out[lv.enr.id] = {"event": event.event, "message_id": event.message_id}
                        break
        return out

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

    def _commit_all(self, results: list[_Result], outcomes: list[channels.SendOutcome], now: datetime) -> set[str]:
        """A round's effects, decisions, send outcomes and the enrolments' new positions in
        one transaction; each enrolment moves only if it is still where this run found it.
        Returns the enrolments that moved."""
        moved: set[str] = set()
        if not results and not outcomes:
            return moved
        with self.db.transaction() as session:
            channels.finish_sends(session, outcomes, now)
            stmt = select(Enrollment.id, Enrollment.status, Enrollment.position).where(
                Enrollment.id.in_([r.enr.id for r in results])
            )
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update()  # SQLite's BEGIN IMMEDIATE already holds the writer lock
            found = {row[0]: (row[1], row[2]) for row in session.execute(stmt)} if results else {}
            updates: list[dict[str, Any]] = []
            decisions: list[dict[str, Any]] = []
            for r in results:
                enr = r.enr
                if found.get(enr.id) != ("active", enr.position) or enr.id in moved:
                    continue
                if r.step.capacity is not None and r.step.task is not None:
                    r.step = self._within_capacity(session, enr, r.step, now)
                updates.append(_moved_values(enr, r.step, now, self.lease))
                if not (r.quiet_repeat and r.step.decisions and _same_as_last(session, enr, r.step.decisions[0])):
                    decisions.extend(r.step.decisions)
                if r.step.task is not None:
                    channels.create_task(session, enr.workspace_id, now=now, **r.step.task)
                moved.add(enr.id)
            if updates:
                session.execute(update(Enrollment), updates)
            journeys.record_decisions(session, decisions)
        return moved

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


def _moved_values(enr: Snapshot, result: Step, now: datetime, lease: timedelta) -> dict[str, Any]:
    """The enrolment's row after a step (every key always present: one bulk UPDATE). One that
    goes on at once stays leased, so no other worker claims it while this run takes its next
    step."""
    goes_on = result.exit_reason is None and result.due_at is None
    values: dict[str, Any] = {
        "id": enr.id,
        "updated_at": now,
        "lease_until": now + lease if goes_on else None,
        "status": "active",
        "exit_reason": None,
        "exited_at": None,
        "entry_lock": enr.entry_lock,
        "position": result.position,
        "waiting": result.waiting,
        "due_at": result.due_at or now,
    }
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
    return values


def _links_of(person: policy.Recipient) -> dict[str, str]:
    """Named links a template may use; each is tracked like any other link in the message."""
    out: dict[str, str] = {}
    event = person.context.get("event") or {}
    invoice = event.get("hosted_invoice_url")
    if isinstance(invoice, str) and _is_stripe_page(invoice):
        # Stripe's hosted invoice page takes the payment and the new card in one place.
        out["update_payment"] = invoice
    return out


def _is_stripe_page(url: str) -> bool:
    """Only Stripe's own pages: an event anyone with the write key can send must not turn
    the business's "update your card" message into a link to a page of their choosing."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and (host == "stripe.com" or host.endswith(".stripe.com"))


def _with_event(person: policy.Recipient, enr: Snapshot) -> policy.Recipient:
    """The person as one enrolment sees them: its trigger's properties are `event`."""
    return replace(person, context={**person.context, "event": enr.trigger.get("properties", {})})


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
