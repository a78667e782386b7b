"""E-mail through a real SMTP server (aiosmtpd on loopback), sent by the engine, on both
databases: headers, DKIM verified with dkimpy, the one-click unsubscribe round trip over HTTP,
transactional mail without List-Unsubscribe, routing, refusals and a lost answer."""

from __future__ import annotations

import re
import socket
import threading
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.utils import parsedate_to_datetime

import dkim
import httpx
import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from signalbox.channels import service as channels
from signalbox.channels.models import Send
from signalbox.channels.smtp import message_id
from signalbox.connectors import smtp as smtp_connector
from signalbox.consent import service as consent
from signalbox.consent import unsubscribe
from signalbox.core.clock import FixedClock
from signalbox.identity import service as identity
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.journeys import triggers
from signalbox.journeys.models import Decision
from signalbox.journeys.worker import Worker
from signalbox.workspaces import service as workspaces
from tests.factories import identify, track
from tests.integration.journeys.test_apply import TEMPLATES
from tests.unit.journeys.test_spec import GOOD

START = datetime(2026, 1, 13, 15, 0, tzinfo=UTC)
NEWSLETTER = """\
playbook: newsletter
name: Newsletter
purpose: marketing
trigger: {event: newsletter_due}
entry: {reentry: every_time}
holdout: 0%
steps:
  - id: news
    send: {channel: email, template: news-1}
"""
NEWS_TEMPLATE = (
    "template: news-1\nchannel: email\nsubject: Spring classes\nbody: Hi {{ profile.user_id }}, new classes.\n"
)
TRANSACTIONAL = GOOD.replace("holdout: 10%", "holdout: 0%")


