"""The `Stripe-Signature` check, done before anything is read or stored.

Header: ``t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=…][,v0=…]``; the signed text is
``"{t}.{raw body}"`` under the endpoint's signing secret. Several v1 values are accepted (Stripe
sends one per secret while a secret is rolled), and so are several secrets of ours. The
timestamp must be within the tolerance on *both* sides of now: Stripe's own library refuses
only old ones, which would let a captured request with a future timestamp be replayed for as
long as that timestamp lies ahead.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from signalbox.connectors.schemas import WebhookRejected

TOLERANCE_SECONDS = 300
MAX_HEADER_LENGTH = 4096
MAX_SIGNATURES = 16
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_DIGITS = re.compile(r"^[0-9]{1,12}$")


@dataclass(frozen=True, slots=True)
class SignatureHeader:
    timestamp: int
    signatures: tuple[str, ...]


def parse_header(header: str | None) -> SignatureHeader:
    if header is None or not header.strip():
        raise WebhookRejected("missing_signature", "the Stripe-Signature header is missing")
    if len(header) > MAX_HEADER_LENGTH:
        raise WebhookRejected(
            "bad_signature_header", f"the Stripe-Signature header is over {MAX_HEADER_LENGTH} characters"
        )
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise WebhookRejected("bad_signature_header", "the Stripe-Signature header must be t=…,v1=… pairs")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not _DIGITS.match(timestamps[0]):
        raise WebhookRejected("bad_signature_header", "the Stripe-Signature header needs exactly one t=<unix seconds>")
    if not signatures:
        raise WebhookRejected("bad_signature_header", "the Stripe-Signature header has no v1 signature")
    if len(signatures) > MAX_SIGNATURES or not all(_HEX64.match(s) for s in signatures):
        raise WebhookRejected(
            "bad_signature_header", f"v1 signatures must be 64 hex digits each, at most {MAX_SIGNATURES}"
        )
    return SignatureHeader(int(timestamps[0]), tuple(s.lower() for s in signatures))


def expected_signature(body: bytes, timestamp: int, secret: str) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify(
    body: bytes, header: str | None, secrets: Sequence[str], now: datetime, tolerance: int = TOLERANCE_SECONDS
) -> None:
    """Raise WebhookRejected unless one v1 signature matches one secret and the timestamp is
    within `tolerance` seconds of `now`, in either direction."""
    parsed = parse_header(header)
    matched = False
    for secret in secrets:
        expected = expected_signature(body, parsed.timestamp, secret)
        # Every comparison runs (no early exit), so timing says nothing about which matched.
        for candidate in parsed.signatures:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookRejected(
            "bad_signature", "no v1 signature matches this body under any of the workspace's signing secrets"
        )
    age = now.timestamp() - parsed.timestamp
    if age > tolerance:
        raise WebhookRejected("stale_timestamp", f"the signature's timestamp is {int(age)} s old, over {tolerance} s")
    if -age > tolerance:
        raise WebhookRejected(
            "future_timestamp", f"the signature's timestamp is {int(-age)} s in the future, over {tolerance} s"
        )
