"""A page of profiles costs the same handful of queries whatever its size."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date

from sqlalchemy import event

from signalbox.identity import service as identity
from signalbox.ingestion.service import BatchInput
from signalbox.scoring import service as scoring
from signalbox.workspaces import service as workspaces
from tests.factories import identify, track


@contextmanager
def counted(db):
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def _people(pipeline, ws, n: int) -> None:
    at = "2026-02-20T15:00:00+00:00"
    msgs = []
    for k in range(n):
        msgs.append({**identify(f"m-{k}", email=f"m{k}@example.com"), "timestamp": at})
        msgs.append({**track("visit", anonymous_id=f"anon-{k}"), "timestamp": at})
        msgs.append({**identify(f"m-{k}", anonymous_id=f"anon-{k}"), "timestamp": at})  # a two-node tree
    pipeline.ingest(ws, BatchInput(msgs))


def test_profile_page_query_count_does_not_grow_with_the_page(pipeline, db, workspace, clock):
    ws = workspaces.get_workspace(db, workspace.id)
    _people(pipeline, ws, 40)
    with counted(db) as small:
        two = identity.list_profile_documents(db, ws.id, limit=2)
    with counted(db) as large:
        forty = identity.list_profile_documents(db, ws.id, limit=40)
    assert len(two) == 2 and len(forty) == 40
    assert len(large) == len(small) <= 6  # BEGIN, roots, trees, read models, identifiers, consent
    doc = next(d for d in forty if d.user_id == "m-7")
    assert {(i.type, i.value) for i in doc.identifiers} == {
        ("user_id", "m-7"),
        ("email", "m7@example.com"),
        ("anonymous_id", "anon-7"),
    }
    assert len(doc.profile_ids) == 2 and doc.event_counts["total"] == 3

    scoring.compute_scores(db, ws, date(2026, 3, 1), clock)
    band = identity.profile_document(db, ws.id, "m-0").signals.at_risk_band
    with counted(db) as small:
        identity.list_band_documents(db, ws.id, band, limit=2)
    with counted(db) as large:
        listed = identity.list_band_documents(db, ws.id, band, limit=40)
    assert len(listed) == 40 and len(large) == len(small) <= 6
