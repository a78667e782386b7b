from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from signalbox.core.db import Base, BigIntPK


class DeadLetter(Base):
    """A message that did not land: rejected input (``kind='rejected'``) or our own failure
    (``kind='failed'``). The body is kept here, never in logs, so it can be replayed."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_workspace_status", "workspace_id", "status", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    kind: Mapped[str] = mapped_column(String(16))
    step: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(32))  # http | import | replay
    message: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))  # pending | replayed
    replayed_at: Mapped[datetime | None]
