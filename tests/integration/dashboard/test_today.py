"""Today over real HTTP: every panel with planted data, the location scoping (a staff member of
loc-01/loc-02 never sees loc-03's people, tasks or numbers), and the Tasks panel's actions."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from signalbox.accounts import service as accounts
from signalbox.channels import service as channels
from signalbox.events.models import Event
from signalbox.identity import service as identity
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys.models import Enrollment
from signalbox.profiles import service as profiles
from signalbox.workspaces import service as workspaces
from tests.dashboard_factory import PASSWORD, sign_in
from tests.factories import identify, track


def _at(message: dict[str, Any], when) -> dict[str, Any]:
    message["timestamp"] = when.isoformat()
    return message


def _component(name: str, points: int, detail: str) -> dict[str, Any]:
    return {"component": name, "points": points, "max": 30, "reason": f"{name}_code", "detail": detail}


def _world(db, settings, clock, workspace) -> dict[str, int]:
    """Members at loc-01, loc-02, loc-03 and one with no location; payments, leads, tasks."""
    now = clock.now()
    ws = workspaces.get_workspace(db, workspace.id)
    day = timedelta(days=1)
    messages = [
        _at(
            identify("a1", first_name="Ann", last_name="Lee", phone="+15550100001", home_location="loc-01"),
            now - 60 * day,
        ),
        _at(identify("b2", first_name="Bob", home_location="loc-02", location_name="Club Two"), now - 60 * day),
        _at(identify("c3", first_name="Carla", last_name="Hidden", home_location="loc-03"), now - 60 * day),
        _at(identify("n0", first_name="Nadia", last_name="Nowhere"), now - 60 * day),
        _at(identify("lead-1", first_name="Lea", home_location="loc-01"), now - 2 * day),
        _at(identify("lead-2", first_name="Leo", home_location="loc-02"), now - 3 * day),
        _at(identify("lead-3", first_name="Lina", last_name="Hidden", home_location="loc-03"), now - 3 * day),
        _at(identify("lead-4", first_name="Lou", home_location="loc-01"), now - 6 * day),
        # a1: one open failure, one recovered, one too old to count
        _at(track("payment_failed", "a1", invoice_id="in_1", amount=49.0, currency="usd"), now - 5 * day),
        _at(track("payment_failed", "a1", invoice_id="in_2", amount=30.0, currency="usd"), now - 10 * day),
        _at(track("payment_succeeded", "a1", invoice_id="in_2", amount=30.0, currency="usd"), now - 8 * day),
        _at(track("payment_failed", "a1", invoice_id="in_0", amount=10.0, currency="usd"), now - 40 * day),
        _at(track("payment_failed", "c3", invoice_id="in_3", amount=77.0, currency="usd"), now - 2 * day),
        # lead-1 booked after their lead (answered); lead-2 and lead-3 are waiting
        _at(track("lead_created", "lead-1"), now - 2 * day),
        _at(track("class_booked", "lead-1"), now - 1 * day),
        _at(track("lead_created", "lead-2"), now - timedelta(hours=2, minutes=5)),
        _at(track("lead_created", "lead-3"), now - timedelta(hours=1)),
        # lead-4 was answered once (a booking), then came back as a new lead 30 minutes ago
        _at(track("lead_created", "lead-4"), now - 5 * day),
        _at(track("appointment_booked", "lead-4"), now - 4 * day),
        _at(track("lead_created", "lead-4"), now - timedelta(minutes=30)),
    ]
    Pipeline(db, settings, clock).ingest(ws, BatchInput(messages))
    scores = {
        "a1": (
            "High",
            82,
            [
                _component("recency", 30, "last activity 40 days ago"),
                _component("payment_friction", 15, "1 failed payment"),
                _component("engagement_decay", 5, "responded less"),
                _component("frequency_change", 0, "steady"),
            ],
        ),
        "b2": ("Medium", 45, [_component("recency", 20, "last activity 20 days ago")]),
        "c3": ("High", 90, [_component("recency", 30, "last activity 60 days ago")]),
        "n0": ("High", 95, [_component("recency", 30, "last activity 90 days ago")]),
        "lead-1": ("Low", 5, []),
    }
    roots = {uid: identity.profile_document(db, workspace.id, uid).id for uid in ["a1", "b2", "c3", "n0", "lead-1"]}
    with db.transaction() as session:
        profiles.store_signals(
            session,
            workspace.id,
            [
                {"pid": roots[uid], "at_risk_band": band, "at_risk_score": score, "at_risk_components": comps}
                for uid, (band, score, comps) in scores.items()
            ],
            now,
        )
    tasks = {
        "t1": ("a1", "loc-01", now - timedelta(hours=1)),
        "t2": ("b2", "loc-02", now + timedelta(hours=2)),
        "t3": ("c3", "loc-03", now - timedelta(hours=1)),
        "t4": ("a1", "loc-01", now + 3 * day),
    }
    with db.transaction() as session:
        for key, (uid, location, due) in tasks.items():
            channels.create_task(
                session,
                workspace.id,
                idempotency_key=key,
                profile_id=roots[uid],
                user_id=uid,
                playbook=None,
                title=f"Call {uid} ({key})",
                role="front_desk",
                location=location,
                priority="high",
                due_at=due,
                now=now - day,
            )
    found = {t.idempotency_key: t.id for t in channels.list_tasks(db, workspace.id)}
    return found


def _twin(client, **params) -> dict[str, Any]:
    answer = client.get("/api/v1/today", params=params)
    assert answer.status_code == 200, answer.text
    panels: dict[str, Any] = answer.json()["panels"]
    return panels


def test_every_panel_for_the_owner(browser, users, db, settings, clock):
    _world(db, settings, clock, users)
    sign_in(browser, users.name, "owner@example.com")
    panels = _twin(browser)
    attention = panels["attention"]
    assert [(r["user_id"], r["band"], r["score"]) for r in attention] == [
        ("n0", "High", 95),
        ("c3", "High", 90),
        ("a1", "High", 82),
        ("b2", "Medium", 45),
    ]
    ann = attention[2]
    assert ann["name"] == "Ann Lee"
    assert [r["component"] for r in ann["reasons"]] == ["recency", "payment_friction", "engagement_decay"]
    assert ann["suggested_action"] == "call"
    assert attention[3]["suggested_action"] == "email"  # Medium, no phone
    failed = panels["failed_payments"]
    assert [(f["user_id"], f["invoice_id"], f["days_since"]) for f in failed] == [("c3", "in_3", 2), ("a1", "in_1", 5)]
    assert failed[1]["amount"] == 49.0 and failed[1]["recovery_running"] is False
    leads = panels["leads"]
    assert [(lead["user_id"], lead["waited"]) for lead in leads] == [
        ("lead-2", "2 h 5 min"),
        ("lead-3", "1 h"),
        ("lead-4", "30 min"),
    ]
    tasks = panels["tasks"]
    assert [t["title"] for t in tasks] == ["Call a1 (t1)", "Call c3 (t3)", "Call b2 (t2)"]
    assert tasks[0]["overdue"] is True and tasks[0]["countdown"] == "overdue by 1 h"
    assert tasks[2]["countdown"] == "due in 2 h"
    assert panels["reviews"]["available"] is False and panels["reviews"]["message"]
    assert panels["playbooks"] == []
    locations = {row["id"]: row for row in panels["locations"]}
    assert sorted(locations) == ["loc-01", "loc-02", "loc-03"]
    assert locations["loc-03"]["high_band"] == 1 and locations["loc-03"]["overdue_tasks"] == 1
    assert locations["loc-02"]["leads_waiting"] == 1
    assert browser.get("/api/v1/today", params={"location": "loc-99"}).status_code == 404
    assert browser.get("/today", params={"location": "x" * 65}).status_code == 400
    assert [r["user_id"] for r in _twin(browser, location="loc-03")["attention"]] == ["c3"]
    page = browser.get("/today")
    assert page.status_code == 200
    assert "<title>Today · signalbox</title>" in page.text and page.text.count("<h1>") == 1
    assert page.text.count('id="h-who"') == 1
    for shown in ("Ann Lee", "Carla Hidden", "2 h 5 min", "Overdue:", "/customers/a1", "later release"):
        assert shown in page.text


def test_a_staff_member_sees_nothing_of_another_location(browser, users, db, settings, clock):
    _world(db, settings, clock, users)
    sign_in(browser, users.name, "staff@example.com")
    panels = _twin(browser)
    assert [r["user_id"] for r in panels["attention"]] == ["a1", "b2"]  # not c3, not n0 (no location)
    assert [f["user_id"] for f in panels["failed_payments"]] == ["a1"]
    assert [lead["user_id"] for lead in panels["leads"]] == ["lead-2", "lead-4"]
    assert [t["title"] for t in panels["tasks"]] == ["Call a1 (t1)", "Call b2 (t2)"]
    assert [row["id"] for row in panels["locations"]] == ["loc-01", "loc-02"]
    page = browser.get("/today")
    assert page.status_code == 200
    for hidden in ("Hidden", "Carla", "Nadia", "loc-03", "(t3)", "in_3"):
        assert hidden not in page.text
    assert browser.get("/today", params={"location": "loc-03"}).status_code == 404
    assert browser.get("/api/v1/today", params={"location": "loc-03"}).status_code == 404
    assert browser.get("/api/v1/today", params={"location": "loc-99"}).status_code == 404
    one = _twin(browser, location="loc-01")
    assert [r["user_id"] for r in one["attention"]] == ["a1"]
    assert [t["title"] for t in one["tasks"]] == ["Call a1 (t1)"]
    assert [lead["user_id"] for lead in one["leads"]] == ["lead-4"]
    # The comparison still shows the viewer's two locations, never a third.
    assert [row["id"] for row in one["locations"]] == ["loc-01", "loc-02"]


def test_a_single_location_user_sees_only_their_row(browser, users, db, settings, clock):
    _world(db, settings, clock, users)
    accounts.create_user(
        db, users.id, email="three@example.com", password=PASSWORD, role="staff", locations=["loc-03"], clock=clock
    )
    sign_in(browser, users.name, "three@example.com")
    panels = _twin(browser)
    assert [row["id"] for row in panels["locations"]] == ["loc-03"]
    assert panels["locations"][0]["behind"] is False
    assert [r["user_id"] for r in panels["attention"]] == ["c3"]
    page = browser.get("/today")
    assert 'name="location"' not in page.text.split("<h2", 1)[0]  # one location: no picker
    assert "Ann Lee" not in page.text


def _event_count(db, workspace_id: str, name: str) -> int:
    with db.session() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Event).where(Event.workspace_id == workspace_id, Event.event == name)
            )
            or 0
        )


def test_task_actions_over_http(browser, users, db, settings, clock):
    ids = _world(db, settings, clock, users)
    token = sign_in(browser, users.name, "staff@example.com")
    # Without the token: refused; a task of another location: as if it did not exist.
    assert browser.post(f"/today/tasks/{ids['t1']}/done", data={}).status_code == 403
    assert browser.post(f"/today/tasks/{ids['t3']}/done", data={"csrf_token": token}).status_code == 404
    assert browser.post("/today/tasks/999999/done", data={"csrf_token": token}).status_code == 404
    # Plain form: 303 back to Today (on the same location).
    done = browser.post(f"/today/tasks/{ids['t1']}/done", data={"csrf_token": token, "location": "loc-01"})
    assert done.status_code == 303 and done.headers["location"] == "/today?location=loc-01"
    assert [t["title"] for t in _twin(browser)["tasks"]] == ["Call b2 (t2)"]
    # htmx: the answer is the row, snoozed to tomorrow 09:00 New York time.
    snoozed = browser.post(
        f"/today/tasks/{ids['t2']}/snooze",
        data={"until": "tomorrow"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert snoozed.status_code == 200 and snoozed.text.lstrip().startswith("<tr")
    assert "Snoozed" in snoozed.text
    task = next(t for t in channels.list_tasks(db, users.id) if t.id == ids["t2"])
    assert task.status == "snoozed" and task.due_at.isoformat() == "2026-03-09T13:00:00+00:00"
    assert _twin(browser)["tasks"] == []
    assert (
        browser.post(f"/today/tasks/{ids['t2']}/snooze", data={"csrf_token": token, "until": "never"}).status_code
        == 400
    )
    # Log an outcome twice: one event, and the task is done.
    form = {"csrf_token": token, "outcome": "no_answer", "note": "rang twice"}
    assert browser.post(f"/today/tasks/{ids['t2']}/outcome", data=form).status_code == 303
    assert browser.post(f"/today/tasks/{ids['t2']}/outcome", data=form).status_code == 303
    assert _event_count(db, users.id, "task_outcome") == 1
    doc = identity.profile_document(db, users.id, "b2")
    outcome = next(e for e in identity.profile_events(db, users.id, "b2") if e.event == "task_outcome")
    assert outcome.properties["outcome"] == "no_answer" and outcome.properties["note"] == "rang twice"
    assert doc.user_id == "b2"
    assert next(t for t in channels.list_tasks(db, users.id) if t.id == ids["t2"]).status == "done"
    bad = browser.post(f"/today/tasks/{ids['t4']}/outcome", data={"csrf_token": token, "outcome": "shouted"})
    assert bad.status_code == 400
    assert browser.post(f"/today/tasks/{ids['t3']}/outcome", data={**form, "outcome": "reached"}).status_code == 404
    assert _event_count(db, users.id, "task_outcome") == 1


def test_the_page_form_carries_the_token_and_works_without_javascript(browser, users, db, settings, clock):
    ids = _world(db, settings, clock, users)
    sign_in(browser, users.name, "staff@example.com")
    page = browser.get("/today").text
    found = re.search(rf'action="/today/tasks/{ids["t1"]}/done".*?name="csrf_token" value="([^"]+)"', page, re.S)
    assert found
    answer = browser.post(f"/today/tasks/{ids['t1']}/done", data={"csrf_token": found.group(1)})
    assert answer.status_code == 303 and answer.headers["location"] == "/today"


def test_empty_states(browser, users):
    sign_in(browser, users.name, "owner@example.com")
    panels = _twin(browser)
    assert {k: v for k, v in panels.items() if k != "reviews"} == {
        "attention": [],
        "failed_payments": [],
        "leads": [],
        "tasks": [],
        "playbooks": [],
        "locations": [],
    }
    page = browser.get("/today").text
    for empty in (
        "Nobody is in the High or Medium band",
        "No unpaid failed payment",
        "Every lead of the last 7 days",
        "No task is due today",
        "later release",
        "No active playbook yet",
        "No location yet",
    ):
        assert empty in page


def _enrol(db, workspace_id, key, uid, holdout, goal, now) -> None:
    root = identity.profile_document(db, workspace_id, uid).id
    with db.transaction() as session:
        session.add(
            Enrollment(
                id=f"enr-{key}-{uid}",
                workspace_id=workspace_id,
                playbook_key=key,
                version=1,
                profile_id=root,
                user_id=uid,
                entry_key=f"{key}:{uid}",
                entry_lock=None,
                status="exited" if goal else "active",
                exit_reason="goal_met" if goal else None,
                holdout=holdout,
                trigger={"event": "payment_failed"},
                position=None,
                waiting=None,
                due_at=None,
                lease_until=None,
                created_at=now,
                updated_at=now,
                exited_at=now if goal else None,
            )
        )


def test_playbooks_panel_counts_only_the_viewers_people(browser, second_browser, users, db, settings, clock):
    from signalbox.demo import service as demo

    _world(db, settings, clock, users)
    demo.apply_shipped_playbooks(db, workspaces.get_workspace(db, users.id), clock)
    now = clock.now()
    key = "failed-payment-recovery"
    _enrol(db, users.id, key, "a1", holdout=False, goal=True, now=now)
    _enrol(db, users.id, key, "b2", holdout=True, goal=False, now=now)
    _enrol(db, users.id, key, "c3", holdout=False, goal=False, now=now)
    sign_in(browser, users.name, "owner@example.com")
    everyone = next(p for p in _twin(browser)["playbooks"] if p["playbook"] == key)
    assert everyone["treated"]["enrolled"] == 2 and everyone["holdout"]["enrolled"] == 1
    assert everyone["verdict"] == "not yet proven" and everyone["proven"] is False
    recovering = {f["user_id"]: f["recovery_playbook"] for f in _twin(browser)["failed_payments"]}
    assert recovering == {"c3": key, "a1": None}  # c3's enrollment is active and treated; a1's exited
    sign_in(second_browser, users.name, "staff@example.com")
    mine = next(p for p in _twin(second_browser)["playbooks"] if p["playbook"] == key)
    assert mine["treated"] == {**mine["treated"], "enrolled": 1, "converted": 1}
    assert mine["lift"] == 1.0 and mine["ci95"] is not None and mine["ci95"][0] < 0
    failed = _twin(second_browser)["failed_payments"]
    assert failed[0]["user_id"] == "a1" and failed[0]["recovery_running"] is False  # a1's enrollment exited
    page = second_browser.get("/today").text
    assert "not yet proven" in page
