"""Ingestion benchmark: HTTP /v1/batch and `import events`, each as a ratio of the bare database
loading the same rows in the same round.

    .venv/bin/python bench/ingest.py [--events 50000] [--users 5000] [--rounds 3] [--database-url URL]
                                     [--processes 2]

The reference never goes through signalbox code: on SQLite it is the stdlib `sqlite3` module
running `executemany` of pre-serialised tuples (JSON already text, timestamps already strings)
into an `events` table of the same shape and indexes, WAL and `synchronous=NORMAL`, 500 rows a
transaction; on PostgreSQL (`--database-url postgresql+psycopg://...`) it is psycopg 3's
`cursor.copy` of the same tuples, 500 rows a transaction (one COPY of everything is printed
too). The reference rows are spread over as many profiles as the real ones (one per user), so
the indexes see the same key spread. Schemas and the workspace row are set up with the
project's migrations before the clock starts (set-up, not measured).

With `--processes N` each round also runs N `import events` processes at once into one more
fresh workspace, each with every N-th line of the same file (so they share people, as two
importers of one stream would), and records their combined rate from the moment all are told to
start to the moment the last finishes, beside the single importer's rate in the same round.

Each round uses fresh databases (fresh schemas on PostgreSQL; before each timed phase the schemas
of the phases already measured are dropped and the server CHECKPOINTs, so no phase pays for
another's writes); the figures
are medians over `--rounds` rounds, each ratio taken against its own round's reference.
Without --database-url it uses fresh SQLite files in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import phonenumbers
from serving import wait_healthy
from sqlalchemy import create_engine, func, select, text

from signalbox.core import migrate
from signalbox.core.clock import SystemClock
from signalbox.core.db import Database
from signalbox.core.settings import Settings
from signalbox.events.models import Event
from signalbox.ingestion import importers
from signalbox.ingestion.service import Pipeline
from signalbox.workspaces import service as workspaces

BATCH = 500
COLUMNS = (
    "workspace_id", "message_id", "profile_id", "type", "event", "user_id", "anonymous_id",
    "properties", "traits", "context", "timestamp", "original_timestamp", "sent_at", "received_at",
)  # fmt: skip


def make_settings(url: str) -> Settings:
    return Settings(database_url=url, environment="test")


# Real area codes; with the fictional 555-01xx lines they give each user a phone of their own
# (a bench where 50 strangers share a phone measures the review queue, not ingestion).
AREA_CODES = [a for a in range(201, 990) if phonenumbers.is_valid_number(phonenumbers.parse(f"+1{a}5550100", "US"))]


def phone(u: int) -> str:
    return f"+1{AREA_CODES[u // 100 % len(AREA_CODES)]}555{u % 100 + 100:04d}"


EVENT_NAMES = ["visit", "class_booked", "class_attended", "email_opened", "purchase", "page_viewed"]


def messages(n_events: int, n_users: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[dict[str, Any]] = []
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


def _user_of(m: dict[str, Any]) -> str:
    return str(m.get("userId") or m["anonymousId"]).split("-", 1)[1]


def reference_rows(workspace_id: str, msgs: list[dict[str, Any]], sqlite_times: bool) -> list[tuple[Any, ...]]:
    """The stored shape of every message, serialised before the clock starts: what the bare
    database is handed is exactly what it writes. One profile per user, like the real path."""
    received = datetime.now(UTC)
    fmt = "%Y-%m-%d %H:%M:%S.%f" if sqlite_times else "%Y-%m-%d %H:%M:%S.%f+00:00"
    stamp = received.strftime(fmt)
    return [
        (
            workspace_id,
            m["messageId"],
            f"profile-{_user_of(m)}",
            m["type"],
            m.get("event"),
            m.get("userId"),
            m.get("anonymousId"),
            orjson.dumps(m.get("properties", {})).decode(),
            orjson.dumps(m.get("traits", {})).decode(),
            "{}",
            datetime.fromisoformat(m["timestamp"]).astimezone(UTC).strftime(fmt),
            None,
            None,
            stamp,
        )
        for m in msgs
    ]


def sqlite_reference(path: Path, rows: list[tuple[Any, ...]]) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")  # ours checks the workspace key too
    sql = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    started = time.perf_counter()
    for i in range(0, len(rows), BATCH):
        conn.execute("BEGIN")
        conn.executemany(sql, rows[i : i + BATCH])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    (stored,) = conn.execute("SELECT count(*) FROM events").fetchone()
    conn.close()
    assert stored == len(rows), (stored, len(rows))
    return len(rows) / elapsed


def pg_conninfo(sqlalchemy_url: str, schema: str) -> tuple[str, str]:
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1), f"-csearch_path={schema}"


def postgres_reference(base_url: str, schema: str, rows: list[tuple[Any, ...]]) -> tuple[float, float]:
    """(rows/s with one COPY per 500-row transaction, rows/s with one COPY of everything)."""
    import psycopg

    conninfo, options = pg_conninfo(base_url, schema)
    copy_sql = f"COPY events ({', '.join(COLUMNS)}) FROM STDIN"
    with psycopg.connect(conninfo, options=options) as conn:
        started = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
                for row in rows[i : i + BATCH]:
                    copy.write_row(row)
        batched = len(rows) / (time.perf_counter() - started)
        stored = conn.execute("SELECT count(*) FROM events").fetchone()
        assert stored is not None and stored[0] == len(rows), (stored, len(rows))
        conn.execute("TRUNCATE events")
        conn.commit()
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
        whole = len(rows) / (time.perf_counter() - started)
    return batched, whole


def count(db: Database, workspace_id: str) -> int:
    with db.session() as session:
        return int(
            session.scalar(select(func.count()).select_from(Event).where(Event.workspace_id == workspace_id)) or 0
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_run(url: str, key: str, msgs: list[dict[str, Any]]) -> tuple[float, float, int]:
    port = free_port()
    env = {**os.environ, "SIGNALBOX_DATABASE_URL": url, "SIGNALBOX_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "signalbox.cli.main", "serve", "--port", str(port)], env=env, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, 30)
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
        peak_kb = peak_rss_kb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    p95 = statistics.quantiles(latencies, n=20)[18] if len(latencies) >= 20 else max(latencies)
    return len(msgs) / elapsed, p95, peak_kb


def peak_rss_kb(pid: int) -> int:
    """The server's own high-water mark. Not RUSAGE_CHILDREN: a child forked from this process
    counts the parent's pages until it execs, so that reads as this process's size."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class Databases:
    """Fresh databases per round: SQLite files in a temp folder, or PostgreSQL schemas that are
    all dropped at the end."""

    def __init__(self, base_url: str | None, folder: Path) -> None:
        self.base_url, self.folder = base_url, folder
        self.schemas: list[str] = []
        self.engine = create_engine(base_url) if base_url else None

    def fresh(self, name: str) -> tuple[str, Database, str]:
        """(SQLAlchemy URL, Database, SQLite path or PostgreSQL schema), migrated."""
        if self.engine is not None:
            schema = f"bench_{name}_{os.getpid()}"
            with self.engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            self.schemas.append(schema)
            url, where = f"{self.base_url}?options=-csearch_path%3D{schema}", schema
        else:
            where = str(self.folder / f"{name}.db")
            url = f"sqlite:///{where}"
        migrate.upgrade(url)
        return url, Database(make_settings(url)), where

    def settle(self, keep: str) -> None:
        """Before each timed phase on PostgreSQL: drop the schemas of the phases already measured
        and CHECKPOINT. Each 50,000-row phase writes hundreds of MB of WAL; without this the
        next phase (the reference or ours alike) shared the disk and the cores with the
        previous one's checkpoint writes (at 1 GB of WAL, several times a run) and with
        autovacuum working through its tables, and single rounds swung by a third."""
        if self.engine is None:
            return
        with self.engine.begin() as conn:
            for schema in [s for s in self.schemas if s != keep]:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text("CHECKPOINT"))
        self.schemas = [keep]

    def drop_all(self) -> None:
        if self.engine is not None:
            with self.engine.begin() as conn:
                for schema in self.schemas:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            self.engine.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)


