"""The HTTP edge over real loopback: every malformed input answers a clear 4xx, never a 5xx,
and valid messages in the same batch still land exactly once."""

from __future__ import annotations

import asyncio
import base64
import gzip
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from signalbox.core.db import Database
from signalbox.identity import service as identity
from signalbox.ingestion import service as ingestion
from signalbox.workspaces import service as workspaces
from tests.factories import track


def basic(key: str, colon: bool = True) -> dict[str, str]:
    token = base64.b64encode(f"{key}{':' if colon else ''}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def total(db, ws, user_id):
    return identity.profile_document(db, ws.id, user_id).event_counts["total"]


@pytest.mark.parametrize("colon", [True, False])
def test_basic_auth_with_or_without_colon(live_server, db, workspace, colon):
    r = httpx.post(f"{live_server.url}/v1/track", json=track("visit", "u1"), headers=basic(workspace.write_key, colon))
    assert r.status_code == 200 and r.json() == {"success": True}


def test_write_key_in_body_and_text_plain_and_short_form(live_server, db, workspace):
    body = orjson.dumps({**track("visit", "u2"), "writeKey": workspace.write_key})
    r = httpx.post(f"{live_server.url}/v1/t", content=body, headers={"Content-Type": "text/plain"})
    assert r.status_code == 200
    assert total(db, workspace, "u2") == 1


def test_gzip_under_a_form_content_type(live_server, db, workspace):
    body = gzip.compress(orjson.dumps({"batch": [track("visit", "u3"), track("visit", "u3")]}))
    headers = {**basic(workspace.write_key), "Content-Type": "application/x-www-form-urlencoded"}
    r = httpx.post(f"{live_server.url}/v1/batch", content=body, headers=headers)
    assert r.status_code == 200
    assert total(db, workspace, "u3") == 2


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "bad_json"),
        (b"", "bad_json"),
        (b"[1, 2]", "bad_json"),
        (b'{"batch": "x"}', "invalid_batch"),
        (b'{"batch": [], "context": 3}', "invalid_batch"),
        (b"\x1f\x8b\x08garbage", "bad_gzip"),
        (b'{"batch": [], "sentAt": "0001-01-01T00:00:00+00:01"}', "invalid_message"),
    ],
)
def test_unreadable_batches_are_400_with_a_code(live_server, workspace, body, code):
    r = httpx.post(f"{live_server.url}/v1/batch", content=body, headers=basic(workspace.write_key))
    assert r.status_code == 400
    assert r.json()["code"] == code and r.json()["message"]


def test_bad_or_missing_write_key_is_401(live_server):
    r = httpx.post(f"{live_server.url}/v1/track", json=track("visit", "u"), headers=basic("nope"))
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    r = httpx.post(f"{live_server.url}/v1/track", json=track("visit", "u"))
    assert r.status_code == 401
    r = httpx.post(f"{live_server.url}/v1/track", json=track("visit", "u"), headers={"Authorization": "Basic %%%"})
    assert r.status_code == 401


def test_oversize_message_and_batch_are_400(live_server, workspace):
    big = track("visit", "u", blob="x" * 40_000)
    r = httpx.post(f"{live_server.url}/v1/track", json=big, headers=basic(workspace.write_key))
    assert r.status_code == 400 and "limit" in r.json()["message"]
    batch = {"batch": [track("visit", "u", blob="x" * 20_000) for _ in range(30)]}
    r = httpx.post(f"{live_server.url}/v1/batch", json=batch, headers=basic(workspace.write_key))
    assert r.status_code == 400 and r.json()["code"] == "too_large"


def test_bad_single_message_is_400_naming_the_problem(live_server, db, workspace):
    r = httpx.post(f"{live_server.url}/v1/track", json={"userId": "u"}, headers=basic(workspace.write_key))
    assert r.status_code == 400 and "event" in r.json()["message"]
    r = httpx.post(f"{live_server.url}/v1/identify", json={"traits": {}}, headers=basic(workspace.write_key))
    assert r.status_code == 400 and "userId" in r.json()["message"]


def test_batch_with_bad_messages_stores_the_good_ones_once(live_server, db, workspace):
    good = track("visit", "u4")
    batch = {"batch": [good, {"type": "track"}, "junk", good, {**track("visit", "u4"), "properties": 5}]}
    for _ in range(2):  # a retry of the whole batch
        r = httpx.post(f"{live_server.url}/v1/batch", json=batch, headers=basic(workspace.write_key))
        assert r.status_code == 200
    assert total(db, workspace, "u4") == 1
    rejected = ingestion.list_dead_letters(db, workspace.id, kind="rejected")
    assert len(rejected) == 6  # three bad messages, sent twice
    assert {d.step for d in rejected} == {"validate"}


