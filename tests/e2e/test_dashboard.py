"""The dashboard in a real browser: sign in, the pages a manager opens, what a front-desk
user of one location may see, each page checked with axe and photographed at 1280 and 390 px."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from signalbox.accounts import service as accounts
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.workspaces import service as workspaces
from tests.dashboard_factory import PASSWORD
from tests.e2e.conftest import sign_in, visit
from tests.factories import identify


@dataclass
class Studio:
    base: str
    name: str


@pytest.fixture
def studio(clocked_server, db, settings, clock, workspace) -> Iterator[Studio]:
    """Two clubs with members, an owner who sees both and a front desk of the first."""
    for email, role, locations in (
        ("owner@example.com", "owner", None),
        ("desk@example.com", "staff", ["loc-01"]),
    ):
        accounts.create_user(
            db, workspace.id, email=email, password=PASSWORD, role=role, locations=locations, clock=clock
        )
    ws = workspaces.get_workspace(db, workspace.id)
    people = [
        identify(
            f"m-{n}",
            first_name=f"Member{n}",
            email=f"m{n}@example.com",
            home_location="loc-01" if n % 2 else "loc-02",
            location_name="Northside" if n % 2 else "Riverside",
        )
        for n in range(6)
    ]
    Pipeline(db, settings, clock).ingest(ws, BatchInput(people))
    yield Studio(clocked_server.url, workspace.name)


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
