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


class TwilioConnection(Base):
    """A workspace's Twilio account: the auth token sealed with SIGNALBOX_SECRET_KEY (it signs
    and checks webhooks, so it has to be read back) and shown only by fingerprint."""

    __tablename__ = "twilio_connections"

    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"), primary_key=True)
    account_sid: Mapped[str] = mapped_column(String(64))
    sealed_auth_token: Mapped[str] = mapped_column(Text)
    token_fingerprint: Mapped[str] = mapped_column(String(64))
    from_number: Mapped[str] = mapped_column(String(32))
    api_base_url: Mapped[str | None] = mapped_column(String(500))
    stop_reply: Mapped[str | None] = mapped_column(Text)
    help_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TwilioInboundMessage(Base):
    """Every inbound SMS handled, by MessageSid (unique), so a redelivery changes nothing."""

    __tablename__ = "twilio_inbound_messages"
    __table_args__ = (Index("ux_twilio_inbound_messages", "workspace_id", "message_sid", unique=True),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    message_sid: Mapped[str] = mapped_column(String(64))
    from_number: Mapped[str] = mapped_column(String(32))
    # stop | start | help | reply
    kind: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]
