"""Journey engine benchmark: each figure beside a bare reference measured in the same run.

    .venv/bin/python bench/journeys.py [--full] [--database-url URL] [--only latency,steps,bulk,ingest]

1. event -> first send latency (p50/p95/p99) at a steady 100 events/s, the worker embedded in
   a thread and woken by `signalbox.core.wakeup`; beside it the latency of the ingest call alone;
2. due steps executed to the sandbox per second, beside a bare `UPDATE ... RETURNING` claim loop
   on the same `enrollments` table through the stdlib sqlite3 / psycopg (PostgreSQL: 1, 2 and 4
   worker processes);
3. enrolment of a whole set of profiles: `triggers.enroll` per person (the only API there is),
   timed on a sample and extrapolated, beside one `INSERT ... SELECT` through the bare driver;
4. ingestion through `Pipeline` with 10 live event-triggered playbooks and the worker running
   vs the same with no playbooks.

Without --database-url it uses fresh SQLite files in a temporary folder; with it, one fresh
schema per section, dropped at the end. Sizes are small by default (`make bench`); --full runs
the issue's sizes (1,000,000 profiles for the bulk enrolment).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine, func, select, text

from signalbox.channels.models import OutboxMessage
from signalbox.core import migrate
from signalbox.core.clock import SystemClock
from signalbox.core.db import Database
from signalbox.core.settings import Settings
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.journeys import triggers
from signalbox.journeys.engine import Engine
from signalbox.journeys.models import Enrollment
from signalbox.journeys.worker import Worker
from signalbox.workspaces import service as workspaces
from signalbox.workspaces.schemas import WorkspaceInfo

TEMPLATE = "template: bench-hello\nchannel: email\nsubject: Hello\nbody: Hi {{ profile.user_id }}\n"


def playbook(key: str, event: str, reentry: str = "every_time", then: str = "") -> str:
    return (
        f"playbook: {key}\nname: {key}\npurpose: transactional\ntrigger:\n  event: {event}\n"
        f"entry:\n  reentry: {reentry}\nholdout: 0%\nsteps:\n"
        "  - id: hello\n    send: {channel: email, template: bench-hello}\n" + then
    )


def make_settings(url: str) -> Settings:
    return Settings(database_url=url, environment="test")


class Target:
    """Fresh databases for one run: SQLite files, or PostgreSQL schemas dropped at the end."""

    def __init__(self, base: str | None) -> None:
        self.base = base
        self.folder = Path(tempfile.mkdtemp(prefix="sb-jbench-"))
        self.schemas: list[str] = []
        self.is_pg = base is not None

    def fresh(self, name: str) -> str:
        if self.base is None:
            url = f"sqlite:///{self.folder / (name + '.db')}"
        else:
            schema = f"bench_j_{name}_{os.getpid()}"
            engine = create_engine(self.base)
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            engine.dispose()
            self.schemas.append(schema)
            url = f"{self.base}?options=-csearch_path%3D{schema}"
        migrate.upgrade(url)
        return url

    def drop(self) -> None:
        if self.base is None:
            # The full run leaves over a gigabyte of SQLite files.
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        engine = create_engine(self.base)
        for schema in self.schemas:
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def raw_connect(url: str) -> Any:
    """The bare driver on the same database: stdlib sqlite3, or psycopg."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def setup(url: str, users: int, playbooks: list[str]) -> tuple[Database, WorkspaceInfo]:
    db = Database(make_settings(url))
    ws = workspaces.get_workspace(db, workspaces.create_workspace(db, "bench").id)
    pipeline = Pipeline(db, make_settings(url), SystemClock())
    now = datetime.now(UTC).isoformat()
    msgs = [
        {
            "type": "identify",
            "messageId": f"id-{u}",
            "userId": f"member-{u}",
            "traits": {"email": f"member{u}@example.com"},
            "timestamp": now,
        }
        for u in range(users)
    ]
    for i in range(0, len(msgs), 500):
        pipeline.ingest(ws, BatchInput(msgs[i : i + 500]))
    journeys.apply(db, ws.id, "template", [("t.yaml", TEMPLATE)], datetime.now(UTC))
    if playbooks:
        journeys.apply(db, ws.id, "playbook", [(f"p{i}.yaml", t) for i, t in enumerate(playbooks)], datetime.now(UTC))
    return db, ws


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def start_worker(db: Database) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    worker = Worker(db, db.settings, SystemClock(), stale_every_seconds=1e9)
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


