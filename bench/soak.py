"""Crash soak: a real `signalbox worker` process killed with SIGKILL at random moments, again
and again, while journeys run; then one clean run. Every journey must complete and no
idempotency key may reach the provider twice.

    .venv/bin/python bench/soak.py [--kills 1000] [--people 200] [--database-url URL]

Prints one JSON document: kills, journeys, sends, duplicates (must be 0), incomplete (must be
0), seconds. Exits 1 when anything was doubled or lost.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from signalbox.channels import service as channels
from signalbox.core import migrate
from signalbox.core.clock import SystemClock
from signalbox.core.db import Database
from signalbox.core.settings import Settings
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.workspaces import service as workspaces

PLAYBOOK = """\
playbook: soak
name: Soak
purpose: transactional
trigger: {event: soak}
entry: {reentry: once}
holdout: 0%
steps:
  - id: one
    send: {channel: email, template: note}
  - id: pause
    wait: 1s
  - id: two
    send: {channel: email, template: note}
  - id: three
    send: {channel: email, template: note}
"""
TEMPLATE = "template: note\nchannel: email\nsubject: Hello\nbody: Hi {{ profile.user_id }}\n"


def _worker(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SIGNALBOX_DATABASE_URL": url, "SIGNALBOX_WORKER_LEASE_SECONDS": "1"}
    env["SIGNALBOX_LOG_LEVEL"] = "ERROR"
    cli = Path(sys.executable).with_name("signalbox")
    return subprocess.Popen(
        [str(cli), "worker", "--poll", "0.05", "--stale-every", "3600"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="sb-soak-")
    url = args.database_url or f"sqlite:///{folder}/soak.db"
    migrate.upgrade(url)
    db = Database(Settings(database_url=url, environment="test"))
    clock = SystemClock()
    ws_created = workspaces.create_workspace(db, f"soak-{int(time.time())}")
    ws = workspaces.get_workspace(db, ws_created.id)
    journeys.apply(db, ws.id, "template", [("note.yaml", TEMPLATE)], clock.now())
    journeys.apply(db, ws.id, "playbook", [("soak.yaml", PLAYBOOK)], clock.now())
    pipeline = Pipeline(db, db.settings, clock)
    rng = random.Random(args.seed)
    started = time.monotonic()
    fed = 0
    for kill in range(args.kills):
        # Keep work arriving so kills land mid-step, not only on an idle worker.
        if fed < args.people:
            batch = [
                {"type": "identify", "userId": f"s-{n}", "traits": {"email": f"s{n}@example.com"}}
                for n in range(fed, min(fed + 5, args.people))
            ]
            batch += [{"type": "track", "userId": m["userId"], "event": "soak"} for m in batch]
            pipeline.ingest(ws, BatchInput(batch))
            fed = min(fed + 5, args.people)
        proc = _worker(url)
        time.sleep(rng.uniform(0.8, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if kill % 50 == 0:
            print(f"kill {kill}/{args.kills}", file=sys.stderr)
    time.sleep(1.2)
    final = _worker(url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = journeys.list_enrollments(db, ws.id, limit=1_000_000)
        if len(found) == args.people and all(e.status == "completed" for e in found):
            break
        time.sleep(0.2)
    final.send_signal(signal.SIGTERM)
    final.wait(timeout=60)
    enrolled = journeys.list_enrollments(db, ws.id, limit=1_000_000)
    keys = [o.idempotency_key for o in channels.list_outbox(db, ws.id, limit=1_000_000)]
    doc = {
        "database": "postgresql" if url.startswith("postgresql") else "sqlite",
        "kills": args.kills,
        "journeys": len(enrolled),
        "sends": len(keys),
        "duplicates": len(keys) - len(set(keys)),
        "incomplete": sum(e.status != "completed" for e in enrolled),
        "expected_sends": 3 * args.people,
        "seconds": round(time.monotonic() - started, 1),
    }
    print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    ok = doc["duplicates"] == 0 and doc["incomplete"] == 0 and doc["sends"] == doc["expected_sends"]
    return 0 if ok and len(enrolled) == args.people else 1


if __name__ == "__main__":
    raise SystemExit(main())
