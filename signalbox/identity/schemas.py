from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from signalbox.profiles.schemas import Signals


@dataclass(frozen=True, slots=True)
class IdentifierInfo:
    type: str
    value: str


@dataclass(frozen=True, slots=True)
class MergeInfo:
    id: int
    action: str
    source_profile_id: str
    target_profile_id: str
    reason: str
    actor: str
    undoes_id: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReviewInfo:
    id: int
    profile_a_id: str
    profile_b_id: str
    user_id_a: str | None
    user_id_b: str | None
    reason: str
    status: str
    created_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class ProfileDocument:
    id: str
    user_id: str | None
    traits: dict[str, Any]
    identifiers: list[IdentifierInfo]
    consent: dict[str, dict[str, Any]]
    first_seen: datetime | None
    last_seen: datetime | None
    event_counts: dict[str, Any]
    profile_ids: list[str] = field(default_factory=list)
    signals: Signals | None = None


@dataclass(slots=True)
class ResolveStats:
    created: int = 0
    merges: int = 0
    reviews: int = 0
    # Roots whose read model must be rebuilt from the log (their tree changed this batch).
    rebuild: set[str] = field(default_factory=set)
    # node id -> root id, for every node a message of the batch landed on
    root_of: dict[str, str] = field(default_factory=dict)
