"""A waiting worker wakes when an event lands (in-process on SQLite, LISTEN/NOTIFY on
PostgreSQL), not at its next poll: the first send follows the event within a second."""

from __future__ import annotations

import threading
import time

from sqlalchemy import event

from signalbox.changes import service as changes
from signalbox.channels import service as channels
from signalbox.core.clock import SystemClock
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.journeys import triggers
from signalbox.journeys.worker import Worker
from signalbox.workspaces import service as workspaces
from tests.factories import identify, track
from tests.integration.journeys.test_crash import PLAYBOOK, TEMPLATE


def test_an_event_wakes_an_idle_worker(db, settings, workspace):
    clock = SystemClock()
    ws = workspaces.get_workspace(db, workspace.id)
    journeys.apply(db, ws.id, "template", [("note.yaml", TEMPLATE)], clock.now())
    journeys.apply(db, ws.id, "playbook", [("ping.yaml", PLAYBOOK)], clock.now())
    pipeline = Pipeline(db, settings, clock)
    pipeline.ingest(ws, BatchInput([identify("w-1", email="w1@example.com")]))
    worker = Worker(db, settings, clock, poll_seconds=30.0, stale_every_seconds=1e9)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        time.sleep(1.0)  # idle now, waiting on a 30 s poll
        started = time.monotonic()
        pipeline.ingest(ws, BatchInput([track("ping", "w-1")]))
        while not channels.list_outbox(db, ws.id) and time.monotonic() - started < 10:
            time.sleep(0.02)
        latency = time.monotonic() - started
    finally:
        stop.set()
        pipeline.ingest(ws, BatchInput([track("after", "w-1")]))  # wakes it to see the stop
        thread.join(timeout=35)
    assert channels.list_outbox(db, ws.id), "the worker never woke"
    assert latency < 2.0, latency


def _caught_up(db, workspace_id: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        status = changes.status(db, workspace_id)
        if status.consumers.get(triggers.CONSUMER) == status.head:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def test_batches_no_playbook_acts_on_wake_the_worker_without_due_lookups(db, settings, workspace, monkeypatch):
    """Each committed batch wakes the worker; before any playbook its changes are skipped
    whole, and date triggers and due steps (which come with time) are looked for once a poll
    interval, not once a batch."""
    clock = SystemClock()
    ws = workspaces.get_workspace(db, workspace.id)
    pipeline = Pipeline(db, settings, clock)
    worker = Worker(db, settings, clock, poll_seconds=30.0, stale_every_seconds=1e9)
    lookups: list[str] = []
    run_due, fire_dates = worker.engine.run_due, triggers.fire_dates
    monkeypatch.setattr(worker.engine, "run_due", lambda: lookups.append("steps") or run_due())
    monkeypatch.setattr(triggers, "fire_dates", lambda *a: lookups.append("dates") or fire_dates(*a))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        for n in range(4):
            pipeline.ingest(ws, BatchInput([identify(f"s-{n}", email=f"s{n}@example.com"), track("visit", f"s-{n}")]))
            assert _caught_up(db, ws.id), "the worker did not read the batch"
    finally:
        stop.set()
        pipeline.ingest(ws, BatchInput([track("after", "s-0")]))
        thread.join(timeout=35)
    assert lookups == ["dates", "steps"], lookups  # the first tick's, none of the four batches'


def test_an_empty_window_reads_nothing_but_the_window(db, settings, workspace):
    clock = SystemClock()
    ws = workspaces.get_workspace(db, workspace.id)
    Pipeline(db, settings, clock).ingest(ws, BatchInput([track("visit", "e-1")]))
    assert triggers.process(db, ws, clock.now()) == 0  # skipped whole: no playbook
    assert _caught_up(db, ws.id, timeout=0)
    statements: list[str] = []

    def seen(conn, cursor, statement, *rest):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        assert triggers.process(db, ws, clock.now()) == 0
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    read = " ".join(statements)
    assert "change_sequences" in read
    assert not any(table in read for table in ("change_log", "playbooks", "enrollments", "segments")), statements
