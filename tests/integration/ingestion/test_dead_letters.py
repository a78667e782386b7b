"""Our own failures dead-letter the batch (nothing half-stored) and replay cleanly."""

from __future__ import annotations

from signalbox.events import service as events
from signalbox.identity import service as identity
from signalbox.ingestion import service as ingestion
from signalbox.ingestion.service import BatchInput
from signalbox.workspaces import service as workspaces
from tests.factories import identify, track


def test_failed_batch_is_dead_lettered_then_replayed(pipeline, db, workspace, monkeypatch):
    ws = workspaces.get_workspace(db, workspace.id)
    real = events.insert_events

    def broken(*_a, **_k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(events, "insert_events", broken)
    result = pipeline.ingest(ws, BatchInput([identify("m-1", email="a@example.com"), track("visit", "m-1")]))
    assert (result.accepted, result.dead_lettered) == (0, 2)
    failed = ingestion.list_dead_letters(db, ws.id, kind="failed")
    assert [d.step for d in failed] == ["persist", "persist"]
    assert "disk on fire" in failed[0].reason
    # Nothing half-stored: the profile did not appear either.
    assert identity.list_profile_documents(db, ws.id, limit=10) == []

    monkeypatch.setattr(events, "insert_events", real)
    replay = ingestion.replay_dead_letters(pipeline, ws)
    assert (replay.replayed, replay.still_failing) == (2, 0)
    assert identity.profile_document(db, ws.id, "m-1").event_counts["total"] == 2
    assert ingestion.list_dead_letters(db, ws.id) == []
    # Replaying again finds nothing pending and stores nothing twice.
    assert ingestion.replay_dead_letters(pipeline, ws).replayed == 0
    assert identity.profile_document(db, ws.id, "m-1").event_counts["total"] == 2
