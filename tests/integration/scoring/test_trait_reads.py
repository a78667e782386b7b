"""How computed traits are read, on SQLite and PostgreSQL: a subset of people (the `--stale`
path, every query scoped to their nodes) gets exactly their rows of everyone's table, at an
as-of date whose windows split the history and on a DST change; everyone's user ids, read in
one pass over the nodes, are the per-tree query's; labels are the newest non-empty value."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import numpy as np
from sqlalchemy import text

from signalbox.demo import service as demo
from signalbox.demo.schemas import WorldConfig
from signalbox.ingestion.service import BatchInput
from signalbox.profiles import service as profiles
from signalbox.profiles import traits
from signalbox.workspaces import service as workspaces
from tests.factories import identify, track

END = date(2026, 10, 31)


def _rows_of(table: traits.TraitTable, part: traits.TraitTable) -> None:
    """`part`'s people have exactly their rows of `table`."""
    at = [table.profile_ids.index(root) for root in part.profile_ids]
    assert [table.user_ids[k] for k in at] == part.user_ids and [table.zones[k] for k in at] == part.zones
    assert {name: [values[k] for k in at] for name, values in table.labels.items()} == part.labels
    assert table.values.keys() == part.values.keys()
    for name, values in table.values.items():
        np.testing.assert_array_equal(values[at], part.values[name], err_msg=name)


def test_a_subset_reads_its_rows_of_everyones_traits(db, pipeline, settings, tmp_path):
    demo.seed(db, settings, "reads", WorldConfig(end=END, members=300, months=12, seed=5), ground_truth=tmp_path / "t")
    ws = workspaces.get_workspace(db, "reads")
    # Merged trees: an anonymous visitor and a member, linked later by one message that
    # carries both (which node's user id the tree takes depends on the nodes' order).
    for k in range(5):
        day = f"2026-10-0{k + 1}T1"
        for n, message in enumerate(
            (
                identify(anonymous_id=f"web-{k}", email=f"v{k}@example.com"),
                identify(f"late-{k}", phone=f"+1 415 555 01{k:02d}"),
                track("visit", f"late-{k}"),
                identify(anonymous_id=f"web-{k}", phone=f"415-555-01{k:02d}"),
            )
        ):
            message["timestamp"] = f"{day}{n}:00:00Z"
            assert not pipeline.ingest(ws, BatchInput([message], source="test")).rejected
    defs = traits.default_traits()
    for as_of in (END, date(2026, 3, 8)):  # the second: a DST change in the US zones
        with db.session() as session:
            one = traits.compute(session, ws.id, ws.timezone, as_of, defs)
        with db.session() as session:  # the one-read user ids against the per-tree query
            expected = profiles.tree_user_ids(session, ws.id, one.profile_ids)
            merged = session.scalar(
                text("SELECT count(*) FROM profiles WHERE workspace_id = :ws AND merged_into_id IS NOT NULL"),
                {"ws": ws.id},
            )
        assert one.user_ids == [expected.get(root) for root in one.profile_ids]
        assert merged, "the world must hold merged trees"
        # The older read matters here: history before the earliest window, and sums of it.
        window_start = datetime.combine(as_of - timedelta(days=121), time(0), tzinfo=UTC).timestamp()
        assert len(one) > 100 and np.nansum(one.values["total_spend"]) > 0
        assert (one.values["first_activity_at"] < window_start).sum() > 10
        some = one.profile_ids[::7]
        with db.session() as session:
            part = traits.compute(session, ws.id, ws.timezone, as_of, defs, some)
        assert part.profile_ids == sorted(some)
        _rows_of(one, part)


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
