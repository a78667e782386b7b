from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
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
    # The change-log head when the playbook was first applied: its triggers act on what
    # happens from then on, never retroactively on history.
    start_seq: Mapped[int] = mapped_column(BigInteger)
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


class Enrollment(Base):
    """One person's run through one playbook version; also its schedule (`position`, `due_at`).

    `entry_lock` enforces the entry rule with one unique index: `once` keeps
    "profile|key" forever, `after_exit` keeps it while active (cleared on exit), `every_time`
    holds "event:<message id>", so a repeated trigger can never enrol twice."""

    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("workspace_id", "playbook_key", "entry_lock", name="uq_enrollments_entry"),
        Index("ix_enrollments_due", "status", "due_at"),
        Index("ix_enrollments_profile", "workspace_id", "profile_id", "status"),
        Index("ix_enrollments_playbook", "workspace_id", "playbook_key", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    playbook_key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    profile_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(255))
    entry_key: Mapped[str] = mapped_column(String(255))
    entry_lock: Mapped[str | None] = mapped_column(String(400))
    status: Mapped[str] = mapped_column(String(16))  # active | completed | exited
    exit_reason: Mapped[str | None] = mapped_column(String(32))
    holdout: Mapped[bool]
    # The trigger event (message_id, event, properties, timestamp) the `event.` paths read.
    trigger: Mapped[dict[str, Any]]
    position: Mapped[str | None] = mapped_column(String(64))  # the step to run next; None: done
    waiting: Mapped[dict[str, Any] | None]  # a wait_for: {"event", "match"}
    due_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    exited_at: Mapped[datetime | None]


class Decision(Base):
    """Append-only: every action and non-action of the engine, with its reason code."""

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_enrollment", "workspace_id", "enrollment_id"),
        Index("ix_decisions_profile", "workspace_id", "profile_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    enrollment_id: Mapped[str | None] = mapped_column(String(40))
    profile_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(255))
    playbook_key: Mapped[str] = mapped_column(String(64))
    step_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[dict[str, Any] | None]
    at: Mapped[datetime]


class AutomationHold(Base):
    """A person taken out of every playbook's automated steps (`profile automation pause`)."""

    __tablename__ = "automation_holds"

    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused_at: Mapped[datetime]


class DateTrigger(Base):
    """When a date trigger fires for a person: computed from their trait in their zone when
    the trait changes (or the playbook is applied), removed when it fires."""

    __tablename__ = "date_triggers"
    __table_args__ = (Index("ix_date_triggers_due", "fire_at"),)

    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"), primary_key=True)
    playbook_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    fire_at: Mapped[datetime]
    value: Mapped[str] = mapped_column(String(64))  # the trait's value it was computed from
