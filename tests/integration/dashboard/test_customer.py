"""The customers search and a customer's page over HTTP, on both databases: one timeline of
every kind of thing that happened to a person, the location rule (a 404 for anyone the viewer
may not see, in pages and twins alike), take over (automation paused, then resumed) and input
that must never become a 500."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from signalbox.accounts import service as accounts
from signalbox.channels import service as channels
from signalbox.core.clock import FixedClock
from signalbox.identity import service as identity
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.journeys.worker import Worker
from signalbox.workspaces import service as workspaces
from tests.dashboard_factory import PASSWORD, sign_in
from tests.factories import identify, track
from tests.integration.journeys.test_apply import TEMPLATES
from tests.unit.journeys.test_spec import GOOD

# 02:13 in Chicago on a Tuesday: the e-mail goes now, the SMS waits for the next day.
START = datetime(2026, 1, 13, 8, 13, tzinfo=UTC)
PLAYBOOK = GOOD.replace("holdout: 10%", "holdout: 0%")


@pytest.fixture
def clock():
    return FixedClock(START)


class World:
    def __init__(self, db, settings, clock, workspace):
        self.db, self.clock = db, clock
        self.ws = workspaces.get_workspace(db, workspace.id)
        self.admin_key = workspace.admin_key
        self.pipeline = Pipeline(db, settings, clock)
        self.worker = Worker(db, settings, clock, stale_every_seconds=1e9)

    def send(self, *messages, at=None):
        stamp = (at or self.clock.now()).isoformat()
        result = self.pipeline.ingest(
            self.ws, BatchInput([{**m, "timestamp": m.get("timestamp") or stamp} for m in messages])
        )
        assert not result.rejected, result.rejected

    def at(self, when):
        self.clock.set(when)
        return self.worker.drain()

    def decisions(self, user_id):
        return [(d.step, d.outcome, d.reason) for d in journeys.list_decisions(self.db, self.ws.id, user_id=user_id)]


@pytest.fixture
def world(db, settings, clock, users):
    w = World(db, settings, clock, users)
    now = clock.now()
    journeys.apply(db, w.ws.id, "template", list(TEMPLATES.items()), now)
    journeys.apply(db, w.ws.id, "playbook", [("fpr.yaml", PLAYBOOK)], now)
    earlier = now - timedelta(hours=3)
    # Two records of one person: a web visitor, and the member; later linked (a merge).
    w.send(
        identify(anonymous_id="web-1", email="pat@example.com"), track("page_viewed", anonymous_id="web-1"), at=earlier
    )
    w.send(
        identify(
            "m-1",
            phone="+14155550132",
            first_name="Pat",
            last_name="Lee_100%",
            home_location="loc-01",
            timezone="America/Chicago",
            sms_subscribe="opted_in",
            monthly_value=120,
        ),
        at=earlier + timedelta(minutes=10),
    )
    w.send(identify(anonymous_id="web-1", phone="415-555-0132"), at=earlier + timedelta(minutes=20))
    w.send(identify("m-3", first_name="Robin", home_location="loc-03"), identify("m-none", first_name="Nobody"))
    return w


def _sign_in(browser, ws, email):
    return sign_in(browser, ws.name, email)


def test_the_timeline_has_every_kind_newest_first(browser, world, db, clock):
    world.send(track("payment_failed", "m-1", invoice_id="in_1", amount=49), at=clock.now())
    world.at(START + timedelta(minutes=1))  # the e-mail step: a send and its decision
    with db.transaction() as session:
        channels.create_task(
            session,
            world.ws.id,
            idempotency_key="call-1",
            profile_id=identity.profile_document(db, world.ws.id, "m-1").id,
            user_id="m-1",
            playbook=None,
            title="Called about the card",
            role="front_desk",
            location="loc-01",
            priority="high",
            due_at=START + timedelta(hours=4),
            now=START + timedelta(minutes=2),
        )
        journeys.record_decisions(
            session,
            [
                journeys.decision_row(
                    world.ws.id,
                    "win-back",
                    identity.profile_document(db, world.ws.id, "m-1").id,
                    "m-1",
                    "held_out",
                    None,
                    START + timedelta(minutes=3),
                    step_id="offer",
                    channel="email",
                )
            ],
        )
    _sign_in(browser, world.ws, "staff@example.com")
    answer = browser.get("/api/v1/profiles/m-1/timeline")
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    kinds = [i["kind"] for i in items]
    assert {"event", "send", "decision", "task", "consent", "merge"} <= set(kinds)
    stamps = [datetime.fromisoformat(i["at"]) for i in items]
    assert stamps == sorted(stamps, reverse=True)
    # Newest first: the held-out decision, the task, then the e-mail (its decision and ledger row).
    assert items[0]["kind"] == "decision" and items[0]["detail"]["outcome"] == "held_out"
    assert items[1]["kind"] == "task" and items[1]["summary"].startswith("Task created: Called about the card")
    send = next(i for i in items if i["kind"] == "send")
    assert send["detail"]["channel"] == "email" and send["detail"]["step"] == "email-now"
    merge = next(i for i in items if i["kind"] == "merge")
    assert "linked by anonymous_id" in merge["summary"]
    consent = next(i for i in items if i["kind"] == "consent")
    assert consent["detail"]["channel"] == "sms" and consent["detail"]["status"] == "granted"
    # The oldest thing of all is the visitor's page view, on the node merged in later.
    assert items[-1]["kind"] == "event" and items[-1]["detail"]["type"] == "identify"
    assert any(i["detail"].get("event") == "page_viewed" for i in items)

    # Pages of two: walking `next_before` gives back exactly the same list.
    walked, before = [], None
    while True:
        params = {"limit": 2} | ({"before": before} if before else {})
        got = browser.get("/api/v1/profiles/m-1/timeline", params=params).json()
        walked += got["items"]
        before = got["next_before"]
        if before is None:
            break
    assert walked == items

    html = browser.get("/customers/m-1")
    assert html.status_code == 200
    for text in ("Called about the card", "linked by anonymous_id", "held out", "email-now", "Take over", "web-1"):
        assert text in html.text, text
    assert "1 h ago" not in html.text and "just now" in html.text  # the clock is the server's
    doc = browser.get("/api/v1/customers/m-1").json()
    assert doc["user_id"] == "m-1" and doc["name"] == "Pat Lee_100%"
    assert ("anonymous_id", "web-1") in {(i["type"], i["value"]) for i in doc["identifiers"]}
    assert doc["merges"][0]["detail"]["action"] == "merge"
    sms = next(c for c in doc["consent"] if c["channel"] == "sms")
    assert sms["status"] == "granted" and sms["ledger"][0]["source"] == "identify"
    assert doc["automation"] == {"paused": False, "paused_at": None}
    older = browser.get("/customers/m-1", params={"before": items[2]["at"]})
    assert older.status_code == 200 and "Back to the newest" in older.text
    assert browser.get("/customers/m-1", params={"before": "yesterday"}).status_code == 400
    assert browser.get("/api/v1/profiles/m-1/timeline", params={"before": "nope"}).status_code == 400


def test_scoping_staff_never_sees_another_location_or_nobody(browser, second_browser, world):
    _sign_in(browser, world.ws, "staff@example.com")
    for path in ("/customers/m-3", "/customers/m-none", "/customers/nobody-at-all"):
        page = browser.get(path)
        assert page.status_code == 404 and "No such customer" in page.text, path
    for path in ("/api/v1/customers/m-3", "/api/v1/profiles/m-3/timeline", "/api/v1/customers/m-none"):
        assert browser.get(path).status_code == 404, path
    listed = browser.get("/api/v1/customers").json()["customers"]
    assert [r["user_id"] for r in listed] == ["m-1"]
    assert browser.get("/api/v1/customers", params={"q": "robin"}).json()["customers"] == []
    assert "Robin" not in browser.get("/customers", params={"q": "o"}).text
    assert "m-3" not in browser.get("/customers").text

    _sign_in(second_browser, world.ws, "owner@example.com")
    everyone = {r["user_id"] for r in second_browser.get("/api/v1/customers").json()["customers"]}
    assert everyone == {"m-1", "m-3", "m-none"}
    assert second_browser.get("/customers/m-none").status_code == 200
    assert second_browser.get("/api/v1/customers", params={"q": "ROBIN"}).json()["customers"][0]["user_id"] == "m-3"


def test_a_viewer_of_loc_03_alone_sees_only_that(browser, world, db, clock):
    accounts.create_user(
        db, world.ws.id, email="three@example.com", password=PASSWORD, role="staff", locations=["loc-03"], clock=clock
    )
    csrf = _sign_in(browser, world.ws, "three@example.com")
    assert browser.get("/customers/m-3").status_code == 200
    assert browser.get("/customers/m-1").status_code == 404
    refused = browser.post("/api/v1/customers/m-1/automation", json={"paused": True}, headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 404
    assert journeys.list_decisions(db, world.ws.id, user_id="m-1") == []
    form = browser.post("/customers/m-1/automation", data={"csrf_token": csrf, "paused": "1"})
    assert form.status_code == 404


def test_search_finds_by_any_identifier_and_name(browser, world):
    _sign_in(browser, world.ws, "owner@example.com")

    def ids(q):
        answer = browser.get("/api/v1/customers", params={"q": q})
        assert answer.status_code == 200, answer.text
        return [r["user_id"] for r in answer.json()["customers"]]

    assert ids("pat@EXAMPLE") == ["m-1"]  # an e-mail the member node got by the merge
    assert ids("415 555 0132") == ["m-1"]
    assert ids("m-1") == ["m-1"]
    assert ids("web-1") == ["m-1"]
    assert ids("lee_100%") == ["m-1"]  # % and _ are the user's characters, not wildcards
    assert ids("lee%100") == [] and ids("pat_example") == [] and ids("lee_1000") == []
    page = browser.get("/customers", params={"q": "pat"})
    assert page.status_code == 200 and 'href="/customers/m-1"' in page.text


@pytest.mark.parametrize(
    "q", ["x" * 5000, "a\x00b", "%", "_", "\\", "'; drop table profiles; --", "é", "%_%", "\U0001f600"]
)
def test_awkward_searches_answer_200_or_400(browser, world, q):
    _sign_in(browser, world.ws, "owner@example.com")
    for path in ("/customers", "/api/v1/customers"):
        answer = browser.get(path, params={"q": q})
        assert answer.status_code in (200, 400), (path, q, answer.status_code)
    for path in ("/customers?offset=-1", "/customers?offset=abc", "/api/v1/customers?offset=-1"):
        assert browser.get(path).status_code in (400, 422), path


def test_take_over_pauses_the_next_send_and_resume_lets_it_go(browser, world, db):
    world.send(track("payment_failed", "m-1", invoice_id="in_1", amount=49))
    world.at(START + timedelta(minutes=1))
    assert world.decisions("m-1") == [("email-now", "sent", None)]
    csrf = _sign_in(browser, world.ws, "staff@example.com")  # staff may take over: it is a safety action

    # Without the session's token: refused, nothing paused.
    assert browser.post("/customers/m-1/automation", data={"paused": "1"}).status_code == 403
    assert browser.post("/api/v1/customers/m-1/automation", json={"paused": True}).status_code == 403
    assert browser.get("/api/v1/customers/m-1").json()["automation"]["paused"] is False

    # The plain form: a 303 back to the page, which now says paused.
    answer = browser.post("/customers/m-1/automation", data={"csrf_token": csrf, "paused": "1"})
    assert answer.status_code == 303 and answer.headers["location"] == "/customers/m-1#automation"
    page = browser.get("/customers/m-1")
    assert "Resume automation" in page.text and re.search(r"<strong>Paused</strong>", page.text)
    # The SMS step comes due at 08:00 in Chicago: suppressed, automation_paused.
    world.at(datetime(2026, 1, 14, 14, 0, tzinfo=UTC))
    assert ("sms", "suppressed", "automation_paused") in world.decisions("m-1")
    assert channels.list_outbox(db, world.ws.id, channel="sms") == []
    csrf = _sign_in(browser, world.ws, "staff@example.com")  # a day later: the session has ended
    timeline = browser.get("/api/v1/profiles/m-1/timeline").json()["items"]
    assert timeline[0]["kind"] == "decision" and timeline[0]["detail"]["reason"] == "automation_paused"

    # htmx: the same route, the token as a header; the JSON twin resumes.
    hx = browser.post(
        "/customers/m-1/automation", data={"paused": "0"}, headers={"X-CSRF-Token": csrf, "HX-Request": "true"}
    )
    assert hx.status_code == 303
    assert browser.get("/api/v1/customers/m-1").json()["automation"]["paused"] is False
    paused = browser.post("/api/v1/customers/m-1/automation", json={"paused": True}, headers={"X-CSRF-Token": csrf})
    assert paused.json() == {"user_id": "m-1", "automation": "paused"}
    resumed = browser.post("/api/v1/customers/m-1/automation", json={"paused": False}, headers={"X-CSRF-Token": csrf})
    assert resumed.status_code == 200 and resumed.json()["automation"] == "active"
    assert browser.post(
        "/api/v1/customers/m-1/automation", json={"paused": "yes"}, headers={"X-CSRF-Token": csrf}
    ).status_code in (400, 422)
    assert browser.post("/customers/m-1/automation", data={"csrf_token": csrf, "paused": "maybe"}).status_code == 400

    # Resumed: the playbook's next step (no reply in 48 h: a call for a high-value member) runs.
    world.at(datetime(2026, 1, 16, 14, 1, tzinfo=UTC))
    (task,) = channels.list_tasks(db, world.ws.id)
    assert task.title == "Call about the failed payment"
    assert world.decisions("m-1").count(("sms", "suppressed", "automation_paused")) == 1


def test_pages_need_a_session_and_twins_take_the_admin_key(browser, world):
    assert browser.get("/customers").status_code == 303
    assert browser.get("/customers/m-1").status_code == 303
    assert browser.get("/api/v1/customers").status_code == 401
    admin = {"Authorization": f"Bearer {world.admin_key}"}
    assert browser.get("/api/v1/customers/m-3", headers=admin).status_code == 200
    assert browser.get("/api/v1/customers/m-none", headers=admin).status_code == 200
    # A script has no cookie for a forged form to ride on: no CSRF token needed.
    assert browser.post("/api/v1/customers/m-3/automation", json={"paused": True}, headers=admin).status_code == 200


def test_awkward_ids_and_cursors_answer_4xx(browser, world):
    _sign_in(browser, world.ws, "owner@example.com")
    long_id = "m" * 5000
    for path in (
        "/customers/%00",
        f"/customers/{long_id}",
        "/customers/%25",
        "/api/v1/customers/%00",
        f"/api/v1/profiles/{long_id}/timeline",
        "/api/v1/profiles/m-1/timeline?before=9999-12-31T23:00:00-14:00",
        "/api/v1/profiles/m-1/timeline?before=%00",
        "/api/v1/profiles/m-1/timeline?limit=0",
        "/api/v1/profiles/m-1/timeline?limit=100000",
        "/customers/m-1?before=0001-01-01T00:00:00%2B14:00",
    ):
        answer = browser.get(path)
        assert 400 <= answer.status_code < 500, (path, answer.status_code)


def test_highest_at_risk_first_and_the_score_explained(browser, second_browser, world, db, clock):
    from datetime import date

    from signalbox.profiles import service as profiles

    parts = [
        {"component": "recency", "points": 30, "max": 30, "reason": "inactive_30d", "detail": "last visit 41 days ago"},
        {"component": "payment_friction", "points": 0, "max": 25, "reason": "no_failed_payment", "detail": ""},
    ]
    roots = {uid: identity.profile_document(db, world.ws.id, uid).id for uid in ("m-1", "m-3", "m-none")}
    now = clock.now()
    rows = [
        {"pid": roots["m-1"], "at_risk_score": 20, "at_risk_band": "Low", "at_risk_components": parts[1:]},
        {"pid": roots["m-3"], "at_risk_score": 80, "at_risk_band": "High", "at_risk_components": parts},
    ]
    with db.transaction() as session:
        profiles.store_signals(
            session,
            world.ws.id,
            [
                {
                    **r,
                    "score_as_of": date(2026, 1, 12),
                    "scored_at": now,
                    "churn_probability": 0.42,
                    "churn_model_id": None,
                    "predicted_at": now,
                }
                for r in rows
            ],
            now,
        )
    _sign_in(browser, world.ws, "owner@example.com")
    listed = [r["user_id"] for r in browser.get("/api/v1/customers").json()["customers"]]
    assert listed == ["m-3", "m-1", "m-none"]  # unscored last
    page = browser.get("/customers/m-3")
    assert page.status_code == 200
    assert '<th scope="row">recency' in page.text and "30 of 30" in page.text and "last visit 41 days ago" in page.text
    assert '<rect width="100" height="8"' in page.text and '<rect width="0" height="8"' in page.text
    assert "42 %" in page.text
    score = browser.get("/api/v1/customers/m-3").json()["score"]
    assert score["at_risk_score"] == 80 and score["components"] == parts and score["churn_probability"] == 0.42
    # The staff member of loc-01 and loc-02 never sees m-3's score in any list.
    _sign_in(second_browser, world.ws, "staff@example.com")
    assert [r["user_id"] for r in second_browser.get("/api/v1/customers").json()["customers"]] == ["m-1"]