# ---- 1. event -> first send ------------------------------------------------------------------


def latency(target: Target, seconds: float, rate: float) -> dict[str, Any]:
    url = target.fresh(f"latency{int(rate)}")
    db, ws = setup(url, 200, [playbook("bench-latency", "bench_signal")])
    pipeline = Pipeline(db, make_settings(url), SystemClock())
    stop, thread = start_worker(db)
    received: dict[str, datetime] = {}
    ingest_ms: list[float] = []
    n = int(seconds * rate)
    # Events arrive as SDKs send them: what came in during each 50 ms goes in one batch. The
    # latency counts from each event's own moment, so the wait for its batch is included.
    tick = 0.05
    t0, wall0 = time.perf_counter(), datetime.now(UTC)
    i = 0
    while i < n:
        upto = min(n, int((time.perf_counter() - t0) / tick + 1) * int(rate * tick))
        due = t0 + (upto / rate) - time.perf_counter()
        if due > 0:
            time.sleep(due)
        batch = []
        for j in range(i, upto):
            at = wall0 + timedelta(seconds=j / rate)
            received[f"sig-{j}"] = at
            msg = {"type": "track", "messageId": f"sig-{j}", "userId": f"member-{j % 200}", "event": "bench_signal"}
            batch.append({**msg, "timestamp": at.isoformat()})
        started = time.perf_counter()
        pipeline.ingest(ws, BatchInput(batch, received_at=datetime.now(UTC)))
        ingest_ms.append((time.perf_counter() - started) * 1000)
        i = upto
    offered = n / (time.perf_counter() - t0)
    deadline = time.monotonic() + 120
    while _outbox_count(db, ws.id) < n and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    thread.join(timeout=30)
    with db.session() as session:
        trigger_of = {e.id: e.trigger["message_id"] for e in session.scalars(select(Enrollment))}
        sent = {o.idempotency_key.split(":")[0]: o.created_at for o in session.scalars(select(OutboxMessage))}
    lat = [(at - received[trigger_of[e]]).total_seconds() * 1000 for e, at in sent.items()]
    db.dispose()
    return {
        "events": n,
        "offered_per_s": round(offered, 1),
        "sent": len(lat),
        "p50_ms": round(pct(lat, 50), 1),
        "p95_ms": round(pct(lat, 95), 1),
        "p99_ms": round(pct(lat, 99), 1),
        "max_ms": round(max(lat), 1),
        "reference_ingest_batch_call_p50_ms": round(pct(ingest_ms, 50), 1),
        "reference_ingest_batch_call_p95_ms": round(pct(ingest_ms, 95), 1),
    }


def _outbox_count(db: Database, workspace_id: str) -> int:
    with db.session() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.workspace_id == workspace_id)
            )
            or 0
        )


# ---- 2. due steps per second -----------------------------------------------------------------

ENROLL_SQL = """
INSERT INTO enrollments (id, workspace_id, playbook_key, version, profile_id, user_id, entry_key,
    entry_lock, status, exit_reason, holdout, "trigger", position, waiting, due_at, lease_until,
    created_at, updated_at, exited_at)
SELECT {prefix} || replace(p.id, 'prof_', ''), p.workspace_id, {key}, 1, p.id, p.user_id, '', {prefix} || p.id,
    'active', NULL, false, {trigger}, 'hello', NULL, {now}, NULL, {now}, {now}, NULL
FROM profiles p WHERE p.workspace_id = {ws} AND p.id = p.canonical_id
"""


