"""Scenario tests of the engine with an injected clock, on both databases: triggers from the
change log, waits, quiet hours, goals (mid-wait and out of order), entry keys, holdout, pause,
consent, and no duplicate send after a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from signalbox.channels import service as channels
from signalbox.core.clock import FixedClock
from signalbox.identity import service as identity
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import report
from signalbox.journeys import service as journeys
from signalbox.journeys.engine import holdout_of
from signalbox.journeys.models import Decision, Enrollment
from signalbox.journeys.worker import Worker
from signalbox.workspaces import service as workspaces
from tests.factories import identify, track
from tests.integration.journeys.test_apply import TEMPLATES
from tests.unit.journeys.test_spec import GOOD

# 02:13 in Chicago (CST, UTC-6) on a Tuesday.
START = datetime(2026, 1, 13, 8, 13, tzinfo=UTC)
PLAYBOOK = GOOD.replace("holdout: 10%", "holdout: 0%")


@pytest.fixture
def clock():
    return FixedClock(START)


@pytest.fixture
def ws(db, workspace):
    return workspaces.get_workspace(db, workspace.id)


@pytest.fixture
def world(db, settings, ws, clock):
    journeys.apply(db, ws.id, "template", [(name, text) for name, text in TEMPLATES.items()], clock.now())
    journeys.apply(db, ws.id, "playbook", [("fpr.yaml", PLAYBOOK)], clock.now())
    pipeline = Pipeline(db, settings, clock)
    worker = Worker(db, settings, clock, stale_every_seconds=1e9)

    class World:
        database, workspace_id = db, ws.id

        def send(self, *messages):
            result = pipeline.ingest(
                ws, BatchInput([{**m, "timestamp": m.get("timestamp") or clock.now().isoformat()} for m in messages])
            )
            assert not result.rejected, result.rejected
            return result

        def run(self):
            return worker.drain()

        def at(self, when):
            clock.set(when)
            return self.run()

        def outbox(self, channel=None):
            return channels.list_outbox(db, ws.id, channel=channel)

        def enrollments(self):
            with db.session() as session:
                return list(session.query(Enrollment).filter_by(workspace_id=ws.id).order_by(Enrollment.created_at))

        def decisions(self):
            with db.session() as session:
                rows = session.query(Decision).filter_by(workspace_id=ws.id).order_by(Decision.id)
                return [(d.step_id, d.outcome, d.reason) for d in rows]

    w = World()
    w.send(
        identify(
            "m-1",
            email="pat@example.com",
            phone="+14155550132",
            timezone="America/Chicago",
            sms_subscribe="opted_in",
            monthly_value=120,
        )
    )
    return w


def failed(invoice="in_1", amount=49):
    return track("payment_failed", "m-1", invoice_id=invoice, amount=amount)


def test_failed_card_at_two_am_emails_now_and_texts_at_eight_local(world):
    world.send(failed())
    world.run()
    (enr,) = world.enrollments()
    assert enr.status == "active" and enr.entry_key == "in_1" and enr.holdout is False
    (email,) = world.outbox("email")
    assert email.to == "pat@example.com" and email.subject == "Your payment" and email.body == "Hi m-1"
    assert email.idempotency_key == f"{enr.id}:email-now"
    # A day later it is 02:13 again in Chicago: the SMS waits for 08:00 local, never dropped.
    world.at(START + timedelta(days=1))
    assert world.outbox("sms") == []
    assert ("sms", "delayed", "quiet_hours") in world.decisions()
    world.at(datetime(2026, 1, 14, 13, 59, tzinfo=UTC))  # 07:59 CST
    assert world.outbox("sms") == []
    world.at(datetime(2026, 1, 14, 14, 0, tzinfo=UTC))  # 08:00 CST
    (sms,) = world.outbox("sms")
    assert sms.to == "+14155550132" and sms.body == "Your card was declined"
    # No reply in 48 h: high monthly value -> a staff task, and the recovery stage is set.
    world.at(datetime(2026, 1, 16, 14, 1, tzinfo=UTC))
    (task,) = channels.list_tasks(world.database, world.workspace_id)
    assert task.title == "Call about the failed payment" and task.priority == "high"
    (enr,) = world.enrollments()
    assert enr.status == "completed" and enr.exit_reason is None
    assert identity.profile_document(world.database, world.workspace_id, "m-1").traits["recovery_stage"] == "contacted"
    assert len(world.outbox()) == 2  # nothing doubled across all those runs


def test_a_goal_mid_wait_exits_at_once(world):
    world.send(failed())
    world.run()
    world.at(START + timedelta(hours=3))
    world.send(track("payment_succeeded", "m-1", invoice_id="in_1", amount=49))
    world.run()
    (enr,) = world.enrollments()
    assert (enr.status, enr.exit_reason) == ("exited", "goal_met")
    world.at(START + timedelta(days=3))
    assert world.outbox("sms") == []


def test_a_goal_for_another_invoice_does_not_count(world):
    world.send(failed("in_1"))
    world.run()
    world.send(track("payment_succeeded", "m-1", invoice_id="in_OTHER"))
    world.run()
    assert world.enrollments()[0].status == "active"


def test_a_goal_that_arrived_before_its_trigger_is_seen(world):
    later = (START + timedelta(minutes=5)).isoformat()
    world.send({**track("payment_succeeded", "m-1", invoice_id="in_1"), "timestamp": later})
    world.send(failed())
    world.run()
    (enr,) = world.enrollments()
    assert (enr.status, enr.exit_reason) == ("exited", "goal_met")
    assert world.outbox() == []


def test_one_invoice_enrols_once_however_often_its_event_repeats(world):
    world.send(failed(), failed(), failed("in_2"))
    world.run()
    world.send(failed())
    world.run()
    assert sorted(e.entry_key for e in world.enrollments()) == ["in_1", "in_2"]
    assert [d for d in world.decisions() if d[1] == "skipped"] == [(None, "skipped", "already_enrolled")] * 2


def test_trigger_filter_and_revoked_consent_suppresses_a_scheduled_sms(world):
    world.send(failed(amount=5))  # below the `where` threshold
    world.run()
    assert world.enrollments() == []
    world.send(failed())
    world.run()
    world.send(identify("m-1", sms_subscribe="unsubscribed"))
    world.at(datetime(2026, 1, 14, 14, 0, tzinfo=UTC))
    assert world.outbox("sms") == []
    assert ("sms", "suppressed", "no_consent") in world.decisions()


def test_paused_playbook_delays_due_steps_and_resume_continues(world, db, ws):
    world.send(failed())
    world.run()
    journeys.set_status(db, ws.id, "failed-payment-recovery", "paused", START)
    world.at(datetime(2026, 1, 14, 14, 0, tzinfo=UTC))
    world.at(datetime(2026, 1, 14, 14, 5, tzinfo=UTC))
    assert world.outbox("sms") == []
    assert world.decisions().count(("sms", "delayed", "playbook_paused")) == 1
    journeys.set_status(db, ws.id, "failed-payment-recovery", "active", START)
    world.at(datetime(2026, 1, 14, 14, 7, tzinfo=UTC))
    assert len(world.outbox("sms")) == 1


def test_a_crash_after_the_ledger_row_never_sends_twice(world, db, ws, monkeypatch):
    from signalbox.journeys import engine as engine_module

    world.send(failed())
    calls = {"n": 0}
    real = engine_module.channels.finish_sends

    def crash_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("killed between the provider call and the outcome")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_module.channels, "finish_sends", crash_once)
    world.run()  # the provider got the e-mail; the outcome was never written
    (row,) = channels.list_sends(db, ws.id)
    assert row.status == "pending"
    world.at(START + timedelta(minutes=2))  # the lease ran out: the step runs again
    assert len(world.outbox("email")) == 1  # reconciled through the sandbox's lookup
    (row,) = channels.list_sends(db, ws.id)
    assert row.status == "sent"
    assert ("email-now", "sent", "reconciled") in world.decisions()


def test_a_changed_template_is_rendered_new_although_compiled_templates_are_kept(world, db, ws, clock):
    world.send(failed("in_1"))
    world.run()
    changed = TEMPLATES["payment-failed-1.yaml"].replace("body: Hi", "body: Hello again")
    journeys.apply(db, ws.id, "template", [("payment-failed-1.yaml", changed)], clock.now())
    world.send(failed("in_2"))
    world.run()
    assert sorted(m.body for m in world.outbox("email")) == ["Hello again m-1", "Hi m-1"]


def test_history_enrols_nobody(world, db, ws):
    world.send({**failed("in_old"), "timestamp": (START - timedelta(days=3)).isoformat()})
    world.run()
    assert world.enrollments() == []


def test_a_playbook_acts_from_when_it_was_applied_not_on_history(db, settings, ws, clock):
    pipeline = Pipeline(db, settings, clock)
    pipeline.ingest(ws, BatchInput([identify("m-7", email="m7@example.com"), failed()]))
    journeys.apply(db, ws.id, "template", list(TEMPLATES.items()), clock.now())
    journeys.apply(db, ws.id, "playbook", [("fpr.yaml", PLAYBOOK)], clock.now())
    Worker(db, settings, clock, stale_every_seconds=1e9).drain()
    assert journeys.list_enrollments(db, ws.id) == []


def test_an_enrolment_finishes_on_its_version_while_new_entries_take_the_newest(world, db, ws, clock):
    world.send(failed("in_1"))
    world.run()
    journeys.apply(db, ws.id, "playbook", [("fpr.yaml", PLAYBOOK.replace("wait: 24h", "wait: 2h"))], clock.now())
    world.send(failed("in_2"))
    world.run()
    by_key = {e.entry_key: e for e in world.enrollments()}
    assert (by_key["in_1"].version, by_key["in_2"].version) == (1, 2)
    # In three hours only the new version's wait is over (and quiet hours hold the SMS).
    world.at(START + timedelta(hours=3))
    assert by_key["in_1"].id not in {d for d in _delayed(world)}
    assert by_key["in_2"].id in _delayed(world)


def _delayed(world):
    with world.database.session() as session:
        rows = session.query(Decision).filter_by(workspace_id=world.workspace_id, outcome="delayed")
        return {d.enrollment_id for d in rows}


def test_holdout_records_what_would_have_been_sent(db, settings, ws, clock):
    journeys.apply(db, ws.id, "template", list(TEMPLATES.items()), clock.now())
    journeys.apply(db, ws.id, "playbook", [("fpr.yaml", GOOD.replace("holdout: 10%", "holdout: 90%"))], clock.now())
    pipeline = Pipeline(db, settings, clock)
    people = [identify(f"h-{n}", email=f"h{n}@example.com") for n in range(20)]
    pipeline.ingest(
        ws, BatchInput(people + [track("payment_failed", f"h-{n}", invoice_id=f"i{n}", amount=40) for n in range(20)])
    )
    Worker(db, settings, clock, stale_every_seconds=1e9).drain()
    enrolled = journeys.list_enrollments(db, ws.id)
    held = [e for e in enrolled if e.holdout]
    assert len(enrolled) == 20
    for e in enrolled:  # a hash of (workspace, playbook, person), nothing random
        root = identity.profile_document(db, ws.id, e.user_id).id
        assert e.holdout == holdout_of(ws.id, "failed-payment-recovery", root, 0.9)
    assert len(channels.list_outbox(db, ws.id)) == 20 - len(held)
    outcomes = journeys.list_decisions(db, ws.id)
    assert sum(d.outcome == "held_out" and d.step == "email-now" for d in outcomes) == len(held)
    # Sticky: the same people are held out of a re-entry.
    again = {e.user_id for e in held}
    assert again == {e.user_id for e in journeys.list_enrollments(db, ws.id) if e.holdout}


def test_entering_the_high_band_enrols_once_per_entry(db, settings, ws, clock):
    from datetime import date

    from signalbox.scoring import service as scoring

    journeys.apply(db, ws.id, "template", list(TEMPLATES.items()), clock.now())
    playbook = """\
