"""One-click unsubscribe: the signed token in a marketing message's List-Unsubscribe link, and
the revocation it asks for.

A token is `<payload>.<mac>`, both base64url without padding: the payload is a compact JSON
list [version, workspace id, profile id, channel, send idempotency key, expiry (unix s)], the
mac an HMAC-SHA256 over the payload's text under a key derived from SIGNALBOX_SECRET_KEY for
this purpose alone. Nothing is stored when a token is issued; the token is the whole state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy.orm import Session

from signalbox.consent import service as consent
from signalbox.consent.schemas import CHANNELS
from signalbox.core.errors import InvalidInputError
from signalbox.core.secretbox import derive_key

VERSION = 1
LIFETIME = timedelta(days=60)
SOURCE = "one_click_unsubscribe"
MAX_TOKEN = 1024


class BadUnsubscribeToken(InvalidInputError):
    """A token that is malformed, altered, signed under another key, or expired."""


@dataclass(frozen=True, slots=True)
class UnsubscribeToken:
    workspace_id: str
    profile_id: str
    channel: str
    idempotency_key: str
    expires_at: datetime


@lru_cache(maxsize=4)
def _mac_key(secret_key: str) -> bytes:
    return derive_key(secret_key, "unsubscribe-token")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret_key: str, payload: str) -> str:
    return _b64(hmac.new(_mac_key(secret_key), payload.encode("ascii"), hashlib.sha256).digest())


def issue(
    secret_key: str,
    workspace_id: str,
    profile_id: str,
    channel: str,
    idempotency_key: str,
    now: datetime,
    lifetime: timedelta = LIFETIME,
) -> str:
    expires = int((now + lifetime).timestamp())
    payload = _b64(orjson.dumps([VERSION, workspace_id, profile_id, channel, idempotency_key, expires]))
    return f"{payload}.{_mac(secret_key, payload)}"


def read(secret_key: str, token: str, now: datetime) -> UnsubscribeToken:
    """The token's content, or BadUnsubscribeToken naming what is wrong with it."""
    if not token or len(token) > MAX_TOKEN or token.count(".") != 1:
        raise BadUnsubscribeToken("this unsubscribe link is malformed; use the link from the e-mail as it is")
    payload, mac = token.split(".")
    try:
        payload.encode("ascii")
        mac.encode("ascii")
    except UnicodeError:
        raise BadUnsubscribeToken("this unsubscribe link is malformed; use the link from the e-mail as it is") from None
    if not hmac.compare_digest(_mac(secret_key, payload), mac):
        raise BadUnsubscribeToken("this unsubscribe link is not valid (altered, or not issued by this server)")
    try:
        fields: Any = orjson.loads(_unb64(payload))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise BadUnsubscribeToken("this unsubscribe link is malformed; use the link from the e-mail as it is") from None
    if not (
        isinstance(fields, list)
        and len(fields) == 6
        and fields[0] == VERSION
        and all(isinstance(f, str) and f for f in fields[1:5])
        and fields[3] in CHANNELS
        and isinstance(fields[5], int)
    ):
        raise BadUnsubscribeToken("this unsubscribe link is malformed; use the link from the e-mail as it is")
    expires = datetime.fromtimestamp(fields[5], UTC)
    if expires <= now:
        raise BadUnsubscribeToken(
            f"this unsubscribe link expired on {expires.date().isoformat()}; use the link in a more recent e-mail"
        )
    return UnsubscribeToken(fields[1], fields[2], fields[3], fields[4], expires)


def revoke(session: Session, token: UnsubscribeToken, now: datetime, *, via: str) -> bool:
    """Revoke marketing on the token's channel through the one consent write path, with the
    send it came from as evidence. False (nothing written) when already revoked."""
    current = consent.states(session, token.workspace_id, {token.profile_id: [token.profile_id]})[token.profile_id]
    state = current[token.channel]
    if state.status == "revoked":
        return False
    consent.record(
        session,
        token.workspace_id,
        token.profile_id,
        token.channel,
        "revoked",
        source=SOURCE,
        at=now,
        now=now,
        purpose="marketing",
        evidence={"idempotency_key": token.idempotency_key, "via": via, "method": "POST"},
    )
    return True
