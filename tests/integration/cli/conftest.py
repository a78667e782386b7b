"""The CLI driven in-process against the test database (SQLite and PostgreSQL)."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from signalbox.cli.main import app
from signalbox.core.settings import get_settings


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


def jrun(cli, *args):
    return orjson.loads(cli(*args, "--json").stdout)


