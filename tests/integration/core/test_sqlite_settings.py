"""The SQLite connection settings reach every connection of the engine."""

from __future__ import annotations

from sqlalchemy import text

from signalbox.core.db import Database
from tests.factories import make_settings


def _pragma(db: Database, name: str) -> int:
    with db.session() as session:
        return int(session.execute(text(f"PRAGMA {name}")).scalar_one())


def test_memory_map_and_busy_timeout_are_set_and_can_be_turned_off(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    default = Database(make_settings(url))
    assert _pragma(default, "mmap_size") > 0
    assert _pragma(default, "busy_timeout") == 10_000
    off = Database(make_settings(url, sqlite_mmap_mb=0, sqlite_busy_timeout_ms=250))
    assert _pragma(off, "mmap_size") == 0
    assert _pragma(off, "busy_timeout") == 250
    default.dispose()
    off.dispose()
