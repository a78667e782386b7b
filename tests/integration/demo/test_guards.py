"""Demo commands touch only their own, empty workspaces, never in production, and never re-key
a workspace unless asked; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from signalbox.cli import ops
from signalbox.core.db import Database
from signalbox.core.settings import get_settings
from signalbox.workspaces import service as workspaces
from tests.factories import jrun

TINY = ("--members", "3", "--months", "1", "--locations", "1", "--end", "2026-03-08")


@pytest.fixture
def no_server(monkeypatch):
    # `demo` ends by serving; these tests stop at what it printed and stored.
    monkeypatch.setattr(ops, "serve", lambda **_: None)


def one_line_refusal(result, says: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert says in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    assert "Traceback" not in result.output


def test_a_workspace_the_demo_did_not_create_is_refused(cli, db, no_server, tmp_path):
    real = jrun(cli, "workspace", "create", "northside")
    seed = cli("demo", "seed", "-w", "northside", *TINY, "--ground-truth", str(tmp_path / "t.csv"), ok=False)
    one_line_refusal(seed, "was not created by `signalbox demo`")
    served = cli("demo", "--workspace", "northside", "--members", "0", ok=False)
    one_line_refusal(served, "was not created by `signalbox demo`")
    # Its keys still work: nothing re-keyed it, nothing was written to it.
    assert workspaces.workspace_for_write_key(db, real["write_key"]) is not None
    assert not (tmp_path / "t.csv").exists()


def test_demo_seed_refuses_a_demo_workspace_that_holds_events(cli, tmp_path):
    args = ("demo", "seed", "-w", "tiny", *TINY, "--ground-truth", str(tmp_path / "t.csv"))
    first = jrun(cli, *args)
    assert first["events"] > 0
    again = cli(*args, ok=False)
    one_line_refusal(again, "already holds events")


def test_demo_commands_refuse_production(cli, database_url, monkeypatch, no_server, tmp_path):
    monkeypatch.setenv("SIGNALBOX_ENVIRONMENT", "production")
    monkeypatch.setenv("SIGNALBOX_SECRET_KEY", "a-production-grade-secret-key-of-48-characters-x")
    get_settings.cache_clear()
    seed = cli("demo", "seed", "-w", "prod-demo", *TINY, "--ground-truth", str(tmp_path / "t.csv"), ok=False)
    one_line_refusal(seed, "SIGNALBOX_ENVIRONMENT=production")
    served = cli("demo", "--workspace", "prod-demo", "--members", "0", ok=False)
    one_line_refusal(served, "SIGNALBOX_ENVIRONMENT=production")
    monkeypatch.setenv("SIGNALBOX_ENVIRONMENT", "test")
    get_settings.cache_clear()
    assert jrun(cli, "workspace", "list") == []


def _keys(output: str) -> dict[str, str]:
    found = dict(line.split(": ", 1) for line in output.splitlines() if line.startswith(("write key:", "admin key:")))
    return {k.split()[0]: v for k, v in found.items()}


def test_a_second_demo_run_keeps_the_keys_unless_asked(cli, settings, no_server):
    first = cli("demo", "--workspace", "kept", "--members", "0")
    keys = _keys(first.stdout)
    assert set(keys) == {"write", "admin"} and "http://127.0.0.1:8000/" in first.stdout
    second = cli("demo", "--workspace", "kept", "--members", "0")
    assert _keys(second.stdout) == {} and "keys: unchanged" in second.stdout
    db = Database(settings)
    try:
        assert workspaces.workspace_for_write_key(db, keys["write"]) is not None
        assert workspaces.workspace_for_admin_key(db, keys["admin"]) is not None
        renewed = _keys(cli("demo", "--workspace", "kept", "--members", "0", "--new-keys").stdout)
        assert set(renewed) == {"write", "admin"} and renewed != keys
        assert workspaces.workspace_for_write_key(db, keys["write"]) is None
        assert workspaces.workspace_for_write_key(db, renewed["write"]) is not None
    finally:
        db.dispose()


def _logins(output: str) -> dict[str, str]:
    lines = [line.split("  ")[1] for line in output.splitlines() if line.startswith("dashboard sign-in: ")]
    return dict(line.split(" / ") for line in lines)


def test_the_demo_prints_dashboard_logins_once_that_sign_in(cli, settings, no_server):
    from signalbox.accounts import service as accounts
    from signalbox.core.clock import SystemClock

    first = _logins(cli("demo", "--workspace", "dash", "--members", "0").stdout)
    assert set(first) == {"owner@demo.example", "frontdesk@demo.example"}
    again = cli("demo", "--workspace", "dash", "--members", "0").stdout
    assert _logins(again) == {} and "dashboard sign-in for dash: unchanged" in again
    db = Database(settings)
    try:
        signed = accounts.sign_in(
            db, "dash", "owner@demo.example", first["owner@demo.example"], client=None, clock=SystemClock()
        )
        assert signed.user.role == "owner" and signed.user.locations is None
        renewed = _logins(cli("demo", "--workspace", "dash", "--members", "0", "--new-keys").stdout)
        assert renewed["frontdesk@demo.example"] != first["frontdesk@demo.example"]
        front = accounts.sign_in(
            db, "dash", "frontdesk@demo.example", renewed["frontdesk@demo.example"], client=None, clock=SystemClock()
        )
        assert front.user.locations == ("loc-01",)
        # The new password ended the owner's session.
        assert accounts.user_for_session(db, signed.token, SystemClock()) is None
    finally:
        db.dispose()
