"""The change log: every downstream-relevant write appends in its own transaction, and a
consumer reading from its position misses nothing and sees nothing twice, however writers
interleave and whatever their clocks say."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from signalbox.changes import service as changes
from signalbox.changes.schemas import NewChange
from signalbox.core.clock import FixedClock
from signalbox.identity import service as identity
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.scoring import service as scoring
from signalbox.workspaces import service as workspaces
from tests.factories import identify, track

AS_OF = date(2026, 3, 1)


@pytest.fixture
def ws(db, workspace):
    return workspaces.get_workspace(db, workspace.id)


def _log(db, ws_id, **kw):
    return changes.list_changes(db, ws_id, **kw)


def test_each_kind_of_write_is_logged_in_order(pipeline, db, ws, clock):
    at = "2026-02-20T15:00:00+00:00"
    pipeline.ingest(ws, BatchInput([{**identify("m-1", email="a@example.com", plan="gold"), "timestamp": at}]))
    pipeline.ingest(ws, BatchInput([{**track("visit", "m-1"), "timestamp": at}]))
    # An anonymous visitor, later tied to m-1 by an identify carrying both ids: a merge.
    pipeline.ingest(ws, BatchInput([{**track("visit", anonymous_id="anon-9"), "timestamp": at}]))
    pipeline.ingest(ws, BatchInput([{**identify("m-1", anonymous_id="anon-9"), "timestamp": at}]))
    log = _log(db, ws.id)
    assert [c.seq for c in log] == list(range(log[0].seq, log[0].seq + len(log)))
    kinds = [c.kind for c in log]
    assert kinds.count("event") == 4
    assert [c.name for c in log if c.kind == "event"] == ["identify", "visit", "visit", "identify"]
    traits = next(c for c in log if c.kind == "traits")
    assert traits.data == {"keys": ["email", "plan"], "old": {}}
    (merge,) = [c for c in log if c.kind == "merge"]
    root = identity.profile_document(db, ws.id, "m-1").id
    assert merge.profile_id == root and merge.data and merge.data["source"] != root

    (entry,) = identity.merge_log(db, ws.id)
    identity.unmerge(db, ws.id, entry.id, clock.now())
    unmerges = _log(db, ws.id, kinds=["unmerge"])
    assert {c.profile_id for c in unmerges} == {merge.profile_id, merge.data["source"]}
    assert all(c.ref and c.data == {"undoes": entry.id} for c in unmerges)


def test_a_batch_logs_its_changes_at_once_in_the_order_written(pipeline, db, ws):
    at = "2026-02-20T15:00:00+00:00"
    first = [{**track("visit", anonymous_id="anon-7"), "timestamp": at}, {**track("visit", "m-7"), "timestamp": at}]
    pipeline.ingest(ws, BatchInput(first))
    before = changes.list_changes(db, ws.id)[-1].seq
    # One batch that merges (anon-7 into m-7), stores two events and changes traits.
    batch = [
        {**identify("m-7", anonymous_id="anon-7", plan="gold"), "timestamp": at},
        {**track("visit", "m-7"), "timestamp": at},
    ]
    assert pipeline.ingest(ws, BatchInput(batch)).accepted == 2
    log = [c for c in changes.list_changes(db, ws.id) if c.seq > before]
    assert [c.seq for c in log] == list(range(before + 1, before + 1 + len(log)))
    assert [c.kind for c in log] == ["merge", "event", "event", "traits"]


def test_deferred_changes_are_logged_at_the_end_or_not_at_all(db, ws, clock):
    now = clock.now()
    with db.transaction() as session, changes.deferred(session, ws.id):
        changes.append(session, ws.id, [NewChange("event", "p-1", "m-1", "visit")], now)
        assert changes.head(session, ws.id) == 0  # nothing allocated yet
        changes.append(session, ws.id, [NewChange("traits", "p-1", data={"keys": ["a"], "old": {}})], now)
    assert [(c.seq, c.kind) for c in changes.list_changes(db, ws.id)] == [(1, "event"), (2, "traits")]
    with pytest.raises(ValueError), db.transaction() as session, changes.deferred(session, ws.id):
        changes.append(session, ws.id, [NewChange("event", "p-2", "m-2", "visit")], now)
        raise ValueError("the batch fails")
    assert len(changes.list_changes(db, ws.id)) == 2


def test_scores_log_old_and_new_band_only_when_they_move(pipeline, db, ws, clock):
    at = datetime(2026, 1, 5, 15, tzinfo=UTC)
    pipeline.ingest(ws, BatchInput([{**track("visit", "m-1"), "timestamp": at.isoformat()}]))
    scoring.compute_scores(db, ws, AS_OF, clock)
    (first,) = _log(db, ws.id, kinds=["score"])
    stored = identity.profile_document(db, ws.id, "m-1").signals
    assert stored and stored.at_risk_band in ("Medium", "High")  # 55 days away
    assert first.data == {
        "old_score": None,
        "new_score": stored.at_risk_score,
        "old_band": None,
        "new_band": stored.at_risk_band,
    }
    assert first.name == stored.at_risk_band
    scoring.compute_scores(db, ws, AS_OF, clock)  # nothing moved: nothing logged
    assert len(_log(db, ws.id, kinds=["score"])) == 1
    pipeline.ingest(ws, BatchInput([{**track("visit", "m-1"), "timestamp": "2026-02-28T15:00:00+00:00"}]))
    scoring.compute_scores(db, ws, AS_OF, clock)
    second = _log(db, ws.id, kinds=["score"])[-1]
    assert (second.data["old_band"], second.data["new_band"]) == (stored.at_risk_band, "Low")


def test_traits_stale_recomputes_only_people_changed_since_any_previous_run(pipeline, db, ws, clock):
    at = "2026-02-20T15:00:00+00:00"
    pipeline.ingest(ws, BatchInput([{**track("visit", f"m-{n}"), "timestamp": at} for n in range(3)]))
    # A full run also records where it read up to.
    assert scoring.compute_traits(db, ws, AS_OF, clock)[1] == 3
    assert scoring.compute_traits(db, ws, AS_OF, clock, only_stale=True)[1] == 0
    pipeline.ingest(ws, BatchInput([{**track("visit", "m-2"), "timestamp": at}]))
    assert scoring.compute_traits(db, ws, AS_OF, clock, only_stale=True)[1] == 1
    assert scoring.compute_traits(db, ws, AS_OF, clock, only_stale=True)[1] == 0
    # A score run keeps its own position: it still has everything to read.
    assert scoring.compute_scores(db, ws, AS_OF, clock, only_stale=True).profiles == 3


def test_a_lagging_writer_clock_is_never_missed(db, settings, ws):
    """The old watermark compared timestamps from different machines; positions do not."""
    ahead = FixedClock(datetime(2026, 3, 1, 12, tzinfo=UTC) + timedelta(hours=6))
    behind = FixedClock(datetime(2026, 3, 1, 12, tzinfo=UTC) - timedelta(hours=6))
    at = "2026-02-20T15:00:00+00:00"
    Pipeline(db, settings, ahead).ingest(ws, BatchInput([{**track("visit", "m-1"), "timestamp": at}]))
    assert scoring.compute_traits(db, ws, AS_OF, ahead, only_stale=True)[1] == 1
    Pipeline(db, settings, behind).ingest(ws, BatchInput([{**track("visit", "m-2"), "timestamp": at}]))
    assert scoring.compute_traits(db, ws, AS_OF, ahead, only_stale=True)[1] == 1


def _guarded(errors: list[BaseException], fn):
    def run(*args):
        try:
            fn(*args)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    return run


def test_interleaved_writers_with_skewed_clocks_nothing_missed_nothing_twice(db, settings, ws):
    base = datetime(2026, 3, 1, 12, tzinfo=UTC)
    writers_done = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def writer(name: str, skew: timedelta) -> None:
        pipe = Pipeline(db, settings, FixedClock(base + skew))
        for k in range(15):
            pipe.ingest(ws, BatchInput([track("visit", f"{name}-{k % 4}") for _ in range(3)]))

    def slow_writer() -> None:
        # Holds its transaction open after taking its numbers: a reader in that gap must not
        # see later numbers commit first.
        for k in range(5):
            with db.transaction() as session:
                changes.append(session, ws.id, [NewChange("traits", f"slow-{k}")], base)
                time.sleep(0.05)

    def consumer() -> None:
        while True:
            done = writers_done.is_set()
            with db.session() as session:
                win = changes.window(session, ws.id, "test")
                got = changes.read(session, ws.id, after=win.after, upto=win.upto, limit=1_000_000)
            seen.extend(c.seq for c in got)
            with db.transaction() as session:
                changes.advance(session, ws.id, "test", win.upto, base)
            if done:
                return
            time.sleep(0.005)

    writers = [
        threading.Thread(target=_guarded(errors, writer), args=("a", timedelta(hours=3))),
        threading.Thread(target=_guarded(errors, writer), args=("b", -timedelta(hours=3))),
        threading.Thread(target=_guarded(errors, slow_writer)),
    ]
    reader = threading.Thread(target=_guarded(errors, consumer))
    reader.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    writers_done.set()
    reader.join()
    assert not errors, errors
    head = changes.status(db, ws.id).head
    assert head > 0
    assert sorted(seen) == list(range(1, head + 1))  # every number once: none missed, none twice
    events = _log(db, ws.id, kinds=["event"], limit=1_000_000)
    assert len(events) == 2 * 15 * 3 and len({c.ref for c in events}) == len(events)


def test_trim_keeps_what_a_consumer_has_not_read_and_flags_a_gap(pipeline, db, ws, clock):
    at = "2026-02-20T15:00:00+00:00"
    pipeline.ingest(ws, BatchInput([{**track("visit", f"m-{n}"), "timestamp": at} for n in range(2)]))
    scoring.compute_traits(db, ws, AS_OF, clock)  # the `traits` consumer has read everything
    head = changes.status(db, ws.id).head
    pipeline.ingest(ws, BatchInput([{**track("visit", "m-9"), "timestamp": at}]))
    # Not a week old yet: kept even though read.
    assert changes.trim(db, ws.id, clock.now() + timedelta(days=6)).deleted == 0
    trimmed = changes.trim(db, ws.id, clock.now() + timedelta(days=8))
    assert (trimmed.deleted, trimmed.trimmed_through) == (head, head)
    assert [c.profile_id for c in _log(db, ws.id)] == [_node(db, ws.id, "m-9")]  # unread by traits: kept
    # `scores` never read the trimmed rows: its first stale run must be a full pass.
    with db.session() as session:
        assert not changes.window(session, ws.id, "scores").complete
    assert scoring.compute_scores(db, ws, AS_OF, clock, only_stale=True).profiles == 3
    assert scoring.compute_traits(db, ws, AS_OF, clock, only_stale=True)[1] == 1
    # Past the retention limit everything goes, read or not.
    pipeline.ingest(ws, BatchInput([{**track("visit", "m-8"), "timestamp": at}]))
    assert changes.trim(db, ws.id, clock.now() + timedelta(days=31)).deleted > 0
    assert changes.status(db, ws.id).rows == 0
    with db.session() as session:
        assert not changes.window(session, ws.id, "traits").complete
    assert scoring.compute_traits(db, ws, AS_OF, clock, only_stale=True)[1] == 4  # everyone


def _node(db, ws_id: str, user_id: str) -> str:
    return identity.profile_document(db, ws_id, user_id).id
