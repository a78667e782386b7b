from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from signalbox.core.db import Base, BigIntPK, JSONType


class ConsentChange(Base):
    """Append-only. The newest row (by `at`, then id) per person and channel is their state."""

    __tablename__ = "consent_ledger"
    __table_args__ = (Index("ix_consent_profile", "workspace_id", "profile_id", "channel", "at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    # The node the change came in on; readers follow merges, like events.
    profile_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))  # email | sms
    purpose: Mapped[str] = mapped_column(String(16))  # marketing | all
    status: Mapped[str] = mapped_column(String(16))  # granted | revoked
    source: Mapped[str] = mapped_column(String(32))  # identify | cli | api | sms_keyword | unsubscribe_link
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType)
    at: Mapped[datetime]
    created_at: Mapped[datetime]
