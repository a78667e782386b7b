"""computed traits and the at-risk score on profiles; workspace settings

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("settings", JSON_TYPE, nullable=False, server_default=sa.text("'{}'")))
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("computed_traits", JSON_TYPE, nullable=True))
        batch_op.add_column(sa.Column("traits_computed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("at_risk_score", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("at_risk_band", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("at_risk_components", JSON_TYPE, nullable=True))
        batch_op.add_column(sa.Column("score_as_of", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("scored_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_profiles_band_score", ["workspace_id", "at_risk_band", "at_risk_score"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.drop_index("ix_profiles_band_score")
        for column in (
            "scored_at",
            "score_as_of",
            "at_risk_components",
            "at_risk_band",
            "at_risk_score",
            "traits_computed_at",
            "computed_traits",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.drop_column("settings")