def test_cors_preflight_for_browsers(live_server):
    r = httpx.options(
        f"{live_server.url}/v1/batch",
        headers={
            "Origin": "https://studio.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] in ("*", "https://studio.example.com")


def metric_values(server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{server.url}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_healthz_and_metrics_count_what_happened(live_server, workspace):
    assert httpx.get(f"{live_server.url}/healthz").json() == {"status": "ok"}
    before = metric_values(live_server)
    a, b = track("visit", "m1"), track("visit", "m2")
    nul_key = {**track("visit", "m4"), "properties": {"client key \u0000": 1}}
    batch = {"batch": [a, b, a, {"type": "track", "userId": "m3"}, "junk", nul_key]}
    for _ in range(2):  # the second time a and b are already stored
        assert httpx.post(f"{live_server.url}/v1/batch", json=batch, headers=basic(workspace.write_key)).is_success
    httpx.post(f"{live_server.url}/v1/track", json=a, headers=basic("not-a-key"))
    after = metric_values(live_server)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("signalbox_events_accepted_total", source="http") == 2
    assert moved("signalbox_events_duplicate_total", source="http") == 1 + 3
    assert moved("signalbox_events_rejected_total", reason="track_needs_a_non_empty_event_name") == 2
    assert moved("signalbox_events_rejected_total", reason="message_must_be_a_json_object") == 2
    # Labelled by the top-level field: a client's own keys never become label values.
    assert moved("signalbox_events_rejected_total", reason="properties") == 2
    assert not [k for k in after if "client" in str(k)]
    assert moved("signalbox_requests_rejected_total", reason="unauthorized") == 1
    assert moved("signalbox_batch_seconds_count", source="http") == 2
    assert moved("signalbox_events_dead_lettered_total", step="persist") == 0


def test_admin_api_is_scoped_to_the_key_workspace(live_server, db, workspace):
    httpx.post(f"{live_server.url}/v1/track", json=track("visit", "shared-id"), headers=basic(workspace.write_key))
    other = workspaces.create_workspace(db, "other-ws")
    mine = {"Authorization": f"Bearer {workspace.admin_key}"}
    theirs = {"Authorization": f"Bearer {other.admin_key}"}
    r = httpx.get(f"{live_server.url}/api/v1/profiles/shared-id", headers=mine)
    assert r.status_code == 200 and r.json()["user_id"] == "shared-id"
    assert httpx.get(f"{live_server.url}/api/v1/profiles/shared-id", headers=theirs).status_code == 404
    assert httpx.get(f"{live_server.url}/api/v1/profiles/shared-id").status_code == 401
    assert (
        httpx.get(f"{live_server.url}/api/v1/profiles/shared-id", headers={"Authorization": "Bearer x"}).status_code
        == 401
    )
    events = httpx.get(f"{live_server.url}/api/v1/profiles/shared-id/events", headers=mine).json()["items"]
    assert [e["event"] for e in events] == ["visit"]
    page = httpx.get(f"{live_server.url}/api/v1/profiles", params={"limit": 1}, headers=mine).json()
    assert len(page["items"]) == 1
    # The write key is not an admin key.
    wk = {"Authorization": f"Bearer {workspace.write_key}"}
    assert httpx.get(f"{live_server.url}/api/v1/profiles/shared-id", headers=wk).status_code == 401


def test_no_database_call_runs_on_the_event_loop(live_server, workspace, monkeypatch):
    on_loop: list[str] = []

    def spy(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass  # a worker thread: where blocking calls belong
            else:
                on_loop.append(name)
            return real(*args, **kwargs)

        return wrapped

    for name in ("session", "transaction", "ping"):
        monkeypatch.setattr(Database, name, spy(name, getattr(Database, name)))
    url, key = live_server.url, workspace.write_key
    httpx.post(f"{url}/v1/track", json=track("visit", "loop-1"), headers=basic(key)).raise_for_status()
    httpx.post(f"{url}/v1/batch", json={"batch": [track("visit", "loop-1")]}, headers=basic(key)).raise_for_status()
    httpx.post(f"{url}/v1/t", json={**track("visit", "loop-1"), "writeKey": key}).raise_for_status()
    admin = {"Authorization": f"Bearer {workspace.admin_key}"}
    for path in ("/api/v1/profiles", "/api/v1/profiles/loop-1", "/api/v1/profiles/loop-1/events", "/healthz"):
        httpx.get(f"{url}{path}", headers=admin).raise_for_status()
    assert on_loop == []