def one_round(
    k: int, dbs: Databases, msgs: list[dict[str, Any]], events_path: Path, processes: int = 1
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _, ref_db, where = dbs.fresh(f"ref{k}")
    ref_ws = workspaces.create_workspace(ref_db, f"ref{k}")
    ref_db.dispose()
    dbs.settle(where)
    if dbs.engine is not None:
        assert dbs.base_url is not None
        rows = reference_rows(ref_ws.id, msgs, sqlite_times=False)
        out["reference_per_s"], out["copy_all_at_once_per_s"] = postgres_reference(dbs.base_url, where, rows)
    else:
        rows = reference_rows(ref_ws.id, msgs, sqlite_times=True)
        out["reference_per_s"] = sqlite_reference(Path(where), rows)

    http_url, http_db, where = dbs.fresh(f"http{k}")
    http_ws = workspaces.create_workspace(http_db, f"http{k}")
    dbs.settle(where)
    out["http_per_s"], out["http_p95_batch_s"], out["server_peak_rss_kb"] = http_run(http_url, http_ws.write_key, msgs)
    out["stored_http"] = count(http_db, http_ws.id)
    http_db.dispose()

    imp_url, imp_db, where = dbs.fresh(f"import{k}")
    imp_ws = workspaces.get_workspace(imp_db, workspaces.create_workspace(imp_db, f"import{k}").id)
    pipeline = Pipeline(imp_db, make_settings(imp_url), SystemClock())
    dbs.settle(where)
    started = time.perf_counter()
    result = importers.import_events(pipeline, imp_ws, events_path)
    out["import_per_s"] = len(msgs) / (time.perf_counter() - started)
    out["stored_import"] = count(imp_db, imp_ws.id)
    out["import_rejected"] = result.rejected
    out["import_rerun_accepted"] = importers.import_events(pipeline, imp_ws, events_path).accepted
    imp_db.dispose()
    if processes > 1:
        par_url, par_db, where = dbs.fresh(f"parallel{k}")
        par_ws = workspaces.create_workspace(par_db, f"parallel{k}")
        dbs.settle(where)
        out["parallel_import_per_s"], out["parallel_accepted"] = parallel_import(
            par_url, par_ws.id, events_path, processes
        )
        out["stored_parallel"] = count(par_db, par_ws.id)
        par_db.dispose()
        out["parallel_vs_single"] = out["parallel_import_per_s"] / out["import_per_s"]
    out["http_ratio"] = out["http_per_s"] / out["reference_per_s"]
    out["import_ratio"] = out["import_per_s"] / out["reference_per_s"]
    return out


def import_worker(url: str, workspace_id: str, path: str) -> None:
    """One of the --processes importers: set up, say "ready", wait for "go", import, report."""
    db = Database(make_settings(url))
    workspace = workspaces.get_workspace(db, workspace_id)
    pipeline = Pipeline(db, make_settings(url), SystemClock())
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.time()
    result = importers.import_events(pipeline, workspace, Path(path))
    print(orjson.dumps({"started": started, "ended": time.time(), "accepted": result.accepted}).decode(), flush=True)
    db.dispose()


def parallel_import(url: str, workspace_id: str, events_path: Path, processes: int) -> tuple[float, int]:
    """(combined events/s, accepted) of `processes` concurrent importers, each given every
    `processes`-th line of the file."""
    lines = events_path.read_bytes().splitlines()
    parts = []
    for k in range(processes):
        part = events_path.with_name(f"part{k}.jsonl")
        part.write_bytes(b"\n".join(lines[k::processes]) + b"\n")
        parts.append(part)
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", url, workspace_id, str(part)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for part in parts
    ]
    for w in workers:
        assert w.stdout is not None and w.stdout.readline().strip() == "ready"
    for w in workers:
        assert w.stdin is not None
        w.stdin.write("go\n")
        w.stdin.flush()
    reports = []
    for w in workers:
        assert w.stdout is not None
        reports.append(orjson.loads(w.stdout.readline()))
        w.wait(timeout=60)
    elapsed = max(r["ended"] for r in reports) - min(r["started"] for r in reports)
    return len(lines) / elapsed, sum(int(r["accepted"]) for r in reports)


