"""Typed data of the at-risk score: the knobs operators tune, bands, and run results."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

BAND_NAMES: tuple[str, ...] = ("Low", "Medium", "High")


class ScoringKnobs(BaseModel):
    """The three knobs of product.md plus the band thresholds, stored in workspace settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # >1 flags absence sooner: the 14/30-day recency thresholds are divided by it.
    recency_sensitivity: float = Field(default=1.0, ge=0.25, le=4.0)
    # Multiplies payment-friction points (capped at the component's 25).
    payment_weight: float = Field(default=1.0, ge=0.0, le=2.0)
    # Multiplies engagement-decay points (capped at the component's 15).
    engagement_decay_multiplier: float = Field(default=1.0, ge=0.0, le=3.0)
    medium_threshold: int = Field(default=25, ge=1, le=99)
    high_threshold: int = Field(default=50, ge=2, le=100)
    activity_events: tuple[str, ...] = ("visit", "check_in", "class_attended", "purchase")

    @model_validator(mode="after")
    def _ordered(self) -> ScoringKnobs:
        if self.medium_threshold >= self.high_threshold:
            raise ValueError("medium_threshold must be below high_threshold")
        if not self.activity_events or any(not e.strip() for e in self.activity_events):
            raise ValueError("activity_events needs at least one non-empty event name")
        return self


@dataclass(frozen=True, slots=True)
class BandPolicy:
    name: str
    next_action: str
    weekly_contact_quota: int


BAND_POLICIES: dict[str, BandPolicy] = {
    "Low": BandPolicy("Low", "no action: regular programme and newsletters", 1),
    "Medium": BandPolicy("Medium", "value reminder: a class or habit nudge by email or SMS, no discount", 2),
    "High": BandPolicy("High", "personal outreach: staff call or concierge message within 48 h", 3),
}


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    points: int
    max_points: int
    reason: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.name,
            "points": self.points,
            "max": self.max_points,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class ScoreRun:
    as_of: date
    profiles: int
    bands: dict[str, int]
    unscored: int
    seconds: float


@dataclass(frozen=True)
class BandOutcome:
    profiles: int
    churned: int
    precision: float | None
    recall: float | None


@dataclass(frozen=True)
class BacktestReport:
    as_of: date
    horizon_days: int
    population: int
    churned: int
    bands: dict[str, BandOutcome] = field(default_factory=dict)
