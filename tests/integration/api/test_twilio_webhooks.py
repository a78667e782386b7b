"""POST /webhooks/twilio/{workspace}/sms and /status over real loopback HTTP, on SQLite and
PostgreSQL, signed with the official twilio RequestValidator for the exact public URL."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from signalbox.channels import service as channels
from signalbox.connectors import twilio
from signalbox.consent import service as consent
from signalbox.consent.models import ConsentChange
from signalbox.events.models import Event
from signalbox.identity import service as identity
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.journeys.models import Decision
from signalbox.journeys.worker import Worker
from signalbox.workspaces import service as workspaces
from tests import twilio_factory as tf
from tests.factories import identify, track
from tests.integration.journeys.test_apply import TEMPLATES

START = datetime(2026, 1, 13, 16, 0, tzinfo=UTC)  # 10:00 in Chicago: no quiet hours


@pytest.fixture
def clock():
    from signalbox.core.clock import FixedClock

    return FixedClock(START)


@pytest.fixture
def ws(db, settings, workspace, clock):
    info = workspaces.get_workspace(db, workspace.id)
    twilio.connect(
        db, settings, info, clock.now(), account_sid=tf.ACCOUNT_SID, auth_token=tf.AUTH_TOKEN, from_number=tf.FROM
    )
    workspaces.set_public_base_url(db, info.id, tf.BASE)
    Pipeline(db, settings, clock).ingest(
        info,
        BatchInput(
            [
                {
                    **identify("m-1", phone=tf.MEMBER, timezone="America/Chicago", sms_subscribe="opted_in"),
                    "timestamp": (START - timedelta(minutes=5)).isoformat(),
                }
            ]
        ),
    )
    return info


def sms_consent(db, ws_id, user_id="m-1"):
    return identity.profile_document(db, ws_id, user_id).consent["sms"]["status"]


def changes(db, ws_id):
    with db.session() as session:
        return list(
            session.scalars(
                select(ConsentChange)
                .where(ConsentChange.workspace_id == ws_id, ConsentChange.source == "twilio")
                .order_by(ConsentChange.id)
            )
        )


def replies(db, ws_id):
    with db.session() as session:
        return list(session.scalars(select(Event).where(Event.workspace_id == ws_id, Event.event == "sms_replied")))


def message_text(answer):
    root = ET.fromstring(answer.content)
    assert root.tag == "Response"
    return [m.text for m in root.iter("Message")]


def test_a_wrong_or_missing_signature_is_403_and_stores_nothing(clocked_server, db, ws):
    params = tf.inbound("STOP")
    wrong = tf.post(clocked_server, ws.name, "sms", params, token="0" * 32)
    assert wrong.status_code == 403 and wrong.json()["code"] == "bad_signature"
    missing = tf.post(clocked_server, ws.name, "sms", params, signature="")
    assert missing.status_code == 403 and missing.json()["code"] == "missing_signature"
    # Signed over the URL the request reached (the Host header), not the public one: refused.
    local = tf.post(
        clocked_server, ws.name, "sms", params, signed_url=f"{clocked_server.url}/webhooks/twilio/{ws.name}/sms"
    )
    assert local.status_code == 403
    # The body altered after signing.
    signature = tf.sign(f"{tf.BASE}/webhooks/twilio/{ws.name}/sms", params)
    altered = tf.post(clocked_server, ws.name, "sms", {**params, "Body": "hello"}, signature=signature)
    assert altered.status_code == 403
    status = tf.post(
        clocked_server, ws.name, "status", {"MessageSid": tf.message_sid(), "MessageStatus": "sent"}, token="0" * 32
    )
    assert status.status_code == 403
    assert sms_consent(db, ws.id) == "granted" and changes(db, ws.id) == [] and replies(db, ws.id) == []


def test_unknown_workspace_404_and_bad_fields_400(clocked_server, db, ws):
    assert tf.post(clocked_server, "no-such-ws", "sms", tf.inbound("hi")).status_code == 404
    bad_sid = tf.post(clocked_server, ws.name, "sms", {**tf.inbound("hi"), "MessageSid": "nope", "SmsSid": ""})
    assert bad_sid.status_code == 400 and "MessageSid" in bad_sid.json()["message"]
    bad_from = tf.post(clocked_server, ws.name, "sms", {**tf.inbound("hi"), "From": "not a phone"})
    assert bad_from.status_code == 400 and "From" in bad_from.json()["message"]
    bad_status = tf.post(clocked_server, ws.name, "status", {"MessageSid": tf.message_sid(), "MessageStatus": "lost"})
    assert bad_status.status_code == 400 and "MessageStatus" in bad_status.json()["message"]


def test_not_connected_is_refused_with_a_reason(clocked_server, db, settings, clock):
    other = workspaces.create_workspace(db, "not-connected")
    answer = tf.post(clocked_server, other.name, "sms", tf.inbound("hi"))
    assert answer.status_code == 403 and answer.json()["code"] == "not_connected"


def test_behind_a_tls_proxy_with_and_without_443(clocked_server, db, ws):
    path = f"/webhooks/twilio/{ws.name}/sms"
    for signed in (f"https://sb.example.com:443{path}", f"https://sb.example.com{path}"):
        answer = tf.post(clocked_server, ws.name, "sms", tf.inbound("hello"), signed_url=signed)
        assert answer.status_code == 200, answer.text
    # The public base itself written with :443 accepts a signature over the URL without it.
    workspaces.set_public_base_url(db, ws.id, "https://sb.example.com:443")
    answer = tf.post(clocked_server, ws.name, "sms", tf.inbound("again"), signed_url=f"https://sb.example.com{path}")
    assert answer.status_code == 200, answer.text
    assert len(replies(db, ws.id)) == 3


@pytest.mark.parametrize(
    "word", ["STOP", "stop", "  Stop ", "STOPALL", "unsubscribe", "Cancel", "END", "quit", "REVOKE", "OptOut", "stop\n"]
)
def test_each_stop_word_revokes_before_the_answer(clocked_server, db, ws, word):
    params = tf.inbound(word)
    answer = tf.post(clocked_server, ws.name, "sms", params)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/xml")
    assert message_text(answer) == []  # Twilio confirms STOP itself by default
    # Already revoked when the answer arrived.
    assert sms_consent(db, ws.id) == "revoked"
    (change,) = changes(db, ws.id)
    assert (change.channel, change.status, change.purpose) == ("sms", "revoked", "all")
    assert change.evidence["message_sid"] == params["MessageSid"]
    assert replies(db, ws.id) == []


@pytest.mark.parametrize("word", ["START", "yes", " Unstop "])
def test_start_words_grant_again(clocked_server, db, ws, word):
    assert tf.post(clocked_server, ws.name, "sms", tf.inbound("STOP")).status_code == 200
    assert sms_consent(db, ws.id) == "revoked"
    answer = tf.post(clocked_server, ws.name, "sms", tf.inbound(word))
    assert answer.status_code == 200 and message_text(answer) == []
    assert sms_consent(db, ws.id) == "granted"
    assert [c.status for c in changes(db, ws.id)] == ["revoked", "granted"]


def test_help_answers_twiml_with_the_help_text(clocked_server, db, settings, ws, clock):
    answer = tf.post(clocked_server, ws.name, "sms", tf.inbound("HELP"))
    assert answer.status_code == 200
    assert answer.text.replace('<?xml version="1.0" encoding="UTF-8"?>', "").startswith("<Response><Message>")
    assert message_text(answer) == [twilio.DEFAULT_HELP]
    twilio.connect(db, settings, ws, clock.now(), help_text="Northside Gym: call 415-555-0100 & ask <front desk>")
    answer = tf.post(clocked_server, ws.name, "sms", tf.inbound(" info "))
    assert message_text(answer) == ["Northside Gym: call 415-555-0100 & ask <front desk>"]
    assert changes(db, ws.id) == [] and replies(db, ws.id) == []


def test_a_plain_reply_is_an_sms_replied_event_on_the_phone_profile(clocked_server, db, ws):
    params = tf.inbound("Running late, be there at 6")
    answer = tf.post(clocked_server, ws.name, "sms", params)
    assert answer.status_code == 200 and message_text(answer) == []
    assert ET.fromstring(answer.content).tag == "Response" and len(ET.fromstring(answer.content)) == 0
    (event,) = replies(db, ws.id)
    assert event.properties == {
        "body": "Running late, be there at 6",
        "from": tf.MEMBER,
        "message_sid": params["MessageSid"],
    }
    assert identity.profile_document(db, ws.id, "m-1").event_counts.get("total", 0) >= 1
    # Another keyword (not ours) is a reply too.
    tf.post(clocked_server, ws.name, "sms", tf.inbound("SUBSCRIBE"))
    assert len(replies(db, ws.id)) == 2
    assert sms_consent(db, ws.id) == "granted"


def test_a_stop_from_an_unknown_number_still_binds(clocked_server, db, ws):
    stranger = "+14155550177"
    assert tf.post(clocked_server, ws.name, "sms", tf.inbound("STOP", sender=stranger)).status_code == 200
    with db.session() as session:
        root = identity.find_root(session, ws.id, ("phone", stranger))
        assert root is not None
        assert consent.history(session, ws.id, [root])[-1].status == "revoked"


def test_a_message_sid_seen_before_changes_nothing(clocked_server, db, ws):
    stop = tf.inbound("STOP")
    assert tf.post(clocked_server, ws.name, "sms", stop).status_code == 200
    assert tf.post(clocked_server, ws.name, "sms", tf.inbound("START")).status_code == 200
    again = tf.post(clocked_server, ws.name, "sms", stop)  # Twilio retries the STOP
    assert again.status_code == 200 and message_text(again) == []
    assert sms_consent(db, ws.id) == "granted"  # the later START still stands
    assert len(changes(db, ws.id)) == 2
    reply = tf.inbound("see you")
    for _ in range(3):
        assert tf.post(clocked_server, ws.name, "sms", reply).status_code == 200
    assert len(replies(db, ws.id)) == 1


def test_stop_reply_answers_once_per_opt_out(clocked_server, db, settings, ws, clock):
    twilio.connect(db, settings, ws, clock.now(), stop_reply="You are unsubscribed from Northside texts.")
    first = tf.post(clocked_server, ws.name, "sms", tf.inbound("STOP"))
    assert message_text(first) == ["You are unsubscribed from Northside texts."]
    second = tf.post(clocked_server, ws.name, "sms", tf.inbound("stop"))
    assert message_text(second) == []
    tf.post(clocked_server, ws.name, "sms", tf.inbound("START"))
    third = tf.post(clocked_server, ws.name, "sms", tf.inbound("QUIT"))
    assert message_text(third) == ["You are unsubscribed from Northside texts."]


def test_stop_words_sent_together_are_confirmed_once(clocked_server, db, settings, ws, clock):
    from concurrent.futures import ThreadPoolExecutor

    twilio.connect(db, settings, ws, clock.now(), stop_reply="You are unsubscribed.")
    words = ["STOP", "stop", " Quit ", "END", "cancel", "STOPALL"]
    with ThreadPoolExecutor(len(words)) as pool:
        answers = list(pool.map(lambda w: tf.post(clocked_server, ws.name, "sms", tf.inbound(w)), words))
    assert all(a.status_code == 200 for a in answers)
    assert sorted(len(message_text(a)) for a in answers) == [0] * (len(words) - 1) + [1]
    assert sms_consent(db, ws.id) == "revoked" and len(changes(db, ws.id)) == len(words)


def test_status_callbacks_never_move_backwards(clocked_server, db, ws, clock):
    sid = tf.message_sid()
    row = channels.begin_call(db, ws.id, "enr:text", "sms", tf.MEMBER, "hi", "twilio", clock.now())
    channels.finish_call(db, row, clock.now(), "queued", provider_id=sid)

    def status(value):
        answer = tf.post(clocked_server, ws.name, "status", {"MessageSid": sid, "MessageStatus": value})
        assert answer.status_code == 200, answer.text
        return answer.json()["outcome"]

    assert status("sending") == "updated"
    assert status("delivered") == "updated"
    assert status("sent") == "stale"  # late, out of order
    assert status("sending") == "stale"
    assert status("undelivered") == "stale"  # a final status stays
    (call,) = channels.list_outbox(db, ws.id, provider="twilio")
    assert (call.provider_id, call.status) == (sid, "delivered")
    other = tf.post(clocked_server, ws.name, "status", {"MessageSid": tf.message_sid(), "MessageStatus": "sent"})
    assert other.json()["outcome"] == "unknown_message"


def test_a_status_that_overtakes_the_api_answer_still_lands(clocked_server, db, ws, clock):
    """The callback URL carries our outbox row: a status arriving before the MessageSid is
    stored finds its message, and the API's later `queued` does not move it back."""
    sid = tf.message_sid()
    row = channels.begin_call(db, ws.id, "enr:early", "sms", tf.MEMBER, "hi", "twilio", clock.now())
    early = tf.post(
        clocked_server, ws.name, "status", {"MessageSid": sid, "MessageStatus": "delivered"}, query=f"call={row}"
    )
    assert early.status_code == 200 and early.json()["outcome"] == "updated"
    channels.finish_call(db, row, clock.now(), "queued", provider_id=sid)
    (call,) = channels.list_outbox(db, ws.id, provider="twilio")
    assert (call.provider_id, call.status) == (sid, "delivered")
    # The id in the URL is signed with it: changing it breaks the signature.
    forged = tf.post(
        clocked_server,
        ws.name,
        "status",
        {"MessageSid": tf.message_sid(), "MessageStatus": "failed"},
        query=f"call={row + 1}",
        signed_url=f"{tf.BASE}/webhooks/twilio/{ws.name}/status?call={row}",
    )
    assert forged.status_code == 403


