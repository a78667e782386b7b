"""The bulk write path (COPY on PostgreSQL, a driver executemany on SQLite) keeps every
guarantee of the row-by-row one: stored exactly once per (workspace, message_id), one
change-log row per stored event in the same transaction, values stored as insert() stores them."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import orjson
from sqlalchemy import func, select, text

from signalbox.changes import service as changes
from signalbox.changes.models import Change
from signalbox.events import service as events
from signalbox.events.models import Event
from signalbox.identity import service as identity
from signalbox.ingestion import importers
from signalbox.ingestion import service as ingestion
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.workspaces import service as workspaces
from tests.factories import identify, track


def _messages(n_people: int, n_tracks: int) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for p in range(n_people):
        out.append({**identify(f"u-{p}", anonymous_id=f"a-{p}", email=f"P{p}@Example.com"), "messageId": f"id-{p}"})
    for i in range(n_tracks):
        p = i % n_people
        who = {"userId": f"u-{p}"} if i % 5 else {"anonymousId": f"a-{p}"}
        out.append(
            {
                "type": "track",
                "messageId": f"ev-{i}",
                **who,
                "event": "visit",
                "properties": {"amount": i / 4, "nested": {"k": [1, "two", None]}},
                "timestamp": f"2026-02-0{1 + i % 9}T10:{i % 60:02d}:00.123456+02:00",
            }
        )
    return out


def _write(path: Path, messages: list[dict[str, object]]) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps(m) for m in messages) + b"\n")
    return path


def _counts(db, ws_id: str) -> tuple[int, int, int]:
    """(events, distinct message ids, event change rows)."""
    with db.session() as s:
        stored = s.scalar(select(func.count()).select_from(Event).where(Event.workspace_id == ws_id))
        distinct = s.scalar(select(func.count(func.distinct(Event.message_id))).where(Event.workspace_id == ws_id))
        logged = s.scalar(
            select(func.count()).select_from(Change).where(Change.workspace_id == ws_id, Change.kind == "event")
        )
    return int(stored or 0), int(distinct or 0), int(logged or 0)


def test_import_stores_each_message_once_with_one_change_row_each(pipeline, db, workspace, tmp_path, monkeypatch):
    monkeypatch.setattr(importers, "CHUNK", 1000)
    ws = workspaces.get_workspace(db, workspace.id)
    msgs = _messages(30, 2500)  # more than one import chunk
    path = _write(tmp_path / "events.jsonl", msgs)
    first = importers.import_events(pipeline, ws, path)
    assert (first.accepted, first.rejected, first.dead_lettered) == (len(msgs), 0, 0)
    # The same message ids again, in another file with the lines reversed: nothing new.
    again = importers.import_events(pipeline, ws, _write(tmp_path / "again.jsonl", msgs[::-1]))
    assert (again.accepted, again.duplicates) == (0, len(msgs))
    assert _counts(db, ws.id) == (len(msgs), len(msgs), len(msgs))
    with db.session() as s:
        refs = set(s.scalars(select(Change.ref).where(Change.workspace_id == ws.id, Change.kind == "event")))
        seqs = list(s.scalars(select(Change.seq).where(Change.workspace_id == ws.id).order_by(Change.seq)))
    assert refs == {m["messageId"] for m in msgs}
    assert seqs == list(range(1, len(seqs) + 1))  # gap-free, as consumers read it
    # The read model agrees with the log (counters folded per batch, merges recomputed).
    assert sum(identity.profile_document(db, ws.id, f"u-{p}").event_counts["total"] for p in range(30)) == len(msgs)


def test_bulk_written_values_read_back_as_insert_writes_them(pipeline, db, workspace):
    ws = workspaces.get_workspace(db, workspace.id)
    msg = {
        "type": "track",
        "messageId": "m-values",
        "userId": "u-1",
        "event": "purchase",
        "properties": {"amount": 12.5, "unicode": "żółć ✓", "list": [1, {"a": None}], "big": 2**62},
        "context": {"ip": "203.0.113.9"},
        "timestamp": "2026-02-03T04:05:06.789012-05:00",
    }
    assert pipeline.ingest(ws, BatchInput([msg])).accepted == 1
    with db.session() as s:
        row = s.scalar(select(Event).where(Event.workspace_id == ws.id, Event.message_id == "m-values"))
        assert row is not None
        assert row.properties == msg["properties"]
        assert row.context == msg["context"]
        assert row.traits == {}
        assert row.timestamp == datetime(2026, 2, 3, 9, 5, 6, 789012, tzinfo=UTC)
        assert row.timestamp.tzinfo is not None and row.received_at.tzinfo is not None
        # Range queries compare stored timestamps; they must find it at its exact instant.
        hit = s.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.workspace_id == ws.id, Event.timestamp >= datetime(2026, 2, 3, 9, 5, 6, 789012, tzinfo=UTC))
        )
        assert hit == 1
        change = changes.read(s, ws.id, kinds=["event"])
    assert [(c.ref, c.name, c.profile_id) for c in change] == [("m-values", "purchase", row.profile_id)]


def test_a_message_already_stored_fails_the_batch_instead_of_landing_twice(pipeline, db, workspace, monkeypatch):
    """The unique key is the last guard: were the check under the lock skipped, the whole
    batch fails and is dead-lettered (replayable), and nothing of it is stored."""
    ws = workspaces.get_workspace(db, workspace.id)
    assert pipeline.ingest(ws, BatchInput([track("visit", "u-1") | {"messageId": "dup-1"}])).accepted == 1
    monkeypatch.setattr(events, "existing_message_ids", lambda *_a, **_k: set())
    result = pipeline.ingest(
        ws, BatchInput([track("visit", "u-2") | {"messageId": "new-1"}, track("visit", "u-1") | {"messageId": "dup-1"}])
    )
    assert (result.accepted, result.dead_lettered) == (0, 2)
    assert _counts(db, ws.id) == (1, 1, 1)
    assert [d.kind for d in ingestion.list_dead_letters(db, ws.id)] == ["failed", "failed"]
    monkeypatch.undo()
    replay = ingestion.replay_dead_letters(pipeline, ws)
    assert replay.still_failing == 0
    assert _counts(db, ws.id) == (2, 2, 2)


def test_import_chunks_are_bounded_by_line_text_as_well_as_lines(pipeline, db, workspace, tmp_path, monkeypatch):
    # Large messages are not held CHUNK at a time: a chunk closes at CHUNK_BYTES of line text.
    monkeypatch.setattr(importers, "CHUNK_BYTES", 10_000)
    ws = workspaces.get_workspace(db, workspace.id)
    msgs = _messages(3, 40)
    for m in msgs:
        m.setdefault("properties", {})["note"] = "x" * 2000  # ~2.2 KB a line
    chunks: list[int] = []
    result = importers.import_events(pipeline, ws, _write(tmp_path / "big.jsonl", msgs), progress=chunks.append)
    assert result.accepted == len(msgs)
    assert sum(chunks) == len(msgs)
    assert len(chunks) > 1 and max(chunks) <= 5  # 10,000 bytes reached by the fifth ~2.2 KB line
    assert _counts(db, ws.id) == (len(msgs), len(msgs), len(msgs))


def test_two_importers_of_the_same_file_at_once_store_each_message_once(db, settings, clock, workspace, tmp_path):
    """Two processes' worth of importers on one workspace (threads with their own sessions):
    the per-workspace lock orders their batches, each message lands once, each with its row."""
    ws = workspaces.get_workspace(db, workspace.id)
    msgs = _messages(40, 1500)
    path = _write(tmp_path / "events.jsonl", msgs)
    results: list[importers.ImportResult] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(importers.import_events(Pipeline(db, settings, clock), ws, path))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert sum(r.accepted for r in results) == len(msgs)
    assert sum(r.dead_lettered for r in results) == 0
    assert _counts(db, ws.id) == (len(msgs), len(msgs), len(msgs))
    # Identity stayed one person per user: one profile tree per user_id.
    with db.session() as s:
        roots = s.execute(
            text("SELECT count(DISTINCT canonical_id) FROM profiles WHERE workspace_id = :w"), {"w": ws.id}
        ).scalar()
    assert roots == 40


# Characters an array literal must quote (the batch lookups and the read-model update send
# ids and JSON to PostgreSQL as array literals): quotes, backslashes, commas, braces, spaces,
# the word NULL, non-ASCII.
AWKWARD = ['q"uote', "back\\slash", "com,ma", "{brace}", " spaced out ", "x NULL", "ünï ✓", "end\\"]


def test_awkward_ids_and_traits_resolve_and_deduplicate_as_plain_ones(pipeline, db, workspace):
    ws = workspaces.get_workspace(db, workspace.id)
    first = [
        {**identify(uid, anonymous_id=f"anon {uid}", note=f'say "{uid}" \\ {{}}'), "messageId": f"id {uid}"}
        for uid in AWKWARD
    ]
    assert pipeline.ingest(ws, BatchInput(first)).accepted == len(AWKWARD)
    later = [{**track("visit", anonymous_id=f"anon {uid}"), "messageId": f"ev {uid}"} for uid in AWKWARD]
    result = pipeline.ingest(ws, BatchInput(later + first))
    assert (result.accepted, result.duplicates, result.merges) == (len(AWKWARD), len(AWKWARD), 0)
    for uid in AWKWARD:
        doc = identity.profile_document(db, ws.id, uid)
        assert doc.event_counts["total"] == 2, uid
        assert doc.traits["note"] == f'say "{uid}" \\ {{}}', uid
    with db.session() as session:
        stored = session.scalars(select(Event.profile_id).where(Event.workspace_id == ws.id)).all()
    assert (len(stored), len(set(stored))) == (2 * len(AWKWARD), len(AWKWARD))


def test_imports_and_batches_run_with_the_collector_paced_for_bulk_work(pipeline, workspace, tmp_path, monkeypatch):
    import gc

    from signalbox.core.collector import BULK_YOUNG_THRESHOLD

    seen: list[int] = []
    prepare = Pipeline._prepare  # the first step of every batch

    def recording(self, *args, **kwargs):
        seen.append(gc.get_threshold()[0])
        return prepare(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "_prepare", recording)
    # Reading the file's lines is bulk work too: they stay alive until their chunk is stored.
    loads = importers.content.loads
    read_at: set[int] = set()

    def reading(text):
        read_at.add(gc.get_threshold()[0])
        return loads(text)

    monkeypatch.setattr(importers.content, "loads", reading)
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        pipeline.ingest(workspace, BatchInput(_messages(3, 5)))
        importers.import_events(pipeline, workspace, _write(tmp_path / "in.jsonl", _messages(4, 10)))
        assert gc.get_threshold()[0] == 700
    finally:
        gc.set_threshold(*saved)
    assert seen == [BULK_YOUNG_THRESHOLD, BULK_YOUNG_THRESHOLD]
    assert read_at == {BULK_YOUNG_THRESHOLD}
