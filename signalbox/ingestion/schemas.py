"""The Segment message shape (the wire format), and the typed results of each pipeline step."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MessageType = Literal["identify", "track", "page", "screen", "group", "alias"]
MESSAGE_TYPES: tuple[str, ...] = ("identify", "track", "page", "screen", "group", "alias")
SHORT_TYPES = {"i": "identify", "t": "track", "p": "page", "s": "screen", "g": "group", "a": "alias"}

Id = str | int


class SegmentMessage(BaseModel):
    """One message as Segment's and RudderStack's libraries send it. Unknown keys are kept
    out of the way rather than refused: SDKs add fields over time."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    type: MessageType
    messageId: str | None = Field(default=None, max_length=255)
    userId: Id | None = None
    anonymousId: Id | None = None
    event: str | None = Field(default=None, max_length=255)
    name: str | None = Field(default=None, max_length=255)
    category: str | None = None
    previousId: Id | None = None
    groupId: Id | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None


class BatchEnvelope(BaseModel):
    """The `/v1/batch` body, as documented for OpenAPI; parsing is done by hand for speed."""

    batch: list[SegmentMessage]
    context: dict[str, Any] | None = None
    sentAt: datetime | None = None
    writeKey: str | None = None


class Accepted(BaseModel):
    success: bool = True


class ErrorBody(BaseModel):
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Drop:
    """A message refused for its own fault (answered 4xx / written to the reject file)."""

    step: str
    reason: str


@dataclass(slots=True)
class NormalizedMessage:
    index: int
    raw: dict[str, Any]
    message_id: str
    type: str
    event: str | None
    user_id: str | None
    anonymous_id: str | None
    previous_id: str | None
    properties: dict[str, Any]
    traits: dict[str, Any]
    context: dict[str, Any]
    timestamp: datetime
    original_timestamp: datetime | None
    sent_at: datetime | None
    received_at: datetime
    # (type, value) pairs, strongest first; junk and invalid values already removed.
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    profile_traits: dict[str, Any] = field(default_factory=dict)
    profile_id: str = ""


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int
    step: str
    reason: str


@dataclass(slots=True)
class BatchResult:
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    dead_lettered: int = 0
    merges: int = 0
    reviews: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetterInfo:
    id: int
    kind: str
    step: str
    reason: str
    source: str
    status: str
    received_at: datetime
    replayed_at: datetime | None
    message_id: str | None
