from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    body: str
    html: str | None = None
    # Set on marketing messages only: the signed one-click unsubscribe token (consent.unsubscribe)
    # a sender turns into List-Unsubscribe / List-Unsubscribe-Post headers (RFC 8058).
    unsubscribe_token: str | None = None


@dataclass(frozen=True, slots=True)
class Sms:
    to: str
    body: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a provider said about one call."""

    provider_id: str
    # accepted | delivered | failed | unknown (from `lookup` only: the call began and its
    # outcome was never learnt, so it may have gone out: never made again, nor counted as sent)
    status: str
    error: str | None = None  # the provider's refusal, when it gave one


class EmailSender(Protocol):
    def send_email(self, workspace_id: str, message: Email, idempotency_key: str) -> Delivery: ...

    def lookup(self, workspace_id: str, idempotency_key: str) -> Delivery | None:
        """The provider's record of a call made with this key, if it keeps one."""
        ...


class SmsSender(Protocol):
    def send_sms(self, workspace_id: str, message: Sms, idempotency_key: str) -> Delivery: ...

    def lookup(self, workspace_id: str, idempotency_key: str) -> Delivery | None: ...


@dataclass(frozen=True, slots=True)
class OutboxItem:
    idempotency_key: str
    channel: str
    to: str
    subject: str | None
    body: str
    created_at: datetime
    provider: str = "sandbox"
    provider_id: str | None = None
    status: str | None = None  # the provider's status (Twilio's own words), `calling`, `refused`
    error: str | None = None
    updated_at: datetime | None = None
    html: str | None = None  # an e-mail's HTML part, as sent


@dataclass(frozen=True, slots=True)
class TaskInfo:
    id: int
    idempotency_key: str
    user_id: str | None
    profile_id: str
    playbook: str | None
    title: str
    role: str
    location: str | None
    priority: str
    status: str  # open | done | snoozed
    due_at: datetime
    created_at: datetime
    done_at: datetime | None


@dataclass(frozen=True, slots=True)
class SendInfo:
    user_id: str | None
    channel: str
    playbook: str | None
    step: str | None
    status: str
    idempotency_key: str
    to: str
    created_at: datetime