playbook: at-risk
name: At risk
purpose: marketing
trigger: {enters: {scores.at_risk_band: High}}
entry: {reentry: after_exit}
holdout: 0%
steps:
  - id: hello
    send: {channel: email, template: payment-failed-1}
"""
    journeys.apply(db, ws.id, "playbook", [("at-risk.yaml", playbook)], clock.now())
    pipeline = Pipeline(db, settings, clock)
    pipeline.ingest(
        ws,
        BatchInput(
            [
                identify("r-1", email="r1@example.com", email_subscribe="opted_in"),
                {**track("visit", "r-1"), "timestamp": "2025-11-01T15:00:00+00:00"},
                {**track("payment_failed", "r-1", amount=40), "timestamp": "2026-01-05T15:00:00+00:00"},
            ]
        ),
    )
    scoring.set_knobs(db, ws, {"high_threshold": 40})  # a long absence plus a failed card is High
    worker = Worker(db, settings, clock, stale_every_seconds=1e9)
    worker.drain()
    scoring.compute_scores(db, ws, date(2026, 1, 12), clock)
    worker.drain()
    scoring.compute_scores(db, ws, date(2026, 1, 12), clock)  # still High: no new entry
    worker.drain()
    (enr,) = journeys.list_enrollments(db, ws.id)
    assert enr.user_id == "r-1" and enr.status == "completed"
    (mail,) = channels.list_outbox(db, ws.id)
    assert mail.to == "r1@example.com"


def test_report_counts_goal_conversions_and_revenue_per_arm(db, settings, ws, clock):
    journeys.apply(db, ws.id, "template", list(TEMPLATES.items()), clock.now())
    journeys.apply(db, ws.id, "playbook", [("fpr.yaml", GOOD.replace("holdout: 10%", "holdout: 50%"))], clock.now())
    pipeline = Pipeline(db, settings, clock)
    worker = Worker(db, settings, clock, stale_every_seconds=1e9)
    people = range(40)
    pipeline.ingest(ws, BatchInput([identify(f"p-{n}", email=f"p{n}@example.com") for n in people]))
    pipeline.ingest(ws, BatchInput([track("payment_failed", f"p-{n}", invoice_id=f"i{n}", amount=50) for n in people]))
    worker.drain()
    payers = [n for n in people if n % 3 == 0]
    pipeline.ingest(
        ws, BatchInput([track("payment_succeeded", f"p-{n}", invoice_id=f"i{n}", amount=50) for n in payers])
    )
    worker.drain()
    doc = report.report(db, ws.id, "failed-payment-recovery")
    treated, held = doc["arms"]["treated"], doc["arms"]["holdout"]
    assert treated["enrolled"] + held["enrolled"] == 40
    assert treated["converted"] + held["converted"] == len(payers)
    assert doc["revenue"]["treated"] + doc["revenue"]["holdout"] == 50 * len(payers)
    low, high = doc["lift"]["ci95"]
    assert low <= doc["lift"]["absolute"] <= high and doc["lift"]["interval"] == "newcombe-wilson"
    with pytest.raises(Exception, match="no playbook 'nope'"):
        report.report(db, ws.id, "nope")


def test_reentry_after_exit_waits_out_its_cooldown(world):
    world.send(failed("in_1"))
    world.run()
    world.send(track("payment_succeeded", "m-1", invoice_id="in_1"))
    world.run()
    world.at(START + timedelta(days=2))
    world.send(failed("in_1"))  # the same invoice fails again two days later
    world.run()
    assert [e.status for e in world.enrollments()] == ["exited"]
    assert (None, "skipped", "cooldown") in world.decisions()
    world.at(START + timedelta(days=31))
    world.send(failed("in_1"))
    world.run()
    assert [e.status for e in world.enrollments()] == ["exited", "active"]


def test_reentry_once_never_enrols_the_same_key_again(db, settings, ws, clock):
    journeys.apply(db, ws.id, "template", list(TEMPLATES.items()), clock.now())
    once = PLAYBOOK.replace("  reentry: after_exit\n  cooldown: 30d\n", "  reentry: once\n")
    journeys.apply(db, ws.id, "playbook", [("fpr.yaml", once)], clock.now())
    pipeline = Pipeline(db, settings, clock)
    worker = Worker(db, settings, clock, stale_every_seconds=1e9)
    pipeline.ingest(ws, BatchInput([identify("m-1", email="a@example.com"), failed("in_1")]))
    worker.drain()
    pipeline.ingest(ws, BatchInput([track("payment_succeeded", "m-1", invoice_id="in_1")]))
    worker.drain()
    clock.set(START + timedelta(days=90))
    pipeline.ingest(ws, BatchInput([failed("in_1"), failed("in_2")]))
    worker.drain()
    assert sorted((e.entry_key, e.status) for e in journeys.list_enrollments(db, ws.id)) == [
        ("in_1", "exited"),
        ("in_2", "active"),
    ]


MARKETING = """\
playbook: promo
name: Promo
purpose: marketing
trigger: {event: promo_ping}
entry: {reentry: every_time}
holdout: 0%
steps:
  - id: text
    send: {channel: sms, template: payment-failed-sms}
