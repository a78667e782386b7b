"""churn_models table; churn probability, model and prediction time on profiles

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "churn_models",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("activity_events", JSON_TYPE, nullable=False),
        sa.Column("feature_names", JSON_TYPE, nullable=False),
        sa.Column("knobs", JSON_TYPE, nullable=False),
        sa.Column("report", JSON_TYPE, nullable=False),
        sa.Column("estimator", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("churn_models", schema=None) as batch_op:
        batch_op.create_index("ix_churn_models_workspace", ["workspace_id", "id"], unique=False)
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("churn_probability", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("churn_model_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("predicted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        for column in ("predicted_at", "churn_model_id", "churn_probability"):
            batch_op.drop_column(column)
    with op.batch_alter_table("churn_models", schema=None) as batch_op:
        batch_op.drop_index("ix_churn_models_workspace")
    op.drop_table("churn_models")
