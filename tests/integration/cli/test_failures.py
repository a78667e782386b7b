"""Every CLI failure is one `error:` line on stderr and a non-zero exit, never a traceback: a
ragged CSV row is a reject (the good rows land), a locked SQLite file and an unreachable
database name the problem without the password or any statement parameter."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import orjson
import pytest
from typer.testing import CliRunner

from signalbox.cli.main import app
from signalbox.core.settings import get_settings
from tests.conftest import _sqlite_url
from tests.factories import jrun

PASSWORD = "s3cret-Pa55word"


def assert_one_error_line(result, *, says: str) -> None:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and says in errors[0], result.stderr
    for line in result.stderr.splitlines():
        # Anything else on stderr is a structured log record, never free text.
        if line.strip() and not line.startswith("error:"):
            assert isinstance(orjson.loads(line), dict), line


def test_ragged_csv_rows_are_rejects_with_their_line_numbers(cli, tmp_path):
    jrun(cli, "workspace", "create", "ragged")
    path = tmp_path / "sales.csv"
    path.write_text(
        "member,sold_at,total,sku\n"
        "c-1,2026-03-01T10:00:00+00:00,10,a\n"
        "c-2,2026-03-01T11:00:00+00:00,20,b,surprise\n"  # one field too many
        "c-3,2026-03-01T12:00:00+00:00\n"  # two too few
        "\n"
        'c-4,2026-03-01T13:00:00+00:00,"40",d\n'
    )
    args = ("--customer-column", "member", "--timestamp-column", "sold_at", "--amount-column", "total")
    doc = jrun(cli, "import", "transactions", str(path), "-w", "ragged", *args)
    assert (doc["accepted"], doc["rejected"]) == (2, 2)
    rejects = [orjson.loads(x) for x in (tmp_path / "sales.csv.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejects] == [
        (3, "row has 5 fields, the header has 4"),
        (4, "row has 2 fields, the header has 4"),
    ]
    assert jrun(cli, "profile", "show", "-w", "ragged", "-u", "c-4")["event_counts"]["total"] == 1
    assert jrun(cli, "import", "transactions", str(path), "-w", "ragged", *args)["duplicates"] == 2


@pytest.fixture
def sqlite_env(tmp_path, monkeypatch):
    url = _sqlite_url(tmp_path)
    monkeypatch.setenv("SIGNALBOX_DATABASE_URL", url)
    monkeypatch.setenv("SIGNALBOX_SQLITE_BUSY_TIMEOUT_MS", "50")
    get_settings.cache_clear()
    yield url.removeprefix("sqlite:///")
    get_settings.cache_clear()


def test_a_locked_sqlite_file_is_one_line(sqlite_env, tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["workspace", "create", "locked"]).exit_code == 0
    events = tmp_path / "e.jsonl"
    events.write_text('{"type":"track","userId":"u1","event":"visit","timestamp":"2026-03-01T10:00:00Z"}\n')
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sqlite3, sys, time
                conn = sqlite3.connect({sqlite_env!r}, isolation_level=None)
                conn.execute("BEGIN IMMEDIATE")
                print("locked", flush=True)
                sys.stdin.read()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        created = runner.invoke(app, ["workspace", "create", "another"])
        assert_one_error_line(created, says="is locked by another process")
        imported = runner.invoke(app, ["import", "events", str(events), "-w", "locked", "--json"])
        assert_one_error_line(imported, says="is locked by another process")
        assert imported.stdout == ""
    finally:
        holder.communicate("", timeout=10)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://signalbox:{PASSWORD}@127.0.0.1:1/signalbox",
        "sqlite:////nonexistent-folder/signalbox.db",
    ],
)
@pytest.mark.parametrize(
    "command",
    [["workspace", "list", "--json"], ["db", "upgrade"], ["demo", "--members", "0"], ["serve"]],
)
def test_an_unreachable_database_is_one_line_without_the_password(url, command, monkeypatch):
    monkeypatch.setenv("SIGNALBOX_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, command)
    finally:
        get_settings.cache_clear()
    assert_one_error_line(result, says="database")
    assert PASSWORD not in result.output and result.stdout == ""
