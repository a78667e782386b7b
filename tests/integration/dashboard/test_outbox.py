"""The Outbox page over HTTP: every message as its recipient would see it, newest first, a
page at a time, filtered by channel, and only the messages to the viewer's people."""

from __future__ import annotations

import re
from datetime import timedelta

from signalbox.channels import service as channels
from signalbox.channels.schemas import Email
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.overview import outbox as overview_outbox
from tests.dashboard_factory import sign_in
from tests.factories import identify, phone
from tests.integration.dashboard.test_playbooks import KEY, NOON, PAYERS, PEOPLE, world  # noqa: F401 (a fixture)


def _sms_day(world, clock):  # noqa: F811
    """A day later the SMS step runs for those who did not pay (a phone each)."""
    _, worker = world
    clock.set(NOON + timedelta(days=1, hours=1))
    worker.drain()


def test_staff_see_only_messages_to_their_people(browser, second_browser, world, db, users):  # noqa: F811
    ws, _ = world
    sign_in(browser, users.name, "owner@example.com")
    sign_in(second_browser, users.name, "staff@example.com")
    treated = [e for e in journeys.list_enrollments(db, ws.id, playbook=KEY) if not e.holdout]
    everything = browser.get("/api/v1/dashboard/outbox").json()
    assert len(everything["messages"]) == len(treated) == len(channels.list_outbox(db, ws.id))
    mine = second_browser.get("/api/v1/dashboard/outbox").json()["messages"]
    assert {m["to"] for m in mine} == {f"{e.user_id}@example.com" for e in treated if e.user_id.startswith("a-")}
    assert all(m["playbook"] == KEY and m["step"] == "email-now" and m["channel"] == "email" for m in mine)
    assert mine[0]["subject"] == "Your payment" and mine[0]["body"].startswith("Hi a-")
    page = second_browser.get("/outbox")
    assert page.status_code == 200
    assert not re.search(r"c-\d@example\.com", page.text) and re.search(r"a-\d@example\.com", page.text)
    assert "Your payment" in page.text and "From" in page.text


def test_a_message_with_no_ledger_row_is_only_for_those_who_see_everything(browser, world, db, users, clock):  # noqa: F811
    ws, _ = world
    sandbox = channels.SandboxProvider(db, clock)
    sandbox.send_email(ws.id, Email("someone@example.com", "Test", "<!doctype html><p>Hi <b>there</b></p>"), "manual")
    sign_in(browser, users.name, "owner@example.com")
    newest = browser.get("/api/v1/dashboard/outbox").json()["messages"][0]
    assert newest["to"] == "someone@example.com" and newest["playbook"] is None
    page = browser.get("/outbox?channel=email").text
    # HTML mail is shown inside a sandboxed frame, escaped into srcdoc: never live on the page.
    assert 'sandbox="" srcdoc="&lt;meta http-equiv=&#34;Content-Security-Policy&#34;' in page
    assert "&lt;!doctype html&gt;&lt;p&gt;Hi &lt;b&gt;there&lt;/b&gt;&lt;/p&gt;" in page
    assert "<b>there</b>" not in page
    browser.cookies.clear()
    sign_in(browser, users.name, "staff@example.com")
    assert "someone@example.com" not in browser.get("/outbox").text
    assert all(m["to"] != "someone@example.com" for m in browser.get("/api/v1/dashboard/outbox").json()["messages"])


def test_an_emails_html_part_is_what_the_page_shows(browser, world, db, users, clock):  # noqa: F811
    ws, _ = world
    sandbox = channels.SandboxProvider(db, clock)
    html = '<p>Update your card <a href="https://pay.example.com/x">here</a></p><script>alert(1)</script>'
    sandbox.send_email(
        ws.id, Email("someone@example.com", "Card", "Update your card: https://pay.example.com/x", html), "k"
    )
    sign_in(browser, users.name, "owner@example.com")
    newest = browser.get("/api/v1/dashboard/outbox").json()["messages"][0]
    assert newest["html"] == html and newest["body"].startswith("Update your card:")
    page = browser.get("/outbox?channel=email").text
    # Previewed, its links lead nowhere (a look is not a click on the customer's profile).
    assert "&lt;p&gt;Update your card &lt;a href=&#34;#&#34;&gt;here&lt;/a&gt;" in page
    assert "pay.example.com/x&#34;" not in page and "<script>alert(1)</script>" not in page


def test_channel_filter_pages_and_sms_bubbles(browser, world, db, users, clock, settings):  # noqa: F811
    ws, _ = world

    Pipeline(db, settings, clock).ingest(
        ws,
        BatchInput(
            [
                {**identify(uid, phone=phone(n), sms_subscribe="opted_in"), "timestamp": clock.now().isoformat()}
                for n, uid in enumerate(PEOPLE)
            ]
        ),
    )
    _sms_day(world, clock)
    texts = channels.list_outbox(db, ws.id, channel="sms")
    assert texts, "the SMS step sent nothing"
    sign_in(browser, users.name, "owner@example.com")
    sms = browser.get("/api/v1/dashboard/outbox?channel=sms").json()["messages"]
    assert len(sms) == len(texts) and all(m["channel"] == "sms" for m in sms)
    assert sms[0]["segments"] == 1 and sms[0]["encoding"] == "gsm-7"
    page = browser.get("/outbox?channel=sms").text
    assert 'class="bubble">Your card was declined<' in page and "1 segment (gsm-7)" in page

    # Pages of two, newest first, by the id cursor; the last page has no next.
    seen, before = [], None
    while True:
        query = {"before": before} if before else {}
        got = overview_outbox.outbox_page(db, ws.id, None, limit=2, **query)
        seen.extend(m.id for m in got.messages)
        before = got.next_before
        if before is None:
            break
    everything = [m.id for m in overview_outbox.outbox_page(db, ws.id, None, limit=1000).messages]
    assert seen == everything == sorted(everything, reverse=True)
    first = browser.get("/outbox").text
    assert "Older messages" in first or len(everything) <= overview_outbox.PAGE_SIZE

    fax = browser.get("/api/v1/dashboard/outbox?channel=fax")
    assert fax.status_code == 400 and "channel must be one of email, sms" in fax.text
    assert browser.get("/api/v1/dashboard/outbox?before=0").status_code == 400
    assert browser.get("/outbox?before=abc").status_code == 400


def test_outbox_needs_a_session(browser, world):  # noqa: F811
    assert browser.get("/outbox").status_code == 303
    assert browser.get("/api/v1/dashboard/outbox").status_code == 401
