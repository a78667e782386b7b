from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from signalbox.core.db import Base, BigIntPK, JSONType


class User(Base):
    """A person who signs in to the dashboard; belongs to one workspace."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("workspace_id", "email", name="uq_users_workspace_email"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    # Stored lower-cased, so the unique constraint is case-insensitive on both databases.
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    # None means every location of the workspace, including ones that appear later.
    locations: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class UserSession(Base):
    """A signed-in browser. Only a SHA-256 of the cookie's token is kept, so a copy of the
    database does not hand out sessions."""

    __tablename__ = "user_sessions"
    __table_args__ = (Index("ix_user_sessions_user", "workspace_id", "user_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    user_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class LoginFailure(Base):
    """One refused sign-in, kept for the rate limit's window. The key is a digest of workspace,
    e-mail and client address, so the table names nobody and counts across processes."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_key", "key_hash", "failed_at"),
        Index("ix_login_failures_at", "failed_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime]
