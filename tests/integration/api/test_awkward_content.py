"""Valid JSON that a database cannot store, in every field, over real HTTP on both databases:
only the message holding it is rejected (visible in the dead-letter list with a reason naming
the field), its batch-mates land, and nothing answers 5xx."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from signalbox.core.errors import NotFoundError
from signalbox.identity import service as identity
from signalbox.ingestion import importers
from signalbox.ingestion import service as ingestion
from signalbox.workspaces import service as workspaces

_HUGE = "__HUGE_NUMBER__"  # written as the bare number 1e400 once the body is serialised


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels):
        value = {"n": value}
    return value


# Each kind of awkward value: one for a value position, one for a key position (None: JSON
# keys cannot be numbers or objects).
KINDS: dict[str, tuple[Any, str | None]] = {
    "nul": ("a\u0000b", "k\u0000"),
    "lone_surrogate": ("split emoji \ud83d", "\udc00key"),
    "1e400": (_HUGE, None),
    "deeply_nested": (deep(40), None),
    "over_long": ("x" * 10_000, "k" * 10_000),
}


@dataclass(frozen=True)
class Field:
    name: str  # the path the rejection reason starts with
    place: Callable[[dict[str, Any], Any], None]
    column: bool = False  # a length-limited column: over-long values are refused too
    key: bool = False  # the awkward value goes in a key


def _set(*path: str, key: bool = False) -> Callable[[dict[str, Any], Any], None]:
    def place(message: dict[str, Any], value: Any) -> None:
        target = message
        for part in path[:-1]:
            target = target.setdefault(part, {})
        if key:
            target[value] = "v"
        else:
            target[path[-1]] = value

    return place


FIELDS = [
    Field("userId", _set("userId"), column=True),
    Field("anonymousId", _set("anonymousId"), column=True),
    Field("messageId", _set("messageId"), column=True),
    Field("event", _set("event"), column=True),
    Field("properties.plan.name", _set("properties", "plan", "name")),
    Field("properties.plan", _set("properties", "plan", "-"), key=True),
    Field("traits.nickname", _set("traits", "nickname")),
    Field("traits", _set("traits", "-"), key=True),
    Field("context.page.title", _set("context", "page", "title")),
    Field("context.page", _set("context", "page", "-"), key=True),
    Field("timestamp", _set("timestamp"), column=True),
]


@dataclass(frozen=True)
class Case:
    field: Field
    message: dict[str, Any]
    user_id: str
    rejected: bool


def cases(kind: str, tag: str) -> list[Case]:
    value, key = KINDS[kind]
    out = []
    for n, field in enumerate(FIELDS):
        awkward = key if field.key else value
        if awkward is None:
            continue
        user_id = f"{tag}-{kind}-{n}"
        message: dict[str, Any] = {
            "type": "identify" if field.name.startswith("traits") else "track",
            "event": "visit",
            "userId": user_id,
            "messageId": f"m-{user_id}",
            "timestamp": "2026-03-01T10:00:00Z",
        }
        field.place(message, awkward)
        # Long text is fine in JSON columns; only the fixed-width columns refuse it.
        rejected = kind != "over_long" or field.column
        out.append(Case(field, message, user_id, rejected))
    return out


def body(doc: Any) -> bytes:
    # The stdlib writes lone surrogates and NUL as \u escapes, as JSON.stringify does.
    return json.dumps(doc).replace(f'"{_HUGE}"', "1e400").encode()


def good(user_id: str, n: int) -> dict[str, Any]:
    return {"type": "track", "event": "visit", "userId": user_id, "messageId": f"good-{user_id}-{n}"}


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def landed(db, workspace_id: str, user_id: str) -> int:
    try:
        return int(identity.profile_document(db, workspace_id, user_id).event_counts["total"])
    except NotFoundError:
        return 0


def assert_outcomes(db, workspace_id: str, batch: list[Case], dead: list[ingestion.DeadLetterInfo]) -> None:
    for case in batch:
        user_id = case.user_id if case.field.name != "userId" else None
        if user_id is not None:
            assert landed(db, workspace_id, user_id) == (0 if case.rejected else 1), case.field.name
    reasons = [d.reason for d in dead]
    expected = [c for c in batch if c.rejected]
    assert len(reasons) == len(expected), reasons
    for case in expected:
        assert any(r.startswith(case.field.name) for r in reasons), (case.field.name, reasons)
    assert all(d.step == "validate" for d in dead)


@pytest.mark.parametrize("kind", list(KINDS))
def test_batch_keeps_its_good_messages(live_server, pipeline, db, workspace, kind):
    batch = cases(kind, "b")
    messages = [good("mate", 1), *(c.message for c in batch), good("mate", 2)]
    r = httpx.post(f"{live_server.url}/v1/batch", content=body({"batch": messages}), headers=basic(workspace.write_key))
    assert r.status_code == 200, r.text
    assert landed(db, workspace.id, "mate") == 2
    dead = ingestion.list_dead_letters(db, workspace.id, kind="rejected")
    assert_outcomes(db, workspace.id, batch, dead)
    # The escaped copies read back: a replay rejects each again for the same reason, no error.
    ws = workspaces.get_workspace(db, workspace.id)
    replay = ingestion.replay_dead_letters(pipeline, ws)
    assert (replay.replayed, replay.still_failing) == (0, len(dead))
    assert sorted(d.reason for d in replay.items) == sorted(d.reason for d in dead)


@pytest.mark.parametrize("kind", list(KINDS))
def test_single_messages_answer_400_naming_the_field(live_server, db, workspace, kind):
    batch = cases(kind, "t")
    for case in batch:
        path = "identify" if case.message["type"] == "identify" else "track"
        r = httpx.post(f"{live_server.url}/v1/{path}", content=body(case.message), headers=basic(workspace.write_key))
        if case.rejected:
            assert r.status_code == 400, (case.field.name, r.text)
            assert r.json()["code"] == "invalid_message"
            assert r.json()["message"].startswith(case.field.name)
        else:
            assert r.status_code == 200, (case.field.name, r.text)
    assert_outcomes(db, workspace.id, batch, ingestion.list_dead_letters(db, workspace.id, kind="rejected"))


def test_a_batch_context_that_cannot_be_stored_rejects_each_message(live_server, db, workspace):
    doc = {"batch": [good("ctx", 1), good("ctx", 2)], "context": {"library": {"name": "lib\u0000"}}}
    r = httpx.post(f"{live_server.url}/v1/batch", content=body(doc), headers=basic(workspace.write_key))
    assert r.status_code == 200
    dead = ingestion.list_dead_letters(db, workspace.id, kind="rejected")
    assert [d.reason.split(":")[0] for d in dead] == ["context.library.name"] * 2


def test_a_write_key_that_cannot_be_text_is_401(live_server):
    r = httpx.post(f"{live_server.url}/v1/track", content=body({**good("k", 1), "writeKey": "\ud800"}))
    assert r.status_code == 401


@pytest.mark.parametrize("kind", list(KINDS))
def test_jsonl_import_rejects_the_line_and_keeps_the_rest(pipeline, db, workspace, tmp_path: Path, kind):
    batch = cases(kind, "i")
    lines = [good("imp", 1), *(c.message for c in batch), good("imp", 2)]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(body(m).decode() for m in lines) + "\n", encoding="utf-8")
    ws = workspaces.get_workspace(db, workspace.id)
    result = importers.import_events(pipeline, ws, path)
    expected = [c for c in batch if c.rejected]
    assert (result.accepted, result.rejected, result.dead_lettered) == (len(lines) - len(expected), len(expected), 0)
    assert landed(db, workspace.id, "imp") == 2
    rejects = [json.loads(line) for line in Path(result.reject_file or "").read_text().splitlines()] if expected else []
    # Line numbers: the first good message is line 1, so a case's line is its index + 2.
    numbered = {i + 2: c for i, c in enumerate(batch)}
    assert {r["line"] for r in rejects} == {n for n, c in numbered.items() if c.rejected}
    for r in rejects:
        assert r["reason"].startswith(numbered[r["line"]].field.name), r
    assert_outcomes(db, workspace.id, batch, ingestion.list_dead_letters(db, workspace.id, kind="rejected"))


def test_csv_import_rejects_rows_with_unstorable_cells(pipeline, db, workspace, tmp_path: Path):
    path = tmp_path / "pos.csv"
    rows = [
        "customer,when,amount,note",
        "c-1,2026-03-01T10:00:00+00:00,10.00,fine",
        "c-2,2026-03-01T10:00:00+00:00,10.00,bad\x00note",
        f"{'c' * 10_000},2026-03-01T10:00:00+00:00,10.00,long id",
        "c-3,2026-03-01T10:00:00+00:00,1e400,huge amount",
        "c-1,2026-03-02T10:00:00+00:00,12.00,fine again",
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    ws = workspaces.get_workspace(db, workspace.id)
    columns = importers.TransactionColumns(customer="customer", timestamp="when", amount="amount")
    result = importers.import_transactions(pipeline, ws, path, columns)
    assert (result.accepted, result.rejected) == (2, 3)
    rejects = {r["line"]: r["reason"] for r in map(json.loads, Path(result.reject_file or "").read_text().splitlines())}
    assert rejects[3].startswith("properties.note: contains a NUL")
    assert rejects[4].startswith("userId: is 10000 characters")
    assert rejects[5].startswith("properties.amount: is a number beyond double range")
    assert landed(db, workspace.id, "c-1") == 2


def test_nesting_beyond_what_parsers_read_is_unreadable_and_below_it_costs_one_message(live_server, db, workspace):
    too_deep = "[" * 5_000 + "]" * 5_000
    r = httpx.post(
        f"{live_server.url}/v1/batch",
        content=b'{"batch": [' + too_deep.encode() + b"]}",
        headers=basic(workspace.write_key),
    )
    assert (r.status_code, r.json()["code"]) == (400, "bad_json")
    assert "nested" in r.json()["message"]
    # 900 levels: every parser reads it, so only its message is refused.
    deep_message = {**good("deep", 0), "properties": deep(900)}
    doc = {"batch": [good("deep", 1), deep_message]}
    r = httpx.post(f"{live_server.url}/v1/batch", content=body(doc), headers=basic(workspace.write_key))
    assert r.status_code == 200
    assert landed(db, workspace.id, "deep") == 1
    [dead] = ingestion.list_dead_letters(db, workspace.id, kind="rejected")
    assert dead.reason.startswith("properties.n.n") and "nested deeper than 32 levels" in dead.reason


def test_clock_skew_correction_out_of_range_costs_only_its_message(live_server, db, workspace):
    # Each field is within 1970-2199, but "sent 229 years after it happened" is not a time.
    skewed = {**good("skew", 0), "timestamp": "1970-01-02T00:00:00Z", "sentAt": "2199-01-01T00:00:00Z"}
    doc = {"batch": [good("skew", 1), skewed, good("skew", 2)]}
    r = httpx.post(f"{live_server.url}/v1/batch", content=body(doc), headers=basic(workspace.write_key))
    assert r.status_code == 200
    assert landed(db, workspace.id, "skew") == 2
    [dead] = ingestion.list_dead_letters(db, workspace.id, kind="rejected")
    assert dead.reason.startswith("timestamp: corrected for the device's clock")
