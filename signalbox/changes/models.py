from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from signalbox.core.db import Base, JSONType


class ChangeSequence(Base):
    """One row per workspace: the last sequence number handed out. Every writer bumps it in
    its own transaction, and the row lock it takes is held until commit, so sequence numbers
    become visible in the order they were handed out (no reader ever sees 7 before 6)."""

    __tablename__ = "change_sequences"

    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    # Rows at or below this were trimmed; a consumer behind it must start over with a full pass.
    trimmed_through: Mapped[int] = mapped_column(BigInteger)


class Change(Base):
    """Append-only. `profile_id` is the node (events) or root (everything else) concerned at
    write time; readers follow merges from there to today's root."""

    __tablename__ = "change_log"

    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))
    profile_id: Mapped[str] = mapped_column(String(64))
    # The stored event's message_id, or the merge log entry's id: the row this change is about.
    ref: Mapped[str | None] = mapped_column(String(255))
    # The event's name, the band moved into, ...: what a trigger filters on without a join.
    name: Mapped[str | None] = mapped_column(String(255))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime]


class ChangeCursor(Base):
    """How far one consumer (`traits`, `scores`, later each journey trigger) has read."""

    __tablename__ = "change_cursors"

    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"), primary_key=True)
    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]
