from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkspaceInfo:
    id: str
    name: str
    default_region: str
    timezone: str


@dataclass(frozen=True)
class CreatedWorkspace:
    """The only moment the plain keys exist; they are stored hashed."""

    id: str
    name: str
    write_key: str
    admin_key: str
    default_region: str
    timezone: str