def bare_enroll(url: str, workspace_id: str, key: str, prefix: str) -> tuple[int, float]:
    """The set-based reference: every root profile enrolled in one statement, due now."""
    conn = raw_connect(url)
    if url.startswith("sqlite"):
        sql = ENROLL_SQL.format(prefix=":prefix", key=":key", trigger="'{}'", now=":now", ws=":ws")
        # SQLAlchemy stores SQLite datetimes as naive UTC text in this format.
        now: Any = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        params: Any = {"prefix": prefix, "key": key, "now": now, "ws": workspace_id}
    else:
        sql = ENROLL_SQL.format(prefix="%(prefix)s", key="%(key)s", trigger="'{}'::jsonb", now="%(now)s", ws="%(ws)s")
        params = {"prefix": prefix, "key": key, "now": datetime.now(UTC), "ws": workspace_id}
    started = time.perf_counter()
    if url.startswith("sqlite"):
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute(sql, params).rowcount
        conn.execute("COMMIT")
    else:
        rows = conn.execute(sql, params).rowcount
    elapsed = time.perf_counter() - started
    conn.close()
    return rows, elapsed


def bare_claim_loop(url: str, key: str, batch: int = 100) -> tuple[int, float]:
    """Claim a batch of due rows and mark them done, until none is left: the floor under any
    engine that keeps its schedule in this table."""
    conn = raw_connect(url)
    if url.startswith("sqlite"):
        sql = (
            "UPDATE enrollments SET status = 'completed', position = NULL, due_at = NULL, lease_until = NULL "
            "WHERE id IN (SELECT id FROM enrollments WHERE status = 'active' AND due_at <= ? AND playbook_key = ? "
            "ORDER BY due_at LIMIT ?) RETURNING id"
        )
        bound: Any = ("9999-12-31", key, batch)
    else:
        sql = (
            "UPDATE enrollments SET status = 'completed', position = NULL, due_at = NULL, lease_until = NULL "
            "WHERE id IN (SELECT id FROM enrollments WHERE status = 'active' AND due_at <= now() "
            "AND playbook_key = %s ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id"
        )
        bound = (key, batch)
    done = 0
    started = time.perf_counter()
    while True:
        if url.startswith("sqlite"):
            conn.execute("BEGIN IMMEDIATE")
            got = len(conn.execute(sql, bound).fetchall())
            conn.execute("COMMIT")
        else:
            got = len(conn.execute(sql, bound).fetchall())
        if not got:
            break
        done += got
    elapsed = time.perf_counter() - started
    conn.close()
    return done, elapsed


def _engine_process(url: str, go: Any, results: Any) -> None:
    db = Database(make_settings(url))
    engine = Engine(db, db.settings, SystemClock())
    go.wait()
    cpu = time.process_time()
    done = 0
    while True:
        got = engine.run_due()
        if not got:
            break
        done += got
    results.put((done, time.time(), time.process_time() - cpu))
    db.dispose()