def median(rounds: list[dict[str, Any]], key: str, digits: int) -> float:
    return round(statistics.median(r[key] for r in rounds), digits)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        import_worker(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (a fresh schema per database, dropped)")
    parser.add_argument("--processes", type=int, default=1, help="also run this many importers at once")
    args = parser.parse_args()
    dbs = Databases(args.database_url, Path(tempfile.mkdtemp(prefix="sb-bench-")))
    msgs = messages(args.events, args.users)
    events_path = dbs.folder / "events.jsonl"
    events_path.write_bytes(b"\n".join(orjson.dumps(m) for m in msgs) + b"\n")
    print(f"{len(msgs)} messages, {args.users} users, batches of {BATCH}, {args.rounds} rounds", file=sys.stderr)

    rounds: list[dict[str, Any]] = []
    try:
        for k in range(args.rounds):
            rounds.append(one_round(k, dbs, msgs, events_path, args.processes))
            r = rounds[-1]
            print(
                f"round {k + 1}: reference {r['reference_per_s']:,.0f}/s, HTTP {r['http_per_s']:,.0f}/s "
                f"({r['http_ratio']:.3f}), import {r['import_per_s']:,.0f}/s ({r['import_ratio']:.3f})"
                + (
                    f", {args.processes} importers {r['parallel_import_per_s']:,.0f}/s "
                    f"({r['parallel_vs_single']:.2f}x one)"
                    if args.processes > 1
                    else ""
                ),
                file=sys.stderr,
            )
    finally:
        dbs.drop_all()

    postgres = args.database_url is not None
    report: dict[str, Any] = {
        "database": "postgresql" if postgres else "sqlite",
        "reference": (
            "psycopg COPY, 500 rows a transaction" if postgres else "stdlib sqlite3 executemany, 500 rows a transaction"
        ),
        "events": len(msgs),
        "profiles": args.users,
        "rounds": args.rounds,
        "reference_per_s": median(rounds, "reference_per_s", 0),
        "http_per_s": median(rounds, "http_per_s", 0),
        "http_ratio": median(rounds, "http_ratio", 3),
        "http_p95_batch_ms": round(1000 * statistics.median(r["http_p95_batch_s"] for r in rounds), 1),
        "import_per_s": median(rounds, "import_per_s", 0),
        "import_ratio": median(rounds, "import_ratio", 3),
        "per_round": [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in rounds],
        "peak_rss_mb_server": round(max(r["server_peak_rss_kb"] for r in rounds) / 1024, 1),
        "peak_rss_mb_import": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if args.processes > 1:
        report["processes"] = args.processes
        report["parallel_import_per_s"] = median(rounds, "parallel_import_per_s", 0)
        report["parallel_vs_single"] = median(rounds, "parallel_vs_single", 2)
        report["parallel_import_ratio"] = round(
            statistics.median(r["parallel_import_per_s"] / r["reference_per_s"] for r in rounds), 3
        )
    if postgres:
        report["copy_all_at_once_per_s"] = median(rounds, "copy_all_at_once_per_s", 0)
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    ok = all(
        r["stored_http"] == r["stored_import"] == r.get("stored_parallel", len(msgs)) == len(msgs)
        and r["import_rerun_accepted"] == 0
        for r in rounds
    )
    if not ok:
        print("FAILED: something was lost or doubled", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
