"""`demo seed` through the real pipeline, on SQLite and PostgreSQL: stored once, stitched right."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select

from signalbox.channels import service as channels
from signalbox.core.errors import ConflictError
from signalbox.demo import service as demo
from signalbox.demo.schemas import GROUND_TRUTH_COLUMNS, WorldConfig
from signalbox.demo.world import build_world
from signalbox.events.models import Event
from signalbox.identity import service as identity
from signalbox.identity.identifiers import normalize_email, normalize_phone
from signalbox.workspaces import service as workspaces

CONFIG = WorldConfig(end=date(2026, 3, 8), members=60, months=3, seed=5)


def stored(db, workspace_id: str) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Event).where(Event.workspace_id == workspace_id)))


@pytest.fixture
def seeded(db, settings, clock, tmp_path):
    path = tmp_path / "truth.csv"
    seen: list[tuple[int, int]] = []
    result = demo.seed(
        db,
        settings,
        "demo-world",
        CONFIG,
        progress=lambda done, total: seen.append((done, total)),
        ground_truth=path,
        clock=clock,
        chunk_size=700,
    )
    return result, path, seen


def test_seed_stores_every_message_once(db, settings, clock, seeded, tmp_path):
    result, _, seen = seeded
    world = build_world(CONFIG)
    ws = workspaces.get_workspace(db, "demo-world")
    assert ws.timezone == "America/New_York"
    assert result.events == result.messages == len(world) > 1000
    assert (result.rejected, result.duplicates) == (0, 0)
    assert stored(db, ws.id) == len(world)
    assert (result.start, result.end) == (world.start, world.end)
    assert seen[0] == (0, len(world)) and seen[-1] == (len(world), len(world))
    with pytest.raises(ConflictError, match="already holds events"):
        demo.seed(db, settings, "demo-world", CONFIG, ground_truth=tmp_path / "again.csv", clock=clock)
    assert stored(db, ws.id) == len(world)


def test_records_from_other_systems_are_stitched_into_the_member(db, seeded):
    _, path, _ = seeded
    ws = workspaces.get_workspace(db, "demo-world")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert set(GROUND_TRUTH_COLUMNS) <= set(rows[0])
    checked = 0
    for row in rows:
        if row["source"] not in ("pos", "booking") or not row["user_id"]:
            continue
        doc = identity.profile_document(db, ws.id, row["user_id"])
        found = {(i.type, i.value) for i in doc.identifiers}
        kind = "pos_member_id" if row["source"] == "pos" else "booking_customer_id"
        assert ((kind, row["source_id"]) in found) == (row["stitchable"] == "true"), row
        if row["stitchable"] == "true":
            checked += 1
            if row["email_as_sent"]:
                assert ("email", normalize_email(row["email_as_sent"])) in found
            if row["phone_as_sent"]:
                assert ("phone", normalize_phone(row["phone_as_sent"], "US")) in found
    assert checked >= 5


def test_a_lead_s_web_visits_land_on_the_member(db, seeded):
    _, path, _ = seeded
    ws = workspaces.get_workspace(db, "demo-world")
    with path.open(newline="") as handle:
        leads = [r for r in csv.DictReader(handle) if r["source"] == "lead" and r["user_id"]]
    assert leads
    lead = leads[0]
    events = identity.profile_events(db, ws.id, lead["user_id"])
    kinds = [(e.type, e.event) for e in events]
    assert ("track", "lead_created") in kinds
    assert ("page", "pricing") in kinds or ("page", "schedule") in kinds
    first_identify = kinds.index(("identify", None))
    assert ("track", "lead_created") in kinds[:first_identify]
    doc = identity.profile_document(db, ws.id, lead["user_id"])
    assert {"type": "anonymous_id", "value": lead["source_id"]} in [
        {"type": i.type, "value": i.value} for i in doc.identifiers
    ]
    assert doc.traits["home_location"].startswith("loc-") and doc.traits["plan"] in ("basic", "standard", "premium")


def test_cli_seed_prints_the_documented_document(cli, tmp_path):
    truth = tmp_path / "gt.csv"
    args = ["demo", "seed", "--workspace", "cli-demo", "--members", "25", "--months", "2", "--end", "2026-03-08"]
    result = cli(*args, "--ground-truth", str(truth), "--json")
    assert result.exit_code == 0, result.output + str(result.exception)
    doc = orjson.loads(result.stdout)
    assert set(doc) == {"workspace", "members", "locations", "events", "start", "end", "seconds", "ground_truth"}
    assert (doc["workspace"], doc["members"], doc["locations"]) == ("cli-demo", 25, 6)
    assert doc["end"] == "2026-03-08" and doc["start"] == "2026-01-09" and doc["events"] > 100
    assert doc["ground_truth"] == str(truth.resolve()) and truth.is_file()
    again = cli(*args, "--ground-truth", str(truth), "--json", ok=False)
    assert again.exit_code == 1 and again.stdout == ""
    assert "already holds events" in again.stderr and len(again.stderr.strip().splitlines()) == 1


def test_cli_seed_with_playbooks_reports_planted_beside_measured(cli, tmp_path):
    truth = tmp_path / "gt.csv"
    args = ["demo", "seed", "-w", "lift", "--members", "60", "--months", "2", "--end", "2026-03-08"]
    doc = orjson.loads(
        cli(
            *args, "--ground-truth", str(truth), "--with-playbooks", "--sim-days", "2", "--sim-per-day", "8", "--json"
        ).stdout
    )
    planted = {p["playbook"]: p for p in doc["planted"]}
    assert set(planted) == {"failed-payment-recovery", "card-expiring"}
    recovery = planted["failed-payment-recovery"]
    assert recovery["planted_lift"] == 0.15 and recovery["enrolled"] == 16
    assert orjson.loads((tmp_path / "gt.csv.planted.json").read_text()) == doc["planted"]


def test_cli_seed_refuses_a_bad_simulation_before_seeding(cli):
    result = cli("demo", "seed", "-w", "nope", "--with-playbooks", "--sim-days", "0", "--json", ok=False)
    assert result.exit_code == 1 and "--sim-days must be between 1 and 120, not 0" in result.stderr
    assert "nope" not in cli("workspace", "list", "--json").stdout


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--members", "0", "members must be at least 1"),
        ("--locations", "13", "locations must be between 1 and 12"),
        ("--months", "61", "months must be between 1 and 60"),
        ("--end", "2026-02-30", "is not a date like"),
        ("--end", "2999-01-01", "would put events in the future"),
    ],
)
def test_cli_seed_refuses_bad_input_in_one_line(cli, flag, value, says):
    result = cli("demo", "seed", "--workspace", "x", flag, value, "--json", ok=False)
    assert result.exit_code == 1
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == "" and "Traceback" not in result.output


def test_first_demo_run_seeds_and_scores_then_leaves_data_alone(cli, db, tmp_path, monkeypatch):
    from signalbox.cli import demo as demo_cli

    monkeypatch.chdir(tmp_path)  # the ground truth goes to the working folder
    demo_cli.seed_if_empty(db, "first-run", 40)
    ws = workspaces.get_workspace(db, "first-run")
    before = stored(db, ws.id)
    scored = [p for p in identity.list_profile_documents(db, ws.id, limit=1000) if p.signals and p.signals.at_risk_band]
    assert before > 500 and scored
    demo_cli.seed_if_empty(db, "first-run", 40)
    assert stored(db, ws.id) == before


def test_first_demo_run_has_playbooks_at_work_within_a_tick(cli, db, settings, tmp_path, monkeypatch):
    """What a newcomer sees a minute after `make demo`: enrolments, decisions, sandbox messages
    and staff tasks from the shipped playbooks."""
    from signalbox.cli import demo as demo_cli
    from signalbox.core.clock import SystemClock
    from signalbox.journeys import service as journeys
    from signalbox.journeys.worker import Worker

    monkeypatch.chdir(tmp_path)
    demo_cli.seed_if_empty(db, "first-playbooks", 300)
    ws = workspaces.get_workspace(db, "first-playbooks")
    shipped = {p.stem for p in (Path(__file__).resolve().parents[3] / "playbooks").glob("*.yaml")}
    assert {p.playbook for p in journeys.list_playbooks(db, ws.id)} == shipped
    assert {"at-risk-re-engagement", "onboarding-rescue", "failed-payment-recovery"} <= shipped
    Worker(db, settings, SystemClock(), stale_every_seconds=1e9).drain()
    enrolled = journeys.list_enrollments(db, ws.id)
    outcomes = {d.outcome for d in journeys.list_decisions(db, ws.id)}
    assert enrolled and all(e.playbook == "at-risk-re-engagement" for e in enrolled)
    assert "held_out" in outcomes or any(e.holdout for e in enrolled) or len(enrolled) < 10
    # Multi-signal members (a score of 70 or more) get a same-day call; the others an SMS,
    # which waits for 08:00 in their zone at night.
    treated = [e for e in enrolled if not e.holdout]
    calls = [e for e in treated if identity.profile_document(db, ws.id, e.user_id).signals.at_risk_score >= 70]
    assert len(channels.list_tasks(db, ws.id)) == len(calls)
    # Every enrolment decided its SMS: sent, delayed, suppressed, or held out (what it would have got).
    texted = {d.enrollment_id for d in journeys.list_decisions(db, ws.id) if d.step == "sms-checkin"}
    assert texted == {e.id for e in enrolled}


def test_the_demo_s_lift_workspace_is_simulated_into_the_past_once(db, tmp_path, monkeypatch):
    from sqlalchemy import func, select

    from signalbox.cli import demo as demo_cli
    from signalbox.events.models import Event
    from signalbox.journeys import service as journeys

    monkeypatch.chdir(tmp_path)
    demo_cli.seed_lift_if_empty(db, "first-lift", "http://127.0.0.1:8000")
    ws = workspaces.get_workspace(db, "first-lift")
    # The recovery e-mails' update-card links are tracked links to the demo server.
    mails = [m for m in channels.list_outbox(db, ws.id, channel="email") if "/l/" in m.body]
    assert mails and all("invoice.stripe.com" not in m.body for m in mails)
    assert "http://127.0.0.1:8000/l/" in mails[0].body
    planted = orjson.loads((tmp_path / "first-lift.ground_truth.csv.planted.json").read_text())
    assert {p["playbook"] for p in planted} == {"failed-payment-recovery", "card-expiring"}
    assert journeys.list_enrollments(db, ws.id, playbook="failed-payment-recovery")
    with db.session() as session:
        newest = session.scalar(select(func.max(Event.timestamp)).where(Event.workspace_id == ws.id))
    assert newest is not None and newest < datetime.now(UTC)  # nothing simulated into the future
    before = stored(db, ws.id)
    demo_cli.seed_lift_if_empty(db, "first-lift")
    assert stored(db, ws.id) == before
