"""The one write path for signals: values land on the right profiles of the right
workspace, read back as written on both databases, and bad column names are refused."""

from __future__ import annotations

from datetime import UTC, date, datetime

import orjson
import pytest
from sqlalchemy import text

from signalbox.changes import service as changes
from signalbox.changes.schemas import ChangeInfo
from signalbox.core.db import json_dumps
from signalbox.identity import service as identity
from signalbox.ingestion.service import BatchInput
from signalbox.profiles import service as profiles
from signalbox.workspaces import service as workspaces
from tests.factories import identify

NOW = datetime(2026, 7, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_signal_columns_round_trip_and_stay_in_their_workspace(db, pipeline, workspace):
    other = workspaces.create_workspace(db, "elsewhere")
    for ws in (workspace, other):
        info = workspaces.get_workspace(db, ws.id)
        result = pipeline.ingest(info, BatchInput([identify("a"), identify("b")], source="test"))
        assert not result.rejected
    a = identity.profile_document(db, workspace.id, "a")
    b = identity.profile_document(db, workspace.id, "b")
    doc = {"as_of": "2026-07-01", "note": '50% "quoted"'}
    with db.transaction() as session:
        profiles.store_signal_columns(
            session,
            workspace.id,
            [a.id, b.id],
            {
                "computed_traits": [orjson.dumps(doc).decode(), None],
                "at_risk_score": [70, None],
                "at_risk_band": ["High", None],
                "score_as_of": [date(2026, 7, 1), None],
                "scored_at": [NOW, None],
                "churn_probability": [0.1 + 0.2, None],
            },
            NOW,
        )
    got = identity.profile_document(db, workspace.id, "a").signals
    assert got is not None
    assert got.computed_traits == doc and got.at_risk_score == 70 and got.at_risk_band == "High"
    assert got.score_as_of == date(2026, 7, 1) and got.scored_at == NOW
    assert got.churn_probability == 0.1 + 0.2  # exact, not rounded through text
    none = identity.profile_document(db, workspace.id, "b").signals
    assert none is None or none.at_risk_score is None
    untouched = identity.profile_document(db, other.id, "a").signals
    assert untouched is None or untouched.at_risk_score is None


def test_unknown_or_ragged_columns_are_refused(db, workspace):
    with db.transaction() as session, pytest.raises(ValueError, match="not a signal column"):
        profiles.store_signal_columns(session, workspace.id, ["x"], {"traits": [{}]}, NOW)
    with db.transaction() as session, pytest.raises(ValueError, match="2 values for 1 ids"):
        profiles.store_signal_columns(session, workspace.id, ["x"], {"at_risk_score": [1, 2]}, NOW)


def test_a_moved_score_is_logged_once_with_its_old_and_new_values(db, pipeline, workspace):
    info = workspaces.get_workspace(db, workspace.id)
    assert not pipeline.ingest(info, BatchInput([identify("a"), identify("b")], source="test")).rejected
    a = identity.profile_document(db, workspace.id, "a").id
    b = identity.profile_document(db, workspace.id, "b").id
    with db.session() as session:
        head = changes.head(session, workspace.id)

    def store(scores: list[int | None], bands: list[str | None], chance: float = 0.5) -> list[ChangeInfo]:
        with db.transaction() as session:
            columns = {"at_risk_score": scores, "at_risk_band": bands, "churn_probability": [chance, chance]}
            profiles.store_signal_columns(session, workspace.id, [a, b], columns, NOW)
        return changes.list_changes(db, workspace.id, after=head, kinds=["score"])

    first = store([70, 10], ["High", "Low"])
    assert [(c.profile_id, c.name, c.data) for c in first] == [
        (a, "High", {"old_score": None, "new_score": 70, "old_band": None, "new_band": "High"}),
        (b, "Low", {"old_score": None, "new_score": 10, "old_band": None, "new_band": "Low"}),
    ]
    assert all(c.created_at == NOW for c in first)
    with db.session() as session:
        stored = session.scalars(
            text("SELECT CAST(data AS TEXT) FROM change_log WHERE workspace_id = :ws AND kind = 'score' ORDER BY seq"),
            {"ws": workspace.id},
        ).all()
    if db.engine.dialect.name == "sqlite":  # the text the column's own type would have stored
        assert stored == [json_dumps(c.data) for c in first]
    # Unmoved scores log nothing; a moved one logs its old and new value, and a former
    # customer's score going away is a move too.
    again = store([70, None], ["High", None], chance=0.25)
    assert [(c.profile_id, c.name, c.data) for c in again[len(first) :]] == [
        (b, None, {"old_score": 10, "new_score": None, "old_band": "Low", "new_band": None}),
    ]
    # The unmoved profile still gets the other columns of the same call.
    kept = identity.profile_document(db, workspace.id, "a").signals
    gone = identity.profile_document(db, workspace.id, "b").signals
    assert kept is not None and (kept.at_risk_score, kept.at_risk_band, kept.churn_probability) == (70, "High", 0.25)
    assert gone is not None and (gone.at_risk_score, gone.at_risk_band, gone.churn_probability) == (None, None, 0.25)
    assert [c.seq for c in again] == sorted(c.seq for c in again)
