"""Typed data the connectors hand to their callers, and the one error they answer with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from signalbox.core.errors import InvalidInputError

Outcome = Literal["stored", "duplicate_event", "duplicate_message", "ignored", "rejected", "no_customer"]


class WebhookRejected(InvalidInputError):
    """A webhook that cannot be trusted or read: answered 4xx, nothing stored. `code` says
    which check failed (`missing_signature`, `bad_signature`, `stale_timestamp` …)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class SigningSecretInfo:
    fingerprint: str
    created_at: datetime
    usable: bool  # False when it was sealed under another SIGNALBOX_SECRET_KEY

    def to_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "created_at": self.created_at.isoformat(), "usable": self.usable}


@dataclass(frozen=True, slots=True)
class StripeEvent:
    """The parts of a Stripe event (a v1 snapshot event) that signalbox reads."""

    id: str
    type: str
    created: datetime
    object: dict[str, Any]
    previous_attributes: dict[str, Any] | None
    livemode: bool


@dataclass(frozen=True, slots=True)
class MappedEvent:
    """A Stripe event in signalbox's vocabulary, with what identifies its person."""

    event: str
    properties: dict[str, Any]
    customer_id: str | None
    email: str | None
    # What makes two Stripe events one of ours (the message id); None: the Stripe event id.
    dedupe_key: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookResult:
    event_id: str
    type: str
    outcome: Outcome
    event: str | None = None  # our event name when one was stored

    def to_dict(self) -> dict[str, Any]:
        return {"received": True, "event_id": self.event_id, "type": self.type, "outcome": self.outcome}
