from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Channel = Literal["email", "sms"]
CHANNELS: tuple[Channel, ...] = ("email", "sms")
STATUSES = ("granted", "revoked")
PURPOSES = ("marketing", "all")


@dataclass(frozen=True, slots=True)
class ConsentState:
    status: str  # granted | revoked | unknown
    purpose: str | None
    source: str | None
    updated_at: datetime | None

    def allows(self, purpose: str) -> bool:
        """Marketing needs a grant; a transactional message needs only no revocation of the
        channel (a revocation of marketing alone still lets a receipt through)."""
        if purpose == "marketing":
            return self.status == "granted"
        return not (self.status == "revoked" and self.purpose == "all")

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "purpose": self.purpose,
            "source": self.source,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


UNKNOWN = ConsentState("unknown", None, None, None)


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    id: int
    channel: str
    purpose: str
    status: str
    source: str
    evidence: dict[str, Any]
    at: datetime
