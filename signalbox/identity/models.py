from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from signalbox.core.db import Base, BigIntPK


class Identifier(Base):
    """One normalized identifier value, owned by exactly one profile node."""

    __tablename__ = "identifiers"
    __table_args__ = (
        UniqueConstraint("workspace_id", "type", "value", name="uq_identifiers_value"),
        Index("ix_identifiers_profile", "workspace_id", "profile_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    type: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(255))
    profile_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class MergeLogEntry(Base):
    """Append-only: a merge or an unmerge, who decided it and why."""

    __tablename__ = "merge_log"
    __table_args__ = (Index("ix_merge_log_workspace", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    action: Mapped[str] = mapped_column(String(16))  # merge | unmerge
    source_profile_id: Mapped[str] = mapped_column(String(64))
    target_profile_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(64))  # auto | review | cli
    undoes_id: Mapped[int | None]
    created_at: Mapped[datetime]


class MergeReview(Base):
    """Two nodes that look like one person but that no rule may join on its own."""

    __tablename__ = "merge_reviews"
    __table_args__ = (
        UniqueConstraint("workspace_id", "profile_a_id", "profile_b_id", name="uq_merge_review_pair"),
        Index("ix_merge_reviews_status", "workspace_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    # Sorted pair, so the same question is only asked once.
    profile_a_id: Mapped[str] = mapped_column(String(64))
    profile_b_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16))  # pending | accepted | rejected
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