class Inbox:
    """aiosmtpd handler: keeps every accepted message; refuses recipients at refused.example.com."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@refused.example.com"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 queued"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


@pytest.fixture
def clock():
    return FixedClock(START)


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


@pytest.fixture
def ws(db, workspace):
    return workspaces.get_workspace(db, workspace.id)


def connect(db, settings, ws, port, clock, *, dkim_path=None, base_url="https://crm.example.com"):
    key = smtp_connector.read_dkim_key(str(dkim_path)) if dkim_path else None
    smtp_connector.connect(
        db,
        settings,
        ws.id,
        host="127.0.0.1",
        port=port,
        starttls=False,
        username=None,
        password=None,
        from_value="Northside Studio <news@example.com>",
        dkim_key=key,
        dkim_selector="s1" if key else None,
        now=clock.now(),
    )
    workspaces.set_public_base_url(db, ws.id, base_url)


@pytest.fixture
def world(db, settings, ws, clock):
    templates = [*TEMPLATES.items(), ("news-1.yaml", NEWS_TEMPLATE)]
    journeys.apply(db, ws.id, "template", templates, clock.now())
    journeys.apply(db, ws.id, "playbook", [("news.yaml", NEWSLETTER), ("fpr.yaml", TRANSACTIONAL)], clock.now())
    pipeline = Pipeline(db, settings, clock)
    worker = Worker(
        db, settings, clock, stale_every_seconds=1e9, email=smtp_connector.email_sender(db, settings, clock)
    )

    class World:
        def send(self, *messages):
            result = pipeline.ingest(ws, BatchInput([{**m, "timestamp": clock.now().isoformat()} for m in messages]))
            assert not result.rejected, result.rejected

        def run(self):
            return worker.drain()

        def decisions(self, playbook=None):
            with db.session() as session:
                rows = session.query(Decision).filter_by(workspace_id=ws.id).order_by(Decision.id)
                return [(d.step_id, d.outcome, d.reason) for d in rows if playbook in (None, d.playbook_key)]

        def consent(self, user_id):
            return identity.profile_document(db, ws.id, user_id).consent["email"]

    w = World()
    w.send(identify("m-1", email="pat@example.com", email_subscribe="opted_in"))
    return w


def _dns(domain, selector, public_b64):
    def lookup(name, timeout=5):
        assert name == f"{selector}._domainkey.{domain}.".encode()
        return f"v=DKIM1; k=rsa; p={public_b64}".encode()

    return lookup


def test_marketing_email_over_smtp_signed_with_one_click_round_trip(
    world, db, settings, ws, clock, smtp_server, dkim_key, clocked_server
):
    connect(db, settings, ws, smtp_server.port, clock, dkim_path=dkim_key, base_url=clocked_server.url)
    world.send(track("newsletter_due", "m-1"))
    world.run()
    ((mail_from, rcpt, raw),) = smtp_server.messages
    assert mail_from == "news@example.com" and rcpt == ["pat@example.com"]
    msg = message_from_bytes(raw)
    assert msg["From"] == "Northside Studio <news@example.com>" and msg["To"] == "pat@example.com"
    assert msg["Subject"] == "Spring classes"
    assert parsedate_to_datetime(msg["Date"]) == START
    (send,) = channels.list_sends(db, ws.id)
    assert send.status == "sent"
    assert msg["Message-ID"] == message_id(ws.id, send.idempotency_key, "example.com")
    # RFC 8058: an https (here the test server's) link and a mailto, and the one-click marker.
    unsub = msg["List-Unsubscribe"]
    found = re.fullmatch(
        r"<(http://127\.0\.0\.1:\d+/u/([A-Za-z0-9_.-]+))>, <mailto:unsubscribe@example\.com\?subject=\2>", unsub
    )
    assert found, unsub
    link, token = found.group(1), found.group(2)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # DKIM: d= the From domain, the headers that matter signed, and the signature verifies.
    signature = msg["DKIM-Signature"]
    assert "d=example.com" in signature and "s=s1" in signature
    signed = {
        h.strip().lower()
        for h in re.search(r"h=([^;]+)", signature.replace("\r\n", "").replace(" ", "")).group(1).split(":")
    }
    assert {"from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"} <= signed
    public = smtp_connector.describe(db, settings, ws.id)["dkim"]["dns_txt"].split("p=")[1]
    assert dkim.verify(raw, dnsfunc=_dns("example.com", "s1", public))
    # The call is in the outbox like a sandbox call.
    (item,) = channels.list_outbox(db, ws.id)
    assert item.idempotency_key == send.idempotency_key and item.to == "pat@example.com"

    # GET shows a page whose button POSTs, and changes nothing.
    page = httpx.get(link)
    assert page.status_code == 200 and 'method="post"' in page.text and "One-Click" in page.text
    assert world.consent("m-1")["status"] == "granted"
    # The provider's one-click POST, no cookies: revoked with provenance.
    done = httpx.post(
        link,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200, done.text
    state = world.consent("m-1")
    assert state["status"] == "revoked" and state["purpose"] == "marketing"
    assert state["source"] == "one_click_unsubscribe"
    root = identity.profile_document(db, ws.id, "m-1").id
    with db.session() as session:
        (latest, *_) = consent.history(session, ws.id, [root])
    assert latest.evidence["idempotency_key"] == send.idempotency_key
    # Again (a second click, multipart this time): still 200, nothing new written.
    again = httpx.post(link, files={"List-Unsubscribe": (None, "One-Click")})
    assert again.status_code == 200
    with db.session() as session:
        assert len(consent.history(session, ws.id, [root])) == 2  # the grant and one revocation
    # The next marketing send to that person is suppressed; nothing reaches the server.
    world.send(track("newsletter_due", "m-1"))
    world.run()
    assert world.decisions("newsletter")[-1] == ("news", "suppressed", "no_consent")
    assert len(smtp_server.messages) == 1
    assert unsubscribe.read(settings.secret_key, token, clock.now()).idempotency_key == send.idempotency_key


def test_transactional_email_has_no_unsubscribe_headers(world, db, settings, ws, clock, smtp_server):
    connect(db, settings, ws, smtp_server.port, clock)
    world.send(track("payment_failed", "m-1", invoice_id="in_1", amount=49))
    world.run()
    ((_, _, raw),) = smtp_server.messages
    msg = message_from_bytes(raw)
    assert msg["Subject"] == "Your payment"
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    assert msg["DKIM-Signature"] is None  # no key connected
    assert ("email-now", "sent", None) in world.decisions()


def test_unconnected_workspace_goes_to_the_sandbox(world, db, ws, smtp_server):
    world.send(track("newsletter_due", "m-1"))
    world.run()
    assert smtp_server.messages == []
    (item,) = channels.list_outbox(db, ws.id)
    assert item.subject == "Spring classes"
    assert world.decisions("newsletter") == [("news", "sent", None)]


def test_a_refused_recipient_is_failed_not_resent(world, db, settings, ws, clock, smtp_server):
    connect(db, settings, ws, smtp_server.port, clock)
    world.send(identify("m-2", email="gone@refused.example.com", email_subscribe="opted_in"))
    world.send(track("newsletter_due", "m-2"))
    world.run()
    assert smtp_server.messages == []
    assert world.decisions("newsletter") == [("news", "failed", "provider_refused")]
    (send,) = channels.list_sends(db, ws.id)
    assert send.status == "failed"
    assert len(channels.list_outbox(db, ws.id)) == 1  # the call is listed all the same
    with db.session() as session:
        assert session.scalar(select(Send.error).where(Send.workspace_id == ws.id)).startswith("RCPT TO 550")


def test_marketing_without_a_public_base_url_is_not_sent(world, db, settings, ws, clock, smtp_server):
    connect(db, settings, ws, smtp_server.port, clock)
    workspaces.put_setting(db, ws.id, "public", {})  # removed behind the CLI's back
    world.send(track("newsletter_due", "m-1"), track("payment_failed", "m-1", invoice_id="in_1", amount=49))
    world.run()
    assert world.decisions("newsletter") == [("news", "failed", "provider_refused")]
    ((_, _, raw),) = smtp_server.messages  # the receipt still goes
    assert message_from_bytes(raw)["Subject"] == "Your payment"


class DropsDuringData:
    """A bare SMTP server that reads the whole message, then hangs up without answering."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as lines:
                conn.sendall(b"220 test\r\n")
                for line in lines:
                    word = line[:4].upper()
                    if word in (b"EHLO", b"HELO"):
                        conn.sendall(b"250 test\r\n")
                    elif word in (b"MAIL", b"RCPT"):
                        conn.sendall(b"250 OK\r\n")
                    elif word == b"DATA":
                        conn.sendall(b"354 go on\r\n")
                    elif line == b".\r\n":
                        self.received += 1
                        break  # hang up: the answer to the message never comes

    def close(self) -> None:
        self.sock.close()


