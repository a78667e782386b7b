"""The PostgreSQL server drops every connection of a running worker (what a restart does to
it): the worker reconnects and goes on, and nothing is lost or doubled."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, text

from signalbox.channels import service as channels
from signalbox.core.clock import SystemClock
from signalbox.core.db import Database
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.journeys.worker import Worker
from signalbox.workspaces import service as workspaces
from tests.conftest import PG_ADMIN_URL
from tests.factories import identify, make_settings, track
from tests.integration.journeys.test_crash import PLAYBOOK, TEMPLATE


@pytest.mark.postgres
def test_worker_survives_its_connections_being_dropped(database_url, db, settings, workspace):
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL server restart")
    clock = SystemClock()
    ws = workspaces.get_workspace(db, workspace.id)
    journeys.apply(db, ws.id, "template", [("note.yaml", TEMPLATE)], clock.now())
    journeys.apply(db, ws.id, "playbook", [("ping.yaml", PLAYBOOK)], clock.now())
    name = f"sb-reconnect-{workspace.id[-8:]}"
    worker_db = Database(make_settings(f"{database_url}&application_name={name}"))
    worker = Worker(worker_db, worker_db.settings, clock, poll_seconds=0.1, stale_every_seconds=1e9)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    pipeline = Pipeline(db, settings, clock)
    admin = create_engine(PG_ADMIN_URL)
    try:
        pipeline.ingest(ws, BatchInput([identify(f"p-{n}", email=f"p{n}@example.com") for n in range(10)]))
        pipeline.ingest(ws, BatchInput([track("ping", f"p-{n}") for n in range(5)]))
        time.sleep(1.0)
        with admin.begin() as conn:  # what a restart does to the worker: every connection gone
            dropped = conn.execute(
                text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :n"),
                {"n": name},
            ).scalar_one()
        assert dropped >= 1
        pipeline.ingest(ws, BatchInput([track("ping", f"p-{n}") for n in range(5, 10)]))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = journeys.list_enrollments(db, ws.id)
            if len(found) == 10 and all(e.status == "completed" for e in found):
                break
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(timeout=30)
        worker_db.dispose()
        admin.dispose()
    found = journeys.list_enrollments(db, ws.id)
    assert len(found) == 10 and all(e.status == "completed" for e in found)
    keys = [o.idempotency_key for o in channels.list_outbox(db, ws.id)]
    assert len(keys) == 30 and len(set(keys)) == 30
