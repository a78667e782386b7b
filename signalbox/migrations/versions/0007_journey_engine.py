"""journey engine: enrollments, decisions, automation holds; sends ledger,
sandbox outbox, staff tasks

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _ws() -> sa.Column[str]:
    return sa.Column("workspace_id", sa.String(length=64), sa.ForeignKey("workspaces.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "enrollments",
        sa.Column("id", sa.String(length=40), primary_key=True),
        _ws(),
        sa.Column("playbook_key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=True),
        sa.Column("entry_key", sa.String(length=255), nullable=False),
        sa.Column("entry_lock", sa.String(length=400), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("exit_reason", sa.String(length=32), nullable=True),
        sa.Column("holdout", sa.Boolean(), nullable=False),
        sa.Column("trigger", JSON_TYPE, nullable=False),
        sa.Column("position", sa.String(length=64), nullable=True),
        sa.Column("waiting", JSON_TYPE, nullable=True),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("exited_at", TS, nullable=True),
        sa.UniqueConstraint("workspace_id", "playbook_key", "entry_lock", name="uq_enrollments_entry"),
    )
    op.create_index("ix_enrollments_due", "enrollments", ["status", "due_at"])
    op.create_index("ix_enrollments_profile", "enrollments", ["workspace_id", "profile_id", "status"])
    op.create_index("ix_enrollments_playbook", "enrollments", ["workspace_id", "playbook_key", "created_at"])
    op.create_table(
        "decisions",
        sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
        _ws(),
        sa.Column("enrollment_id", sa.String(length=40), nullable=True),
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=True),
        sa.Column("playbook_key", sa.String(length=64), nullable=False),
        sa.Column("step_id", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("detail", JSON_TYPE, nullable=True),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_decisions_enrollment", "decisions", ["workspace_id", "enrollment_id"])
    op.create_index("ix_decisions_profile", "decisions", ["workspace_id", "profile_id", "at"])
    op.create_table(
        "automation_holds",
        _ws(),
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("paused_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "profile_id"),
    )
    op.create_table(
        "sends",
        sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
        _ws(),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=True),
        sa.Column("playbook", sa.String(length=64), nullable=True),
        sa.Column("step_id", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("to", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider_id", sa.String(length=200), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("workspace_id", "idempotency_key", name="uq_sends_key"),
    )
    op.create_index("ix_sends_profile_channel", "sends", ["workspace_id", "profile_id", "channel", "created_at"])
    op.create_index("ix_sends_status", "sends", ["status", "updated_at"])
    op.create_table(
        "outbox",
        sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
        _ws(),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("to", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_outbox_key", "outbox", ["workspace_id", "idempotency_key"])
    op.create_table(
        "staff_tasks",
        sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
        _ws(),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=True),
        sa.Column("playbook", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=True),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("done_at", TS, nullable=True),
        sa.UniqueConstraint("workspace_id", "idempotency_key", name="uq_staff_tasks_key"),
    )
    op.create_index("ix_staff_tasks_status", "staff_tasks", ["workspace_id", "status", "due_at"])


def downgrade() -> None:
    for table in (
        "staff_tasks",
        "outbox",
        "sends",
        "automation_holds",
        "decisions",
        "enrollments",
    ):
        op.drop_table(table)
