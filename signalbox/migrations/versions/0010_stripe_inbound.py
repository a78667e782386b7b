"""stripe inbound: sealed webhook signing secrets and the processed event ids

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stripe_signing_secrets",
        sa.Column("id", ID_TYPE, autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_stripe_signing_secrets", "stripe_signing_secrets", ["workspace_id", "fingerprint"], unique=True)
    op.create_table(
        "stripe_processed_events",
        sa.Column("id", ID_TYPE, autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_stripe_processed_events", "stripe_processed_events", ["workspace_id", "event_id"], unique=True)
    op.create_index("ix_stripe_processed_events_at", "stripe_processed_events", ["processed_at"])


def downgrade() -> None:
    op.drop_index("ix_stripe_processed_events_at", table_name="stripe_processed_events")
    op.drop_index("ux_stripe_processed_events", table_name="stripe_processed_events")
    op.drop_table("stripe_processed_events")
    op.drop_index("ux_stripe_signing_secrets", table_name="stripe_signing_secrets")
    op.drop_table("stripe_signing_secrets")
