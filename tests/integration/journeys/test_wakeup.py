"""A waiting worker wakes when an event lands (in-process on SQLite, LISTEN/NOTIFY on
PostgreSQL), not at its next poll: the first send follows the event within a second."""

from __future__ import annotations

import threading
import time

from signalbox.channels import service as channels
from signalbox.core.clock import SystemClock
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
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
