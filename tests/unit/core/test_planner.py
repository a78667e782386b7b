"""When a table grown by this process is due for ANALYZE (`core.planner`)."""

from __future__ import annotations

import logging
import threading

import pytest

from signalbox.core.planner import MIN_ROWS, PlannerStatistics


class FakeDatabase:
    def __init__(self, sizes: dict[str, float] | None = None, fail: bool = False) -> None:
        self.sizes = dict(sizes or {})
        self.rows: dict[str, float] = {}
        self.analysed: list[str] = []
        self.fail = fail

    def analyze(self, table: str) -> float:
        if self.fail:
            raise RuntimeError("permission denied")
        self.analysed.append(table)
        self.sizes[table] = self.rows.get(table, 0.0)
        return self.sizes[table]

    def estimate(self, table: str) -> float:
        return self.sizes.get(table, -1.0)  # -1: never analysed


def _grow(planner: PlannerStatistics, db: FakeDatabase, table: str, rows: int) -> list[str]:
    db.rows[table] = db.rows.get(table, 0.0) + rows
    return planner.appended({table: rows})


def test_a_table_growing_from_empty_is_analysed_each_time_it_doubles() -> None:
    db = FakeDatabase()
    planner = PlannerStatistics(db.analyze, db.estimate)
    analysed_at = []
    for _ in range(100):  # 100 batches of 500 rows
        if _grow(planner, db, "events", 500):
            analysed_at.append(int(db.rows["events"]))
    assert analysed_at == [1000, 2000, 4000, 8000, 16000, 32000]


def test_no_analyze_below_the_minimum_nor_for_a_large_table() -> None:
    db = FakeDatabase(sizes={"events": 5_000_000.0})
    planner = PlannerStatistics(db.analyze, db.estimate)
    assert _grow(planner, db, "small", MIN_ROWS - 1) == []
    for _ in range(50):
        assert _grow(planner, db, "events", 5000) == []  # 250,000 rows: a twentieth of it
    assert db.analysed == []
    assert _grow(planner, db, "small", 1) == ["small"]


def test_tables_are_counted_apart() -> None:
    db = FakeDatabase()
    planner = PlannerStatistics(db.analyze, db.estimate)
    db.rows.update(events=1200.0, identifiers=300.0)
    assert planner.appended({"events": 1200, "identifiers": 300}) == ["events"]
    db.rows["identifiers"] = 1000.0
    assert planner.appended({"identifiers": 700}) == ["identifiers"]


def test_a_failure_is_logged_not_raised_and_not_retried_at_once(caplog: pytest.LogCaptureFixture) -> None:
    db = FakeDatabase(fail=True)
    planner = PlannerStatistics(db.analyze, db.estimate)
    with caplog.at_level(logging.WARNING, logger="signalbox.planner"):
        assert planner.appended({"events": 1500}) == []
        assert planner.appended({"events": 10}) == []  # counted afresh after the failure
    assert [r.getMessage() for r in caplog.records].count("could not refresh planner statistics") == 1
    db.fail = False
    db.rows["events"] = 2510.0
    assert planner.appended({"events": 990}) == ["events"]


def test_one_thread_at_a_time_analyses_a_table() -> None:
    inside = threading.Event()
    release = threading.Event()
    calls: list[str] = []

    def slow_analyze(table: str) -> float:
        calls.append(table)
        inside.set()
        release.wait(5)
        return 1000.0

    planner = PlannerStatistics(slow_analyze, lambda table: -1.0)
    first = threading.Thread(target=planner.appended, args=({"events": 1000},))
    first.start()
    assert inside.wait(5)
    # Meanwhile another batch commits: counted, but the table is being analysed already.
    assert planner.appended({"events": 1000}) == []
    release.set()
    first.join(5)
    assert calls == ["events"]
    # Its rows were kept: 1,000 since the analysis, as many as the table then held.
    assert planner.appended({"events": 0}) == ["events"]
