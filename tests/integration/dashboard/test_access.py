"""The dashboard's access rules over HTTP: JSON twins answer to a session or the admin key,
a scoped viewer sees only their locations, and a foreign location is a 404."""

from __future__ import annotations

import httpx

from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.workspaces import service as workspaces
from tests.dashboard_factory import sign_in
from tests.factories import identify


def _people(db, settings, clock, workspace):
    ws = workspaces.get_workspace(db, workspace.id)
    people = [
        identify(f"m-{n}", home_location=f"loc-0{n % 3 + 1}", location_name=f"Club {n % 3 + 1}") for n in range(9)
    ]
    Pipeline(db, settings, clock).ingest(ws, BatchInput([*people, identify("m-x")]))


def test_twins_need_a_session_or_the_admin_key(clocked_server, users):
    assert httpx.get(f"{clocked_server.url}/api/v1/me").status_code == 401
    bad = httpx.get(f"{clocked_server.url}/api/v1/me", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    key = httpx.get(f"{clocked_server.url}/api/v1/me", headers={"Authorization": f"Bearer {users.admin_key}"})
    assert key.json() == {"email": "admin-key", "role": "owner", "locations": None}
    # A person's data, like the pages: no shared cache may keep any twin's answer.
    admin = {"Authorization": f"Bearer {users.admin_key}"}
    for path in ("/api/v1/me", "/api/v1/today", "/api/v1/customers", "/api/v1/insights", "/api/v1/dashboard/outbox"):
        assert httpx.get(f"{clocked_server.url}{path}", headers=admin).headers.get("cache-control") == "no-store", path


def test_a_staff_member_sees_only_their_locations(browser, users, db, settings, clock):
    _people(db, settings, clock, users)
    sign_in(browser, users.name, "staff@example.com")
    assert sorted(browser.get("/api/v1/me").json()["locations"]) == ["loc-01", "loc-02"]
    seen = browser.get("/api/v1/locations").json()["locations"]
    assert seen == [{"id": "loc-01", "name": "Club 1", "members": 3}, {"id": "loc-02", "name": "Club 2", "members": 3}]
    admin = {"Authorization": f"Bearer {users.admin_key}"}
    everything = browser.get("/api/v1/locations", headers=admin).json()["locations"]
    assert [loc["id"] for loc in everything] == ["loc-01", "loc-02", "loc-03"]


def test_locations_list_cli(cli, users, db, settings, clock):
    import orjson

    _people(db, settings, clock, users)
    shown = orjson.loads(cli("locations", "list", "-w", users.name, "--json").stdout)
    assert [loc["id"] for loc in shown["locations"]] == ["loc-01", "loc-02", "loc-03"]
    assert "loc-03\tClub 3\t3 members" in cli("locations", "list", "-w", users.name).stdout
