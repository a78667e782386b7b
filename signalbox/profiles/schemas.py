from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ProfileNode:
    id: str
    canonical_id: str
    merged_into_id: str | None
    user_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ProfileState:
    """The read model kept on a tree's root."""

    id: str
    traits: dict[str, Any]
    event_counts: dict[str, Any]
    first_seen: datetime | None
    last_seen: datetime | None
    created_at: datetime
    signals: Signals | None = None


@dataclass(frozen=True, slots=True)
class Signals:
    """Computed traits, the at-risk score and the churn prediction as last stored on the root."""

    computed_traits: dict[str, Any] | None
    traits_computed_at: datetime | None
    at_risk_score: int | None
    at_risk_band: str | None
    at_risk_components: list[dict[str, Any]] | None
    score_as_of: date | None
    scored_at: datetime | None
    churn_probability: float | None = None
    churn_model_id: int | None = None
    predicted_at: datetime | None = None


@dataclass(slots=True)
class Contribution:
    """What one batch adds to one person, folded in with a single UPDATE."""

    total: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    by_event: dict[str, int] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    # (timestamp, traits) of identify messages, in arrival order
    traits: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)

    def add(self, kind: str, event: str | None, at: datetime, traits: dict[str, Any]) -> None:
        self.total += 1
        self.by_type[kind] = self.by_type.get(kind, 0) + 1
        if kind == "track" and event is not None:
            self.by_event[event] = self.by_event.get(event, 0) + 1
        self.first_seen = at if self.first_seen is None or at < self.first_seen else self.first_seen
        self.last_seen = at if self.last_seen is None or at > self.last_seen else self.last_seen
        if kind == "identify" and traits:
            self.traits.append((at, traits))
