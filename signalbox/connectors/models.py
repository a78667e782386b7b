from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from signalbox.core.db import Base, BigIntPK


class StripeSigningSecret(Base):
    """One accepted webhook signing secret of a workspace, sealed with SIGNALBOX_SECRET_KEY
    (an HMAC key has to be read back, so it cannot be stored as a digest). Several may be
    accepted at once while Stripe rolls a secret."""

    __tablename__ = "stripe_signing_secrets"
    __table_args__ = (Index("ux_stripe_signing_secrets", "workspace_id", "fingerprint", unique=True),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class StripeProcessedEvent(Base):
    """Every Stripe event id handled, whatever came of it, so a redelivery or a replay days
    later does nothing. Kept at least 30 days (Stripe's own event history); rows are small."""

    __tablename__ = "stripe_processed_events"
    __table_args__ = (
        Index("ux_stripe_processed_events", "workspace_id", "event_id", unique=True),
        Index("ix_stripe_processed_events_at", "processed_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(255))
    # stored | duplicate_message | ignored | rejected | no_customer
    outcome: Mapped[str] = mapped_column(String(32))
    created: Mapped[datetime]  # the Stripe event's `created`
    processed_at: Mapped[datetime]
