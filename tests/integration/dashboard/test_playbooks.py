"""The Playbooks pages over HTTP: numbers per playbook from the viewer's people only (the
report's own statistics on a scoped set of enrolments), the funnel per step, what held people
back, and pause/resume for owners and managers only, through the engine's own switch."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from signalbox.accounts import service as accounts
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import report
from signalbox.journeys import service as journeys
from signalbox.journeys.worker import Worker
from signalbox.workspaces import service as workspaces
from tests.dashboard_factory import PASSWORD, sign_in
from tests.factories import identify, track
from tests.integration.journeys.test_apply import TEMPLATES
from tests.unit.journeys.test_spec import GOOD

KEY = "failed-payment-recovery"
# Noon in Chicago on a Tuesday: no quiet hours hold the first e-mail.
NOON = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
PEOPLE = {f"a-{n}": "loc-01" for n in range(8)} | {f"c-{n}": "loc-03" for n in range(8)}
PAYERS = {"a-0", "a-1", "a-2", "c-0"}


@pytest.fixture
def world(db, settings, users, clock):
    clock.set(NOON)
    ws = workspaces.get_workspace(db, users.id)
    accounts.create_user(
        db, ws.id, email="manager@example.com", password=PASSWORD, role="manager", locations=["loc-03"], clock=clock
    )
    journeys.apply(db, ws.id, "template", list(TEMPLATES.items()), clock.now())
    journeys.apply(db, ws.id, "playbook", [("fpr.yaml", GOOD.replace("holdout: 10%", "holdout: 40%"))], clock.now())
    pipeline = Pipeline(db, settings, clock)
    worker = Worker(db, settings, clock, stale_every_seconds=1e9)

    def send(*messages):
        stamped = [{**m, "timestamp": clock.now().isoformat()} for m in messages]
        assert not pipeline.ingest(ws, BatchInput(stamped)).rejected

    send(
        *[
            identify(uid, email=f"{uid}@example.com", timezone="America/Chicago", home_location=loc)
            for uid, loc in PEOPLE.items()
        ]
    )
    send(*[track("payment_failed", uid, invoice_id=f"in-{uid}", amount=40) for uid in PEOPLE])
    worker.drain()
    send(*[track("payment_succeeded", uid, invoice_id=f"in-{uid}", amount=40) for uid in sorted(PAYERS)])
    worker.drain()
    return ws, worker


def _mine(db, ws, prefix):
    return [e for e in journeys.list_enrollments(db, ws.id, playbook=KEY) if (e.user_id or "").startswith(prefix)]


def test_the_list_and_detail_count_only_the_viewers_people(browser, second_browser, world, db, users):
    ws, _ = world
    sign_in(browser, users.name, "owner@example.com")
    sign_in(second_browser, users.name, "staff@example.com")

    (everything,) = browser.get("/api/v1/dashboard/playbooks").json()["playbooks"]
    (loc01,) = second_browser.get("/api/v1/dashboard/playbooks").json()["playbooks"]
    assert everything["enrolled"] == {"active": 16 - len(PAYERS), "total": 16}
    assert loc01["enrolled"] == {"active": 8 - 3, "total": 8}  # a-0, a-1 and a-2 paid
    assert everything["name"] == loc01["name"] == "Failed payment recovery"

    # The owner's numbers are the CLI report's, exactly; the staff's are the same statistics
    # on loc-01's enrolments alone.
    whole = report.report(db, ws.id, KEY)
    detail = browser.get(f"/api/v1/dashboard/playbooks/{KEY}").json()
    assert detail["arms"] == whole["arms"] and detail["revenue"] == whole["revenue"]
    assert detail["lift"]["absolute"] == whole["lift"]["absolute"]
    assert detail["lift"]["ci95"] == whole["lift"]["ci95"]
    mine = _mine(db, ws, "a-")
    scoped = report.summarize(KEY, [(e.id, e.holdout, e.exit_reason) for e in mine], {e.id: 40.0 for e in mine})
    staff = second_browser.get(f"/api/v1/dashboard/playbooks/{KEY}").json()
    assert staff["scoped"] is True and staff["arms"] == scoped["arms"]
    assert staff["revenue"]["treated"] + staff["revenue"]["holdout"] == 3 * 40
    assert detail["revenue"]["treated"] + detail["revenue"]["holdout"] == 4 * 40

    # The funnel: everyone got the first e-mail step and moved on to the wait; the five who
    # did not pay wait for the SMS (the next step they will run), nobody is further yet.
    steps = {s["step"]: s for s in staff["funnel"]}
    assert [s["step"] for s in staff["funnel"]][:4] == ["email-now", "wait-a-day", "sms", "wait-for-reply"]
    assert steps["email-now"]["reached"] == 8 and steps["wait-a-day"]["reached"] == 8
    assert steps["sms"]["reached"] == 5 and steps["sms"]["here"] == 5 and steps["wait-for-reply"]["reached"] == 0
    held = sum(e.holdout for e in mine)
    assert steps["email-now"]["outcomes"] == {k: v for k, v in {"sent": 8 - held, "held_out": held}.items() if v}
    assert {s["step"]: s["reached"] for s in detail["funnel"]}["email-now"] == 16
    assert next(s for s in staff["funnel"] if s["step"] == "call")["depth"] == 2

    # Held back: the holdout's decisions, only loc-01's people in the examples.
    reasons = {h["reason"]: h for h in staff["held_back"]}
    if held:
        assert reasons["holdout"]["count"] == held and reasons["holdout"]["people"] == held
        assert all(e["user_id"].startswith("a-") for h in staff["held_back"] for e in h["examples"])
    everyone_held = sum(e.holdout for e in journeys.list_enrollments(db, ws.id, playbook=KEY))
    assert {h["reason"]: h["count"] for h in detail["held_back"]}.get("holdout", 0) == everyone_held


def test_the_pages_render_numbers_and_the_interval(browser, second_browser, world, users):
    sign_in(browser, users.name, "owner@example.com")
    listing = browser.get("/playbooks")
    assert listing.status_code == 200 and f'href="/playbooks/{KEY}"' in listing.text
    assert "16 / 16" not in listing.text and f"{16 - len(PAYERS)} / 16" in listing.text
    page = browser.get(f"/playbooks/{KEY}")
    assert page.status_code == 200
    assert "95% CI" in page.text and "Funnel" in page.text and "What held people back" in page.text
    assert f'action="/playbooks/{KEY}/pause"' in page.text
    sign_in(second_browser, users.name, "staff@example.com")
    staff = second_browser.get(f"/playbooks/{KEY}")
    assert "5 / 8" in second_browser.get("/playbooks").text
    assert "/pause" not in staff.text and "Only an owner or a manager" in staff.text
    assert re.search(r"\ba-\d\b", staff.text) and not re.search(r"\bc-\d\b", staff.text)


def test_unknown_playbook_is_a_404(browser, world, users):
    token = sign_in(browser, users.name, "owner@example.com")
    assert browser.get("/playbooks/nope").status_code == 404
    assert browser.get("/api/v1/dashboard/playbooks/nope").status_code == 404
    assert browser.get("/api/v1/dashboard/playbooks/" + "x" * 300).status_code == 404
    assert browser.post("/playbooks/nope/pause", data={"csrf_token": token}).status_code == 404
    answer = browser.post("/api/v1/dashboard/playbooks/nope/pause", headers={"X-CSRF-Token": token})
    assert answer.status_code == 404


def test_pause_and_resume_by_a_manager_steer_the_engine(browser, second_browser, world, db, users, clock):
    ws, worker = world
    token = sign_in(browser, users.name, "manager@example.com")
    done = browser.post(f"/playbooks/{KEY}/pause", data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["location"] == f"/playbooks/{KEY}"
    assert browser.get("/api/v1/dashboard/playbooks").json()["playbooks"][0]["status"] == "paused"
    page = browser.get(f"/playbooks/{KEY}").text
    assert f'action="/playbooks/{KEY}/resume"' in page

    clock.set(NOON + timedelta(days=1, hours=1))
    worker.drain()
    paused = [d for d in journeys.list_decisions(db, ws.id) if d.reason == "playbook_paused"]
    assert len(paused) == 16 - len(PAYERS) and all(d.outcome == "delayed" for d in paused)
    # A day later the session has ended: sign in again. The manager sees loc-03 only.
    token = sign_in(browser, users.name, "manager@example.com")
    held = {h["reason"]: h for h in browser.get(f"/api/v1/dashboard/playbooks/{KEY}").json()["held_back"]}
    assert held["playbook_paused"]["count"] == 8 - 1

    # htmx: the header carries the token, the answer is the page with the new controls.
    again = browser.post(f"/playbooks/{KEY}/resume", headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert again.status_code == 200 and 'id="controls"' in again.text and "Resumed." in again.text
    assert journeys.list_playbooks(db, ws.id)[0].status == "active"
    # The twin: the owner through the header; the admin key needs no CSRF token.
    owner_token = sign_in(second_browser, users.name, "owner@example.com")
    twin = second_browser.post(f"/api/v1/dashboard/playbooks/{KEY}/pause", headers={"X-CSRF-Token": owner_token})
    assert twin.status_code == 200 and twin.json()["status"] == "paused"
    key = {"Authorization": f"Bearer {users.admin_key}"}
    assert second_browser.post(f"/api/v1/dashboard/playbooks/{KEY}/resume", headers=key).json()["status"] == "active"


def test_staff_and_forged_requests_are_refused(browser, world, db, users):
    ws, _ = world
    token = sign_in(browser, users.name, "staff@example.com")
    refused = browser.post(f"/playbooks/{KEY}/pause", data={"csrf_token": token})
    assert refused.status_code == 403 and "Only an owner or a manager" in refused.text
    twin = browser.post(f"/api/v1/dashboard/playbooks/{KEY}/pause", headers={"X-CSRF-Token": token})
    assert twin.status_code == 403 and "owner or a manager" in twin.text
    assert journeys.list_playbooks(db, ws.id)[0].status == "active"

    browser.cookies.clear()
    sign_in(browser, users.name, "owner@example.com")
    assert browser.post(f"/playbooks/{KEY}/pause", data={}).status_code == 403
    assert browser.post(f"/playbooks/{KEY}/pause", data={"csrf_token": token}).status_code == 403  # another's
    assert browser.post(f"/api/v1/dashboard/playbooks/{KEY}/pause").status_code == 403
    assert journeys.list_playbooks(db, ws.id)[0].status == "active"


def test_pages_need_a_session(browser, world):
    assert browser.get("/playbooks").status_code == 303
    assert browser.get("/api/v1/dashboard/playbooks").status_code == 401
    assert browser.post(f"/playbooks/{KEY}/pause").status_code == 303
