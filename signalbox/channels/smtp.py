"""E-mail through an SMTP server (the stdlib's smtplib), and the router that picks it per workspace.

One send: (1) the message is built with a Message-ID derived from the workspace and the send's
idempotency key (a resend after a crash is recognisably the same message), a Date header and,
on marketing messages, List-Unsubscribe + List-Unsubscribe-Post (RFC 8058); (2) it is signed
with DKIM when a key is configured; (3) the call is recorded in the outbox, committed; (4) the
SMTP conversation (STARTTLS and AUTH when configured); (5) the server's answer is marked on the
send's ledger row. `lookup` reads (3) and (5): no outbox row, no call; a row with no answer
is `unknown` and must never be sent again blindly.
"""

from __future__ import annotations

import contextlib
import hashlib
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from urllib.parse import quote

import dkim

from signalbox.channels import service as channels
from signalbox.channels.schemas import Delivery, Email, EmailSender, OutboxItem
from signalbox.core.clock import Clock
from signalbox.core.db import Database
from signalbox.core.logging import get_logger

log = get_logger("channels.smtp")
TIMEOUT_SECONDS = 30.0
PROVIDER = "smtp"  # the outbox's provider for these calls
PROVIDER_PREFIX = "smtp:"
REFUSED_PREFIX = "refused: "
# What the DKIM signature covers (RFC 6376 §5.4 recommends From, To, Subject, Date,
# Message-ID; the unsubscribe headers are signed so that nobody on the way can change them).
SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)


# CRLF on the wire; lines up to RFC 5322's 998 characters, so a List-Unsubscribe header (one
# long token, nowhere to fold) stays plain text instead of being RFC 2047-encoded.
_POLICY = email_policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    starttls: bool
    username: str | None
    password: str | None
    from_address: str  # the bare address: MAIL FROM, and the DKIM d= domain
    public_base_url: str | None  # https://… where /u/{token} answers
    from_name: str | None = None
    dkim_selector: str | None = None
    dkim_key_pem: bytes | None = None  # PKCS#1 PEM

    @property
    def domain(self) -> str:
        return self.from_address.rsplit("@", 1)[1].lower()


def message_id(workspace_id: str, idempotency_key: str, domain: str) -> str:
    digest = hashlib.sha256(f"{workspace_id}:{idempotency_key}".encode()).hexdigest()[:40]
    return f"<{digest}@{domain}>"


def list_unsubscribe(config: SmtpConfig, token: str) -> str:
    base = (config.public_base_url or "").rstrip("/")
    return f"<{base}/u/{token}>, <mailto:unsubscribe@{config.domain}?subject={quote(token, safe='')}>"


