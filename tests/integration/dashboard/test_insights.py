"""The Insights page and its JSON twin over HTTP: planted events with known answers, the
location scoping (a staff member's numbers never move with another location's data), the twin
showing what the page shows, and a table behind every chart."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from signalbox.channels import service as channels
from signalbox.identity import service as identity
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.overview import insights as overview
from signalbox.workspaces import service as workspaces
from tests.dashboard_factory import sign_in
from tests.factories import identify, track

NOW = datetime(2026, 4, 10, 16, tzinfo=UTC)  # March is the last complete month (America/New_York)


def ts(y: int, m: int, d: int, hour: int = 15, minute: int = 0) -> str:
    return datetime(y, m, d, hour, minute, tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _at(message: dict, when: str) -> dict:
    message["timestamp"] = when
    return message


def _ingest(db, settings, clock, workspace, messages) -> None:
    ws = workspaces.get_workspace(db, workspace.id)
    Pipeline(db, settings, clock).ingest(ws, BatchInput(messages))
    overview.clear_cache()


@pytest.fixture
def world(db, settings, clock, users):
    """loc-01: m-0..m-5, loc-02: m-6..m-9 (the staff member's 10), loc-03: m-10..m-14.
    All joined 2026-01-05. Visits: everyone in January; m-0..m-7 in February; m-0..m-4 in
    March. m-0 and m-6 cancel in March; nobody at loc-03 does."""
    clock.set(NOW)
    messages = []
    for n in range(15):
        loc = "loc-01" if n < 6 else "loc-02" if n < 10 else "loc-03"
        messages.append(
            _at(identify(f"m-{n}", home_location=loc, member_since="2026-01-05", status="active"), ts(2026, 1, 5))
        )
        messages.append(_at(track("visit", f"m-{n}", location_id=loc), ts(2026, 1, 20)))
        if n < 8 or n >= 10:
            messages.append(_at(track("visit", f"m-{n}", location_id=loc), ts(2026, 2, 20)))
        if n < 5 or n >= 10:
            messages.append(_at(track("visit", f"m-{n}", location_id=loc), ts(2026, 3, 20)))
    messages.append(_at(track("subscription_cancelled", "m-0", reason="moving"), ts(2026, 3, 10)))
    messages.append(_at(track("subscription_cancelled", "m-6", reason="price"), ts(2026, 3, 12)))
    # A lead at loc-01 answered by a staff task done 30 minutes later.
    messages.append(_at(identify("lead-1", home_location="loc-01"), ts(2026, 4, 1, 14)))
    messages.append(_at(track("lead_created", "lead-1", location_id="loc-01"), ts(2026, 4, 1, 14)))
    _ingest(db, settings, clock, users, messages)
    root = identity.profile_document(db, users.id, "lead-1").id
    with db.transaction() as session:
        channels.create_task(
            session,
            users.id,
            idempotency_key="call-lead-1",
            profile_id=root,
            user_id="lead-1",
            playbook=None,
            title="Call the new lead",
            role="front_desk",
            location="loc-01",
            priority="high",
            due_at=datetime(2026, 4, 1, 15, tzinfo=UTC),
            now=datetime(2026, 4, 1, 14, tzinfo=UTC),
        )
    task = channels.list_tasks(db, users.id)[0]
    channels.finish_task(db, users.id, task.id, datetime(2026, 4, 1, 14, 30, tzinfo=UTC))
    overview.clear_cache()
    return users


def _months(doc: dict) -> dict[str, dict]:
    return {m["month"]: m for m in doc["months"]}


def test_planted_events_give_the_known_answers(browser, world):
    sign_in(browser, world.name, "staff@example.com")
    doc = browser.get("/api/v1/insights").json()
    assert doc["locations"] == ["loc-02", "loc-01"] or sorted(doc["locations"]) == ["loc-01", "loc-02"]
    march = _months(doc)["2026-03"]
    assert (march["members_at_start"], march["cancellations"], march["churn"]) == (10, 2, 0.2)
    assert doc["kpis"]["churn"] == 0.2 and doc["kpis"]["churn_month"] == "2026-03"
    assert _months(doc)["2026-04"] == {**_months(doc)["2026-04"], "members_at_start": 8, "partial": True}
    cohort = {c["cohort"]: c for c in doc["cohorts"]}
    assert list(cohort) == ["2026-01"]
    assert cohort["2026-01"]["size"] == 10
    assert cohort["2026-01"]["active"] == [10, 8, 5]
    assert cohort["2026-01"]["retention"] == [1.0, 0.8, 0.5]
    assert doc["kpis"]["lead_response_minutes"] == 30.0
    # m-0 cancelled 03-10 and visited 03-20: back within 30 days; m-6 (03-12) is not 30 days old.
    assert doc["kpis"]["reactivation"][0] == {"days": 30, "eligible": 1, "returned": 1, "rate": 1.0}
    assert doc["kpis"]["reactivation"][1]["eligible"] == 0
    assert (doc["kpis"]["leads"], doc["kpis"]["leads_answered"]) == (1, 1)
    rows = {row["location"]: row for row in doc["by_location"]}
    assert list(rows) == ["loc-01", "loc-02"]
    assert rows["loc-01"]["lead_response_minutes"] == 30.0
    assert rows["loc-01"]["task_completion"] == 1.0 and rows["loc-01"]["tasks_due"] == 1
    assert rows["loc-02"]["task_completion"] is None
    # Retention over the last three complete months (Jan, Feb, Mar): loc-01 had 0 + 6 + 6
    # members at the months' starts and lost 1 of them.
    assert rows["loc-01"]["retention"] == round(1 - 1 / 12, 4)
    assert doc["bands"]["current"]["Not scored"] == 11  # ten members and the lead, none scored


def test_a_staff_members_numbers_do_not_move_with_another_locations_data(
    browser, second_browser, world, db, settings, clock
):
    sign_in(browser, world.name, "staff@example.com")
    sign_in(second_browser, world.name, "owner@example.com")
    staff_before = browser.get("/api/v1/insights").json()
    owner_before = second_browser.get("/api/v1/insights").json()
    assert _months(owner_before)["2026-03"]["members_at_start"] == 15
    assert all(row["location"] != "loc-03" for row in staff_before["by_location"])
    # loc-03 churns, visits, gets a lead and a rejoin: the owner sees it, the staff member does not.
    _ingest(
        db,
        settings,
        clock,
        world,
        [
            _at(track("subscription_cancelled", "m-10"), ts(2026, 3, 3)),
            _at(track("subscription_cancelled", "m-11"), ts(2026, 2, 3)),
            _at(track("payment_succeeded", "m-12", amount=80), ts(2026, 3, 2)),
            _at(track("visit", "m-13"), ts(2026, 4, 2)),
            _at(identify("lead-3", home_location="loc-03"), ts(2026, 4, 2)),
            _at(track("lead_created", "lead-3"), ts(2026, 4, 2)),
        ],
    )
    staff_after = browser.get("/api/v1/insights").json()
    owner_after = second_browser.get("/api/v1/insights").json()
    assert owner_after != owner_before
    assert _months(owner_after)["2026-03"]["cancellations"] == 3
    assert owner_after["kpis"]["leads"] == 2
    staff_after.pop("as_of"), staff_before.pop("as_of")
    assert staff_after == staff_before
    page = browser.get("/insights").text
    assert "loc-03" not in page


def test_a_foreign_location_is_a_404_on_the_page_and_the_twin(browser, world):
    sign_in(browser, world.name, "staff@example.com")
    assert browser.get("/insights?location=loc-03").status_code == 404
    assert browser.get("/api/v1/insights?location=loc-03").status_code == 404
    assert browser.get("/api/v1/insights?location=" + "x" * 65).status_code == 400  # not a location id at all
    assert browser.get("/insights?location=" + "x" * 65).status_code == 400
    one = browser.get("/api/v1/insights?location=loc-02").json()
    assert one["locations"] == ["loc-02"]
    assert [row["location"] for row in one["by_location"]] == ["loc-02"]
    assert _months(one)["2026-03"]["churn"] == 0.25  # m-6 of m-6..m-9


def test_the_twin_needs_a_session_or_the_admin_key(clocked_server, world):
    assert httpx.get(f"{clocked_server.url}/api/v1/insights").status_code == 401
    keyed = httpx.get(f"{clocked_server.url}/api/v1/insights", headers={"Authorization": f"Bearer {world.admin_key}"})
    assert keyed.status_code == 200 and keyed.json()["locations"] is None
    assert httpx.get(f"{clocked_server.url}/insights").status_code == 303


def _cells(html: str, section: str) -> str:
    start = html.index(f'id="{section}"')
    return html[start : html.index("</section>", start)]


def test_the_page_shows_the_twins_numbers_and_every_chart_has_a_table(browser, world):
    sign_in(browser, world.name, "staff@example.com")
    doc = browser.get("/api/v1/insights").json()
    html = browser.get("/insights").text
    assert 'aria-current="page">Insights' in html
    # The churn chart and its table carry the same months and numbers as the twin.
    churn = _cells(html, "churn-h")
    for m in doc["months"]:
        shown = "n/a" if m["churn"] is None else f"{m['churn'] * 100:.1f} %"
        assert re.search(
            rf"<th scope=\"row\">{m['month']}(?: \(so far\))?</th><td>{m['members_at_start']}</td>"
            rf"<td>{m['cancellations']}</td><td>{re.escape(shown)}</td>",
            churn,
        ), m
    # Heatmap cells carry their numbers as text, the same as the twin's retention.
    cohorts = _cells(html, "cohort-h")
    for c in doc["cohorts"]:
        for share in c["retention"]:
            assert f">{round(share * 100)}%</td>" in cohorts
        assert "<td>" + "</td><td>".join(str(n) for n in c["active"]) + "</td>" in cohorts
    # Bands: the table's counts are the twin's.
    bands = _cells(html, "bands-h")
    for week in doc["bands"]["weeks"]:
        assert f'<th scope="row">{week["week_ending"]}</th>' in bands
    kpis = _cells(html, "kpi-h")
    assert "20.0 %" in kpis and "30 min" in kpis
    # Every chart (an SVG or the heatmap) is followed, in its section, by a <details> table.
    charts = re.findall(r"<svg class=\"chart\"|<table class=\"heatmap\"", html)
    assert len(charts) == 3
    for section in ("bands-h", "churn-h", "cohort-h"):
        body = _cells(html, section)
        table = r"<details>\s*<summary>Table:[^<]*</summary>\s*<div class=\"scroll\"[^>]*><table>"
        assert re.search(table, body), section
        assert '<th scope="col">' in body


def test_score_bands_are_rebuilt_from_the_change_log(browser, world, db, clock):
    from signalbox.profiles import service as profiles

    root = identity.profile_document(db, world.id, "m-1").id
    with db.transaction() as session:  # scored High a while ago, Low since three days
        profiles.store_signals(
            session, world.id, [{"pid": root, "at_risk_score": 80, "at_risk_band": "High"}], NOW - timedelta(days=20)
        )
    with db.transaction() as session:
        profiles.store_signals(
            session, world.id, [{"pid": root, "at_risk_score": 5, "at_risk_band": "Low"}], NOW - timedelta(days=3)
        )
    overview.clear_cache()
    sign_in(browser, world.name, "staff@example.com")
    bands = browser.get("/api/v1/insights").json()["bands"]
    assert bands["current"]["Low"] == 1 and bands["complete"] is True
    by_week = {w["week_ending"]: w["counts"] for w in bands["weeks"]}
    assert by_week["2026-04-10"]["Low"] == 1
    highs = [day for day, counts in by_week.items() if counts["High"] == 1]
    # High from the first change (2026-03-21) until the second (2026-04-07): weeks ending 03-22 .. 04-05.
    assert highs == ["2026-03-22", "2026-03-29", "2026-04-05"]
    assert by_week["2026-03-15"]["High"] == 0 and by_week["2026-03-15"]["Not scored"] == 11


def test_an_empty_workspace_has_a_page_with_nothing_to_compute(browser, users, clock):
    clock.set(NOW)
    overview.clear_cache()
    sign_in(browser, users.name, "owner@example.com")
    page = browser.get("/insights")
    assert page.status_code == 200
    assert "No member joined in the last 12 complete months." in page.text
    doc = browser.get("/api/v1/insights").json()
    assert doc["people"] == 0 and doc["cohorts"] == [] and doc["by_location"] == []
    assert doc["kpis"]["churn"] is None and doc["kpis"]["clv"] is None and doc["kpis"]["lead_response_minutes"] is None
    assert doc["bands"]["history_from"] is None


def test_reading_a_few_peoples_events_by_index_gives_the_same_months(world, db):
    from zoneinfo import ZoneInfo

    from signalbox.profiles import service as profiles

    starts = overview.month_starts(NOW, ZoneInfo("America/New_York"))
    with db.session() as session:
        people = overview._people(session, world.id, ("loc-02",), ZoneInfo("America/New_York"))
        visible = {p.root for p in people}
        root_of = {n: r for n, r in profiles.node_roots(session, world.id).items() if r in visible}
        by_index = overview._tracks(session, world.id, root_of, starts, NOW, narrow=True)
        by_scan = overview._tracks(session, world.id, root_of, starts, NOW, narrow=False)
    assert len(by_index) == 4 and by_index == by_scan
