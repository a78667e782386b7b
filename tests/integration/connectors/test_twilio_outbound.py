"""Outbound SMS through the official twilio client, pointed (`api_base_url`) at a local HTTP
server that answers like the Messages API: the request the library really makes, routing per
workspace, refusals, and a crash around the call that must never lead to a second call."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from signalbox.channels import service as channels
from signalbox.channels.schemas import Delivery, Sms
from signalbox.connectors import twilio
from signalbox.core.clock import FixedClock
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.journeys.worker import Worker
from signalbox.workspaces import service as workspaces
from tests import twilio_factory as tf
from tests.factories import identify, track
from tests.integration.journeys.test_apply import TEMPLATES

START = datetime(2026, 1, 13, 16, 0, tzinfo=UTC)  # 10:00 in Chicago
PLAYBOOK = """\
playbook: text-now
name: Text now
purpose: transactional
trigger: {event: text_me}
entry: {reentry: every_time}
holdout: 0%
steps:
  - id: text
    send: {channel: sms, template: payment-failed-sms}
"""


@pytest.fixture
def clock():
    return FixedClock(START)


@pytest.fixture
def fake():
    with tf.FakeTwilio() as server:
        yield server


def prepare(db, settings, clock, name, *, connect_to=None):
    ws = workspaces.get_workspace(db, workspaces.create_workspace(db, name).id)
    journeys.apply(db, ws.id, "template", list(TEMPLATES.items()), clock.now())
    journeys.apply(db, ws.id, "playbook", [("text-now.yaml", PLAYBOOK)], clock.now())
    if connect_to is not None:
        twilio.connect(
            db,
            settings,
            ws,
            clock.now(),
            account_sid=tf.ACCOUNT_SID,
            auth_token=tf.AUTH_TOKEN,
            from_number=tf.FROM,
            api_base_url=connect_to,
        )
        workspaces.set_public_base_url(db, ws.id, tf.BASE)
    pipeline = Pipeline(db, settings, clock)
    pipeline.ingest(
        ws,
        BatchInput(
            [
                {
                    **identify("m-1", phone=tf.MEMBER, timezone="America/Chicago", sms_subscribe="opted_in"),
                    "timestamp": START.isoformat(),
                }
            ]
        ),
    )
    return ws, pipeline


def trigger(ws, pipeline):
    pipeline.ingest(ws, BatchInput([{**track("text_me", "m-1"), "timestamp": START.isoformat()}]))


def worker(db, settings, clock):
    return Worker(db, settings, clock, stale_every_seconds=1e9, sms=twilio.sms_sender(db, settings, clock))


def test_a_connected_workspace_sends_through_the_official_client(db, settings, clock, fake):
    ws, pipeline = prepare(db, settings, clock, "tw-on", connect_to=fake.url)
    trigger(ws, pipeline)
    worker(db, settings, clock).drain()
    (request,) = fake.requests
    (call,) = channels.list_outbox(db, ws.id)
    row_id = channels.outbox_row_id(db, ws.id, call.idempotency_key)
    assert request["path"] == f"/2010-04-01/Accounts/{tf.ACCOUNT_SID}/Messages.json"
    assert request["form"] == {
        "To": tf.MEMBER,
        "From": tf.FROM,
        "Body": "Your card was declined",
        "StatusCallback": f"{tf.BASE}/webhooks/twilio/{ws.id}/status?call={row_id}",
    }
    expected = base64.b64encode(f"{tf.ACCOUNT_SID}:{tf.AUTH_TOKEN}".encode()).decode()
    assert request["authorization"] == f"Basic {expected}"
    (call,) = channels.list_outbox(db, ws.id)
    assert (call.provider, call.status, call.to) == ("twilio", "queued", tf.MEMBER)
    assert call.provider_id.startswith("SM") and len(call.provider_id) == 34
    (send,) = channels.list_sends(db, ws.id)
    assert send.status == "sent"
    assert channels.ledger_row(db, ws.id, send.idempotency_key).provider_id == call.provider_id


def test_an_unconnected_workspace_stays_on_the_sandbox(db, settings, clock, fake):
    ws, pipeline = prepare(db, settings, clock, "tw-off")
    trigger(ws, pipeline)
    worker(db, settings, clock).drain()
    assert fake.requests == []
    (call,) = channels.list_outbox(db, ws.id)
    assert (call.provider, call.status) == ("sandbox", "delivered")


def test_a_refusal_is_recorded_and_not_retried(db, settings, clock, fake):
    ws, pipeline = prepare(db, settings, clock, "tw-refused", connect_to=fake.url)
    fake.answer = (
        400,
        {
            "code": 21211,
            "message": "The 'To' number is not a valid phone number.",
            "more_info": "https://www.twilio.com/docs/errors/21211",
            "status": 400,
        },
    )
    trigger(ws, pipeline)
    runner = worker(db, settings, clock)
    runner.drain()
    runner.drain()
    assert len(fake.requests) == 1
    (call,) = channels.list_outbox(db, ws.id)
    assert call.status == "refused" and "21211" in call.error
    (send,) = channels.list_sends(db, ws.id)
    assert send.status == "failed"
    decisions = [(d.step, d.outcome, d.reason) for d in journeys.list_decisions(db, ws.id)]
    assert ("text", "failed", "provider_refused") in decisions


def test_a_crash_around_the_call_is_flagged_never_resent(db, settings, clock, fake, monkeypatch):
    """The process dies after Twilio took the message but before anything was written back:
    the outbox says `calling` with no sid, the ledger `pending`. The next run must not call
    Twilio again; it records `unknown` and decides failed/unknown_delivery for review."""
    from signalbox.journeys import engine as engine_module

    ws, pipeline = prepare(db, settings, clock, "tw-crash", connect_to=fake.url)
    real_finish = engine_module.channels.finish_sends
    crashed = {"n": 0}

    def lost_answer(*args, **kwargs):
        raise ConnectionError("killed before the MessageSid was stored")

    def crash_once(*args, **kwargs):
        crashed["n"] += 1
        if crashed["n"] == 1:
            raise RuntimeError("killed before the outcome was stored")
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(twilio.channels, "finish_call", lost_answer)
    monkeypatch.setattr(engine_module.channels, "finish_sends", crash_once)
    trigger(ws, pipeline)
    worker(db, settings, clock).drain()
    assert len(fake.requests) == 1
    (send,) = channels.list_sends(db, ws.id)
    assert send.status == "pending"
    (call,) = channels.list_outbox(db, ws.id)
    assert (call.status, call.provider_id) == ("calling", None)
    monkeypatch.undo()
    # The lease runs out; a fresh worker picks the step up again.
    clock.set(START.replace(minute=10))
    worker(db, settings, clock).drain()
    assert len(fake.requests) == 1  # never sent twice
    (send,) = channels.list_sends(db, ws.id)
    assert send.status == "unknown"
    decisions = [(d.step, d.outcome, d.reason) for d in journeys.list_decisions(db, ws.id)]
    assert ("text", "failed", "unknown_delivery") in decisions


def test_lookup_is_authoritative(db, settings, clock, fake):
    ws, _ = prepare(db, settings, clock, "tw-lookup", connect_to=fake.url)
    sender = twilio.sms_sender(db, settings, clock)
    assert sender.lookup(ws.id, "never:called") is None
    row = channels.begin_call(db, ws.id, "begun:once", "sms", tf.MEMBER, "hi", "twilio", clock.now())
    assert sender.lookup(ws.id, "begun:once").status == "unknown"
    channels.finish_call(db, row, clock.now(), "queued", provider_id="SM" + "a" * 32)
    assert sender.lookup(ws.id, "begun:once") == Delivery("SM" + "a" * 32, "accepted")
    sandbox_ws, _ = prepare(db, settings, clock, "tw-lookup-sandbox")
    sender.sandbox.send_sms(sandbox_ws.id, Sms(tf.MEMBER, "hi"), "sb:key")
    assert sender.lookup(sandbox_ws.id, "sb:key").status == "delivered"
