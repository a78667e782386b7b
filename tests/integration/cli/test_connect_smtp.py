"""`signalbox connect smtp` and `signalbox email suppress`: the configuration is stored with its
secrets sealed and shown by fingerprint; every bad input is one clear error line."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import text
from typer.testing import CliRunner

from signalbox.cli.main import app
from signalbox.core.db import Database
from signalbox.core.secretbox import fingerprint
from tests.factories import jrun, make_settings
from tests.integration.cli.test_failures import assert_one_error_line

PASSWORD = "smtp-password-for-tests-0132"
BASE = ["--host", "smtp.example.com", "--port", "587", "--starttls", "--from", "Northside <news@example.com>"]
URL = ["--public-base-url", "https://crm.example.com/"]


def _pem(key, fmt) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def ws_name(cli):
    return jrun(cli, "workspace", "create", "northside")["name"]


def test_connect_show_and_reconnect(cli, ws_name, database_url, tmp_path, rsa_key):
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(_pem(rsa_key, serialization.PrivateFormat.PKCS8))
    doc = jrun(
        cli,
        "connect",
        "smtp",
        "-w",
        ws_name,
        *BASE,
        *URL,
        "--username",
        "apikey",
        "--password",
        PASSWORD,
        "--dkim-key",
        str(key_file),
        "--dkim-selector",
        "s2026",
    )["smtp"]
    assert doc["host"] == "smtp.example.com" and doc["port"] == 587 and doc["starttls"] is True
    assert doc["from"] == "news@example.com" and doc["from_name"] == "Northside"
    assert doc["password_fingerprint"] == fingerprint(PASSWORD) and doc["usable"] is True
    assert doc["public_base_url"] == "https://crm.example.com"
    assert doc["dkim"]["domain"] == "example.com" and doc["dkim"]["dns_name"] == "s2026._domainkey.example.com"
    assert doc["dkim"]["dns_txt"].startswith("v=DKIM1; k=rsa; p=") and doc["dkim"]["bits"] == 2048
    # Shown again without options; the password never appears, nor is it stored in the clear.
    shown = cli("connect", "smtp", "-w", ws_name, "--json")
    assert PASSWORD not in shown.stdout and jrun(cli, "connect", "smtp", "-w", ws_name)["smtp"]["host"]
    text_out = cli("connect", "smtp", "-w", ws_name)
    assert "news@example.com via smtp.example.com:587 starttls" in text_out.stdout and PASSWORD not in text_out.stdout
    db = Database(make_settings(database_url))
    try:
        with db.session() as session:
            stored = str(session.execute(text("SELECT settings FROM workspaces")).scalar_one())
    finally:
        db.dispose()
    assert PASSWORD not in stored and "PRIVATE KEY" not in stored
    # A PKCS#1 key and a password from stdin; the public URL already stored is kept.
    key_file.write_bytes(_pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL))
    args = ["connect", "smtp", "-w", ws_name, *BASE, "--username", "apikey", "--password", "-", "--json"]
    args += ["--dkim-key", str(key_file), "--dkim-selector", "s2027"]
    result = CliRunner().invoke(
        app,
        args,
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert fingerprint(PASSWORD) in result.stdout and PASSWORD not in result.stdout
    assert jrun(cli, "connect", "smtp", "-w", ws_name)["smtp"]["public_base_url"] == "https://crm.example.com"


def test_nothing_connected(cli, ws_name):
    assert jrun(cli, "connect", "smtp", "-w", ws_name) == {"workspace": "northside", "smtp": None}
    assert "no SMTP server connected" in cli("connect", "smtp", "-w", ws_name).stderr


def test_http_base_url_is_accepted_with_a_warning(cli, ws_name):
    result = cli("connect", "smtp", "-w", ws_name, *BASE, "--public-base-url", "http://127.0.0.1:8000", "--json")
    assert "warning:" in result.stderr and "https://" in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--host", "smtp.example.com", "--port", "0", "--from", "a@example.com", *URL], "--port 0 is not a TCP port"),
        (["--host", "smtp.example.com", "--port", "70000", "--from", "a@example.com", *URL], "is not a TCP port"),
        (["--host", "smtp.example.com", "--from", "not an address", *URL], "--from 'not an address' is not"),
        (["--host", "smtp.example.com", "--from", "a@", *URL], "--from 'a@' is not"),
        (["--host", "smtp.example.com", *URL], "--from is required"),
        (["--host", "bad host!", "--from", "a@example.com", *URL], "--host 'bad host!'"),
        (["--host", "smtp.example.com", "--from", "a@example.com"], "give --public-base-url"),
        ([*BASE, "--public-base-url", "ftp://x.example.com"], "must be an absolute https:// URL"),
        ([*BASE, *URL, "--password", "x"], "--password needs --username"),
        ([*BASE, *URL, "--username", "u", "--password", ""], "--password is empty"),
        ([*BASE, *URL, "--dkim-selector", "s1"], "--dkim-key and --dkim-selector go together"),
        ([*BASE, *URL, "--dkim-key", "/nonexistent/dkim.pem", "--dkim-selector", "s1"], "cannot read it"),
        (["--username", "u"], "--host is required"),
    ],
)
def test_bad_input_is_one_clear_error_line(cli, ws_name, args, says):
    assert_one_error_line(cli("connect", "smtp", "-w", ws_name, *args, ok=False), says=says)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"hello, not a key", "not a PEM file"),
        (b"-----BEGIN PRIVATE KEY-----\nnotbase64!!\n-----END PRIVATE KEY-----\n", "not a readable PEM private key"),
        ("ec", "needs an RSA key"),
    ],
)
def test_bad_dkim_keys(cli, ws_name, tmp_path, content, says):
    if content == "ec":
        content = _pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8)
    path = tmp_path / "key.pem"
    path.write_bytes(content)
    result = cli(
        "connect", "smtp", "-w", ws_name, *BASE, *URL, "--dkim-key", str(path), "--dkim-selector", "s1", ok=False
    )
    assert_one_error_line(result, says=says)


def test_email_suppress(cli, ws_name, tmp_path):
    batch = tmp_path / "people.jsonl"
    batch.write_text('{"type": "identify", "userId": "m-1", "traits": {"email": "pat@example.com"}}\n')
    cli("import", "events", str(batch), "-w", ws_name)
    doc = jrun(cli, "email", "suppress", "-w", ws_name, "--address", "Pat@Example.com", "--reason", "complaint")
    assert doc["reason"] == "complaint" and len(doc["profiles"]) == 1
    consent = jrun(cli, "profile", "show", "-w", ws_name, "-u", "m-1")["consent"]["email"]
    assert consent["status"] == "revoked" and consent["source"] == "email_complaint" and consent["purpose"] == "all"
    for args, says in (
        (["--address", "nobody@example.com", "--reason", "bounce"], "no profile in this workspace has"),
        (["--address", "pat@example.com", "--reason", "soft"], "reason 'soft' is not one of bounce, complaint"),
        (["--address", "not-an-address", "--reason", "bounce"], "is not an e-mail address"),
    ):
        assert_one_error_line(cli("email", "suppress", "-w", ws_name, *args, ok=False), says=says)
