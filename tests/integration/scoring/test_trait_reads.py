"""Traits read on two sessions (the all-history aggregates and the user ids on a second
thread) are exactly the traits read on one, on SQLite and PostgreSQL: for everyone, for a
subset of people, and at an as-of date whose windows split the history."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import numpy as np

from signalbox.demo import service as demo
from signalbox.demo.schemas import WorldConfig
from signalbox.ingestion.service import BatchInput
from signalbox.profiles import traits
from signalbox.workspaces import service as workspaces
from tests.factories import identify

END = date(2026, 10, 31)


def _same(a: traits.TraitTable, b: traits.TraitTable) -> None:
    assert a.profile_ids == b.profile_ids and a.user_ids == b.user_ids and a.zones == b.zones
    assert a.labels == b.labels
    assert a.values.keys() == b.values.keys()
    for name in a.values:
        np.testing.assert_array_equal(a.values[name], b.values[name], err_msg=name)


def test_the_second_thread_reads_the_same_traits(db, settings, tmp_path):
    demo.seed(db, settings, "reads", WorldConfig(end=END, members=300, months=12, seed=5), ground_truth=tmp_path / "t")
    ws = workspaces.get_workspace(db, "reads")
    defs = traits.default_traits()
    assert db.concurrent_reads
    for as_of in (END, date(2026, 3, 8)):  # the second: a DST change in the US zones
        with db.session() as session:
            one = traits.compute(session, ws.id, ws.timezone, as_of, defs)
        with db.session() as session:
            two = traits.compute(session, ws.id, ws.timezone, as_of, defs, reader=db.session)
        _same(one, two)
        # The older read matters here: history before the earliest window, and sums of it.
        window_start = datetime.combine(as_of - timedelta(days=121), time(0), tzinfo=UTC).timestamp()
        assert len(one) > 100 and np.nansum(one.values["total_spend"]) > 0
        assert (one.values["first_activity_at"] < window_start).sum() > 10
        some = one.profile_ids[::7]
        with db.session() as session:
            part_one = traits.compute(session, ws.id, ws.timezone, as_of, defs, some)
        with db.session() as session:
            part_two = traits.compute(session, ws.id, ws.timezone, as_of, defs, some, reader=db.session)
        _same(part_one, part_two)
        assert part_one.profile_ids == sorted(some)


def test_labels_are_the_newest_non_empty_value_key_by_key(db, pipeline, workspace):
    ws = workspaces.get_workspace(db, workspace.id)
    messages = [
        {**identify("ann", plan="gold", timezone="America/New_York"), "timestamp": "2026-05-01T10:00:00Z"},
        {**identify("ann", plan="", home_location="loc-1"), "timestamp": "2026-05-02T10:00:00Z"},
        {**identify("ann", plan=None, timezone="America/Chicago"), "timestamp": "2026-05-03T10:00:00Z"},
        # Arrives last but happened first: it loses to every newer value.
        {**identify("ann", plan="bronze", home_location="loc-0"), "timestamp": "2026-04-01T10:00:00Z"},
        {**identify("bob", plan="silver"), "timestamp": "2026-05-01T10:00:00Z"},
        # After the as-of day everywhere: never read.
        {**identify("bob", plan="platinum"), "timestamp": "2026-06-02T12:00:00Z"},
    ]
    for message in messages:  # one batch each: arrival order is part of the scenario
        assert not pipeline.ingest(ws, BatchInput([message], source="test")).rejected
    with db.session() as session:
        table = traits.compute(session, ws.id, ws.timezone, date(2026, 6, 1), traits.default_traits())
    got = {
        user: {name: table.labels[name][k] for name in ("plan", "home_location", "timezone")}
        for k, user in enumerate(table.user_ids)
    }
    assert got == {
        "ann": {"plan": "gold", "home_location": "loc-1", "timezone": "America/Chicago"},
        "bob": {"plan": "silver", "home_location": None, "timezone": None},
    }
