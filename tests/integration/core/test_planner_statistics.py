"""PostgreSQL: tables grown by ingestion are analysed as they grow, so the batch lookups are
planned as index probes, not as a scan of the workspace's every row (`core.planner`)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from signalbox.core import db as core_db
from signalbox.core.db import Database, pg_array
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.workspaces import service as workspaces
from tests.factories import track


def _reltuples(db: Database, table: str) -> float:
    with db.session() as s:
        found = s.execute(text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table})
        return float(found.scalar_one())


def test_ingested_tables_get_statistics_and_lookups_probe_the_index(db: Database, pipeline: Pipeline) -> None:
    if db.is_sqlite:
        assert db.planner is None  # SQLite plans these lookups without statistics
        return
    ws = workspaces.get_workspace(db, workspaces.create_workspace(db, "grows").id)
    assert _reltuples(db, "events") < 0  # never analysed: the migration made it empty
    sent = [{**track(f"u-{i % 40}", "visit"), "messageId": f"m-{i}"} for i in range(3000)]
    for start in range(0, len(sent), 500):
        result = pipeline.ingest(ws, BatchInput(sent[start : start + 500]))
        assert result.accepted == 500
    # Analysed at 1,000 and 2,000 events by the pipeline's commits (autovacuum waits a minute).
    assert _reltuples(db, "events") == 2000
    assert _reltuples(db, "change_log") >= 1000
    with db.session() as s:
        plan = "\n".join(
            row[0]
            for row in s.execute(
                text(
                    "EXPLAIN SELECT message_id FROM events WHERE workspace_id = :w "
                    "AND message_id = ANY(CAST(:ids AS text[]))"
                ),
                {"w": ws.id, "ids": pg_array([f"m-{i}" for i in range(0, 3000, 300)])},
            )
        )
    # The ids are probed through the unique index, not filtered out of the workspace's rows.
    assert "Index Cond" in plan and "message_id" in plan.split("Index Cond", 1)[1].split("\n", 1)[0], plan


def test_analyze_gives_up_when_the_table_is_being_vacuumed(
    db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if db.is_sqlite:
        return
    assert db.planner is not None
    monkeypatch.setattr(core_db, "ANALYZE_LOCK_TIMEOUT_MS", 200)
    # What a VACUUM or ANALYZE holds, in another session, while our batch commits.
    with db.engine.connect() as other:
        other.execute(text("LOCK TABLE events IN SHARE UPDATE EXCLUSIVE MODE"))
        with caplog.at_level(logging.WARNING, logger="signalbox.planner"):
            assert db.planner.appended({"events": 5000}) == []
        other.rollback()
    (record,) = [r for r in caplog.records if r.getMessage() == "could not refresh planner statistics"]
    assert record.__dict__["exc_type"] == "LockNotAvailable"  # waited for the lock, then gave up
    assert db.planner.appended({"events": 1000}) == ["events"]  # tried again after more rows


def test_a_batch_prices_index_probes_as_cached_reads_for_its_own_transaction_only(
    db: Database, pipeline: Pipeline
) -> None:
    ws = workspaces.get_workspace(db, workspaces.create_workspace(db, "probes").id)
    sent = [{**track(f"u-{i % 40}", "visit"), "messageId": f"m-{i}"} for i in range(5000)]
    for start in range(0, 4900, 700):
        assert pipeline.ingest(ws, BatchInput(sent[start : start + 700])).accepted == 700
    last = sent[4900:]
    check = text(
        "EXPLAIN SELECT message_id FROM events WHERE workspace_id = :w AND message_id = ANY(CAST(:ids AS text[]))"
    )
    params = {"w": ws.id, "ids": pg_array([m["messageId"] for m in last])}
    seen: dict[str, str] = {}

    def inside(session, result) -> None:  # type: ignore[no-untyped-def]
        if not db.is_sqlite:
            seen["cost"] = session.execute(text("SELECT current_setting('random_page_cost')")).scalar_one()
            seen["plan"] = "\n".join(row[0] for row in session.execute(check, params))

    assert pipeline.ingest(ws, BatchInput(last), along=inside).accepted == 100
    if db.is_sqlite:
        return
    assert seen["cost"] == str(core_db.PROBE_RANDOM_PAGE_COST)
    # 100 ids among 4,900 events: the batch probes the unique index, where the server's own
    # pricing reads the workspace's every row.
    assert "Index Cond" in seen["plan"], seen["plan"]
    for _ in range(3):  # SET LOCAL: the pooled connections went back with the server's setting
        with db.session() as s:
            assert s.execute(text("SELECT current_setting('random_page_cost')")).scalar_one() == "4"
            plan = "\n".join(row[0] for row in s.execute(check, params))
            assert plan.startswith("Seq Scan"), plan
