"""The playbooks shipped in playbooks/ apply cleanly and run end to end on the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from signalbox.channels import service as channels
from signalbox.channels.schemas import OutboxItem
from signalbox.core.clock import FixedClock
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.journeys.schemas import EnrollmentInfo
from signalbox.journeys.worker import Worker
from signalbox.workspaces import service as workspaces
from tests.factories import identify, track

ROOT = Path(__file__).resolve().parents[3] / "playbooks"


def _files(folder: Path) -> list[tuple[str, str]]:
    return [(str(p), p.read_text()) for p in sorted(folder.glob("*.yaml"))]


def test_shipped_playbooks_apply_and_onboarding_runs_until_the_first_visit(db, settings, workspace):
    ws = workspaces.get_workspace(db, workspace.id)
    clock = FixedClock(datetime(2026, 2, 2, 15, 0, tzinfo=UTC))  # Monday 09:00 in Chicago
    templates = journeys.apply(db, ws.id, "template", _files(ROOT / "templates"), clock.now())
    playbooks = journeys.apply(db, ws.id, "playbook", _files(ROOT), clock.now())
    assert {"at-risk-re-engagement", "onboarding-rescue"} <= {a.key for a in playbooks}
    assert len(templates) == len(list((ROOT / "templates").glob("*.yaml")))
    pipeline = Pipeline(db, settings, clock)
    worker = Worker(db, settings, clock, stale_every_seconds=1e9)
    newcomers = [
        identify(
            f"new-{n}",
            email=f"new{n}@example.com",
            phone=f"+1415555{110 + n:04d}",
            first_name="Sam",
            location_name="Northside",
            timezone="America/Chicago",
            member_since="2026-02-02",
            email_subscribe="opted_in",
            sms_subscribe="opted_in",
        )
        for n in range(12)
    ]
    pipeline.ingest(ws, BatchInput(newcomers))
    worker.drain()
    enrolled = journeys.list_enrollments(db, ws.id, playbook="onboarding-rescue")
    treated = [e for e in enrolled if not e.holdout]
    assert len(enrolled) == 12 and treated
    welcome = channels.list_outbox(db, ws.id, channel="email")
    assert len(welcome) == len(treated) and welcome[0].subject == "Welcome to Northside"
    assert welcome[0].body.startswith("Hi Sam,")
    # One of them comes in the next morning: their enrolment ends before the day-1 SMS.
    visitor = treated[0].user_id
    clock.set(datetime(2026, 2, 3, 14, 0, tzinfo=UTC))
    pipeline.ingest(ws, BatchInput([track("visit", visitor)]))
    worker.drain()
    clock.set(datetime(2026, 2, 3, 15, 1, tzinfo=UTC))
    worker.drain()
    texted = {o.to for o in channels.list_outbox(db, ws.id, channel="sms")}
    assert len(texted) == len(treated) - 1
    by_user = {e.user_id: e for e in journeys.list_enrollments(db, ws.id, playbook="onboarding-rescue")}
    assert (by_user[visitor].status, by_user[visitor].exit_reason) == ("exited", "goal_met")
    # Day 14: the desk gets a call task for each treated member who never came.
    for day in (9, 16):  # the worker runs on: day 7's e-mail, then day 14's task
        clock.set(datetime(2026, 2, day, 15, 2, tzinfo=UTC))
        worker.drain()
    onboarding = [s for s in channels.list_sends(db, ws.id) if s.playbook == "onboarding-rescue"]
    assert len([s for s in onboarding if s.channel == "email"]) == 2 * len(treated) - 1
    tasks = channels.list_tasks(db, ws.id)
    assert len(tasks) == len(treated) - 1 and all(t.role == "front_desk" for t in tasks)


# ---- the revenue playbooks, each through a scenario on an injected clock --------------------

CHICAGO_9AM = datetime(2026, 2, 3, 15, 0, tzinfo=UTC)  # Tuesday 09:00 in Chicago (CST)
REVENUE = {
    "failed-payment-recovery",
    "past-due-collections",
    "card-expiring",
    "instant-lead-response",
    "post-visit-review-request",
    "win-back",
}


class Shop:
    """Every shipped playbook applied to a workspace, with members in Chicago."""

    def __init__(self, db, settings, workspace) -> None:
        self.db, self.ws = db, workspaces.get_workspace(db, workspace.id)
        self.clock = FixedClock(CHICAGO_9AM)
        journeys.apply(db, self.ws.id, "template", _files(ROOT / "templates"), self.clock.now())
        journeys.apply(db, self.ws.id, "playbook", _files(ROOT), self.clock.now())
        self.pipeline = Pipeline(db, settings, self.clock)
        self.worker = Worker(db, settings, self.clock, stale_every_seconds=1e9)

    def members(self, prefix: str, n: int, **traits) -> list[str]:
        people = [
            identify(
                f"{prefix}-{i}",
                **{
                    "email": f"{prefix}{i}@example.com",
                    "phone": f"+1312555{100 + i:04d}",
                    "first_name": "Alex",
                    "location_name": "Northside",
                    "home_location": "loc-north",
                    "timezone": "America/Chicago",
                    "email_subscribe": "opted_in",
                    "sms_subscribe": "opted_in",
                    **traits,
                },
            )
            for i in range(n)
        ]
        self.send(*people)
        return [p["userId"] for p in people]

    def send(self, *messages) -> None:
        now = self.clock.now().isoformat()
        result = self.pipeline.ingest(self.ws, BatchInput([{**m, "timestamp": now} for m in messages]))
        assert not result.rejected, result.rejected
        self.worker.drain()

    def at(self, when: datetime) -> None:
        self.clock.set(when)
        self.worker.drain()

    def days(self, start: datetime, count: int) -> None:
        """The worker runs every hour for `count` days."""
        for hour in range(count * 24 + 1):
            self.at(start + timedelta(hours=hour))

    def enrolments(self, playbook: str) -> dict[str, EnrollmentInfo]:
        return {e.user_id: e for e in journeys.list_enrollments(self.db, self.ws.id, playbook=playbook)}

    def treated(self, playbook: str) -> list[str]:
        return sorted(u for u, e in self.enrolments(playbook).items() if not e.holdout)

    def touches(self, user_id: str, playbook: str) -> list[tuple[str, str]]:
        """(channel, step) of every message and task one playbook gave the person, in order."""
        sends = [
            s
            for s in channels.list_sends(self.db, self.ws.id, user_id=user_id)
            if s.status == "sent" and s.playbook == playbook
        ]
        tasks = [t for t in channels.list_tasks(self.db, self.ws.id) if t.user_id == user_id and t.playbook == playbook]
        out = [(s.created_at, s.channel, s.step or "") for s in sends]
        out += [(t.created_at, "task", t.idempotency_key.split(":")[1]) for t in tasks]
        return [(channel, step) for _, channel, step in sorted(out)]

    def outbox_to(self, address: str) -> list[OutboxItem]:
        return [o for o in channels.list_outbox(self.db, self.ws.id) if o.to == address]


@pytest.fixture
def shop(db, settings, workspace):
    return Shop(db, settings, workspace)


def test_every_shipped_playbook_and_template_applies(shop):
    keys = {p.playbook for p in journeys.list_playbooks(shop.db, shop.ws.id)}
    assert keys == REVENUE | {"at-risk-re-engagement", "onboarding-rescue"}


def test_failed_payment_recovery_emails_now_texts_next_morning_and_calls_high_value(shop):
    people = shop.members("fp", 10, monthly_price=120)
    for i, user in enumerate(people):
        if i % 2:
            shop.send(identify(user, monthly_price=40))
    url = "https://invoice.stripe.com/i/acct_test/in_test"
    fails = [
        track("payment_failed", u, invoice_id=f"in_{u}", amount=49.0, currency="usd", hosted_invoice_url=url)
        for u in people
    ]
    shop.send(*fails)
    shop.send(*[track("payment_failed", u, invoice_id=f"in_{u}", amount=49.0) for u in people])  # Stripe retries
    treated = shop.treated("failed-payment-recovery")
    assert len(shop.enrolments("failed-payment-recovery")) == 10 and treated  # one per invoice
    payer = treated[0]
    mail = shop.outbox_to(f"{payer.replace('-', '')}@example.com")
    assert len(mail) == 1 and url in mail[0].body and "49.00 USD" in mail[0].body
    # The payer pays the next morning: their recovery ends before the SMS.
    shop.at(CHICAGO_9AM + timedelta(hours=20))
    shop.send(track("payment_succeeded", payer, invoice_id=f"in_{payer}"))
    assert shop.enrolments("failed-payment-recovery")[payer].exit_reason == "goal_met"
    shop.days(CHICAGO_9AM + timedelta(hours=21), 4)
    for user in treated[1:]:
        touches = shop.touches(user, "failed-payment-recovery")
        assert touches[:2] == [("email", "email-now"), ("sms", "sms")], touches
        high_value = int(user.split("-")[1]) % 2 == 0
        assert touches[2:] == ([("task", "call")] if high_value else [("email", "last-email")])
    # The SMS went at 10:00 Chicago time, 25 hours after the failure.
    sms = [s for s in channels.list_sends(shop.db, shop.ws.id) if s.channel == "sms"]
    assert {s.created_at.astimezone(ZoneInfo("America/Chicago")).hour for s in sms} == {10}
    assert shop.touches(payer, "failed-payment-recovery") == [("email", "email-now")]
    held = [u for u, e in shop.enrolments("failed-payment-recovery").items() if e.holdout]
    assert all(shop.touches(u, "failed-payment-recovery") == [] for u in held)


def test_past_due_collections_makes_ten_touches_over_ninety_days_until_paid(shop):
    people = shop.members("pd", 8)
    shop.send(*[track("payment_failed", u, invoice_id=f"in_{u}", attempt_count=4, amount=60.0) for u in people])
    treated = shop.treated("past-due-collections")
    assert len(shop.enrolments("past-due-collections")) == 8 and len(treated) >= 2
    payer, *unpaid = treated
    shop.days(CHICAGO_9AM, 20)
    shop.send(track("payment_succeeded", payer, invoice_id=f"in_{payer}"))
    shop.days(CHICAGO_9AM + timedelta(days=20), 75)
    for user in unpaid:
        touches = shop.touches(user, "past-due-collections")
        steps = [s for _, s in touches if s in STEP_IDS_PAST_DUE]
        assert len(steps) == 10, touches
        assert [c for c, _ in touches].count("task") == 2
    assert (
        len([s for _, s in shop.touches(payer, "past-due-collections") if s in STEP_IDS_PAST_DUE]) == 4
    )  # days 0, 3, 7, 14
    roles = {t.role for t in channels.list_tasks(shop.db, shop.ws.id) if t.playbook == "past-due-collections"}
    assert roles == {"front_desk", "manager"}


STEP_IDS_PAST_DUE = {
    "day-0-email",
    "day-3-sms",
    "day-7-email",
    "day-14-call",
    "day-30-sms",
    "day-45-email",
    "day-61-manager-call",
    "day-75-email",
    "day-91-final-email",
    "day-91-final-sms",
}


def test_a_first_failure_goes_to_recovery_not_to_collections(shop):
    (user,) = shop.members("one", 1)
    shop.send(track("payment_failed", user, invoice_id="in_x", attempt_count=1, next_payment_attempt=1770000000))
    assert shop.enrolments("past-due-collections") == {}
    assert user in shop.enrolments("failed-payment-recovery")


def test_card_expiring_asks_three_times_until_the_card_is_updated(shop):
    people = shop.members("ce", 6)
    shop.send(*[track("card_expiring", u, last4="4242") for u in people])
    treated = shop.treated("card-expiring")
    updater, *others = treated
    shop.days(CHICAGO_9AM, 5)
    shop.send(track("payment_method_updated", updater))
    shop.days(CHICAGO_9AM + timedelta(days=5), 17)
    assert shop.touches(updater, "card-expiring") == [("email", "email-now")]
    for user in others:
        assert shop.touches(user, "card-expiring") == [("email", "email-now"), ("sms", "sms"), ("email", "last-email")]
    assert "ending 4242" in shop.outbox_to(f"{updater.replace('-', '')}@example.com")[0].body


def test_a_late_night_lead_gets_a_call_task_at_once_and_the_text_at_eight(shop):
    late = datetime(2026, 2, 4, 5, 30, tzinfo=UTC)  # 23:30 in Chicago
    shop.at(late)
    texted = shop.members("ld", 6)
    emailed = shop.members("le", 4, phone=None, sms_subscribe=None)
    shop.send(*[track("lead_created", u) for u in texted + emailed])
    treated = shop.treated("instant-lead-response")
    tasks = {t.user_id: t for t in channels.list_tasks(shop.db, shop.ws.id)}
    for user in treated:
        assert tasks[user].due_at - late == timedelta(minutes=5) and tasks[user].location == "loc-north"
    # No phone: the e-mail goes at once, saying why it was not a text.
    email_leads = [u for u in treated if u.startswith("le-")]
    for user in email_leads:
        # Both in the same minute the lead came in.
        assert set(shop.touches(user, "instant-lead-response")[:2]) == {("task", "call-now"), ("email", "text-now")}
    fallbacks = [
        d
        for d in journeys.list_decisions(shop.db, shop.ws.id)
        if d.step == "text-now" and d.outcome == "sent" and (d.detail or {}).get("fallback_from")
    ]
    assert {d.user_id for d in fallbacks} == set(email_leads)
    assert all(d.detail == {"fallback_from": "sms", "fallback_reason": "no_address"} for d in fallbacks)
    assert channels.list_outbox(shop.db, shop.ws.id, channel="sms") == []  # quiet hours
    # One books before morning: nothing more for them; the others get their text at 08:00.
    booker = next(u for u in treated if u.startswith("ld-"))
    shop.at(late + timedelta(hours=2))
    shop.send(track("class_booked", booker))
    shop.days(late + timedelta(hours=3), 4)
    texts = {o.to: o for o in channels.list_outbox(shop.db, shop.ws.id, channel="sms")}
    sms_leads = [u for u in treated if u.startswith("ld-") and u != booker]
    assert len(texts) == len(sms_leads)
    hours = {
        s.created_at.astimezone(ZoneInfo("America/Chicago")).hour
        for s in channels.list_sends(shop.db, shop.ws.id)
        if s.channel == "sms"
    }
    assert hours == {8}
    assert shop.touches(booker, "instant-lead-response") == [("task", "call-now")]
    for user in sms_leads:
        assert [s for _, s in shop.touches(user, "instant-lead-response")] == [
            "call-now",
            "text-now",
            "follow-up",
            "second-call",
        ]


def test_a_review_request_never_goes_to_an_unhappy_member(shop):
    happy = shop.members("rh", 6)
    (complaint,) = shop.members("rc", 1, open_complaint=True)
    (detractor,) = shop.members("rn", 1, last_nps_score=4)
    shop.send(*[track("visit", u) for u in [*happy, complaint, detractor]])
    shop.days(CHICAGO_9AM, 2)
    treated = shop.treated("post-visit-review-request")
    for user in treated:
        got = shop.touches(user, "post-visit-review-request")
        if user in (complaint, detractor):
            assert got == []
            assert shop.enrolments("post-visit-review-request")[user].exit_reason == "unhappy_customer"
        else:
            assert got == [("email", "ask")]
    # A second visit the same week asks nobody again (90-day cooldown once it ended).
    shop.send(*[track("visit", u) for u in happy])
    shop.days(CHICAGO_9AM + timedelta(days=2), 2)
    assert all(len(shop.touches(u, "post-visit-review-request")) <= 1 for u in happy)


def test_win_back_writes_three_times_over_ten_weeks_until_they_return(shop):
    people = shop.members("wb", 6)
    shop.send(*[track("subscription_cancelled", u) for u in people])
    treated = shop.treated("win-back")
    returner, *others = treated
    shop.days(CHICAGO_9AM, 30)
    shop.send(track("visit", returner))
    shop.days(CHICAGO_9AM + timedelta(days=30), 45)
    assert shop.touches(returner, "win-back") == [("email", "whats-new")]
    for user in others:
        assert shop.touches(user, "win-back") == [
            ("email", "whats-new"),
            ("sms", "free-class"),
            ("email", "come-back-week"),
        ]
