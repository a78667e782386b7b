"""Two workers racing (threads with their own engines; on PostgreSQL that is two connections
claiming with SKIP LOCKED): one due step runs once, and a frequency cap holds."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from signalbox.channels import service as channels
from signalbox.core.clock import FixedClock
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import policy, triggers
from signalbox.journeys import service as journeys
from signalbox.journeys.engine import Engine
from signalbox.workspaces import service as workspaces
from tests.factories import identify, track
from tests.integration.journeys.test_apply import TEMPLATES
from tests.integration.journeys.test_engine import MARKETING

NOON_CHICAGO = datetime(2026, 1, 13, 18, 0, tzinfo=UTC)


def _race(db, settings, clock, rounds: int = 20) -> None:
    engines = [Engine(db, settings, clock) for _ in range(2)]
    gate = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(engine: Engine) -> None:
        try:
            for _ in range(rounds):
                gate.wait()
                engine.run_due(limit=10)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def _setup(db, settings, workspace, clock, people: int, pings: int):
    ws = workspaces.get_workspace(db, workspace.id)
    journeys.apply(db, ws.id, "template", list(TEMPLATES.items()), clock.now())
    journeys.apply(db, ws.id, "playbook", [("promo.yaml", MARKETING)], clock.now())
    who = [identify(f"r-{n}", phone=f"+1415555{120 + n:04d}", sms_subscribe="opted_in") for n in range(people)]
    messages = who + [track("promo_ping", f"r-{n % people}") for n in range(pings)]
    Pipeline(db, settings, clock).ingest(ws, BatchInput(messages))
    triggers.process(db, ws, clock.now())
    return ws


def test_two_workers_run_each_due_step_once(db, settings, workspace):
    clock = FixedClock(NOON_CHICAGO)
    ws = _setup(db, settings, workspace, clock, people=60, pings=60)
    assert len(journeys.list_enrollments(db, ws.id)) == 60
    _race(db, settings, clock)
    keys = [o.idempotency_key for o in channels.list_outbox(db, ws.id)]
    assert len(keys) == 60 and len(set(keys)) == 60
    assert all(e.status == "completed" for e in journeys.list_enrollments(db, ws.id))


def test_two_workers_cannot_both_take_the_last_slot_of_a_cap(db, settings, workspace):
    clock = FixedClock(NOON_CHICAGO)
    ws = _setup(db, settings, workspace, clock, people=1, pings=30)
    policy.update_settings(db, ws.id, caps=["sms=2/1d"])
    _race(db, settings, clock)
    assert len(channels.list_outbox(db, ws.id)) == 2
    suppressed = [d for d in journeys.list_decisions(db, ws.id) if d.reason == "frequency_cap"]
    assert len(suppressed) == 28
