"""today_indexes: people by home location, for the dashboard's Today page

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

Today counts members and High-band members per location and ranks a location's people by
score; on 12,000 members that was a scan of every wide profile row, parsing each one's traits
(~100 ms on SQLite). A partial expression index over the roots' `home_location` trait and band
answers it from the index alone (~3 ms). The expression must be written exactly as
`overview.today.home_location` writes it, or the planner will not match it.

SQLite only: PostgreSQL reads the JSONB column far faster, and it reflects expression indexes,
so an index the models cannot declare (the expression differs per database) would read as
schema drift there; SQLite's reflection skips expression indexes.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "CREATE INDEX ix_profiles_home_location ON profiles "
        "(workspace_id, json_extract(traits, '$.home_location'), at_risk_band) WHERE merged_into_id IS NULL"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP INDEX IF EXISTS ix_profiles_home_location")
