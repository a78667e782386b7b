"""Ingestion benchmark: HTTP /v1/batch and `import events`, each as a ratio of a raw
executemany insert of the same rows into the same kind of database, measured in this run.

    .venv/bin/python bench/ingest.py [--events 50000] [--users 5000] [--database-url URL]

Without --database-url it uses fresh SQLite files in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import phonenumbers
from sqlalchemy import func, select, text

from signalbox.core import migrate
from signalbox.core.clock import SystemClock
from signalbox.core.db import Database
from signalbox.core.settings import Settings
from signalbox.events import service as events
from signalbox.events.models import Event
from signalbox.ingestion import importers
from signalbox.ingestion.service import Pipeline
from signalbox.workspaces import service as workspaces

BATCH = 500


def make_settings(url: str) -> Settings:
    return Settings(database_url=url, environment="test")


# Real area codes; with the fictional 555-01xx lines they give each user a phone of their own
# (a bench where 50 strangers share a phone measures the review queue, not ingestion).
AREA_CODES = [a for a in range(201, 990) if phonenumbers.is_valid_number(phonenumbers.parse(f"+1{a}5550100", "US"))]


def phone(u: int) -> str:
    return f"+1{AREA_CODES[u // 100 % len(AREA_CODES)]}555{u % 100 + 100:04d}"


EVENT_NAMES = ["visit", "class_booked", "class_attended", "email_opened", "purchase", "page_viewed"]


def messages(n_events: int, n_users: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[dict] = []
    for u in range(n_users):
        out.append(
            {
                "type": "identify",
                "messageId": f"id-{u}",
                "userId": f"member-{u}",
                "anonymousId": f"anon-{u}",
                "traits": {"email": f"Member{u}@Example.com", "phone": phone(u), "plan": "gold"},
                "timestamp": (start + timedelta(minutes=u)).isoformat(),
            }
        )
    for i in range(n_events - n_users):
        u = rng.randrange(n_users)
        who = {"userId": f"member-{u}"} if rng.random() < 0.8 else {"anonymousId": f"anon-{u}"}
        out.append(
            {
                "type": "track",
                "messageId": f"ev-{i}",
                **who,
                "event": rng.choice(EVENT_NAMES),
                "properties": {"location": f"loc-{u % 6}", "amount": round(rng.random() * 50, 2)},
                "timestamp": (start + timedelta(seconds=rng.randrange(30 * 86400))).isoformat(),
            }
        )
    rng.shuffle(out)
    return out


def fresh_db(url_for: callable, name: str) -> tuple[str, Database]:
    url = url_for(name)
    migrate.upgrade(url)
    return url, Database(make_settings(url))


def raw_rate(db: Database, workspace_id: str, msgs: list[dict]) -> float:
    now = datetime.now(UTC)
    rows = [
        {
            "workspace_id": workspace_id,
            "message_id": m["messageId"],
            "profile_id": "p",
            "type": m["type"],
            "event": m.get("event"),
            "user_id": m.get("userId"),
            "anonymous_id": m.get("anonymousId"),
            "properties": m.get("properties", {}),
            "traits": m.get("traits", {}),
            "context": {},
            "timestamp": datetime.fromisoformat(m["timestamp"]),
            "original_timestamp": None,
            "sent_at": None,
            "received_at": now,
        }
        for m in msgs
    ]
    started = time.perf_counter()
    for i in range(0, len(rows), BATCH):
        with db.transaction() as session:
            events.insert_events_plain(session, rows[i : i + BATCH])
    return len(rows) / (time.perf_counter() - started)


def count(db: Database, workspace_id: str) -> int:
    with db.session() as session:
        return int(
            session.scalar(select(func.count()).select_from(Event).where(Event.workspace_id == workspace_id)) or 0
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_run(url: str, key: str, msgs: list[dict]) -> tuple[float, float, int]:
    port = free_port()
    env = {**os.environ, "SIGNALBOX_DATABASE_URL": url, "SIGNALBOX_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "signalbox.cli.main", "serve", "--port", str(port)], env=env, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.1)
        bodies = [orjson.dumps({"batch": msgs[i : i + BATCH]}) for i in range(0, len(msgs), BATCH)]
        latencies = []
        with httpx.Client(auth=(key, ""), headers={"Content-Type": "application/json"}, timeout=60) as client:
            started = time.perf_counter()
            for body in bodies:
                t = time.perf_counter()
                r = client.post(f"{base}/v1/batch", content=body)
                r.raise_for_status()
                latencies.append(time.perf_counter() - t)
            elapsed = time.perf_counter() - started
            # A retry of the first batch must store nothing.
            client.post(f"{base}/v1/batch", content=bodies[0]).raise_for_status()
    finally:
        server.terminate()
        server.wait(timeout=30)
    p95 = statistics.quantiles(latencies, n=20)[18] if len(latencies) >= 20 else max(latencies)
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return len(msgs) / elapsed, p95, child_kb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--database-url", default=None, help="PostgreSQL base URL (schemas are created per run)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sb-bench-"))

    if args.database_url:
        from sqlalchemy import create_engine

        base = args.database_url
        engine = create_engine(base)

        def url_for(name: str) -> str:
            schema = f"bench_{name}_{os.getpid()}"
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            return f"{base}?options=-csearch_path%3D{schema}"
    else:

        def url_for(name: str) -> str:
            return f"sqlite:///{folder / (name + '.db')}"

    msgs = messages(args.events, args.users)
    print(f"{len(msgs)} messages, {args.users} users, batches of {BATCH}", file=sys.stderr)

    _raw_url, raw_db = fresh_db(url_for, "raw")
    raw_ws = workspaces.create_workspace(raw_db, "raw")
    raw = raw_rate(raw_db, raw_ws.id, msgs)

    http_url, http_db = fresh_db(url_for, "http")
    http_ws = workspaces.create_workspace(http_db, "http")
    http_rate, p95, server_kb = http_run(http_url, http_ws.write_key, msgs)
    http_count = count(http_db, http_ws.id)

    imp_url, imp_db = fresh_db(url_for, "import")
    imp_ws = workspaces.get_workspace(imp_db, workspaces.create_workspace(imp_db, "import").id)
    path = folder / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(m) for m in msgs) + b"\n")
    pipeline = Pipeline(imp_db, make_settings(imp_url), SystemClock())
    started = time.perf_counter()
    result = importers.import_events(pipeline, imp_ws, path)
    imp_rate = len(msgs) / (time.perf_counter() - started)
    imp_count = count(imp_db, imp_ws.id)
    again = importers.import_events(pipeline, imp_ws, path)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    report = {
        "database": "postgresql" if args.database_url else "sqlite",
        "events": len(msgs),
        "raw_insert_per_s": round(raw),
        "http_per_s": round(http_rate),
        "http_ratio": round(http_rate / raw, 3),
        "http_p95_batch_ms": round(p95 * 1000, 1),
        "import_per_s": round(imp_rate),
        "import_ratio": round(imp_rate / raw, 3),
        "stored_http": http_count,
        "stored_import": imp_count,
        "import_rerun_accepted": again.accepted,
        "import_rejected": result.rejected,
        "peak_rss_mb_server": round(server_kb / 1024, 1),
        "peak_rss_mb_import": round(peak_kb / 1024, 1),
    }
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    ok = http_count == imp_count == len(msgs) and again.accepted == 0
    if not ok:
        print("FAILED: something was lost or doubled", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
