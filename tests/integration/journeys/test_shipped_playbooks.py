"""The playbooks shipped in playbooks/ apply cleanly and run end to end on the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from signalbox.channels import service as channels
from signalbox.core.clock import FixedClock
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.journeys.worker import Worker
from signalbox.workspaces import service as workspaces
from tests.factories import identify, track

ROOT = Path(__file__).resolve().parents[3] / "playbooks"


def _files(folder: Path) -> list[tuple[str, str]]:
    return [(str(p), p.read_text()) for p in sorted(folder.glob("*.yaml"))]


def test_shipped_playbooks_apply_and_onboarding_runs_until_the_first_visit(db, settings, workspace):
    ws = workspaces.get_workspace(db, workspace.id)
    clock = FixedClock(datetime(2026, 2, 2, 15, 0, tzinfo=UTC))  # Monday 09:00 in Chicago
    templates = journeys.apply(db, ws.id, "template", _files(ROOT / "templates"), clock.now())
    playbooks = journeys.apply(db, ws.id, "playbook", _files(ROOT), clock.now())
    assert {a.key for a in playbooks} == {"at-risk-re-engagement", "onboarding-rescue"}
    assert len(templates) == 6
    pipeline = Pipeline(db, settings, clock)
    worker = Worker(db, settings, clock, stale_every_seconds=1e9)
    newcomers = [
        identify(
            f"new-{n}",
            email=f"new{n}@example.com",
            phone=f"+1415555{110 + n:04d}",
            first_name="Sam",
            location_name="Northside",
            timezone="America/Chicago",
            member_since="2026-02-02",
            email_subscribe="opted_in",
            sms_subscribe="opted_in",
        )
        for n in range(12)
    ]
    pipeline.ingest(ws, BatchInput(newcomers))
    worker.drain()
    enrolled = journeys.list_enrollments(db, ws.id, playbook="onboarding-rescue")
    treated = [e for e in enrolled if not e.holdout]
    assert len(enrolled) == 12 and treated
    welcome = channels.list_outbox(db, ws.id, channel="email")
    assert len(welcome) == len(treated) and welcome[0].subject == "Welcome to Northside"
    assert welcome[0].body.startswith("Hi Sam,")
    # One of them comes in the next morning: their enrolment ends before the day-1 SMS.
    visitor = treated[0].user_id
    clock.set(datetime(2026, 2, 3, 14, 0, tzinfo=UTC))
    pipeline.ingest(ws, BatchInput([track("visit", visitor)]))
    worker.drain()
    clock.set(datetime(2026, 2, 3, 15, 1, tzinfo=UTC))
    worker.drain()
    texted = {o.to for o in channels.list_outbox(db, ws.id, channel="sms")}
    assert len(texted) == len(treated) - 1
    by_user = {e.user_id: e for e in journeys.list_enrollments(db, ws.id, playbook="onboarding-rescue")}
    assert (by_user[visitor].status, by_user[visitor].exit_reason) == ("exited", "goal_met")
    # Day 14: the desk gets a call task for each treated member who never came.
    for day in (9, 16):  # the worker runs on: day 7's e-mail, then day 14's task
        clock.set(datetime(2026, 2, day, 15, 2, tzinfo=UTC))
        worker.drain()
    assert len(channels.list_outbox(db, ws.id, channel="email")) == 2 * len(treated) - 1
    tasks = channels.list_tasks(db, ws.id)
    assert len(tasks) == len(treated) - 1 and all(t.role == "front_desk" for t in tasks)
