"""Typed data the accounts capability hands out, and the errors it answers with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from signalbox.core.errors import SignalboxError, UnauthorizedError

Role = Literal["owner", "manager", "staff"]
ROLES: tuple[str, ...] = get_args(Role)


class BadCredentialsError(UnauthorizedError):
    """One message whatever was wrong (workspace, e-mail, password, disabled), so the answer
    does not tell a guesser which accounts exist."""

    code = "bad_credentials"

    def __init__(self) -> None:
        super().__init__("the workspace, e-mail or password is not right")


class RateLimitedError(SignalboxError):
    code = "rate_limited"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after_seconds} seconds")
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: str
    workspace_id: str
    email: str
    role: Role
    locations: tuple[str, ...] | None  # None: every location
    disabled_at: datetime | None
    created_at: datetime
    last_login_at: datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def sees_location(self, location_id: str) -> bool:
        return self.locations is None or location_id in self.locations

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "role": self.role,
            "locations": None if self.locations is None else list(self.locations),
            "disabled_at": _iso(self.disabled_at),
            "created_at": self.created_at.isoformat(),
            "last_login_at": _iso(self.last_login_at),
        }


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The only moment the plain session token exists: it goes into the cookie, its digest into
    the database."""

    token: str
    user: UserInfo
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Disabled:
    user: UserInfo
    sessions_ended: int


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