"""


def test_a_frequency_cap_holds_for_marketing_and_suppresses_the_rest(world, db, ws, clock):
    from signalbox.journeys import policy

    journeys.apply(db, ws.id, "playbook", [("promo.yaml", MARKETING)], clock.now())
    policy.update_settings(db, ws.id, caps=["sms=1/1d"])
    world.at(datetime(2026, 1, 13, 16, 0, tzinfo=UTC))  # 10:00 in Chicago
    world.send(track("promo_ping", "m-1"), track("promo_ping", "m-1"), track("promo_ping", "m-1"))
    world.run()
    assert len(world.outbox("sms")) == 1
    assert world.decisions().count(("text", "suppressed", "frequency_cap")) == 2


CALLS = """\
playbook: calls
name: Calls
purpose: transactional
trigger: {event: needs_call}
entry: {reentry: every_time}
holdout: 0%
steps:
  - id: call
    task: {title: Call them, role: front_desk, location: home, sla: 4h, priority: PRIORITY}
"""


def test_staff_task_capacity_overflows_to_the_next_day(db, settings, ws, clock):
    from signalbox.journeys import policy

    journeys.apply(db, ws.id, "playbook", [("calls.yaml", CALLS.replace("PRIORITY", "normal"))], clock.now())
    policy.update_settings(db, ws.id, task_capacity=["loc-1=2"])
    pipeline = Pipeline(db, settings, clock)
    worker = Worker(db, settings, clock, stale_every_seconds=1e9)
    people = [identify(f"c-{n}", home_location="loc-1") for n in range(5)] + [identify("c-x", home_location="loc-2")]
    pipeline.ingest(ws, BatchInput(people))
    pipeline.ingest(ws, BatchInput([track("needs_call", f"c-{n}") for n in range(5)] + [track("needs_call", "c-x")]))
    worker.drain()
    tasks = channels.list_tasks(db, ws.id)
    assert sorted(t.location for t in tasks) == ["loc-1", "loc-1", "loc-2"]  # loc-2 has no limit
    delayed = [d for d in journeys.list_decisions(db, ws.id) if d.reason == "task_capacity"]
    assert len(delayed) == 3
    # Midnight in New York (the workspace's zone) opens the next day's two slots.
    clock.set(datetime(2026, 1, 14, 5, 2, tzinfo=UTC))
    worker.drain()
    assert len(channels.list_tasks(db, ws.id, location="loc-1")) == 4
    clock.set(datetime(2026, 1, 15, 5, 2, tzinfo=UTC))
    worker.drain()
    assert len(channels.list_tasks(db, ws.id, location="loc-1")) == 5
    assert all(e.status == "completed" for e in journeys.list_enrollments(db, ws.id))


def test_history_before_the_first_playbook_is_skipped_whole(db, settings, ws, clock):
    from signalbox.changes import service as changes

    pipeline = Pipeline(db, settings, clock)
    pipeline.ingest(ws, BatchInput([identify(f"h-{n}", email=f"h{n}@example.com") for n in range(30)]))
    worker = Worker(db, settings, clock, stale_every_seconds=1e9)
    worker.drain()
    status = changes.status(db, ws.id)
    assert status.consumers["journeys"] == status.head  # read nothing row by row, skipped it all
    journeys.apply(db, ws.id, "template", list(TEMPLATES.items()), clock.now())
    journeys.apply(db, ws.id, "playbook", [("fpr.yaml", PLAYBOOK)], clock.now())
    pipeline.ingest(ws, BatchInput([track("payment_failed", "h-1", invoice_id="i", amount=40)]))
    worker.drain()
    assert [e.user_id for e in journeys.list_enrollments(db, ws.id)] == ["h-1"]


def test_a_set_of_people_enrols_in_one_call_under_the_same_entry_rule(world, db, ws, clock):
    from signalbox.journeys import triggers

    world.send(identify("m-2", email="sam@example.com"), identify("m-3", email="kim@example.com"))
    roots = [identity.profile_document(db, ws.id, user).id for user in ("m-1", "m-2", "m-3")]
    with db.transaction() as session:
        flow = triggers._active_flows(session, ws.id)["failed-payment-recovery"]
        assert triggers.enroll_set(session, ws.id, flow, roots, {"kind": "segment"}, clock.now()) == 3
    with db.transaction() as session:
        assert triggers.enroll_set(session, ws.id, flow, roots, {"kind": "segment"}, clock.now()) == 0
    assert sorted(e.profile_id for e in world.enrollments()) == sorted(roots)
    assert all(e.entry_key == "" and e.user_id for e in world.enrollments())
    assert world.decisions().count((None, "skipped", "already_enrolled")) == 3
    world.run()
    assert sorted(m.to for m in world.outbox("email")) == ["kim@example.com", "pat@example.com", "sam@example.com"]


def test_a_set_enrolment_keeps_the_cooldown_after_an_exit(world, db, ws, clock):
    from sqlalchemy import update

    from signalbox.journeys import triggers

    root = identity.profile_document(db, ws.id, "m-1").id
    with db.transaction() as session:
        flow = triggers._active_flows(session, ws.id)["failed-payment-recovery"]
        assert triggers.enroll_set(session, ws.id, flow, [root], {"kind": "segment"}, clock.now()) == 1
        session.execute(
            update(Enrollment).values(status="exited", exit_reason="goal_met", exited_at=clock.now(), entry_lock=None)
        )
    with db.transaction() as session:  # after_exit with a 30-day cooldown: not yet
        assert triggers.enroll_set(session, ws.id, flow, [root], {"kind": "segment"}, clock.now()) == 0
    assert (None, "skipped", "cooldown") in world.decisions()
    with db.transaction() as session:
        later = clock.now() + timedelta(days=31)
        assert triggers.enroll_set(session, ws.id, flow, [root], {"kind": "segment"}, later) == 1


def _people_fail(world, n):
    world.send(*[identify(f"b-{i}", email=f"b{i}@example.com") for i in range(n)])
    world.send(*[track("payment_failed", f"b-{i}", invoice_id=f"in_b{i}", amount=49) for i in range(n)])


def test_one_persons_failing_step_does_not_hold_up_the_rest_of_the_batch(world, db, ws, monkeypatch):
    from signalbox.journeys.engine import Engine

    real = Engine._render

    def broken_for_b1(self, workspace_id, template, channel, to, person, workspace):
        if person.user_id == "b-1":
            raise RuntimeError("a bug in one person's step")
        return real(self, workspace_id, template, channel, to, person, workspace)

    monkeypatch.setattr(Engine, "_render", broken_for_b1)
    _people_fail(world, 4)
    world.run()
    assert sorted(m.to for m in world.outbox("email")) == ["b0@example.com", "b2@example.com", "b3@example.com"]
    by_user = {e.user_id: e for e in world.enrollments()}
    assert by_user["b-1"].position == "email-now" and by_user["b-1"].status == "active"  # tried again later
    monkeypatch.setattr(Engine, "_render", real)
    world.at(START + timedelta(minutes=2))  # the lease ran out
    assert len(world.outbox("email")) == 4


def test_a_failed_batch_commit_reruns_each_enrolment_alone_and_sends_nothing_twice(world, db, ws, monkeypatch):
    from signalbox.journeys import engine as engine_module

    real = engine_module.journeys.record_decisions
    calls = {"n": 0}

    def fail_the_first_batch(session, rows):
        calls["n"] += 1
        if calls["n"] == 1 and len(rows) > 1:
            raise RuntimeError("the batch's commit failed after its provider calls")
        return real(session, rows)

    monkeypatch.setattr(engine_module.journeys, "record_decisions", fail_the_first_batch)
    _people_fail(world, 5)
    world.run()
    emails = world.outbox("email")
    assert sorted(m.to for m in emails) == [f"b{i}@example.com" for i in range(5)]  # each once
    assert {s.status for s in channels.list_sends(db, ws.id)} == {"sent"}
    assert world.decisions().count(("email-now", "sent", "reconciled")) == 5  # found at the provider, not re-sent


def test_bulk_reads_match_the_one_person_reads(world, db, ws):
    from signalbox.events import service as events

    world.send(
        identify("z-1", email="z1@example.com"),
        {**track("visit", "z-1"), "context": {"timezone": "Europe/Paris"}},
        identify("z-2", email="z2@example.com"),
    )
    with db.session() as session:
        nodes = [identity.person(session, ws.id, n).id for n in identity.people(session, ws.id, _nodes(db, ws))]
        people = identity.people(session, ws.id, _nodes(db, ws))
        assert sorted(nodes) == sorted(d.id for d in people.values())
        trees = {d.id: d.profile_ids for d in people.values()}
        bulk = events.latest_context_values(session, ws.id, trees, "timezone")
        for root, tree in trees.items():
            one = events.latest_context_value(session, ws.id, tree, "timezone")
            assert bulk.get(root) == one
        assert "Europe/Paris" in bulk.values()


def _nodes(db, ws):
    from signalbox.profiles.models import Profile

    with db.session() as session:
        return [p.id for p in session.query(Profile).filter_by(workspace_id=ws.id)]


FALLBACK = """\
playbook: nudge
name: Nudge
purpose: PURPOSE
trigger: {event: nudge_me}
entry: {reentry: every_time}
holdout: 0%
steps:
  - id: text
    send: {channel: sms, template: payment-failed-sms, fallback: email, fallback_template: payment-failed-1}
