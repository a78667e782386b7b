"""How long Today takes to render on a 12,000-member demo world, over real HTTP on loopback.

    .venv/bin/python bench/dashboard_today.py [--members 12000] [--requests 60]
                                              [--database-url sqlite:////tmp/today-bench.db]

Seeds the demo world (`demo.seed_if_empty`: the 15-month world, the shipped playbooks, a
scoring run) into a workspace named `today-bench` unless that workspace already holds events,
so a second run on the same --database-url reuses the seeded world (seeding 12,000 members
takes minutes). Without --database-url a temporary SQLite file is used and removed at the end.
Then a `signalbox serve --no-worker` process is started, an owner (all locations) and a staff
member of two locations sign in, and each fetches `GET /today` and `GET /api/v1/today`
--requests times one after another; beside them, in the same run against the same server,
`GET /healthz` (one database round trip) as the floor. Prints median and p95 and the ratio
of each to the floor. The target is a p95 under 300 ms for `GET /today`.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from serving import wait_healthy

from signalbox.accounts import service as accounts
from signalbox.core import migrate
from signalbox.core.clock import SystemClock
from signalbox.core.db import Database
from signalbox.core.errors import NotFoundError
from signalbox.core.settings import Settings
from signalbox.demo import service as demo
from signalbox.demo.schemas import WorldConfig
from signalbox.workspaces import service as workspaces

SECRET_KEY = "bench-secret-key-bench-secret-key-0123456789"
WORKSPACE = "today-bench"
PASSWORD = "bench password for today"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(db: Database, settings: Settings, members: int) -> None:
    clock = SystemClock()
    config = WorldConfig(end=demo.world_end(None, 6, clock), members=members, locations=6, months=15, seed=7)
    started = time.perf_counter()
    done = demo.seed_if_empty(db, settings, WORKSPACE, config, clock)
    if done is None:
        print(f"workspace {WORKSPACE!r} already seeded: reusing it")
    else:
        result, run = done
        print(
            f"seeded {result.events} events for {members} members in {time.perf_counter() - started:.0f} s; "
            f"scored {run.profiles}: {run.bands}"
        )


def ensure_user(db: Database, workspace_id: str, email: str, role: str, locations: list[str] | None) -> None:
    if any(u.email == email for u in accounts.list_users(db, workspace_id)):
        return
    accounts.create_user(
        db, workspace_id, email=email, password=PASSWORD, role=role, locations=locations, clock=SystemClock()
    )


def sign_in(client: httpx.Client, email: str) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, "no login form"
    form = {"csrf_token": token.group(1), "workspace": WORKSPACE, "email": email, "password": PASSWORD}
    answer = client.post("/login", data=form)
    assert answer.status_code == 303, answer.text


def timed(client: httpx.Client, path: str, n: int) -> list[float]:
    client.get(path)  # warm: templates compiled, connections open
    out = []
    for _ in range(n):
        started = time.perf_counter()
        answer = client.get(path)
        out.append(time.perf_counter() - started)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])
    return out


def summary(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=12_000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--database-url", default=None, help="reuse this database (seeded once, kept)")
    args = parser.parse_args()
    if args.requests < 50:
        parser.error("--requests must be at least 50")

    tmp = None
    if args.database_url:
        url = args.database_url
    else:
        tmp = Path(tempfile.mkdtemp(prefix="sb-today-bench-"))
        url = f"sqlite:///{tmp / 'bench.db'}"
    migrate.upgrade(url)
    settings = Settings(database_url=url, environment="test", secret_key=SECRET_KEY)
    db = Database(settings)
    seed(db, settings, args.members)
    try:
        ws = workspaces.get_workspace(db, WORKSPACE)
    except NotFoundError:
        sys.exit("the demo workspace was not created")
    ensure_user(db, ws.id, "owner@bench.example", "owner", None)
    ensure_user(db, ws.id, "staff@bench.example", "staff", ["loc-01", "loc-02"])
    db.dispose()

    port = free_port()
    env = {**os.environ, "SIGNALBOX_DATABASE_URL": url, "SIGNALBOX_SECRET_KEY": SECRET_KEY}
    env["SIGNALBOX_LOG_LEVEL"] = "WARNING"
    server = subprocess.Popen(
        [sys.executable, "-m", "signalbox.cli.main", "serve", "--port", str(port), "--no-worker"],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    results: dict[str, list[float]] = {}
    try:
        wait_healthy(base, 60, step=0.2)
        with httpx.Client(base_url=base, timeout=60) as owner, httpx.Client(base_url=base, timeout=60) as staff:
            sign_in(owner, "owner@bench.example")
            sign_in(staff, "staff@bench.example")
            results["GET /healthz"] = timed(owner, "/healthz", args.requests)
            results["GET /today (owner, all locations)"] = timed(owner, "/today", args.requests)
            results["GET /today (staff, 2 locations)"] = timed(staff, "/today", args.requests)
            results["GET /today?location=loc-01 (owner)"] = timed(owner, "/today?location=loc-01", args.requests)
            results["GET /api/v1/today (owner)"] = timed(owner, "/api/v1/today", args.requests)
            results["GET /healthz (again)"] = timed(owner, "/healthz", args.requests)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if tmp is not None:
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()

    engine = "postgresql" if url.startswith("postgresql") else "sqlite"
    floor = summary(results["GET /healthz"] + results["GET /healthz (again)"])
    print(f"database: {engine}; {args.members} members; {args.requests} sequential requests each")
    for name, values in results.items():
        median, p95 = summary(values)
        print(
            f"{name:38s} median {median:7.1f} ms  p95 {p95:7.1f} ms  "
            f"x{median / floor[0]:6.1f} / x{p95 / floor[1]:6.1f} of /healthz"
        )
    worst = max(summary(v)[1] for k, v in results.items() if k.startswith("GET /today"))
    print(f"worst GET /today p95 {worst:.1f} ms: {'within' if worst < 300 else 'OVER'} the 300 ms target")


if __name__ == "__main__":
    main()
