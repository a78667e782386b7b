"""date triggers: when each person's date-relative trigger fires

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "date_triggers",
        sa.Column("workspace_id", sa.String(length=64), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("playbook_key", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("fire_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "playbook_key", "profile_id"),
    )
    op.create_index("ix_date_triggers_due", "date_triggers", ["fire_at"])


def downgrade() -> None:
    op.drop_index("ix_date_triggers_due", table_name="date_triggers")
    op.drop_table("date_triggers")
