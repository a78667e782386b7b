from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class StoredEvent:
    message_id: str
    type: str
    event: str | None
    properties: dict[str, Any]
    traits: dict[str, Any]
    timestamp: datetime
    received_at: datetime
