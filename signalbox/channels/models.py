from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from signalbox.core.db import Base, BigIntPK


class OutboxMessage(Base):
    """Every provider call, sandbox or real, as made. It never deduplicates: a doubled call
    shows up here as two rows. A real provider's row is written *before* the call and filled
    with the provider's id and status after, so a crash in between is seen, never guessed."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_key", "workspace_id", "idempotency_key"),
        Index("ix_outbox_provider_id", "workspace_id", "provider_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    to: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)  # an e-mail's HTML part
    created_at: Mapped[datetime]
    provider: Mapped[str] = mapped_column(String(16), server_default="sandbox")  # sandbox | twilio
    provider_id: Mapped[str | None] = mapped_column(String(200))  # MessageSid, SMTP Message-ID
    # The provider's status: `calling` (row written, no answer yet), then Twilio's own
    # (queued, sending, sent, delivered, undelivered, failed), or `refused`; sandbox: delivered.
    status: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime | None]


class StaffTask(Base):
    """A task for a person at a location, with an SLA; one per idempotency key."""

    __tablename__ = "staff_tasks"
    __table_args__ = (
        UniqueConstraint("workspace_id", "idempotency_key", name="uq_staff_tasks_key"),
        Index("ix_staff_tasks_status", "workspace_id", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    profile_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(255))
    playbook: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500))
    role: Mapped[str] = mapped_column(String(32))
    location: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime]
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]


class Send(Base):
    """The send ledger: a row commits with its idempotency key before the provider is called,
    so a crash can never make us call twice without knowing it."""

    __tablename__ = "sends"
    __table_args__ = (
        UniqueConstraint("workspace_id", "idempotency_key", name="uq_sends_key"),
        Index("ix_sends_profile_channel", "workspace_id", "profile_id", "channel", "created_at"),
        Index("ix_sends_status", "status", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    profile_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(255))
    playbook: Mapped[str | None] = mapped_column(String(64))
    step_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(16))
    to: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16))  # pending | sent | failed | unknown
    provider_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SendLink(Base):
    """A link in a sent message, behind `/l/{token}`. The token is derived from the send's key
    and the link (an HMAC under the server's secret), so a step rendered again after a crash
    carries the same tokens, and nobody can guess another message's links. Who clicked and
    from which playbook and step is read from the send it belongs to."""

    __tablename__ = "send_links"
    __table_args__ = (
        UniqueConstraint("token", name="uq_send_links_token"),
        Index("ix_send_links_send", "workspace_id", "send_key"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    token: Mapped[str] = mapped_column(String(32))
    send_key: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(Text)  # where it goes, UTM tags included
    created_at: Mapped[datetime]