PLAYBOOK = """\
playbook: text-later
name: Text later
purpose: transactional
trigger: {event: text_me}
entry: {reentry: every_time}
holdout: 0%
steps:
  - id: wait
    wait: 1h
  - id: text
    send: {channel: sms, template: payment-failed-sms}
"""


def test_stop_suppresses_an_already_scheduled_step(clocked_server, db, settings, ws, clock):
    journeys.apply(db, ws.id, "template", list(TEMPLATES.items()), clock.now())
    journeys.apply(db, ws.id, "playbook", [("text-later.yaml", PLAYBOOK)], clock.now())
    Pipeline(db, settings, clock).ingest(ws, BatchInput([{**track("text_me", "m-1"), "timestamp": START.isoformat()}]))
    worker = Worker(db, settings, clock, stale_every_seconds=1e9)
    worker.drain()
    (enr,) = journeys.list_enrollments(db, ws.id, playbook="text-later")
    assert enr.status == "active"
    due = START + timedelta(hours=1)
    clock.set(due - timedelta(seconds=1))
    assert tf.post(clocked_server, ws.name, "sms", tf.inbound("Stop")).status_code == 200
    clock.set(due)  # one second after the STOP
    worker.drain()
    assert channels.list_outbox(db, ws.id, channel="sms") == []
    with db.session() as session:
        decisions = [
            (d.step_id, d.outcome, d.reason)
            for d in session.scalars(select(Decision).where(Decision.workspace_id == ws.id))
        ]
    assert ("text", "suppressed", "no_consent") in decisions


def test_a_reply_no_database_can_store_is_rejected_not_a_5xx(clocked_server, db, ws):
    answer = tf.post(clocked_server, ws.name, "sms", tf.inbound("hi\x00there"))
    # Rejected into the dead-letter list (docs/HTTP.md), as a Segment message with it would be;
    # a retry by Twilio could not change that, so the answer is a 200 <Response/>.
    assert answer.status_code == 200 and message_text(answer) == [], answer.text
    assert replies(db, ws.id) == []
