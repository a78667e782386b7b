"""`signalbox connect twilio` and `workspace update --public-base-url`: add, show by
fingerprint, change, disconnect; the auth token is never printed nor stored in the clear;
bad input is one clear error line."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from signalbox.cli.main import app
from signalbox.core.db import Database
from signalbox.core.secretbox import fingerprint
from tests import twilio_factory as tf
from tests.factories import jrun, make_settings
from tests.integration.cli.test_failures import assert_one_error_line

FULL = [
    "--account-sid",
    tf.ACCOUNT_SID,
    "--auth-token",
    tf.AUTH_TOKEN,
    "--from-number",
    tf.FROM,
    "--public-base-url",
    "https://sb.example.com/",
]


@pytest.fixture
def ws_name(cli):
    return jrun(cli, "workspace", "create", "northside")["name"]


def test_connect_show_change_disconnect(cli, ws_name):
    doc = jrun(cli, "connect", "twilio", "-w", ws_name, *FULL)
    assert doc["connected"] is True and doc["changed"] is True
    assert doc["account_sid"] == tf.ACCOUNT_SID and doc["from_number"] == tf.FROM
    assert doc["auth_token_fingerprint"] == fingerprint(tf.AUTH_TOKEN) and doc["auth_token_usable"] is True
    assert doc["public_base_url"] == "https://sb.example.com"
    assert doc["sms_url"] == "https://sb.example.com/webhooks/twilio/northside/sms"
    assert doc["status_callback_url"] == "https://sb.example.com/webhooks/twilio/northside/status"
    assert doc["api_base_url"] is None and doc["stop_reply"] is None
    shown = jrun(cli, "connect", "twilio", "-w", ws_name)
    assert shown["changed"] is False and shown["auth_token_fingerprint"] == fingerprint(tf.AUTH_TOKEN)
    changed = jrun(
        cli,
        "connect",
        "twilio",
        "-w",
        ws_name,
        "--api-base-url",
        "http://127.0.0.1:9/",
        "--stop-reply",
        "Unsubscribed.",
        "--help-text",
        "Call us",
    )
    assert (changed["api_base_url"], changed["stop_reply"], changed["help_text"]) == (
        "http://127.0.0.1:9",
        "Unsubscribed.",
        "Call us",
    )
    assert changed["account_sid"] == tf.ACCOUNT_SID  # kept
    # The same setting as `workspace update --public-base-url`.
    updated = jrun(cli, "workspace", "update", ws_name, "--public-base-url", "https://texts.example.org")
    assert updated["public_base_url"] == "https://texts.example.org"
    assert jrun(cli, "connect", "twilio", "-w", ws_name)["sms_url"].startswith("https://texts.example.org/")
    gone = jrun(cli, "connect", "twilio", "-w", ws_name, "--disconnect")
    assert gone["connected"] is False
    text_out = cli("connect", "twilio", "-w", ws_name)
    assert "no Twilio connection" in text_out.stderr


def test_http_base_is_accepted_with_a_warning(cli, ws_name):
    result = cli("connect", "twilio", "-w", ws_name, *FULL[:-1], "http://abc.ngrok.example.com", "--json")
    assert "warning:" in result.stderr and "http://" in result.stderr
    update = cli("workspace", "update", ws_name, "--public-base-url", "http://tunnel.example.com", "--json")
    assert "warning:" in update.stderr


def test_the_token_is_never_shown_nor_stored_in_the_clear(cli, ws_name, database_url):
    outputs = [
        cli("connect", "twilio", "-w", ws_name, *FULL, "--json"),
        cli("connect", "twilio", "-w", ws_name, "--json"),
        cli("connect", "twilio", "-w", ws_name),
    ]
    for result in outputs:
        assert tf.AUTH_TOKEN not in result.stdout and tf.AUTH_TOKEN not in result.stderr
    db = Database(make_settings(database_url))
    try:
        with db.session() as session:
            (sealed,) = session.execute(text("SELECT sealed_auth_token FROM twilio_connections")).scalars()
    finally:
        db.dispose()
    assert tf.AUTH_TOKEN not in sealed


def test_token_from_stdin(cli, ws_name):
    args = ["connect", "twilio", "-w", ws_name, *FULL, "--json"]
    args[args.index(tf.AUTH_TOKEN)] = "-"
    result = CliRunner().invoke(app, args, input=tf.AUTH_TOKEN + "\n")
    assert result.exit_code == 0, result.output
    assert fingerprint(tf.AUTH_TOKEN) in result.stdout and tf.AUTH_TOKEN not in result.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--account-sid", "AC123"], "--account-sid must be AC followed by 32 hex digits"),
        (["--account-sid", tf.ACCOUNT_SID], "connecting Twilio needs --auth-token, --from-number"),
        (["--auth-token", "SK" + "0" * 32], "looks like an API key SID"),
        (["--auth-token", "short"], "--auth-token must be the account's auth token"),
        (["--from-number", "not a number"], "--from-number 'not a number' is not a phone number"),
        (["--public-base-url", "ftp://example.com"], "--public-base-url must be an http(s) URL"),
        (["--public-base-url", "https://example.com/?a=1"], "takes no query"),
        (["--api-base-url", "nope"], "--api-base-url must be an http(s) URL"),
        (["--disconnect"], "no Twilio connection"),
    ],
)
def test_bad_input_is_one_clear_error_line(cli, ws_name, args, says):
    assert_one_error_line(cli("connect", "twilio", "-w", ws_name, *args, ok=False), says=says)


def test_unknown_workspace(cli):
    result = cli("connect", "twilio", "-w", "nowhere", *FULL, ok=False)
    assert_one_error_line(result, says="no workspace named or with id 'nowhere'")


def test_outbox_list_shows_provider_and_status(cli, ws_name):
    assert jrun(cli, "outbox", "list", "-w", ws_name) == []
    assert jrun(cli, "outbox", "list", "-w", ws_name, "--provider", "twilio") == []
