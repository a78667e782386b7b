"""twilio sms: the connection (sealed auth token), inbound MessageSids, provider columns on the outbox

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "twilio_connections",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("account_sid", sa.String(length=64), nullable=False),
        sa.Column("sealed_auth_token", sa.Text(), nullable=False),
        sa.Column("token_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("from_number", sa.String(length=32), nullable=False),
        sa.Column("api_base_url", sa.String(length=500), nullable=True),
        sa.Column("stop_reply", sa.Text(), nullable=True),
        sa.Column("help_text", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"]),
        sa.PrimaryKeyConstraint("workspace_id"),
    )
    op.create_table(
        "twilio_inbound_messages",
        sa.Column("id", ID_TYPE, autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("message_sid", sa.String(length=64), nullable=False),
        sa.Column("from_number", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ux_twilio_inbound_messages", "twilio_inbound_messages", ["workspace_id", "message_sid"], unique=True
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("provider", sa.String(length=16), server_default="sandbox", nullable=False))
        batch.add_column(sa.Column("provider_id", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("status", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("error", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_outbox_provider_id", "outbox", ["workspace_id", "provider_id"])
    # Every earlier row is a sandbox call, delivered the moment it was stored.
    op.execute("UPDATE outbox SET status = 'delivered' WHERE status IS NULL")


def downgrade() -> None:
    op.drop_index("ix_outbox_provider_id", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("error")
        batch.drop_column("status")
        batch.drop_column("provider_id")
        batch.drop_column("provider")
    op.drop_index("ux_twilio_inbound_messages", table_name="twilio_inbound_messages")
    op.drop_table("twilio_inbound_messages")
    op.drop_table("twilio_connections")
