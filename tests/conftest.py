"""Fixtures: each test gets a fresh, migrated database on SQLite and on PostgreSQL.

PostgreSQL tests skip when the server is absent, except when SIGNALBOX_REQUIRE_POSTGRES=1
(CI sets it), where they fail instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from signalbox.api.app import create_app
from signalbox.cli.main import app
from signalbox.core import migrate
from signalbox.core.clock import FixedClock
from signalbox.core.db import Database
from signalbox.core.settings import Settings, get_settings
from signalbox.ingestion.service import Pipeline
from signalbox.workspaces import service as workspaces
from signalbox.workspaces.schemas import CreatedWorkspace
from tests.factories import make_settings

PG_ADMIN_URL = os.environ.get("SIGNALBOX_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("SIGNALBOX_REQUIRE_POSTGRES") == "1"

_sqlite_template: Path | None = None


def _pg_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def pg_schema_factory() -> Iterator[list[str]]:
    created: list[str] = []
    yield created
    if created:
        engine = create_engine(PG_ADMIN_URL)
        # One transaction per schema: dropping them all in one takes a lock per table of every
        # schema and runs out of max_locks_per_transaction ("out of shared memory").
        for schema in created:
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def _sqlite_url(tmp_path: Path) -> str:
    global _sqlite_template
    if _sqlite_template is None:
        template_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"sb-template-{os.getpid()}"
        template_dir.mkdir(exist_ok=True)
        _sqlite_template = template_dir / "template.db"
        migrate.upgrade(f"sqlite:///{_sqlite_template}")
    target = tmp_path / "signalbox.db"
    shutil.copyfile(_sqlite_template, target)
    return f"sqlite:///{target}"


def _pg_url(created: list[str]) -> str:
    if not _pg_available():
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required (SIGNALBOX_REQUIRE_POSTGRES=1) but {PG_ADMIN_URL} is unreachable")
        pytest.skip("PostgreSQL not reachable")
    schema = f"sbt_{uuid.uuid4().hex[:12]}"
    engine = create_engine(PG_ADMIN_URL)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    created.append(schema)
    url = f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    migrate.upgrade(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, pg_schema_factory: list[str]) -> str:
    if request.param == "sqlite":
        return _sqlite_url(tmp_path)
    return _pg_url(pg_schema_factory)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 8, 6, 30, tzinfo=UTC))  # US DST starts this day


@pytest.fixture
def pipeline(db: Database, settings: Settings, clock: FixedClock) -> Pipeline:
    return Pipeline(db, settings, clock)


@pytest.fixture
def workspace(db: Database) -> CreatedWorkspace:
    return workspaces.create_workspace(db, f"ws-{uuid.uuid4().hex[:8]}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    def __init__(self, settings: Settings, db: Database, clock: FixedClock | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings, db, clock), host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(settings: Settings, db: Database) -> Iterator[LiveServer]:
    with LiveServer(settings, db) as server:
        yield server


@pytest.fixture
def clocked_server(settings: Settings, db: Database, clock: FixedClock) -> Iterator[LiveServer]:
    """A live server whose clock is the test's `clock` fixture (move it, the server follows)."""
    with LiveServer(settings, db, clock) as server:
        yield server


@pytest.fixture
def cli(database_url, monkeypatch):
    monkeypatch.setenv("SIGNALBOX_DATABASE_URL", database_url)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, ok: bool = True):
        result = runner.invoke(app, list(args))
        if ok:
            assert result.exit_code == 0, result.output + str(result.exception)
        return result

    yield run
    get_settings.cache_clear()
