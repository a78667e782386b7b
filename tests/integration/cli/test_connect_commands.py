"""`signalbox connect stripe`: add, list by fingerprint, rotate, remove; the secret itself is
never printed and never stored in the clear; bad input is one clear error line."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from signalbox.cli.main import app
from signalbox.core.db import Database
from signalbox.core.secretbox import fingerprint
from tests import stripe_factory as sf
from tests.factories import jrun, make_settings
from tests.integration.cli.test_failures import assert_one_error_line


@pytest.fixture
def ws_name(cli):
    return jrun(cli, "workspace", "create", "northside")["name"]


def test_add_list_rotate_remove(cli, ws_name, database_url):
    doc = jrun(cli, "connect", "stripe", "-w", ws_name, "--signing-secret", sf.SECRET)
    assert doc["added"] == fingerprint(sf.SECRET) and doc["webhook_path"] == "/webhooks/stripe/northside"
    assert [s["fingerprint"] for s in doc["signing_secrets"]] == [fingerprint(sf.SECRET)]
    assert doc["signing_secrets"][0]["usable"] is True
    # Rotation: the new one joins, both are accepted, then the old one goes.
    doc = jrun(cli, "connect", "stripe", "-w", ws_name, "--signing-secret", sf.OTHER_SECRET)
    assert len(doc["signing_secrets"]) == 2
    doc = jrun(cli, "connect", "stripe", "-w", ws_name, "--remove-signing-secret", sf.SECRET)
    assert doc["removed"] == fingerprint(sf.SECRET)
    assert [s["fingerprint"] for s in doc["signing_secrets"]] == [fingerprint(sf.OTHER_SECRET)]
    # Listing alone; removal by fingerprint (for a secret nobody kept).
    listed = jrun(cli, "connect", "stripe", "-w", ws_name)
    assert listed["added"] is None and len(listed["signing_secrets"]) == 1
    result = cli("connect", "stripe", "-w", ws_name, "--remove-signing-secret", fingerprint(sf.OTHER_SECRET), "--json")
    assert "no signing secret is left" in result.stderr
    # Adding the same secret twice is not an error and keeps one row.
    jrun(cli, "connect", "stripe", "-w", ws_name, "--signing-secret", sf.SECRET)
    again = cli("connect", "stripe", "-w", ws_name, "--signing-secret", sf.SECRET, "--json")
    assert (
        "already accepted" in again.stderr
        and len(jrun(cli, "connect", "stripe", "-w", ws_name)["signing_secrets"]) == 1
    )
    text_out = cli("connect", "stripe", "-w", ws_name)
    assert fingerprint(sf.SECRET) in text_out.stdout


def test_the_secret_is_never_shown_nor_stored_in_the_clear(cli, ws_name, database_url):
    outputs = [
        cli("connect", "stripe", "-w", ws_name, "--signing-secret", sf.SECRET, "--json"),
        cli("connect", "stripe", "-w", ws_name, "--json"),
        cli("connect", "stripe", "-w", ws_name),
    ]
    for result in outputs:
        assert sf.SECRET not in result.stdout and sf.SECRET not in result.stderr
    db = Database(make_settings(database_url))
    try:
        with db.session() as session:
            (sealed,) = session.execute(text("SELECT sealed FROM stripe_signing_secrets")).scalars()
    finally:
        db.dispose()
    assert sf.SECRET not in sealed and sf.SECRET.removeprefix("whsec_") not in sealed


def test_secret_from_stdin(cli, ws_name):
    result = CliRunner().invoke(
        app, ["connect", "stripe", "-w", ws_name, "--signing-secret", "-", "--json"], input=sf.SECRET + "\n"
    )
    assert result.exit_code == 0, result.output
    assert fingerprint(sf.SECRET) in result.stdout and sf.SECRET not in result.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--signing-secret", "sk_test_51abcdefghijklmnop"], "API key, not a webhook signing secret"),
        (["--signing-secret", "not-a-secret"], "starts with whsec_"),
        (["--signing-secret", "whsec_short"], "starts with whsec_"),
        (["--signing-secret", "whsec_has spaces in it"], "no spaces"),
        (["--signing-secret", ""], "--signing-secret is empty"),
        (["--remove-signing-secret", "sha256:0000000000000000"], "no Stripe signing secret with fingerprint"),
        (["--remove-signing-secret", sf.OTHER_SECRET], "no Stripe signing secret with fingerprint"),
    ],
)
def test_bad_input_is_one_clear_error_line(cli, ws_name, args, says):
    assert_one_error_line(cli("connect", "stripe", "-w", ws_name, *args, ok=False), says=says)


def test_unknown_workspace(cli):
    result = cli("connect", "stripe", "-w", "nowhere", "--signing-secret", sf.SECRET, ok=False)
    assert_one_error_line(result, says="no workspace named or with id 'nowhere'")


def test_a_changed_secret_key_marks_secrets_unreadable(cli, ws_name, monkeypatch):
    jrun(cli, "connect", "stripe", "-w", ws_name, "--signing-secret", sf.SECRET)
    from signalbox.core.settings import get_settings

    monkeypatch.setenv("SIGNALBOX_SECRET_KEY", "another-key-another-key-another-key-0123")
    get_settings.cache_clear()
    (listed,) = jrun(cli, "connect", "stripe", "-w", ws_name)["signing_secrets"]
    assert listed["usable"] is False


def test_production_without_a_secret_key_is_one_clear_error(cli, ws_name, monkeypatch):
    from signalbox.core.settings import get_settings

    monkeypatch.setenv("SIGNALBOX_ENVIRONMENT", "production")
    get_settings.cache_clear()
    result = cli("connect", "stripe", "-w", ws_name, "--signing-secret", sf.SECRET, ok=False)
    assert_one_error_line(result, says="SIGNALBOX_SECRET_KEY must be set")
