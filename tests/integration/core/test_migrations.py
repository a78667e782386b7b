"""The migrations build exactly the tables the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from signalbox.core.db import Base
from signalbox.models import load_all_models


def test_migrated_schema_matches_the_models(db):
    load_all_models()
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
