from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

ChangeKind = Literal["event", "traits", "merge", "unmerge", "score", "segment"]
KINDS: tuple[ChangeKind, ...] = ("event", "traits", "merge", "unmerge", "score", "segment")
# What can move a person's computed traits: anything but a stored score.
PROFILE_KINDS: tuple[ChangeKind, ...] = ("event", "traits", "merge", "unmerge")


@dataclass(frozen=True, slots=True)
class NewChange:
    kind: ChangeKind
    profile_id: str
    ref: str | None = None
    name: str | None = None
    data: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ChangeInfo:
    seq: int
    kind: str
    profile_id: str
    ref: str | None
    name: str | None
    data: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Window:
    """What a consumer has not read yet: sequence numbers in (after, upto]. `complete` is False
    when rows it never read were trimmed, so it must do a full pass instead."""

    consumer: str
    after: int
    upto: int
    complete: bool


@dataclass(frozen=True, slots=True)
class LogStatus:
    head: int
    trimmed_through: int
    rows: int
    consumers: dict[str, int]


@dataclass(frozen=True, slots=True)
class TrimResult:
    deleted: int
    trimmed_through: int
