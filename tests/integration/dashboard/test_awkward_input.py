"""Input a browser or a script can send that once answered 500 on the dashboard: each is a
4xx now (found by review; PostgreSQL refuses NUL, SQLite overflows past 2**63)."""

from __future__ import annotations

from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.workspaces import service as workspaces
from tests.dashboard_factory import post_login, sign_in
from tests.factories import identify


def test_awkward_values_are_4xx_never_5xx(browser, users, db, settings, clock):
    ws = workspaces.get_workspace(db, users.id)
    Pipeline(db, settings, clock).ingest(ws, BatchInput([identify("u1", home_location="loc-01")]))
    # Login fields with a control character: the ordinary refusal.
    assert post_login(browser, users.name + "\x00", "owner@example.com", "whatever it is").status_code == 401
    token = sign_in(browser, users.name, "owner@example.com")
    headers = {"X-CSRF-Token": token}
    checks = [
        ("GET", "/api/v1/profiles/u1/timeline?before=2030-01-01T00:00:00~event~99999999999999999999"),
        ("GET", "/customers?offset=%C2%B2"),
        ("GET", "/insights?location=%00"),
        ("GET", "/api/v1/insights?location=%00"),
        ("GET", "/api/v1/today?location=%00"),
        ("GET", "/insights?location=nowhere"),
        ("POST", "/today/tasks/99999999999999999999/done"),
        ("POST", "/playbooks/%00/pause"),
        ("POST", "/api/v1/dashboard/playbooks/%00/pause"),
    ]
    for method, path in checks:
        answer = browser.request(method, path, headers=headers)
        assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text[:200])


def test_a_far_out_member_since_is_no_date_not_a_500(browser, users, db, settings, clock):
    ws = workspaces.get_workspace(db, users.id)
    people = [identify("old", home_location="loc-01", member_since="0001-01-01", timezone="Asia/Tokyo")]
    people.append(identify("far", home_location="loc-01", member_since="9999-12-31T23:00:00-05:00"))
    Pipeline(db, settings, clock).ingest(ws, BatchInput(people))
    sign_in(browser, users.name, "owner@example.com")
    assert browser.get("/api/v1/insights").status_code == 200
