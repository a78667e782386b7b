from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from signalbox.core.db import Base, BigIntPK


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("workspace_id", "message_id", name="uq_events_workspace_message"),
        Index("ix_events_profile_time", "workspace_id", "profile_id", "timestamp"),
        Index("ix_events_event_time_cover", "workspace_id", "event", "timestamp", "type", "profile_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    message_id: Mapped[str] = mapped_column(String(255))
    # The profile node the message's identifiers pointed at when it arrived; reads follow
    # merges from there, so an unmerge gives every event back to the right person.
    profile_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))
    event: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    anonymous_id: Mapped[str | None] = mapped_column(String(255))
    properties: Mapped[dict[str, Any]]
    traits: Mapped[dict[str, Any]]
    context: Mapped[dict[str, Any]]
    timestamp: Mapped[datetime]
    original_timestamp: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    received_at: Mapped[datetime]