def engine_steps(url: str, processes: int) -> tuple[int, float, float]:
    """Engine.run_due (claim, then each enrolment's send to the sandbox and its commit) in
    `processes` worker processes until nothing is due."""
    ctx = mp.get_context("spawn")
    go, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_engine_process, args=(url, go, results)) for _ in range(processes)]
    for p in procs:
        p.start()
    time.sleep(3.0)  # imports and connections, outside the timed part
    started = time.time()
    go.set()
    outs = [results.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join()
    # CPU seconds of the worker processes themselves (not the database server's).
    return sum(o[0] for o in outs), max(o[1] for o in outs) - started, sum(o[2] for o in outs)


def steps(target: Target, people: int, rounds: int) -> dict[str, Any]:
    url = target.fresh("steps")
    db, ws = setup(url, people, [playbook("bench-steps", "never_sent")])
    counts = [1, 2, 4] if target.is_pg else [1]
    engine_rates: dict[int, list[float]] = {c: [] for c in counts}
    cpu_ms: dict[int, list[float]] = {c: [] for c in counts}
    bare_rates: list[float] = []
    for r in range(rounds):
        rows, _ = bare_enroll(url, ws.id, "bench-bare", f"enr_b{r}_")
        done, elapsed = bare_claim_loop(url, "bench-bare")
        assert done == rows == people, (done, rows, people)
        bare_rates.append(done / elapsed)
        for c in counts:
            rows, _ = bare_enroll(url, ws.id, "bench-steps", f"enr_s{r}_{c}_")
            done, elapsed, cpu = engine_steps(url, c)
            assert done == rows, (done, rows)
            engine_rates[c].append(done / elapsed)
            cpu_ms[c].append(cpu / done * 1000)
    sent = _outbox_count(db, ws.id)
    db.dispose()
    bare = statistics.median(bare_rates)
    out: dict[str, Any] = {"due_steps_per_round": people, "rounds": rounds, "bare_claim_loop_per_s": round(bare)}
    for c in counts:
        rate = statistics.median(engine_rates[c])
        out[f"engine_{c}_worker_steps_per_s"] = round(rate)
        out[f"engine_{c}_worker_ratio"] = round(rate / bare, 3)
        out[f"engine_{c}_worker_cpu_ms_per_step"] = round(statistics.median(cpu_ms[c]), 1)
    out["sandbox_messages"] = sent
    out["expected_messages"] = people * rounds * len(counts)
    return out


# ---- 3. bulk enrolment -----------------------------------------------------------------------


def bulk(target: Target, profiles: int, sample: int) -> dict[str, Any]:
    url = target.fresh("bulk")
    db, ws = setup(
        url,
        10,
        [playbook(key, "never_sent", reentry="once") for key in ("bench-bulk", "bench-bulk-set")],
    )
    _make_profiles(url, ws.id, profiles)
    rows, ref_s = bare_enroll(url, ws.id, "bench-bulk-ref", "enr_r_")
    with db.session() as session:
        flows = triggers._active_flows(session, ws.id)
    flow = flows["bench-bulk"]
    roots = [f"bp-{i}" for i in range(sample)]
    now = datetime.now(UTC)
    started = time.perf_counter()
    for i in range(0, len(roots), 1000):
        with db.transaction() as session:
            for root in roots[i : i + 1000]:
                triggers.enroll(session, ws.id, flow, root, {"kind": "segment"}, now)
    per_person_s = time.perf_counter() - started
    everyone = [f"bp-{i}" for i in range(profiles)]
    started = time.perf_counter()
    with db.transaction() as session:
        set_rows = triggers.enroll_set(session, ws.id, flows["bench-bulk-set"], everyone, {"kind": "segment"}, now)
    set_s = time.perf_counter() - started
    db.dispose()
    estimate = per_person_s / sample * profiles
    return {
        "profiles": profiles,
        "reference_insert_select_s": round(ref_s, 2),
        "reference_rows": rows,
        "enroll_per_person_sample": sample,
        "enroll_per_person_sample_s": round(per_person_s, 2),
        "enroll_per_person_estimated_s": round(estimate, 1),
        "ratio_to_reference": round(estimate / ref_s, 1),
        "enroll_set_s": round(set_s, 2),
        "enroll_set_rows": set_rows,
        "enroll_set_ratio_to_reference": round(set_s / ref_s, 1),
    }


def _make_profiles(url: str, workspace_id: str, n: int) -> None:
    """Bare profile rows (the enrolment reads only ids and user ids), written by the driver so
    that a million of them take seconds, not the pipeline's hours."""
    conn = raw_connect(url)
    cols = "id, workspace_id, canonical_id, user_id, traits, event_counts, created_at, updated_at"
    if url.startswith("sqlite"):
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            f"WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?) "
            f"INSERT INTO profiles ({cols}) SELECT 'bp-' || i, ?, 'bp-' || i, 'bu-' || i, '{{}}', '{{}}', ?, ? FROM s",
            (n, workspace_id, now, now),
        )
        conn.execute("COMMIT")
    else:
        conn.execute(
            f"INSERT INTO profiles ({cols}) SELECT 'bp-' || i, %s, 'bp-' || i, 'bu-' || i, '{{}}', '{{}}', "
            "now(), now() FROM generate_series(0, %s - 1) AS i",
            (workspace_id, n),
        )
        conn.execute("ANALYZE profiles")
    conn.close()


# ---- 4. ingestion with live playbooks --------------------------------------------------------

NAMES = [f"signal_{i}" for i in range(10)] + ["visit", "class_booked", "page_viewed", "email_opened"]


def _worker_process(url: str, ready: Any, stop: Any) -> None:
    db = Database(make_settings(url))
    worker = Worker(db, db.settings, SystemClock(), stale_every_seconds=1e9)
    ready.set()
    worker.run(stop)
    db.dispose()


