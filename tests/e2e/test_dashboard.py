"""The dashboard in a real browser: sign in, the pages a manager opens, what a front-desk
user of one location may see, each page checked with axe and photographed at 1280 and 390 px."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from signalbox.accounts import service as accounts
from signalbox.channels import service as channels
from signalbox.core.db import Database
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.journeys.worker import Worker
from signalbox.scoring import service as scoring
from signalbox.workspaces import service as workspaces
from tests.dashboard_factory import PASSWORD
from tests.e2e.conftest import sign_in, visit
from tests.factories import identify, track


@dataclass
class Studio:
    base: str
    name: str
    db: Database
    workspace_id: str


LEAD_PLAYBOOK = """\
playbook: lead-call
name: Call new leads
purpose: transactional
trigger:
  event: lead_created
holdout: 0%
goals:
  - event: class_booked
steps:
  - id: welcome
    send: {channel: email, template: lead-welcome}
  - id: call
    task: {title: Call the new lead, role: front_desk, location: home, sla: 2h, priority: high}
  - id: wait
    wait: 3d
"""
LEAD_TEMPLATE = (
    "template: lead-welcome\nchannel: email\nsubject: Welcome\nbody: Hi {{ traits.first_name }}, see you soon.\n"
)


@pytest.fixture
def studio(clocked_server, db, settings, clock, workspace) -> Iterator[Studio]:
    """Two clubs, Northside (loc-01) and Riverside (loc-02), with members who came in as leads
    this morning: each has a welcome e-mail and a call task at their club. An owner sees both;
    the front desk sees Northside only."""
    clock.set(datetime(2026, 3, 10, 15, 0, tzinfo=UTC))  # 10:00 in Chicago, a Tuesday
    for email, role, locations in (
        ("owner@example.com", "owner", None),
        ("desk@example.com", "staff", ["loc-01"]),
    ):
        accounts.create_user(
            db, workspace.id, email=email, password=PASSWORD, role=role, locations=locations, clock=clock
        )
    ws = workspaces.get_workspace(db, workspace.id)
    journeys.apply(db, ws.id, "template", [("lead-welcome.yaml", LEAD_TEMPLATE)], clock.now())
    journeys.apply(db, ws.id, "playbook", [("lead-call.yaml", LEAD_PLAYBOOK)], clock.now())
    people = []
    for n in range(6):
        north = n % 2 == 1
        people.append(
            identify(
                f"m-{n}",
                first_name=f"{'North' if north else 'River'}{n}",
                email=f"m{n}@example.com",
                home_location="loc-01" if north else "loc-02",
                location_name="Northside" if north else "Riverside",
                member_since="2025-06-01",
            )
        )
        people.append(track("visit", f"m-{n}", location_id="loc-01" if north else "loc-02"))
        people.append(track("lead_created", f"m-{n}", source="web", location_id="loc-01" if north else "loc-02"))
    Pipeline(db, settings, clock).ingest(ws, BatchInput(people))
    Worker(db, settings, clock, stale_every_seconds=1e9).drain()
    scoring.compute_scores(db, ws, None, clock)
    yield Studio(clocked_server.url, workspace.name, db, ws.id)


def test_the_login_page_is_accessible_and_signing_in_opens_today(page: Page, studio: Studio):
    visit(page, f"{studio.base}/login", shot="login")
    sign_in(page, studio.base, studio.name, "owner@example.com", PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Today")
    visit(page, f"{studio.base}/today", shot="today")


def test_a_wrong_password_says_so_and_stays_on_the_form(page: Page, studio: Studio):
    page.goto(f"{studio.base}/login?workspace={studio.name}")
    page.get_by_label("E-mail").fill("owner@example.com")
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    assert "/login" in page.url


def test_a_front_desk_user_sees_only_their_location(page: Page, studio: Studio):
    sign_in(page, studio.base, studio.name, "desk@example.com", PASSWORD)
    shown = page.request.get(f"{studio.base}/api/v1/locations").json()["locations"]
    assert [loc["id"] for loc in shown] == ["loc-01"]
    assert page.request.get(f"{studio.base}/api/v1/me").json()["locations"] == ["loc-01"]


def test_signing_out_ends_the_session(page: Page, studio: Studio):
    sign_in(page, studio.base, studio.name, "owner@example.com", PASSWORD)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{studio.base}/login**")
    page.goto(f"{studio.base}/today")
    assert "/login" in page.url


def test_a_managers_morning(page: Page, studio: Studio):
    """Today → complete a task → the customer's timeline → take them over → pause a playbook,
    and every page on the way, at both widths."""
    base = studio.base
    sign_in(page, base, studio.name, "owner@example.com", PASSWORD)
    visit(page, f"{base}/today", shot="today")
    tasks = page.locator("#task-list tr[id^=task-], tr[id^=task-]")
    assert tasks.count() == 6
    first = tasks.first
    task_id = int((first.get_attribute("id") or "").removeprefix("task-"))
    first.get_by_role("button", name="Done").click()
    # The row is swapped for its done state: no buttons left on it.
    expect(page.locator(f"#task-{task_id}").get_by_role("button")).to_have_count(0)
    expect(page.locator(f"#task-{task_id}")).to_contain_text("Done")
    done = [t for t in channels.list_tasks(studio.db, studio.workspace_id) if t.id == task_id]
    assert done and done[0].status == "done"

    # The person behind that task: their page tells the whole story before anyone calls.
    person = done[0].user_id
    visit(page, f"{base}/customers/{person}", shot="customer")
    timeline = page.locator("#timeline-h").locator("xpath=..")
    expect(timeline).to_contain_text("lead_created")
    expect(timeline).to_contain_text("Email sent · lead-call/welcome")
    expect(timeline).to_contain_text("Task done: Call the new lead")
    page.get_by_role("button", name="Take over (pause automation)").click()
    expect(page.get_by_role("button", name="Resume automation")).to_be_visible()
    held = page.request.get(f"{base}/api/v1/customers/{person}").json()
    assert held["automation"]["paused"] is True

    visit(page, f"{base}/customers", shot="customers")
    visit(page, f"{base}/playbooks", shot="playbooks")
    visit(page, f"{base}/playbooks/lead-call", shot="playbook")
    page.get_by_role("button", name="Pause this playbook").click()
    expect(page.get_by_role("button", name="Resume this playbook")).to_be_visible()
    (playbook,) = journeys.list_playbooks(studio.db, studio.workspace_id)
    assert playbook.status == "paused"
    visit(page, f"{base}/insights", shot="insights")
    visit(page, f"{base}/outbox", shot="outbox")


def test_a_front_desk_user_sees_nothing_of_another_club(page: Page, studio: Studio):
    base = studio.base
    sign_in(page, base, studio.name, "desk@example.com", PASSWORD)
    visit(page, f"{base}/today", shot="today-front-desk")
    text = page.inner_text("main")
    assert "North1" in text and "River" not in text
    api = page.request
    today = api.get(f"{base}/api/v1/today").text()
    assert "m-1" in today and "m-0" not in today and "m-2" not in today and "loc-02" not in today
    for path in ("/customers/m-0", "/api/v1/customers/m-0", "/api/v1/profiles/m-0/timeline"):
        assert api.get(f"{base}{path}").status == 404, path
    for path in ("/today?location=loc-02", "/insights?location=loc-02", "/api/v1/insights?location=loc-02"):
        assert api.get(f"{base}{path}").status == 404, path
    customers = api.get(f"{base}/api/v1/customers").text()
    assert "m-1" in customers and "m-0" not in customers
    outbox = api.get(f"{base}/api/v1/dashboard/outbox").text()
    assert "m1@example.com" in outbox and "m0@example.com" not in outbox
    playbook = api.get(f"{base}/api/v1/dashboard/playbooks/lead-call").json()
    assert playbook["scoped"] and playbook["enrolled"]["total"] == 3  # Northside's three of six
    page.goto(f"{base}/customers/m-0")
    expect(page.get_by_role("heading", level=1)).to_contain_text("No such customer")
