from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    segment: str
    name: str | None
    version: int
    members: int
    refreshed_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MemberInfo:
    user_id: str | None
    profile_id: str
    entered_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshResult:
    segment: str
    members: int
    entered: int
    left: int