"""


def _decision_details(db, ws):
    with db.session() as session:
        rows = session.query(Decision).filter_by(workspace_id=ws.id, step_id="text").order_by(Decision.id)
        return {(d.user_id, d.outcome, d.reason, d.channel): d.detail for d in rows}


@pytest.mark.parametrize("purpose", ["marketing", "transactional"])
def test_a_send_falls_back_to_the_other_channel_and_says_why(world, db, ws, clock, purpose):
    journeys.apply(db, ws.id, "playbook", [("nudge.yaml", FALLBACK.replace("PURPOSE", purpose))], clock.now())
    world.at(datetime(2026, 1, 13, 16, 0, tzinfo=UTC))  # 10:00 in Chicago
    world.send(
        # No SMS consent (marketing needs a grant), e-mail granted.
        identify("f-1", email="f1@example.com", phone="+14155550133", email_subscribe="opted_in"),
        # No phone at all.
        identify("f-2", email="f2@example.com", email_subscribe="opted_in"),
        # Neither channel reachable for marketing: stays on SMS and is suppressed there.
        identify("f-3", phone="+14155550134", sms_subscribe="unsubscribed"),
    )
    world.send(track("nudge_me", "f-1"), track("nudge_me", "f-2"), track("nudge_me", "f-3"), track("nudge_me", "m-1"))
    world.run()
    details = _decision_details(db, ws)
    sms_to = {m.to for m in world.outbox("sms")}
    email_to = {m.to for m in world.outbox("email")}
    assert "+14155550132" in sms_to  # m-1 opted in to SMS: the first channel
    assert details[("m-1", "sent", None, "sms")] is None
    assert details[("f-2", "sent", None, "email")] == {"fallback_from": "sms", "fallback_reason": "no_address"}
    if purpose == "marketing":
        assert email_to == {"f1@example.com", "f2@example.com"}
        assert details[("f-1", "sent", None, "email")] == {"fallback_from": "sms", "fallback_reason": "no_consent"}
        assert ("f-3", "suppressed", "no_consent", "sms") in details
    else:
        # A transactional message needs no grant: f-1 gets the SMS; f-3 revoked SMS for all
        # purposes and has no e-mail address, so nothing can go.
        assert email_to == {"f2@example.com"} and "+14155550133" in sms_to
        assert ("f-3", "suppressed", "no_consent", "sms") in details
