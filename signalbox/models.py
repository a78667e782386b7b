"""Imports every capability's tables so Alembic and tests see one complete metadata."""

from __future__ import annotations


def load_all_models() -> None:
    import signalbox.accounts.models
    import signalbox.changes.models
    import signalbox.channels.models
    import signalbox.connectors.models
    import signalbox.consent.models
    import signalbox.events.models
    import signalbox.identity.models
    import signalbox.ingestion.models
    import signalbox.journeys.models
    import signalbox.profiles.models
    import signalbox.scoring.models
    import signalbox.segments.models
    import signalbox.workspaces.models  # noqa: F401
