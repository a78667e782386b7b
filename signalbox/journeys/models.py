from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from signalbox.core.db import Base, BigIntPK


class Playbook(Base):
    """A playbook's identity and switch; what it does lives in its versions."""

    __tablename__ = "playbooks"
    __table_args__ = (UniqueConstraint("workspace_id", "key", name="uq_playbooks_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # active | paused
    # New enrolments use this one; an enrolment keeps the version it started on.
    current_version: Mapped[int]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PlaybookVersion(Base):
    """Append-only: one row each time an applied file's definition changed."""

    __tablename__ = "playbook_versions"
    __table_args__ = (
        UniqueConstraint("workspace_id", "playbook_key", "version", name="uq_playbook_versions"),
        Index("ix_playbook_versions_digest", "workspace_id", "playbook_key", "digest"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    playbook_key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    digest: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]


class MessageTemplate(Base):
    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("workspace_id", "key", name="uq_message_templates_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    key: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    current_version: Mapped[int]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TemplateVersion(Base):
    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("workspace_id", "template_key", "version", name="uq_template_versions"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    template_key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    digest: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]