def test_an_answer_lost_during_data_is_unknown_and_never_resent(world, db, settings, ws, clock):
    server = DropsDuringData()
    try:
        connect(db, settings, ws, server.port, clock)
        world.send(track("newsletter_due", "m-1"))
        world.run()
        assert server.received == 1
        assert world.decisions("newsletter") == [("news", "failed", "unknown_delivery")]
        (send,) = channels.list_sends(db, ws.id)
        assert send.status == "unknown"
        sender = smtp_connector.email_sender(db, settings, clock)
        assert sender.lookup(ws.id, send.idempotency_key).status == "unknown"
        assert sender.lookup(ws.id, "never:sent") is None
        world.run()
        assert server.received == 1
    finally:
        server.close()


@pytest.mark.parametrize(
    ("call", "mark", "decision", "status", "delivered"),
    [
        # died after the outbox row, before any answer: unknown, never resent
        (True, {}, ("news", "failed", "unknown_delivery"), "unknown", 0),
        # died after the server accepted and the mark, before the step committed
        (True, {"provider_id": "smtp:<x@example.com>"}, ("news", "sent", "reconciled"), "sent", 0),
        # died after a refusal was marked
        (True, {"error": "refused: RCPT TO 550"}, ("news", "failed", "provider_refused"), "failed", 0),
        # died after the ledger row, before the call: sent now, the first and only time
        (False, {}, ("news", "sent", None), "sent", 1),
    ],
)
def test_reconcile_after_a_crash_asks_the_outbox_and_the_mark(
    world, db, settings, ws, clock, smtp_server, call, mark, decision, status, delivered
):
    connect(db, settings, ws, smtp_server.port, clock)
    world.send(track("newsletter_due", "m-1"))
    triggers.process(db, ws, clock.now())  # enrolled, its step not run yet
    (enr,) = journeys.list_enrollments(db, ws.id, playbook="newsletter")
    key = f"{enr.id}:news"
    root = identity.profile_document(db, ws.id, "m-1").id
    channels.begin_send(
        db,
        ws.id,
        idempotency_key=key,
        profile_id=root,
        user_id="m-1",
        playbook="newsletter",
        step_id="news",
        channel="email",
        purpose="marketing",
        to="pat@example.com",
        now=clock.now(),
    )
    if call:
        row = channels.begin_call(
            db, ws.id, key, "email", "pat@example.com", "Hi", "smtp", clock.now(), subject="Spring classes"
        )
        if mark:
            answer = "accepted" if "provider_id" in mark else "refused"
            channels.finish_call(db, row, clock.now(), answer, **mark)
    world.run()
    assert len(smtp_server.messages) == delivered
    assert world.decisions("newsletter") == [decision]
    (send,) = channels.list_sends(db, ws.id)
    assert send.status == status