def ingest_once(
    target: Target, name: str, with_playbooks: bool, users: int, n_events: int, separate: bool
) -> tuple[float, int]:
    url = target.fresh(name)
    books = (
        [
            playbook(f"bench-live-{i}", f"signal_{i}", reentry="after_exit", then="  - id: pause\n    wait: 7d\n")
            for i in range(10)
        ]
        if with_playbooks
        else []
    )
    db, ws = setup(url, users, books)
    rng = random.Random(11)
    now = datetime.now(UTC).isoformat()
    msgs = [
        {
            "type": "track",
            "messageId": f"ev-{i}",
            "userId": f"member-{rng.randrange(users)}",
            "event": rng.choice(NAMES),
            "properties": {"amount": round(rng.random() * 50, 2)},
            "timestamp": now,
        }
        for i in range(n_events)
    ]
    pipeline = Pipeline(db, make_settings(url), SystemClock())
    if separate:  # `signalbox worker` beside `serve --no-worker`
        ctx = mp.get_context("spawn")
        ready, stop_proc = ctx.Event(), ctx.Event()
        proc = ctx.Process(target=_worker_process, args=(url, ready, stop_proc))
        proc.start()
        ready.wait(60)
    else:  # `serve`'s embedded worker
        stop, thread = start_worker(db)
    started = time.perf_counter()
    for i in range(0, len(msgs), 500):
        pipeline.ingest(ws, BatchInput(msgs[i : i + 500]))
    rate = n_events / (time.perf_counter() - started)
    if separate:
        stop_proc.set()
        proc.join(timeout=120)
    else:
        stop.set()
        thread.join(timeout=60)
    with db.session() as session:
        enrolled = int(session.scalar(select(func.count()).select_from(Enrollment)) or 0)
    db.dispose()
    return rate, enrolled


def ingest(target: Target, users: int, n_events: int, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"events": n_events, "rounds": rounds}
    for label, separate in (("embedded_worker", False), ("separate_worker", True)):
        bare, live, enrolled = [], [], 0
        for r in range(rounds):
            bare.append(ingest_once(target, f"none{r}{label}", False, users, n_events, separate)[0])
            rate, enrolled = ingest_once(target, f"live{r}{label}", True, users, n_events, separate)
            live.append(rate)
        b, lv = statistics.median(bare), statistics.median(live)
        out[label] = {
            "no_playbooks_per_s": round(b),
            "ten_playbooks_per_s": round(lv),
            "ratio": round(lv / b, 3),
            "enrolled_last_round": enrolled,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the issue's sizes (slow: minutes)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL base URL (a schema per section)")
    parser.add_argument("--only", default="latency,steps,bulk,ingest")
    parser.add_argument(
        "--low-rate", type=float, default=20.0, help="a second latency run at a rate the engine keeps up with"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the steps and ingest sections (median)")
    parser.add_argument("--profiles", type=int, default=None, help="bulk enrolment size")
    args = parser.parse_args()
    target = Target(args.database_url)
    only = set(args.only.split(","))
    full = args.full
    sections: dict[str, Callable[[], dict[str, Any]]] = {
        "latency": lambda: {
            f"{rate:g}_per_s": latency(target, 60 if full else 10, rate) for rate in (100.0, args.low_rate)
        },
        "steps": lambda: steps(target, 5000 if full else 1000, args.rounds),
        "bulk": lambda: bulk(target, args.profiles or (1_000_000 if full else 100_000), 20_000 if full else 2_000),
        "ingest": lambda: ingest(target, 2000 if full else 500, 20_000 if full else 5_000, args.rounds),
    }
    report: dict[str, Any] = {"database": "postgresql" if target.is_pg else "sqlite", "full": full}
    try:
        for name, run in sections.items():
            if name in only:
                started = time.perf_counter()
                report[name] = run()
                # Each section as it ends, so a later failure does not lose the figures.
                seconds = time.perf_counter() - started
                print(f"{name} ({seconds:.0f} s): {orjson.dumps(report[name]).decode()}", file=sys.stderr)
    finally:
        target.drop()
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
