"""The workspace's locations, as its people and events carry them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from signalbox.core.db import Database
from signalbox.profiles import service as profiles


@dataclass(frozen=True, slots=True)
class LocationInfo:
    id: str
    name: str | None
    members: int  # people whose home_location is this one

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "members": self.members}


def list_locations(db: Database, workspace_id: str, only: tuple[str, ...] | None = None) -> list[LocationInfo]:
    """Every location (or only those in `only`, a viewer's list)."""
    with db.session() as session:
        found = profiles.locations(session, workspace_id)
    return [LocationInfo(key, name, members) for key, name, members in found if only is None or key in only]
