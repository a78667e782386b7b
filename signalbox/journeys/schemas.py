from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


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


@dataclass(frozen=True, slots=True)
class EnrollmentInfo:
    id: str
    playbook: str
    version: int
    user_id: str | None
    entry_key: str
    status: str
    exit_reason: str | None
    holdout: bool
    position: str | None
    due_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DecisionInfo:
    enrollment_id: str | None
    user_id: str | None
    playbook: str
    step: str | None
    outcome: str
    reason: str | None
    channel: str | None
    at: datetime
    detail: dict[str, Any] | None = None  # e.g. a delay's `until`, a fallback's reason
