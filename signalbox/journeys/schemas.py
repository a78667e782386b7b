from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Applied:
    """What `apply` did with one file."""

    kind: str  # playbook | template
    key: str
    version: int
    changed: bool
    source: str


@dataclass(frozen=True, slots=True)
class PlaybookInfo:
    playbook: str
    name: str
    purpose: str
    trigger: str  # event:NAME | enters | date
    version: int
    status: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    template: str
    channel: str
    version: int
    updated_at: datetime
