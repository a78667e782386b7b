from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from signalbox.core.db import Base, JSONType


class Profile(Base):
    """A person node. Merges point a node at another (``merged_into_id``) instead of moving
    rows, so an unmerge is one pointer change; ``canonical_id`` is the root of the node's tree
    and the root holds the person's traits and counters."""

    __tablename__ = "profiles"
    __table_args__ = (
        Index("ix_profiles_canonical", "workspace_id", "canonical_id"),
        Index("ix_profiles_last_seen", "workspace_id", "last_seen"),
        Index("ix_profiles_band_score", "workspace_id", "at_risk_band", "at_risk_score"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    canonical_id: Mapped[str] = mapped_column(String(64))
    merged_into_id: Mapped[str | None] = mapped_column(String(64))
    # The node's own user_id (a node holds at most one); the root shows its tree's.
    user_id: Mapped[str | None] = mapped_column(String(255))
    traits: Mapped[dict[str, Any]]
    event_counts: Mapped[dict[str, Any]]
    # Timestamp of the newest identify folded into traits: an older one arriving late
    # (a history import) only fills gaps, it never overwrites newer values.
    traits_at: Mapped[datetime | None]
    first_seen: Mapped[datetime | None]
    last_seen: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Signals, written only by `store_signals` (one write path); nothing here is hand-edited.
    computed_traits: Mapped[dict[str, Any] | None]
    traits_computed_at: Mapped[datetime | None]
    at_risk_score: Mapped[int | None]
    at_risk_band: Mapped[str | None] = mapped_column(String(16))
    at_risk_components: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    score_as_of: Mapped[date | None]
    scored_at: Mapped[datetime | None]
    # The predictive churn model's calibrated probability, which model said so, and when.
    churn_probability: Mapped[float | None] = mapped_column(Float)
    churn_model_id: Mapped[int | None] = mapped_column(BigInteger)
    predicted_at: Mapped[datetime | None]
