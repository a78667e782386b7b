"""events covering index: the event/time index also holds type and profile, so the traits of a
million people are read from the index alone instead of a table lookup per event

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COVER = ["workspace_id", "event", "timestamp", "type", "profile_id"]


def upgrade() -> None:
    # The new index starts with the old one's columns, so every query that used the old one
    # can use it; keeping both would only cost every insert a second entry.
    op.create_index("ix_events_event_time_cover", "events", COVER)
    op.drop_index("ix_events_workspace_event_time", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_workspace_event_time", "events", ["workspace_id", "event", "timestamp"])
    op.drop_index("ix_events_event_time_cover", table_name="events")
