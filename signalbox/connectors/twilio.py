"""Twilio SMS: the connection, the outbound sender, inbound replies and delivery statuses.

Outbound (`TwilioSmsSender`, through the official `twilio` library): the call is written to
the outbox, committed, *before* Twilio is asked, and the MessageSid filled in after. So
`lookup` is authoritative: a sid means the message exists at Twilio; a row still `calling`
means a call began whose outcome nobody learnt (it must not be made again); no row means no
call was ever started. `RoutingSmsSender` picks Twilio for a connected workspace, else the
sandbox.

Inbound (`TwilioInbound`): (1) the workspace (404), (2) its connection, (3) the
`X-Twilio-Signature` checked with the official `RequestValidator` against the workspace's
public base URL + path, never the Host header (403), (4) the form read, (5) the MessageSid
claimed (a unique index: a redelivery changes nothing), (6) STOP-words revoke and START-words
grant SMS consent through the consent ledger's one write path, HELP-words answer the help text,
anything else becomes an `sms_replied` event through the ingestion pipeline; all of it is
committed before the TwiML answer leaves.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from signalbox.channels import service as channels
from signalbox.channels.schemas import Delivery, Sms
from signalbox.connectors.models import TwilioConnection, TwilioInboundMessage
from signalbox.connectors.schemas import WebhookRejected
from signalbox.consent import service as consent
from signalbox.core.clock import Clock
from signalbox.core.db import Database, advisory_xact_lock, dialect_insert
from signalbox.core.errors import InvalidInputError, NotFoundError
from signalbox.core.logging import get_logger
from signalbox.core.secretbox import SecretBox, UnreadableSecretError, fingerprint
from signalbox.core.settings import Settings
from signalbox.identity import identifiers as ids
from signalbox.identity import service as identity
from signalbox.ingestion.schemas import BatchResult
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.workspaces import service as workspaces
from signalbox.workspaces.schemas import WorkspaceInfo

log = get_logger("connectors.twilio")
# The client logs every request's URL and headers at INFO; ours say what matters, once.
_client_log = get_logger("connectors.twilio.client")
_client_log.setLevel(logging.WARNING)
SOURCE = "twilio"
PROVIDER = "twilio"
MAX_BODY_BYTES = 64 * 1024  # an SMS webhook is a few hundred bytes; MMS adds media URLs
TIMEOUT_SECONDS = 15.0
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_AUTH_TOKEN = re.compile(r"^[0-9a-fA-F]{32}$")
_MESSAGE_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")

# Twilio's own opt-out vocabulary (Advanced Opt-Out defaults), matched as the whole message.
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
DEFAULT_HELP = "Reply STOP to unsubscribe, START to subscribe again. Msg & data rates may apply."
Kind = Literal["stop", "start", "help", "reply"]


class TwilioForbidden(WebhookRejected):
    """A request that does not prove it comes from Twilio: answered 403, nothing stored."""


@lru_cache(maxsize=4)
def _box_for(secret_key: str) -> SecretBox:
    return SecretBox(secret_key, "twilio-auth-tokens")


def _box(settings: Settings) -> SecretBox:
    return _box_for(settings.secret_key)


# ---- the connection --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    workspace_id: str
    account_sid: str
    auth_token: str | None  # None when sealed under another SIGNALBOX_SECRET_KEY
    token_fingerprint: str
    from_number: str
    api_base_url: str | None
    stop_reply: str | None
    help_text: str | None

    def to_dict(self) -> dict[str, Any]:
        """What may be shown: the token by fingerprint only."""
        return {
            "account_sid": self.account_sid,
            "auth_token_fingerprint": self.token_fingerprint,
            "auth_token_usable": self.auth_token is not None,
            "from_number": self.from_number,
            "api_base_url": self.api_base_url,
            "stop_reply": self.stop_reply,
            "help_text": self.help_text or DEFAULT_HELP,
        }


def check_account_sid(value: str) -> str:
    text = value.strip()
    if not _ACCOUNT_SID.match(text):
        raise InvalidInputError("--account-sid must be AC followed by 32 hex digits (the Twilio console's Account SID)")
    return text


def check_auth_token(value: str) -> str:
    text = value.strip()
    if text.startswith("SK"):
        raise InvalidInputError(
            "that looks like an API key SID; give the account's auth token (32 hex digits) from the Twilio console"
        )
    if not _AUTH_TOKEN.match(text):
        raise InvalidInputError("--auth-token must be the account's auth token: 32 hex digits")
    return text


def check_from_number(value: str, default_region: str) -> str:
    found = ids.normalize_phone(value, default_region) if value.strip() else None
    if found is None:
        raise InvalidInputError(f"--from-number {value!r} is not a phone number; give it in E.164, e.g. +14155550100")
    return found


def check_api_base_url(value: str) -> str:
    text = value.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise InvalidInputError(f"--api-base-url must be an http(s) URL such as https://api.twilio.com, not {value!r}")
    return text


def _text(value: str, option: str, limit: int = 1600) -> str:
    text = value.strip()
    if not text or len(text) > limit:
        raise InvalidInputError(f"{option} must be 1 to {limit} characters")
    return text


def connect(
    db: Database,
    settings: Settings,
    workspace: WorkspaceInfo,
    now: datetime,
    *,
    account_sid: str | None = None,
    auth_token: str | None = None,
    from_number: str | None = None,
    api_base_url: str | None = None,
    stop_reply: str | None = None,
    help_text: str | None = None,
) -> bool:
    """Create or change the workspace's connection; options left None keep their value (an
    empty string clears an optional one). Returns True when something changed."""
    values: dict[str, Any] = {}
    if account_sid is not None:
        values["account_sid"] = check_account_sid(account_sid)
    if auth_token is not None:
        token = check_auth_token(auth_token)
        values["sealed_auth_token"] = _box(settings).seal(token)
        values["token_fingerprint"] = fingerprint(token)
    if from_number is not None:
        values["from_number"] = check_from_number(from_number, workspace.default_region)
    if api_base_url is not None:
        values["api_base_url"] = check_api_base_url(api_base_url) if api_base_url.strip() else None
    if stop_reply is not None:
        values["stop_reply"] = _text(stop_reply, "--stop-reply") if stop_reply.strip() else None
    if help_text is not None:
        values["help_text"] = _text(help_text, "--help-text") if help_text.strip() else None
    with db.transaction() as session:
        row = session.get(TwilioConnection, workspace.id)
        if row is None:
            missing = [
                option
                for option, key in (
                    ("--account-sid", "account_sid"),
                    ("--auth-token", "sealed_auth_token"),
                    ("--from-number", "from_number"),
                )
                if key not in values
            ]
            if not values:
                return False
            if missing:
                raise InvalidInputError(f"connecting Twilio needs {', '.join(missing)}")
            session.add(TwilioConnection(workspace_id=workspace.id, created_at=now, updated_at=now, **values))
            return True
        if not values:
            return False
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = now
    return True


def disconnect(db: Database, workspace_id: str) -> None:
    with db.transaction() as session:
        row = session.get(TwilioConnection, workspace_id)
        if row is None:
            raise NotFoundError("this workspace has no Twilio connection")
        session.delete(row)


def config(db: Database, settings: Settings, workspace_id: str) -> TwilioConfig | None:
    with db.session() as session:
        row = session.get(TwilioConnection, workspace_id)
        if row is None:
            return None
        try:
            token: str | None = _box(settings).open(row.sealed_auth_token)
        except UnreadableSecretError:
            log.error(
                "twilio auth token unreadable with this SIGNALBOX_SECRET_KEY",
                extra={"workspace_id": workspace_id, "fingerprint": row.token_fingerprint},
            )
            token = None
        return TwilioConfig(
            row.workspace_id,
            row.account_sid,
            token,
            row.token_fingerprint,
            row.from_number,
            row.api_base_url,
            row.stop_reply,
            row.help_text,
        )


def webhook_urls(base: str | None, workspace_ref: str) -> dict[str, str | None]:
    if base is None:
        return {"sms_url": None, "status_callback_url": None}
    return {
        "sms_url": f"{base}/webhooks/twilio/{workspace_ref}/sms",
        "status_callback_url": f"{base}/webhooks/twilio/{workspace_ref}/status",
    }


# ---- outbound --------------------------------------------------------------------------


class TwilioSmsSender:
    """SmsSender through the official client. Each call is in the outbox before Twilio hears
    of it; the MessageSid and status follow."""

    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db, self.settings, self.clock = db, settings, clock

    def connected(self, workspace_id: str) -> bool:
        with self.db.session() as session:
            return session.get(TwilioConnection, workspace_id) is not None

    def client(self, cfg: TwilioConfig) -> Client:
        if cfg.auth_token is None:
            raise RuntimeError("the Twilio auth token is unreadable with this SIGNALBOX_SECRET_KEY; connect again")
        client = Client(
            cfg.account_sid, cfg.auth_token, http_client=TwilioHttpClient(timeout=TIMEOUT_SECONDS, logger=_client_log)
        )
        if cfg.api_base_url:
            client.api.base_url = cfg.api_base_url
        return client

    def send_sms(self, workspace_id: str, message: Sms, idempotency_key: str) -> Delivery:
        cfg = config(self.db, self.settings, workspace_id)
        if cfg is None:
            raise RuntimeError("this workspace has no Twilio connection")
        client = self.client(cfg)
        base = workspaces.public_base_url(self.db, workspace_id)
        callback = webhook_urls(base, workspace_id)["status_callback_url"]
        row = channels.begin_call(
            self.db, workspace_id, idempotency_key, "sms", message.to, message.body, PROVIDER, self.clock.now()
        )
        if callback:
            # Our row's id rides in the (signed) callback URL: a status that overtakes the API's
            # own answer still finds its message, before we know its MessageSid.
            callback = f"{callback}?call={row}"
        try:
            created = client.messages.create(
                to=message.to,
                from_=cfg.from_number,
                body=message.body,
                **({"status_callback": callback} if callback else {}),
            )
        except TwilioRestException as exc:
            if 400 <= int(exc.status) < 500:
                # Twilio answered and refused: nothing went out, and we know it.
                reason = f"twilio {exc.status} {exc.code}: {exc.msg}"[:500]
                channels.finish_call(self.db, row, self.clock.now(), "refused", error=reason)
                return Delivery("", "failed")
            raise  # a 5xx: Twilio may or may not have acted; the row stays `calling`
        sid, status = str(created.sid), str(created.status or "queued")
        if status not in channels.STATUS_RANK:
            status = "queued"
        channels.finish_call(self.db, row, self.clock.now(), status, provider_id=sid)
        return Delivery(sid, "failed" if status in ("failed", "undelivered") else "accepted")

    def lookup(self, workspace_id: str, idempotency_key: str) -> Delivery | None:
        call = channels.find_call(self.db, workspace_id, idempotency_key)
        return None if call is None else lookup_call(call.provider_id, call.status)


def lookup_call(provider_id: str | None, status: str | None) -> Delivery:
    if provider_id:
        return Delivery(provider_id, "delivered" if status == "delivered" else "accepted")
    if status == "refused":
        return Delivery("", "failed")
    return Delivery("", "unknown")  # begun, never answered: may have gone out


class RoutingSmsSender:
    """Twilio where the workspace is connected, else the sandbox. A lookup follows the
    provider the call was made through, whatever the connection says now."""

    def __init__(self, twilio: TwilioSmsSender, sandbox: channels.SandboxProvider) -> None:
        self.twilio, self.sandbox = twilio, sandbox

    def send_sms(self, workspace_id: str, message: Sms, idempotency_key: str) -> Delivery:
        if self.twilio.connected(workspace_id):
            return self.twilio.send_sms(workspace_id, message, idempotency_key)
        return self.sandbox.send_sms(workspace_id, message, idempotency_key)

    def lookup(self, workspace_id: str, idempotency_key: str) -> Delivery | None:
        call = channels.find_call(self.twilio.db, workspace_id, idempotency_key)
        if call is None:
            return None
        if call.provider == PROVIDER:
            return lookup_call(call.provider_id, call.status)
        return self.sandbox.lookup(workspace_id, idempotency_key)


def sms_sender(db: Database, settings: Settings, clock: Clock) -> RoutingSmsSender:
    return RoutingSmsSender(TwilioSmsSender(db, settings, clock), channels.SandboxProvider(db, clock))


# ---- inbound ---------------------------------------------------------------------------


def keyword(body: str) -> Kind:
    word = " ".join(body.split()).upper().strip(".!")
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return "reply"


def twiml(text: str | None = None) -> str:
    response = MessagingResponse()
    if text:
        response.message(text)
    return str(response.to_xml(xml_declaration=True))


@dataclass(frozen=True, slots=True)
class InboundResult:
    message_sid: str
    kind: Kind
    outcome: str  # stored | duplicate
    twiml: str


class TwilioInbound:
    def __init__(self, db: Database, settings: Settings, pipeline: Pipeline, clock: Clock) -> None:
        self.db, self.settings, self.pipeline, self.clock = db, settings, pipeline, clock

    def _verified(
        self, workspace_ref: str, kind: str, query: str, body: bytes, signature: str | None, content_type: str | None
    ) -> tuple[WorkspaceInfo, TwilioConfig, dict[str, str]]:
        workspace = workspaces.get_workspace(self.db, workspace_ref)
        if len(body) > MAX_BODY_BYTES:
            raise WebhookRejected("too_large", f"the body is over {MAX_BODY_BYTES} bytes")
        cfg = config(self.db, self.settings, workspace.id)
        if cfg is None:
            raise TwilioForbidden(
                "not_connected", "this workspace has no Twilio connection; run `signalbox connect twilio`"
            )
        base = workspaces.public_base_url(self.db, workspace.id)
        if base is None:
            raise TwilioForbidden(
                "no_public_base_url",
                "the workspace has no public base URL to check signatures against; "
                "set it with `signalbox connect twilio --public-base-url https://…`",
            )
        if cfg.auth_token is None:
            raise TwilioForbidden("token_unreadable", "the Twilio auth token is unreadable; connect Twilio again")
        if not signature:
            raise TwilioForbidden("missing_signature", "the X-Twilio-Signature header is missing")
        if content_type is not None and not content_type.lower().startswith("application/x-www-form-urlencoded"):
            raise WebhookRejected("bad_content_type", "Twilio posts application/x-www-form-urlencoded forms")
        try:
            params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError:
            raise WebhookRejected("bad_body", "the form body is not UTF-8") from None
        # The URL Twilio was given, never one built from the Host header: behind a TLS proxy
        # the Host is ours, not the public one. The validator tries it with and without :443.
        url = f"{base}/webhooks/twilio/{workspace_ref}/{kind}" + (f"?{query}" if query else "")
        if not RequestValidator(cfg.auth_token).validate(url, params, signature):
            raise TwilioForbidden(
                "bad_signature", f"X-Twilio-Signature does not match this request for {url} under the auth token"
            )
        return workspace, cfg, params

    def receive_sms(
        self, workspace_ref: str, query: str, body: bytes, signature: str | None, content_type: str | None
    ) -> InboundResult:
        workspace, cfg, params = self._verified(workspace_ref, "sms", query, body, signature, content_type)
        sid = params.get("MessageSid") or params.get("SmsSid") or ""
        if not _MESSAGE_SID.match(sid):
            raise WebhookRejected("bad_message_sid", "MessageSid is missing or not two letters and 32 hex digits")
        phone = ids.normalize_phone(params.get("From", ""), workspace.default_region)
        if phone is None:
            raise WebhookRejected("bad_from", "From is missing or not a phone number")
        text = params.get("Body", "")
        kind = keyword(text)
        now = self.clock.now()
        if kind == "reply":
            stored = self._reply(workspace, sid, phone, text, now)
            answer = twiml()
        else:
            answer_text = self._keyword(workspace, cfg, sid, phone, kind, now)
            stored = answer_text is not False
            answer = twiml(answer_text if isinstance(answer_text, str) else None)
        log.info(
            "twilio sms",
            extra={"workspace_id": workspace.id, "message_sid": sid, "kind": kind, "stored": stored},
        )
        return InboundResult(sid, kind, "stored" if stored else "duplicate", answer)

    def _profile(self, workspace: WorkspaceInfo, phone: str, sid: str) -> str:
        """The profile that holds this number; one is made (through the pipeline) when none does."""
        with self.db.session() as session:
            root = identity.find_root(session, workspace.id, (ids.PHONE, phone))
        if root is not None:
            return root
        message = {"type": "identify", "messageId": f"twilio:{sid}:who", "traits": {"phone": phone}}
        self.pipeline.ingest(workspace, BatchInput([message], source=SOURCE, identified_by_context=True))
        with self.db.session() as session:
            root = identity.find_root(session, workspace.id, (ids.PHONE, phone))
        if root is None:
            raise RuntimeError("the sender's profile could not be stored")
        return root

    def _keyword(
        self, workspace: WorkspaceInfo, cfg: TwilioConfig, sid: str, phone: str, kind: Kind, now: datetime
    ) -> str | Literal[False] | None:
        """Consent (and the sid) in one transaction, before any answer. Returns the answer's
        text, None for an empty answer, False for a MessageSid seen before."""
        root = self._profile(workspace, phone, sid) if kind in ("stop", "start") else None
        with self.db.transaction() as session:
            # Two STOPs sent together must not both read "not stopped yet" and both confirm.
            advisory_xact_lock(session, f"twilio-consent:{workspace.id}:{phone}")
            previous = _last_consent_word(session, workspace.id, phone)
            if not _claim(session, workspace.id, sid, phone, kind, now):
                return False
            if kind == "help":
                return cfg.help_text or DEFAULT_HELP
            assert root is not None
            consent.record(
                session,
                workspace.id,
                root,
                "sms",
                "revoked" if kind == "stop" else "granted",
                source=SOURCE,
                at=now,
                now=now,
                purpose="all",
                evidence={"message_sid": sid, "from": phone},
            )
        if kind == "stop" and previous != "stop":
            return cfg.stop_reply  # once per opt-out; None: Twilio confirms on its own
        return None

    def _reply(self, workspace: WorkspaceInfo, sid: str, phone: str, text: str, now: datetime) -> bool:
        claimed: list[bool] = []

        def mark(session: Session, result: BatchResult) -> None:
            claimed.append(_claim(session, workspace.id, sid, phone, "reply", now))

        with self.db.session() as session:
            seen = session.scalar(
                select(TwilioInboundMessage.id).where(
                    TwilioInboundMessage.workspace_id == workspace.id, TwilioInboundMessage.message_sid == sid
                )
            )
        if seen is not None:
            return False
        message = {
            "type": "track",
            "event": "sms_replied",
            "messageId": f"twilio:{sid}",
            "properties": {"body": text, "from": phone, "message_sid": sid},
            "timestamp": now.isoformat(),
            "context": {"traits": {"phone": phone}},
        }
        result = self.pipeline.ingest(
            workspace, BatchInput([message], source=SOURCE, identified_by_context=True), along=mark
        )
        if result.dead_lettered or not claimed:
            raise RuntimeError("the SMS reply could not be stored; it was dead-lettered")
        return bool(result.accepted) and claimed[0]

    def receive_status(
        self, workspace_ref: str, query: str, body: bytes, signature: str | None, content_type: str | None
    ) -> dict[str, Any]:
        workspace, _cfg, params = self._verified(workspace_ref, "status", query, body, signature, content_type)
        sid = params.get("MessageSid") or params.get("SmsSid") or ""
        if not _MESSAGE_SID.match(sid):
            raise WebhookRejected("bad_message_sid", "MessageSid is missing or not two letters and 32 hex digits")
        status = (params.get("MessageStatus") or params.get("SmsStatus") or "").strip().lower()
        if status not in channels.STATUS_RANK or status in ("calling", "refused"):
            raise WebhookRejected("bad_status", f"MessageStatus {status!r} is not a Twilio message status")
        call = dict(parse_qsl(query)).get("call", "")
        call_id = int(call) if call.isascii() and call.isdigit() and len(call) < 19 else None
        outcome = channels.record_status(self.db, workspace.id, PROVIDER, sid, status, self.clock.now(), call_id)
        return {"received": True, "message_sid": sid, "status": status, "outcome": outcome}


def _claim(session: Session, workspace_id: str, sid: str, phone: str, kind: str, now: datetime) -> bool:
    """The MessageSid, once: False when it was seen before (a redelivery)."""
    values = {"workspace_id": workspace_id, "message_sid": sid, "from_number": phone, "kind": kind, "received_at": now}
    base = dialect_insert(session, TwilioInboundMessage)
    found = session.execute(
        base.values(values)
        .on_conflict_do_nothing(index_elements=["workspace_id", "message_sid"])
        .returning(TwilioInboundMessage.id)
    ).scalar_one_or_none()
    return found is not None


def _last_consent_word(session: Session, workspace_id: str, phone: str) -> str | None:
    return session.scalar(
        select(TwilioInboundMessage.kind)
        .where(
            TwilioInboundMessage.workspace_id == workspace_id,
            TwilioInboundMessage.from_number == phone,
            TwilioInboundMessage.kind.in_(("stop", "start")),
        )
        .order_by(TwilioInboundMessage.id.desc())
        .limit(1)
    )
