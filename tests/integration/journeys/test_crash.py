"""A real worker process killed with SIGKILL at random moments, then restarted, sends nothing
twice and loses no step (both databases)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from signalbox.channels import service as channels
from signalbox.core.clock import SystemClock
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.workspaces import service as workspaces
from tests.factories import identify, track

PLAYBOOK = """\
playbook: ping
name: Ping
purpose: transactional
trigger: {event: ping}
entry: {reentry: once}
holdout: 0%
steps:
  - id: first
    send: {channel: email, template: note}
  - id: pause
    wait: 1s
  - id: second
    send: {channel: email, template: note}
  - id: third
    send: {channel: email, template: note}
"""
TEMPLATE = "template: note\nchannel: email\nsubject: Hello\nbody: Hi {{ profile.user_id }}\n"
PEOPLE = 25


def _worker(database_url: str, *, watch: bool = False) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SIGNALBOX_DATABASE_URL": database_url,
        "SIGNALBOX_WORKER_LEASE_SECONDS": "1",
        "SIGNALBOX_LOG_LEVEL": "WARNING",
    }
    cli = Path(sys.executable).with_name("signalbox")
    return subprocess.Popen(
        [str(cli), "worker", "--poll", "0.05", "--stale-every", "3600"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if watch else subprocess.DEVNULL,
    )


def test_sigkill_at_random_moments_never_doubles_or_loses_a_send(db, settings, workspace, database_url):
    clock = SystemClock()
    ws = workspaces.get_workspace(db, workspace.id)
    journeys.apply(db, ws.id, "template", [("note.yaml", TEMPLATE)], clock.now())
    journeys.apply(db, ws.id, "playbook", [("ping.yaml", PLAYBOOK)], clock.now())
    people = [identify(f"k-{n}", email=f"k{n}@example.com") for n in range(PEOPLE)]
    Pipeline(db, settings, clock).ingest(ws, BatchInput(people + [track("ping", f"k-{n}") for n in range(PEOPLE)]))
    rng = random.Random(20261203)
    kills = 0
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        proc = _worker(database_url, watch=True)
        assert proc.stderr is not None
        # Kill at a random moment of its work, not of its start-up: on a loaded machine the
        # imports alone can outlast any fixed delay, and a worker killed before it starts
        # tests nothing.
        proc.stderr.readline()  # "worker running"
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        kills += 1
        done = [e for e in journeys.list_enrollments(db, ws.id) if e.status == "completed"]
        if len(done) == PEOPLE and kills >= 5:
            break
    # A last, unkilled run finishes whatever the kills left behind (after the lease runs out).
    time.sleep(1.1)
    final = _worker(database_url, watch=True)
    assert final.stderr is not None
    assert b"worker running" in final.stderr.readline()  # its SIGTERM handler is in place
    try:
        for _ in range(600):
            if all(e.status == "completed" for e in journeys.list_enrollments(db, ws.id)):
                break
            time.sleep(0.1)
    finally:
        final.send_signal(signal.SIGTERM)
        assert final.wait(timeout=30) == 0  # SIGTERM drains and exits cleanly
    enrolled = journeys.list_enrollments(db, ws.id)
    assert len(enrolled) == PEOPLE and all(e.status == "completed" for e in enrolled), kills
    keys = [o.idempotency_key for o in channels.list_outbox(db, ws.id)]
    assert len(keys) == 3 * PEOPLE and len(set(keys)) == len(keys), f"{kills} kills doubled a send"
    assert {s.status for s in channels.list_sends(db, ws.id)} == {"sent"}
