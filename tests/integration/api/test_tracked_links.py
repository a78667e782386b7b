"""Tracked links end to end: a playbook's message carries /l/ links, a click over real HTTP
redirects to the place with UTM tags and lands on the profile as an event with the playbook
and step."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select

from signalbox.channels import service as channels
from signalbox.channels.models import SendLink
from signalbox.events.models import Event
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.journeys.worker import Worker
from signalbox.workspaces import service as workspaces
from tests.factories import identify, track
from tests.unit.journeys.test_spec import GOOD

INVOICE = "https://invoice.stripe.com/i/acct_test/in_42"
TEMPLATES = {
    "payment-failed-1.yaml": (
        "template: payment-failed-1\nchannel: email\nsubject: Your payment\n"
        "body: 'Update your card: {{ links.update_payment }} Questions? https://gym.example/faq.'\n"
        "html: '<p><a href=\"{{ links.update_payment }}\">Update your card</a></p>'\n"
    ),
    "payment-failed-2.yaml": "template: payment-failed-2\nchannel: email\nsubject: Still open\nbody: Update it\n",
    "payment-failed-sms.yaml": (
        "template: payment-failed-sms\nchannel: sms\nbody: 'Card declined: {{ links.update_payment }}'\n"
    ),
}


def _clicks(db, workspace_id, name):
    with db.session() as session:
        return list(
            session.scalars(
                select(Event).where(Event.workspace_id == workspace_id, Event.event == name).order_by(Event.id)
            )
        )


def _token(body, base):
    return re.findall(re.escape(base) + r"/l/([A-Za-z0-9_-]{22})", body)


def test_links_in_sent_messages_are_tracked_and_a_click_is_on_the_profile(
    clocked_server, clock, db, settings, workspace
):
    clock.set(datetime(2026, 3, 9, 16, 0, tzinfo=UTC))  # 11:00 in Chicago
    ws = workspaces.get_workspace(db, workspace.id)
    base = clocked_server.url
    workspaces.set_public_base_url(db, ws.id, base)
    journeys.apply(db, ws.id, "template", list(TEMPLATES.items()), clock.now())
    journeys.apply(db, ws.id, "playbook", [("fpr.yaml", GOOD.replace("holdout: 10%", "holdout: 0%"))], clock.now())
    Pipeline(db, settings, clock).ingest(
        ws,
        BatchInput(
            [
                identify("m-1", email="pat@example.com", phone="+14155550123", sms_subscribe="opted_in"),
                track("payment_failed", "m-1", invoice_id="in_42", amount=40, hosted_invoice_url=INVOICE),
            ]
        ),
    )
    worker = Worker(db, settings, clock, stale_every_seconds=1e9)
    worker.drain()
    (mail,) = channels.list_outbox(db, ws.id, channel="email")
    pay, faq = _token(mail.body, base)
    assert "stripe.com" not in mail.body and mail.body.endswith("/faq.".replace("/faq", f"/l/{faq}"))
    with db.session() as session:
        stored = {row.token: row for row in session.scalars(select(SendLink).where(SendLink.workspace_id == ws.id))}
    (enrolment,) = journeys.list_enrollments(db, ws.id)
    assert set(stored) == {pay, faq} and {r.send_key for r in stored.values()} == {f"{enrolment.id}:email-now"}

    # HEAD (a link checker) learns where it goes and counts nothing.
    peek = httpx.head(f"{base}/l/{pay}")
    assert peek.status_code == 302 and _clicks(db, ws.id, "email_clicked") == []
    answer = httpx.get(f"{base}/l/{pay}")
    assert answer.status_code == 302 and answer.headers["cache-control"] == "no-store"
    where = urlsplit(answer.headers["location"])
    assert f"{where.scheme}://{where.netloc}{where.path}" == INVOICE
    assert parse_qs(where.query) == {
        "utm_source": ["signalbox"],
        "utm_medium": ["email"],
        "utm_campaign": ["failed-payment-recovery"],
        "utm_content": ["email-now"],
    }
    # A double click in the same minute is one click; the next day's is another.
    assert httpx.get(f"{base}/l/{pay}").status_code == 302
    (click,) = _clicks(db, ws.id, "email_clicked")
    assert click.properties["playbook"] == "failed-payment-recovery" and click.properties["step"] == "email-now"
    assert click.properties["send"] == f"{enrolment.id}:email-now" and click.properties["channel"] == "email"
    assert click.user_id == "m-1"

    # The SMS a day later: its link is tracked too, and a click is an sms_link_clicked.
    clock.set(clock.now() + timedelta(hours=25))
    worker.drain()
    (text,) = channels.list_outbox(db, ws.id, channel="sms")
    (sms_token,) = _token(text.body, base)
    assert sms_token not in (pay, faq)  # another send, another token
    assert httpx.get(f"{base}/l/{sms_token}").status_code == 302
    (sms_click,) = _clicks(db, ws.id, "sms_link_clicked")
    assert sms_click.properties["step"] == "sms" and "utm_medium=sms" in sms_click.properties["url"]
    assert httpx.get(f"{base}/l/{pay}").status_code == 302
    assert len(_clicks(db, ws.id, "email_clicked")) == 2


def test_an_unknown_or_malformed_link_is_a_404_page(clocked_server):
    for token in ("A" * 22, "nope", "A" * 200, "%2e%2e"):
        answer = httpx.get(f"{clocked_server.url}/l/{token}")
        assert answer.status_code == 404, token
        assert "text/html" in answer.headers["content-type"]


def test_a_click_by_someone_known_only_by_address_lands_on_their_profile(
    clocked_server, clock, db, settings, workspace
):
    """Stripe makes people from a customer's e-mail alone: no user id to send the click with."""
    clock.set(datetime(2026, 3, 9, 16, 0, tzinfo=UTC))
    ws = workspaces.get_workspace(db, workspace.id)
    workspaces.set_public_base_url(db, ws.id, clocked_server.url)
    journeys.apply(db, ws.id, "template", list(TEMPLATES.items()), clock.now())
    journeys.apply(db, ws.id, "playbook", [("fpr.yaml", GOOD.replace("holdout: 10%", "holdout: 0%"))], clock.now())
    Pipeline(db, settings, clock).ingest(
        ws,
        BatchInput(
            [
                identify(anonymous_id="stripe-cus-1", email="lee@example.com"),
                track(
                    "payment_failed",
                    anonymous_id="stripe-cus-1",
                    invoice_id="in_7",
                    amount=40,
                    hosted_invoice_url=INVOICE,
                ),
            ]
        ),
    )
    Worker(db, settings, clock, stale_every_seconds=1e9).drain()
    (mail,) = channels.list_outbox(db, ws.id, channel="email")
    (enrolment,) = journeys.list_enrollments(db, ws.id)
    assert httpx.get(f"{clocked_server.url}/l/{_token(mail.body, clocked_server.url)[0]}").status_code == 302
    (click,) = _clicks(db, ws.id, "email_clicked")
    trigger = _clicks(db, ws.id, "payment_failed")[0]
    assert click.profile_id == trigger.profile_id and click.properties["send"] == f"{enrolment.id}:email-now"


