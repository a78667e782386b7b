"""Who is looking, and what they may see: the one place a page or its JSON twin learns its
viewer, and the one rule for locations.

A page needs a session cookie (else it redirects to /login). The JSON twins under /api/v1/
take the same cookie or the workspace's admin key (a script: every location). A viewer with a
list of locations sees only what belongs to one of them: a person by their `home_location`
trait, a task by its location. Anything else answers 404, exactly as if it did not exist, so a
scoped viewer cannot even learn that another location's person or number is there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from signalbox.accounts import service as accounts
from signalbox.core.clock import Clock
from signalbox.core.db import Database
from signalbox.core.errors import ForbiddenError, InvalidInputError, NotFoundError, UnauthorizedError
from signalbox.dashboard.web import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE
from signalbox.ingestion.schemas import ErrorBody
from signalbox.workspaces import service as workspaces

MAX_LOCATION = 64


class SignInNeeded(Exception):
    """A page asked for without a live session: answered with a redirect to /login."""


class CsrfRefused(ForbiddenError):
    code = "csrf_refused"

    def __init__(self) -> None:
        super().__init__("this request did not come from a signalbox page (CSRF token missing or wrong)")


@dataclass(frozen=True, slots=True)
class Viewer:
    workspace_id: str
    email: str
    role: str  # owner | manager | staff
    locations: tuple[str, ...] | None  # None: every location
    session_token: str | None = None  # None: a script with the admin key (no forms, no CSRF)

    @property
    def csrf_token(self) -> str | None:
        return accounts.csrf_token(self.session_token) if self.session_token else None

    @property
    def scoped(self) -> bool:
        return self.locations is not None

    def sees(self, location: str | None) -> bool:
        """A scoped viewer sees what belongs to one of their locations, and nothing without one."""
        return self.locations is None or (location is not None and location in self.locations)

    def scope(self, location: str | None = None) -> tuple[str, ...] | None:
        """The locations a query may return: the one asked for (404 when not the viewer's), or
        all of the viewer's (None: every location)."""
        if location in (None, ""):
            return self.locations
        assert location is not None
        if len(location) > MAX_LOCATION or not location.isprintable():
            raise InvalidInputError(f"location must be a location id such as loc-01, at most {MAX_LOCATION} characters")
        if not self.sees(location):
            raise NotFoundError(f"no location {location!r}")
        return (location,)

    def check(self, location: str | None) -> None:
        """404 for a single thing (a person, a task) outside the viewer's locations."""
        if not self.sees(location):
            raise NotFoundError("not found")

    def to_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "role": self.role,
            "locations": None if self.locations is None else list(self.locations),
        }


class Access:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    def from_session(self, request: Request) -> Viewer | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        user = accounts.user_for_session(self.db, token, self.clock)
        if user is None:
            return None
        return Viewer(user.workspace_id, user.email, user.role, user.locations, token)

    def from_admin_key(self, key: str) -> Viewer | None:
        workspace = workspaces.workspace_for_admin_key(self.db, key)
        if workspace is None:
            return None
        return Viewer(workspace.id, "admin-key", "owner", None)


def _access(request: Request) -> Access:
    found: Access = request.app.state.dashboard_access
    return found


def page_viewer(request: Request) -> Viewer:
    viewer = _access(request).from_session(request)
    if viewer is None:
        raise SignInNeeded()
    return viewer


_bearer = HTTPBearer(auto_error=False, description="The workspace's admin key (or the dashboard's session cookie).")


def api_viewer(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Viewer:
    access = _access(request)
    if credentials is not None and credentials.scheme.lower() == "bearer" and credentials.credentials:
        viewer = access.from_admin_key(credentials.credentials)
        if viewer is None:
            raise UnauthorizedError("the admin key is not valid")
        return viewer
    viewer = access.from_session(request)
    if viewer is None:
        raise UnauthorizedError("sign in to the dashboard or send the admin key as `Authorization: Bearer <key>`")
    return viewer


def check_csrf(viewer: Viewer, request: Request, form: dict[str, str] | None = None) -> None:
    """Every state-changing request from a browser carries the session's token (a form field,
    or the header htmx adds); a script with the admin key has no cookie to ride on."""
    if viewer.session_token is None:
        return
    given = (form or {}).get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not accounts.csrf_matches(viewer.session_token, given):
        raise CsrfRefused()


# What every JSON twin may answer besides 200, for the OpenAPI document (and its fuzz test).
TWIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A parameter or body that is not valid"},
    401: {"model": ErrorBody, "description": "No session and no (or a wrong) admin key"},
    403: {"model": ErrorBody, "description": "A session's change without its CSRF token, or a role that may not"},
    404: {
        "model": ErrorBody,
        "description": "Not among what the caller may see (another location's looks the same)",
    },
}


def no_store(response: Response) -> None:
    """A twin's answer is a person's data, like its page: never kept by a shared cache."""
    response.headers["Cache-Control"] = "no-store"


TWIN_DEPENDENCIES = [Depends(no_store)]
AccessDep = Annotated[Access, Depends(_access)]  # its `db` and `clock`, for a page's reads
PageViewer = Annotated[Viewer, Depends(page_viewer)]
ApiViewer = Annotated[Viewer, Depends(api_viewer)]
