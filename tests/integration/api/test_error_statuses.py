"""Statuses an SDK acts on: 503 (with Retry-After) only for what a retry can cure, 500 for our
bugs, 4xx for anything deterministic the client sent, including admin query parameters."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from signalbox.core.db import Database
from signalbox.identity import service as identity
from tests.conftest import LiveServer
from tests.factories import make_settings, track
from tests.integration.api.test_ingest_http import basic


def cursor(doc: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(doc)).decode()


@pytest.fixture
def admin(live_server, workspace):
    def get(path: str, **params: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {workspace.admin_key}"}
        return httpx.get(f"{live_server.url}/api/v1{path}", params=params, headers=headers)

    return get


@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+00:01", "not a date"]
)
def test_out_of_range_or_bad_dates_are_400(live_server, workspace, admin, name, value):
    httpx.post(f"{live_server.url}/v1/track", json=track("visit", "u1"), headers=basic(workspace.write_key))
    r = admin("/profiles/u1/events", **{name: value})
    assert r.status_code == 400, r.text
    assert r.json()["message"].startswith(f"query.{name}: ")


@pytest.mark.parametrize(
    ("band", "value"),
    [
        (None, "!!!not base64"),
        (None, base64.urlsafe_b64encode(b"garbage").decode()),
        (None, cursor([1])),
        (None, cursor({"a": 1})),
        (None, cursor(["0001-01-01T00:00:00+01:00", "p_1"])),
        (None, cursor(["2026-01-01T00:00:00+00:00", "p\u0000"])),
        (None, cursor(["2026-01-01T00:00:00+00:00", "p" * 300])),
        (None, cursor(["2026-01-01T00:00:00+00:00", 5])),
        ("High", cursor([2**62, "p_1"])),
        ("High", cursor([True, "p_1"])),
        ("High", cursor(["50", "p_1"])),
    ],
)
def test_cursors_that_decode_to_garbage_are_400(admin, band, value):
    params = {"cursor": value, **({"band": band} if band else {})}
    r = admin("/profiles", **params)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid_cursor"


def test_cursors_it_returns_still_page(live_server, workspace, admin):
    for n in range(3):
        httpx.post(f"{live_server.url}/v1/track", json=track("visit", f"p{n}"), headers=basic(workspace.write_key))
    seen, next_cursor = [], None
    for _ in range(3):
        page = admin("/profiles", limit="1", **({"cursor": next_cursor} if next_cursor else {})).json()
        seen += [p["user_id"] for p in page["items"]]
        next_cursor = page["next_cursor"]
    assert sorted(seen) == ["p0", "p1", "p2"]


@pytest.mark.parametrize("user_id", ["a%00b", "x" * 300])
def test_user_ids_no_column_can_hold_are_404(admin, user_id):
    for path in (f"/profiles/{user_id}", f"/profiles/{user_id}/events"):
        r = admin(path)
        assert r.status_code == 404, r.text


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.text: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.text.append(logging.Formatter().format(record) + str(record.__dict__))


@pytest.fixture
def every_log():
    recorder = Recorder()
    # uvicorn's loggers do not propagate to the root: listen to both.
    loggers = [logging.getLogger(), logging.getLogger("uvicorn")]
    for logger in loggers:
        logger.addHandler(recorder)
    yield recorder
    for logger in loggers:
        logger.removeHandler(recorder)


def test_a_bug_is_500_and_an_unavailable_database_503(live_server, workspace, admin, monkeypatch, every_log):
    def bug(*_a, **_k):
        raise KeyError("a bug of ours, quoting secret-customer-value")

    monkeypatch.setattr(identity, "profile_document", bug)
    r = admin("/profiles/u1")
    assert (r.status_code, r.json()["code"]) == (500, "internal_error")
    assert "retry-after" not in r.headers

    outages = [
        OperationalError("SELECT 1", {}, Exception("connection refused")),
        PoolTimeout("QueuePool limit of size 5 overflow 10 reached, connection refused"),  # overload
    ]
    for outage in outages:

        def unavailable(*_a, exc=outage, **_k):
            raise exc

        monkeypatch.setattr(identity, "profile_document", unavailable)
        r = admin("/profiles/u1")
        assert (r.status_code, r.json()["code"]) == (503, "unavailable")
        assert int(r.headers["retry-after"]) > 0
    # Neither our log nor the server's error log repeats what the exception said.
    logged = "\n".join(every_log.text)
    assert "unhandled error" in logged and "KeyError" in logged
    assert "secret-customer-value" not in logged and "connection refused" not in logged


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:1/nothing?connect_timeout=2",
        "sqlite:////nonexistent-directory/signalbox.db",
    ],
)
def test_unreachable_database_is_503_with_retry_after(url, tmp_path: Path):
    db = Database(make_settings(url))
    try:
        with LiveServer(make_settings(url), db) as server:
            r = httpx.post(f"{server.url}/v1/track", json=track("visit", "u"), headers=basic("sbw_any"))
            assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
            assert httpx.get(f"{server.url}/healthz").status_code == 503
    finally:
        db.dispose()
