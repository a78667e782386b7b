"""Stripe webhook acknowledgement under a burst, over real HTTP on loopback.

    .venv/bin/python bench/stripe_webhooks.py [--events 1000] [--concurrency 32] [--customers 250]
                                              [--database-url URL]

A `signalbox serve --no-worker` process on a fresh database (a temporary SQLite file unless
--database-url names a PostgreSQL database, whose fresh schema is dropped at the end) gets
`--events` signed Stripe events (payment failures, payments, cancellations, refunds over
`--customers` customers, each new customer found by e-mail the first time), all fired at once
from `--concurrency` connections. Each latency is one delivery's request start to its 2xx,
measured on the client. Beside it, the floor: the same burst of `GET /healthz` (one
database round trip, no signature, no ingestion) against the same server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import stripe
from serving import wait_healthy
from sqlalchemy import create_engine, func, select, text

from signalbox.connectors import service as connectors
from signalbox.core import migrate
from signalbox.core.db import Database
from signalbox.core.settings import Settings
from signalbox.events.models import Event
from signalbox.workspaces import service as workspaces

SECRET = "whsec_bench_0123456789abcdefghijklmnopqrstuv"
SECRET_KEY = "bench-secret-key-bench-secret-key-0123456789"
KINDS = ["invoice.payment_failed"] * 5 + ["invoice.paid"] * 3 + ["customer.subscription.deleted", "charge.refunded"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bodies(n: int, customers: int, seed: int = 11) -> list[bytes]:
    rng = random.Random(seed)
    now = int(time.time())
    out = []
    for i in range(n):
        c = rng.randrange(customers)
        kind = rng.choice(KINDS)
        customer = f"cus_test_bench{c:05d}"
        if kind.startswith("invoice."):
            obj: dict[str, Any] = {
                "id": f"in_test_{i:06d}",
                "object": "invoice",
                "customer": customer,
                "customer_email": f"member{c}@example.com",
                "amount_due": 4900,
                "amount_paid": 4900 if kind == "invoice.paid" else 0,
                "currency": "usd",
                "attempt_count": 1,
                "next_payment_attempt": now + 86400,
                "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_test/in_test_{i:06d}",
                "status_transitions": {"paid_at": now - 60 if kind == "invoice.paid" else None},
            }
        elif kind == "charge.refunded":
            obj = {"id": f"ch_test_{i:06d}", "object": "charge", "customer": customer, "amount_refunded": 1500}
            obj["currency"] = "usd"
        else:
            obj = {"id": f"sub_test_{c:05d}", "object": "subscription", "customer": customer, "status": "canceled"}
        event = {"id": f"evt_test_{i:08d}", "object": "event", "type": kind, "created": now - 60, "livemode": False}
        event["data"] = {"object": obj}
        out.append(orjson.dumps(event))
    return out


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))] * 1000

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": ordered[-1] * 1000}


async def burst(base: str, requests: list[tuple[str, str, bytes | None, dict[str, str]]], concurrency: int):
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def one(method: str, path: str, body: bytes | None, headers: dict[str, str]) -> None:
            async with gate:
                t = time.perf_counter()
                r = await client.request(method, path, content=body, headers=headers)
                latencies.append(time.perf_counter() - t)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one(*req) for req in requests))
        elapsed = time.perf_counter() - started
    return latencies, statuses, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--customers", type=int, default=250)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sb-stripe-bench-"))
    schema = None
    if args.database_url:
        schema = f"sbbench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(args.database_url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{args.database_url}?options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{tmp / 'bench.db'}"
    migrate.upgrade(url)
    settings = Settings(database_url=url, environment="test", secret_key=SECRET_KEY)
    db = Database(settings)
    ws = workspaces.create_workspace(db, "bench")
    connectors.add_signing_secret(db, settings, ws.id, SECRET, datetime.now(UTC))

    port = free_port()
    env = {
        **os.environ,
        "SIGNALBOX_DATABASE_URL": url,
        "SIGNALBOX_SECRET_KEY": SECRET_KEY,
        "SIGNALBOX_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "signalbox.cli.main", "serve", "--port", str(port), "--no-worker"],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, 30)
        floor, floor_status, floor_elapsed = asyncio.run(
            burst(base, [("GET", "/healthz", None, {})] * args.events, args.concurrency)
        )
        payloads = bodies(args.events, args.customers)
        requests = [
            (
                "POST",
                "/webhooks/stripe/bench",
                body,
                {
                    "Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET),
                    "Content-Type": "application/json",
                },
            )
            for body in payloads
        ]
        latencies, statuses, elapsed = asyncio.run(burst(base, requests, args.concurrency))
    finally:
        server.terminate()
        server.wait(timeout=30)
    with db.session() as session:
        stored = session.scalar(select(func.count()).select_from(Event).where(Event.workspace_id == ws.id))
    processed = len(connectors.processed_events(db, ws.id, limit=10**6))
    db.dispose()
    if schema:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()

    engine = "postgresql" if schema else "sqlite"
    print(f"database: {engine}; {args.events} events over {args.customers} customers, concurrency {args.concurrency}")
    w = percentiles(latencies)
    h = percentiles(floor)
    print(
        f"webhooks  p50 {w['p50']:7.1f} ms  p95 {w['p95']:7.1f} ms  p99 {w['p99']:7.1f} ms  max {w['max']:7.1f} ms"
        f"  {args.events / elapsed:6.0f}/s  statuses {statuses}"
    )
    print(
        f"/healthz  p50 {h['p50']:7.1f} ms  p95 {h['p95']:7.1f} ms  p99 {h['p99']:7.1f} ms  max {h['max']:7.1f} ms"
        f"  {args.events / floor_elapsed:6.0f}/s  statuses {floor_status}"
    )
    print(f"stored events {stored}, processed event ids {processed}, mean {statistics.mean(latencies) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
