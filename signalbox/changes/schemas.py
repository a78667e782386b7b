from __future__ import annotations

from collections.abc import Sequence
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
class ChangeColumns:
    """Many changes of one kind, column by column: what a first scoring logs (a change per
    person, a million at a time) without a `NewChange` and a dict each. `data` holds JSON
    text, as `core.db` serialises a document (None for no document)."""

    kind: ChangeKind
    profile_ids: Sequence[str]
    names: Sequence[str | None]
    data: Sequence[str | None]

    def __post_init__(self) -> None:
        if not len(self.profile_ids) == len(self.names) == len(self.data):
            raise ValueError("change columns of different lengths")

    def __len__(self) -> int:
        return len(self.profile_ids)


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