def test_update_payment_links_only_to_stripe(clocked_server, clock, db, settings, workspace):
    """The write key is public (browsers hold it): a forged payment_failed must not make the
    business's own message link to a page of the sender's choosing."""
    clock.set(datetime(2026, 3, 9, 16, 0, tzinfo=UTC))
    ws = workspaces.get_workspace(db, workspace.id)
    workspaces.set_public_base_url(db, ws.id, clocked_server.url)
    journeys.apply(db, ws.id, "template", list(TEMPLATES.items()), clock.now())
    journeys.apply(db, ws.id, "playbook", [("fpr.yaml", GOOD.replace("holdout: 10%", "holdout: 0%"))], clock.now())
    forged = "https://evil.example/pay"
    Pipeline(db, settings, clock).ingest(
        ws,
        BatchInput(
            [
                identify("m-5", email="kim@example.com"),
                track("payment_failed", "m-5", invoice_id="in_5", amount=40, hosted_invoice_url=forged),
            ]
        ),
    )
    Worker(db, settings, clock, stale_every_seconds=1e9).drain()
    # This template has no fallback for the link, so the step fails visibly instead of sending.
    assert all("evil.example" not in m.body for m in channels.list_outbox(db, ws.id))
    with db.session() as session:
        targets = [row.url for row in session.scalars(select(SendLink).where(SendLink.workspace_id == ws.id))]
    assert all("evil.example" not in url for url in targets)
    (decision,) = [d for d in journeys.list_decisions(db, ws.id) if d.step == "email-now"]
    assert (decision.outcome, decision.reason) == ("failed", "template_error")
