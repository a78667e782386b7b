"""Identity resolves a batch with different statements on each database (PostgreSQL reads the
owners, their nodes and their trees' user_ids in one join); the people it makes must be the
same. Random streams over a few ids make merges, reviews and aliases happen often."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from signalbox.core.clock import FixedClock
from signalbox.core.db import Database
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.workspaces import service as workspaces
from tests.conftest import _pg_url, _sqlite_url
from tests.factories import make_settings

pytestmark = pytest.mark.postgres


def _stream(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        kind = rng.choice(["identify", "identify", "track", "alias"])
        msg: dict[str, Any] = {"type": kind, "messageId": f"m{i}", "timestamp": f"2026-03-0{1 + i % 7}T12:00:00Z"}
        if kind == "alias":
            msg["userId"] = f"u{rng.randrange(30)}"
            msg["previousId"] = rng.choice([f"a{rng.randrange(60)}", f"u{rng.randrange(30)}"])
        else:
            if rng.random() < 0.6:
                msg["userId"] = f"u{rng.randrange(30)}"
            if rng.random() < 0.6 or "userId" not in msg:
                msg["anonymousId"] = f"a{rng.randrange(60)}"
            if kind == "identify":
                traits: dict[str, str] = {}
                if rng.random() < 0.5:
                    traits["email"] = f"e{rng.randrange(20)}@example.com"
                if rng.random() < 0.3:
                    traits["phone"] = f"+1415555{rng.randrange(15):04d}"
                msg["traits"] = traits
            else:
                msg["event"] = "visit"
        out.append(msg)
    return out


def _people(url: str, messages: list[dict[str, Any]]) -> tuple[list[list[tuple[str, str]]], int, int]:
    """(each person's identifiers, reviews, merges) after ingesting `messages` in batches of 40."""
    settings = make_settings(url)
    db = Database(settings)
    try:
        ws = workspaces.get_workspace(db, workspaces.create_workspace(db, "both").id)
        pipeline = Pipeline(db, settings, FixedClock(datetime(2026, 3, 8, 12, tzinfo=UTC)))
        for start in range(0, len(messages), 40):
            pipeline.ingest(ws, BatchInput(messages[start : start + 40]))
        with db.session() as s:
            rows = s.execute(
                text(
                    "SELECT i.type, i.value, p.canonical_id FROM identifiers AS i "
                    "JOIN profiles AS p ON p.workspace_id = i.workspace_id AND p.id = i.profile_id "
                    "WHERE i.workspace_id = :w"
                ),
                {"w": ws.id},
            ).all()
            reviews = s.execute(text("SELECT count(*) FROM merge_reviews WHERE workspace_id = :w"), {"w": ws.id})
            merges = s.execute(text("SELECT count(*) FROM merge_log WHERE workspace_id = :w"), {"w": ws.id})
            counts = int(reviews.scalar_one()), int(merges.scalar_one())
    finally:
        db.dispose()
    trees: dict[str, list[tuple[str, str]]] = {}
    for kind, value, root in rows:
        trees.setdefault(root, []).append((kind, value))
    return sorted(sorted(t) for t in trees.values()), *counts


@pytest.mark.parametrize("seed", [0, 1])
def test_postgresql_makes_the_same_people_as_sqlite(tmp_path: Path, pg_schema_factory: list[str], seed: int) -> None:
    stream = _stream(seed, 1200)
    on_sqlite = _people(_sqlite_url(tmp_path), stream)
    on_postgres = _people(_pg_url(pg_schema_factory), stream)
    assert on_sqlite[1] > 50 and on_sqlite[2] > 5  # the stream did make reviews and merges
    assert on_postgres == on_sqlite
