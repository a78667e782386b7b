"""`signalbox users`: create with the password on stdin or in a file (never an argument), list,
disable (which ends the user's sessions); short passwords and bad input are one error line."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from signalbox.accounts import service as accounts
from signalbox.cli.main import app
from signalbox.core.clock import SystemClock
from signalbox.core.db import Database
from tests.factories import jrun, make_settings
from tests.integration.cli.test_failures import assert_one_error_line

PASSWORD = "correct horse battery"


@pytest.fixture
def users(cli):
    """Runs `signalbox users …` with `stdin`; the `cli` fixture points it at the test database."""
    jrun(cli, "workspace", "create", "northside")
    runner = CliRunner()

    def run(*args: str, stdin: str = "", ok: bool = True):
        result = runner.invoke(app, ["users", *args], input=stdin)
        if ok:
            assert result.exit_code == 0, result.output + str(result.exception)
        return result

    return run


def test_create_from_stdin_list_and_disable(users, database_url):
    created = orjson.loads(
        users(
            "create",
            "-w",
            "northside",
            "--email",
            "Ana@Example.com",
            "--role",
            "manager",
            "--locations",
            "loc-01,loc-02",
            "--json",
            stdin=PASSWORD + "\n",
        ).stdout
    )
    assert created["workspace"] == "northside"
    user = created["user"]
    assert user["email"] == "ana@example.com" and user["role"] == "manager"
    assert user["locations"] == ["loc-01", "loc-02"] and user["disabled_at"] is None
    assert "password" not in orjson.dumps(created).decode()

    listed = orjson.loads(users("list", "-w", "northside", "--json").stdout)
    assert [u["email"] for u in listed["users"]] == ["ana@example.com"]
    assert "ana@example.com\tmanager\tloc-01,loc-02\tactive" in users("list", "-w", "northside").stdout

    # The stored hash opens with the piped password, trailing newline excluded.
    db = Database(make_settings(database_url))
    try:
        signed = accounts.sign_in(db, "northside", "ana@example.com", PASSWORD, client=None, clock=SystemClock())
        done = orjson.loads(users("disable", "-w", "northside", "--email", "ANA@example.com", "--json").stdout)
        assert done["sessions_ended"] == 1 and done["user"]["disabled_at"] is not None
        assert accounts.user_for_session(db, signed.token, SystemClock()) is None
    finally:
        db.dispose()


def test_create_from_a_password_file_without_locations_sees_everything(users, tmp_path, database_url):
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    doc = orjson.loads(
        users(
            "create",
            "-w",
            "northside",
            "--email",
            "o@example.com",
            "--role",
            "owner",
            "--password-file",
            str(secret),
            "--json",
        ).stdout
    )
    assert doc["user"]["locations"] is None
    db = Database(make_settings(database_url))
    try:
        with db.session() as session:
            stored = session.execute(text("SELECT password_hash FROM users")).scalar_one()
        assert accounts.password_matches(PASSWORD, stored)
    finally:
        db.dispose()


def test_short_password_is_refused_before_anything_is_stored(users):
    result = users(
        "create", "-w", "northside", "--email", "a@example.com", "--role", "staff", stdin="elevenchars\n", ok=False
    )
    assert_one_error_line(result, says="at least 12 characters")
    assert orjson.loads(users("list", "-w", "northside", "--json").stdout)["users"] == []


def test_empty_stdin_is_refused(users):
    result = users("create", "-w", "northside", "--email", "a@example.com", "--role", "staff", ok=False)
    assert_one_error_line(result, says="no password given")


def test_there_is_no_password_option(users):
    result = users(
        "create", "-w", "northside", "--email", "a@example.com", "--role", "staff", "--password", PASSWORD, ok=False
    )
    assert result.exit_code != 0 and PASSWORD not in result.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--email", "a@example.com", "--role", "admin"), "role 'admin' must be one of owner, manager, staff"),
        (("--email", "nobody", "--role", "staff"), "is not an e-mail address"),
        (("--email", "a@example.com", "--role", "staff", "--locations", "loc 1"), "location 'loc 1'"),
    ],
)
def test_bad_input_is_one_error_line(users, args, says):
    assert_one_error_line(users("create", "-w", "northside", *args, stdin=PASSWORD + "\n", ok=False), says=says)


def test_duplicates_and_unknown_users_are_one_error_line(users):
    args = ("create", "-w", "northside", "--email", "a@example.com", "--role", "staff")
    users(*args, stdin=PASSWORD + "\n")
    assert_one_error_line(users(*args, stdin=PASSWORD + "\n", ok=False), says="already exists")
    assert_one_error_line(
        users("disable", "-w", "northside", "--email", "b@example.com", ok=False), says="no user 'b@example.com'"
    )
    assert_one_error_line(users("list", "-w", "elsewhere", ok=False), says="no workspace named or with id 'elsewhere'")


def test_set_password_replaces_it_and_ends_sessions(users, database_url, tmp_path):
    users("create", "-w", "northside", "--email", "bo@example.com", "--role", "staff", stdin=PASSWORD + "\n")
    db = Database(make_settings(database_url))
    try:
        signed = accounts.sign_in(db, "northside", "bo@example.com", PASSWORD, client=None, clock=SystemClock())
        new = tmp_path / "bo.pw"
        new.write_text("an entirely new pass phrase\n")
        done = orjson.loads(
            users(
                "set-password", "-w", "northside", "--email", "BO@example.com", "--password-file", str(new), "--json"
            ).stdout
        )
        assert done["user"]["email"] == "bo@example.com"
        assert accounts.user_for_session(db, signed.token, SystemClock()) is None
        again = accounts.sign_in(
            db, "northside", "bo@example.com", "an entirely new pass phrase", client=None, clock=SystemClock()
        )
        assert again.user.email == "bo@example.com"
        with pytest.raises(Exception, match="not right"):
            accounts.sign_in(db, "northside", "bo@example.com", PASSWORD, client=None, clock=SystemClock())
    finally:
        db.dispose()
    short = users("set-password", "-w", "northside", "--email", "bo@example.com", stdin="short\n", ok=False)
    assert_one_error_line(short, says="at least 12 characters")
    unknown = users("set-password", "-w", "northside", "--email", "x@example.com", stdin=PASSWORD + "\n", ok=False)
    assert_one_error_line(unknown, says="no user 'x@example.com'")