def build(config: SmtpConfig, workspace_id: str, message: Email, idempotency_key: str, clock: Clock) -> bytes:
    """The message as it goes on the wire, DKIM-signed when a key is configured."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = formataddr((config.from_name, config.from_address)) if config.from_name else config.from_address
    msg["To"] = message.to
    msg["Subject"] = message.subject
    msg["Date"] = format_datetime(clock.now())
    msg["Message-ID"] = message_id(workspace_id, idempotency_key, config.domain)
    if message.unsubscribe_token is not None:
        msg["List-Unsubscribe"] = list_unsubscribe(config, message.unsubscribe_token)
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(message.body)
    if message.html:
        msg.add_alternative(message.html, subtype="html")
    raw = msg.as_bytes()
    if config.dkim_key_pem is not None and config.dkim_selector is not None:
        signature = dkim.sign(
            raw,
            config.dkim_selector.encode("ascii"),
            config.domain.encode("ascii"),
            config.dkim_key_pem,
            include_headers=[h for h in SIGNED_HEADERS if h in raw.lower()],
        )
        raw = signature + raw
    return raw


class SmtpEmailSender:
    """An EmailSender over one SMTP server; the configuration is read per workspace per send."""

    def __init__(self, db: Database, clock: Clock, config_for: Callable[[str], SmtpConfig | None]) -> None:
        self.db, self.clock, self.config_for = db, clock, config_for

    def send_email(self, workspace_id: str, message: Email, idempotency_key: str) -> Delivery:
        config = self.config_for(workspace_id)
        if config is None:
            raise RuntimeError("this workspace has no SMTP connection")
        if message.unsubscribe_token is not None and not config.public_base_url:
            # A marketing message without a working one-click link is not sent at all.
            log.error("no public base URL for the unsubscribe link", extra={"workspace_id": workspace_id})
            return Delivery("", "failed", "no public base URL for the unsubscribe link")
        raw = build(config, workspace_id, message, idempotency_key, self.clock)
        row = channels.begin_call(
            self.db,
            workspace_id,
            idempotency_key,
            "email",
            message.to,
            message.body,
            PROVIDER,
            self.clock.now(),
            subject=message.subject,
        )
        provider_id = PROVIDER_PREFIX + message_id(workspace_id, idempotency_key, config.domain)
        outcome = _transact(config, message.to, raw)
        if outcome is None:
            log.warning("smtp answer unknown", extra={"workspace_id": workspace_id, "key": idempotency_key})
            return Delivery(f"smtp-outbox-{row}", "unknown")
        if outcome:
            channels.finish_call(self.db, row, self.clock.now(), "refused", error=REFUSED_PREFIX + outcome)
            log.warning("smtp refused", extra={"workspace_id": workspace_id, "key": idempotency_key})
            return Delivery(provider_id, "failed", outcome)
        channels.finish_call(self.db, row, self.clock.now(), "accepted", provider_id=provider_id)
        return Delivery(provider_id, "accepted")

    def lookup(self, workspace_id: str, idempotency_key: str) -> Delivery | None:
        call = channels.find_call(self.db, workspace_id, idempotency_key)
        return None if call is None or call.provider != PROVIDER else delivery_of(call)


def delivery_of(call: OutboxItem) -> Delivery:
    """What an SMTP call's outbox row says: accepted, refused, or begun with no known answer
    (it may have gone out: never made again)."""
    if call.status == "accepted" and call.provider_id:
        return Delivery(call.provider_id, "accepted")
    if call.status == "refused":
        return Delivery("", "failed", call.error)
    return Delivery("", "unknown")


def _transact(config: SmtpConfig, to: str, raw: bytes) -> str | None:
    """One SMTP conversation: "" when the server accepted the message, the server's refusal
    (or why the conversation never reached the message) when it did not, None when the
    answer to the message itself is unknown (the connection died during DATA)."""
    try:
        client = smtplib.SMTP(config.host, config.port, timeout=TIMEOUT_SECONDS)
    except (OSError, smtplib.SMTPException) as exc:
        return f"connect to {config.host}:{config.port}: {type(exc).__name__}: {exc}"
    with client:
        try:
            refused = _envelope(client, config, to)
        except (OSError, smtplib.SMTPException) as exc:
            refused = f"{type(exc).__name__}: {exc}"
        if refused:
            return refused
        try:
            client.data(raw)
        except smtplib.SMTPDataError as exc:
            detail = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            return f"DATA {exc.smtp_code} {detail}"
        except (OSError, smtplib.SMTPException):
            return None
        with contextlib.suppress(OSError, smtplib.SMTPException):
            client.quit()  # the message was accepted; a failed goodbye changes nothing
    return ""


def _envelope(client: smtplib.SMTP, config: SmtpConfig, to: str) -> str:
    """Greeting, STARTTLS, AUTH, MAIL FROM and RCPT TO: "" when the server takes the message
    next, else its refusal. Nothing of the message has been sent yet."""
    client.ehlo_or_helo_if_needed()
    if config.starttls:
        client.starttls(context=ssl.create_default_context())
        client.ehlo()
    if config.username:
        client.login(config.username, config.password or "")
    code, reply = client.mail(config.from_address)
    if code != 250:
        return f"MAIL FROM {code} {reply.decode(errors='replace')}"
    code, reply = client.rcpt(to)
    if code not in (250, 251):
        return f"RCPT TO {code} {reply.decode(errors='replace')}"
    return ""


class RoutingEmailSender:
    """SMTP for a workspace with a connection, the sandbox for every other one."""

    def __init__(self, smtp: SmtpEmailSender, sandbox: EmailSender) -> None:
        self.smtp, self.sandbox = smtp, sandbox

    def send_email(self, workspace_id: str, message: Email, idempotency_key: str) -> Delivery:
        port = self.smtp if self.smtp.config_for(workspace_id) is not None else self.sandbox
        return port.send_email(workspace_id, message, idempotency_key)

    def lookup(self, workspace_id: str, idempotency_key: str) -> Delivery | None:
        # The outbox is shared: a lookup follows the provider the call was made through,
        # whatever the connection says now.
        call = channels.find_call(self.smtp.db, workspace_id, idempotency_key)
        if call is None:
            return None
        if call.provider == PROVIDER:
            return delivery_of(call)
        return self.sandbox.lookup(workspace_id, idempotency_key)
