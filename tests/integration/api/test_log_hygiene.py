"""No key, password-like trait, e-mail or message body ever reaches a log or the CLI's stderr,
whatever fails: secrets are fed through every failure path of the server and the CLI, then
the captured stderr (uvicorn's records included, as our JSON lines) is searched for them."""

from __future__ import annotations

import base64
import logging
import socket
import threading
import time

import httpx
import orjson
import pytest

from signalbox.api.app import create_app, server
from signalbox.core.logging import UVICORN_LOGGERS
from signalbox.core.settings import get_settings
from signalbox.events import service as events
from signalbox.ingestion.service import Pipeline
from tests.factories import identify, make_settings, track

PASSWORD = "hunter2-Sup3r-Secret"
EMAIL = "leak.me.please@example.com"
BODY = "BODY-MARKER-7f3a9c"


@pytest.fixture
def restore_logging():
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in ("signalbox", *UVICORN_LOGGERS))]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    yield
    for logger, handlers, level, propagate in saved:
        logger.handlers[:], logger.propagate = handlers, propagate
        logger.setLevel(level)


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def secret_messages() -> list[dict]:
    return [
        identify("leaky", email=EMAIL, password=PASSWORD, note=BODY),
        track("visit", "leaky", email=EMAIL, secret=PASSWORD, note=BODY),
    ]


def feed_the_server(url: str, write_key: str, admin_key: str, monkeypatch) -> None:
    auth = basic(write_key)
    # Unreadable: bad JSON, wrong key, a wrong key inside the body.
    raw = orjson.dumps({"batch": secret_messages()})
    assert httpx.post(f"{url}/v1/batch", content=raw[:-3], headers=auth).status_code == 400
    assert httpx.post(f"{url}/v1/batch", content=raw, headers=basic(f"sbw_{PASSWORD}")).status_code == 401
    in_body = orjson.dumps({"batch": secret_messages(), "writeKey": f"sbw_{BODY}"})
    assert httpx.post(f"{url}/v1/batch", content=in_body, headers={"Content-Type": "text/plain"}).status_code == 401
    # Rejected messages beside a good one, and a rejected single message.
    bad = {"type": "track", "userId": "leaky", "event": "", "properties": {"email": EMAIL, "pw": PASSWORD}}
    batch = {"batch": [*secret_messages(), bad, {"type": "identify", "traits": {"email": EMAIL, "note": BODY}}]}
    assert httpx.post(f"{url}/v1/batch", json=batch, headers=auth).status_code == 200
    assert httpx.post(f"{url}/v1/track", json=bad, headers=auth).status_code == 400
    # The admin API with wrong keys (the write key is not an admin key).
    for key in (write_key, f"sba_{PASSWORD}", admin_key[:-2]):
        r = httpx.get(f"{url}/api/v1/profiles/{EMAIL}", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 401

    # A persist failure whose error echoes the rows, as a database error with parameters would.
    def broken(*args, **_):
        raise RuntimeError(f"insert failed for {args!r} ({write_key}, {admin_key})")

    monkeypatch.setattr(events, "insert_events", broken)
    fresh = [identify("leaky-2", email=EMAIL, password=PASSWORD, note=BODY)]
    assert httpx.post(f"{url}/v1/batch", json={"batch": fresh}, headers=auth).status_code == 200
    # ...and one whose dead-letter write fails too: a 5xx, logged by type only.
    monkeypatch.setattr(Pipeline, "_dead_letter_batch", broken)
    fresh = [identify("leaky-3", email=EMAIL, password=PASSWORD, note=BODY)]
    assert httpx.post(f"{url}/v1/batch", json={"batch": fresh}, headers=auth).status_code >= 500


def assert_clean(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret!r} leaked into:\n{text}"


def test_server_logs_hold_no_secret(settings, db, workspace, capfd, monkeypatch, restore_logging):
    assert db.engine.hide_parameters  # statement parameters never reach an error message or echo
    noisy = make_settings(settings.database_url, log_level="DEBUG")
    srv = server(create_app(noisy, db), noisy, "127.0.0.1", _port())
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        feed_the_server(f"http://127.0.0.1:{srv.config.port}", workspace.write_key, workspace.admin_key, monkeypatch)
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
    logged = capfd.readouterr().err
    assert_clean(logged, [workspace.write_key, workspace.admin_key, PASSWORD, EMAIL, BODY])
    records = [orjson.loads(line) for line in logged.splitlines() if line.strip()]  # every line is our JSON
    loggers = {r["logger"] for r in records}
    assert "uvicorn.error" in loggers, loggers  # uvicorn's own records went through our formatter
    messages = {r["msg"] for r in records}
    assert {"messages rejected", "batch failed; dead-lettering", "unhandled error"} <= messages, messages


def test_cli_stderr_holds_no_secret(cli, database_url, tmp_path, monkeypatch, restore_logging):
    created = orjson.loads(cli("workspace", "create", "hygiene", "--json").stdout)
    secrets = [created["write_key"], created["admin_key"], PASSWORD, EMAIL, BODY]
    lines = [*(orjson.dumps({**m, "writeKey": created["write_key"]}).decode() for m in secret_messages())]
    lines += [orjson.dumps({"type": "track", "userId": "x", "event": "", "properties": {"pw": PASSWORD}}).decode()]
    lines += [f'{{"broken": "{EMAIL} {PASSWORD} {BODY}"']
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    csv = tmp_path / "sales.csv"
    csv.write_text(f"member,sold_at,total\n{EMAIL},2026-03-01T10:00:00Z,{PASSWORD}\n{EMAIL},{BODY},1,{PASSWORD}\n")
    csv_args = ("--customer-column", "member", "--timestamp-column", "sold_at", "--amount-column", "total")
    stderr = ""
    stderr += cli("import", "events", str(jsonl), "-w", "hygiene", "--json").stderr
    stderr += cli("import", "transactions", str(csv), "-w", "hygiene", *csv_args, "--json").stderr

    def broken(*args, **_):
        raise RuntimeError(f"insert failed for {args!r}")

    monkeypatch.setattr(events, "insert_events", broken)
    again = tmp_path / "again.jsonl"
    again.write_text(orjson.dumps(identify("leaky-4", email=EMAIL, password=PASSWORD, note=BODY)).decode() + "\n")
    dead = cli("import", "events", str(again), "-w", "hygiene", "--json")
    assert orjson.loads(dead.stdout)["dead_lettered"] == 1
    stderr += dead.stderr
    stderr += cli("dlq", "replay", "-w", "hygiene", "--json").stderr
    monkeypatch.setattr(Pipeline, "_dead_letter_batch", broken)
    failed = cli("import", "events", str(again), "-w", "hygiene", "--json", ok=False)
    assert failed.exit_code == 1 and "Traceback" not in failed.output
    stderr += failed.stderr
    # A database URL with a password in it, unreachable.
    monkeypatch.setenv("SIGNALBOX_DATABASE_URL", f"postgresql+psycopg://u:{PASSWORD}@127.0.0.1:1/x")
    get_settings.cache_clear()
    stderr += cli("workspace", "list", ok=False).stderr
    assert "batch failed; dead-lettering" in stderr and "error:" in stderr
    assert_clean(stderr, secrets)