def test_tokens_expire_and_resist_tampering(settings, clock):
    token = unsubscribe.issue(settings.secret_key, "ws_1", "pr_1", "email", "e1:news", clock.now())
    assert unsubscribe.read(settings.secret_key, token, clock.now()).profile_id == "pr_1"
    with pytest.raises(unsubscribe.BadUnsubscribeToken, match="expired"):
        unsubscribe.read(settings.secret_key, token, clock.now() + timedelta(days=61))
    payload, mac = token.split(".")
    other = unsubscribe.issue(settings.secret_key, "ws_1", "pr_2", "email", "e1:news", clock.now()).split(".")[0]
    for bad in (f"{other}.{mac}", f"{payload}.{mac[:-2]}AA", "", "abc", "a.b.c", token + "x"):
        with pytest.raises(unsubscribe.BadUnsubscribeToken):
            unsubscribe.read(settings.secret_key, bad, clock.now())
    with pytest.raises(unsubscribe.BadUnsubscribeToken, match="not valid"):
        unsubscribe.read("another-secret-key-of-enough-length", token, clock.now())


def test_bad_tokens_answer_400_never_5xx(clocked_server, db, ws, settings, clock):
    good = unsubscribe.issue(settings.secret_key, ws.id, "pr_1", "email", "e1:news", clock.now())
    expired = unsubscribe.issue(
        settings.secret_key, ws.id, "pr_1", "email", "e1:news", clock.now() - timedelta(days=61)
    )
    unknown_ws = unsubscribe.issue(settings.secret_key, "ws_gone", "pr_1", "email", "e1:news", clock.now())
    body = {"content": b"List-Unsubscribe=One-Click", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}
    for token, words in (
        (good[:-3] + "xyz", "not valid"),
        (expired, "expired"),
        ("nonsense", "malformed"),
        ("%00%ff.%ff", "malformed"),
        (unknown_ws, "no longer exists"),
    ):
        for response in (
            httpx.get(f"{clocked_server.url}/u/{token}"),
            httpx.post(f"{clocked_server.url}/u/{token}", **body),
        ):
            assert response.status_code == 400, (token, response.status_code, response.text)
            assert words in response.text
    # A POST without the RFC 8058 body is refused, and revokes nothing.
    for content in (b"", b"List-Unsubscribe=Yes", b"\xff\xfe", b"a=" + b"x" * 20_000):
        refused = httpx.post(f"{clocked_server.url}/u/{good}", content=content)
        assert (refused.status_code == 400 and "List-Unsubscribe" in refused.text) or "over" in refused.text
    garbled = httpx.post(
        f"{clocked_server.url}/u/{good}",
        content=b"--x\r\nbroken",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert garbled.status_code == 400


def test_suppress_after_a_bounce_revokes_all_email(world, db, ws, clock):
    profiles = smtp_connector.suppress(db, ws.id, " Pat@Example.com ", "bounce", clock.now())
    state = world.consent("m-1")
    assert state["status"] == "revoked" and state["purpose"] == "all" and state["source"] == "email_bounce"
    assert profiles == [identity.profile_document(db, ws.id, "m-1").id]
    world.send(track("payment_failed", "m-1", invoice_id="in_1", amount=49))  # a receipt too
    world.run()
    assert ("email-now", "suppressed", "no_consent") in world.decisions()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_with_the_sealed_password_and_a_wrong_one_refused(world, db, settings, ws, clock, monkeypatch):
    from aiosmtpd.smtp import AuthResult

    # aiosmtpd answers a failed AUTH late; the client gives up (refused: nothing was sent) sooner.
    monkeypatch.setattr("signalbox.channels.smtp.TIMEOUT_SECONDS", 2.0)

    inbox, logins = Inbox(), []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"right-password-0132")

    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=_free_port(),
        auth_required=True,
        auth_require_tls=False,
        authenticator=authenticator,
    )
    controller.start()
    try:
        for password in ("wrong-password-0132", "right-password-0132"):
            smtp_connector.connect(
                db,
                settings,
                ws.id,
                host="127.0.0.1",
                port=controller.port,
                starttls=False,
                username="apikey",
                password=password,
                from_value="news@example.com",
                dkim_key=None,
                dkim_selector=None,
                now=clock.now(),
            )
            workspaces.set_public_base_url(db, ws.id, "https://crm.example.com")
            clock.set(clock.now() + timedelta(seconds=10))  # past the sender's configuration cache
            world.send(track("newsletter_due", "m-1"))
            world.run()
    finally:
        controller.stop()
    assert [p for _, p in logins] == [b"wrong-password-0132", b"right-password-0132"]
    assert world.decisions("newsletter") == [("news", "failed", "provider_refused"), ("news", "sent", None)]
    assert len(inbox.messages) == 1


def _self_signed(tmp_path):
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_starttls_is_used_when_asked_and_the_certificate_checked(world, db, settings, ws, clock, tmp_path, monkeypatch):
    import ssl

    cert_path, key_path = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_path, key_path)
    inbox = Inbox()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=_free_port(), tls_context=server_tls, require_starttls=True
    )
    controller.start()
    try:
        smtp_connector.connect(
            db,
            settings,
            ws.id,
            host="127.0.0.1",
            port=controller.port,
            starttls=True,
            username=None,
            password=None,
            from_value="news@example.com",
            dkim_key=None,
            dkim_selector=None,
            now=clock.now(),
        )
        workspaces.set_public_base_url(db, ws.id, "https://crm.example.com")
        # Not trusted yet: the TLS handshake fails before anything is sent (refused, not unknown).
        world.send(track("newsletter_due", "m-1"))
        world.run()
        assert inbox.messages == []
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))  # the test CA, as the system's trust store
        world.send(track("newsletter_due", "m-1"))
        world.run()
    finally:
        controller.stop()
    assert world.decisions("newsletter") == [("news", "failed", "provider_refused"), ("news", "sent", None)]
    assert len(inbox.messages) == 1
