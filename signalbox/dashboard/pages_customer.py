"""Customers: the search, one customer's page with its single timeline, and "take over"
(pause automation for a person). Each page has a JSON twin under /api/v1/ with the same data
and the same scoping; routes only translate, the reads are in `overview.customer` and the one
write is `journeys.set_automation`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from signalbox.core.errors import InvalidInputError, NotFoundError
from signalbox.dashboard.access import TWIN_DEPENDENCIES, Access, AccessDep, ApiViewer, PageViewer, Viewer, check_csrf
from signalbox.dashboard.web import Form, page, redirect
from signalbox.ingestion.schemas import ErrorBody
from signalbox.journeys import service as journeys
from signalbox.overview import customer as overview
from signalbox.workspaces import service as workspaces

router = APIRouter(include_in_schema=False)  # pages for people, not the API
api = APIRouter(prefix="/api/v1", tags=["dashboard"], dependencies=TWIN_DEPENDENCIES)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid search, cursor or body"},
    401: {"model": ErrorBody, "description": "No session and no (or a wrong) admin key"},
    404: {"model": ErrorBody, "description": "No such person among those the caller may see"},
}
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    403: {"model": ErrorBody, "description": "A session without its CSRF token (X-CSRF-Token)"},
}


def include(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(api)


# ---- time as people read it -------------------------------------------------------------------


class Clockface:
    """Moments in the workspace's zone, absolute and relative to the server's clock."""

    def __init__(self, zone: str, now: datetime) -> None:
        try:
            self.zone = ZoneInfo(zone)
        except (KeyError, ValueError):
            self.zone = ZoneInfo("UTC")
        self.now = now

    def absolute(self, when: datetime | str | None) -> str:
        at = _moment(when)
        if at is None:
            return "—"
        return at.astimezone(self.zone).strftime("%a %d %b %Y %H:%M %Z")

    def short(self, when: datetime | str | None) -> str:
        """For narrow table cells: the date and time, no weekday or zone."""
        at = _moment(when)
        return "—" if at is None else at.astimezone(self.zone).strftime("%d %b %Y %H:%M")

    def iso(self, when: datetime | str | None) -> str:
        at = _moment(when)
        return "" if at is None else at.isoformat()

    def relative(self, when: datetime | str | None) -> str:
        at = _moment(when)
        if at is None:
            return "never"
        seconds = int((self.now - at).total_seconds())
        ahead, seconds = seconds < 0, abs(seconds)
        for size, unit in ((86400 * 365, "y"), (86400 * 30, "mo"), (86400, "d"), (3600, "h"), (60, "min")):
            if seconds >= size:
                text = f"{seconds // size} {unit}"
                break
        else:
            return "just now"
        return f"in {text}" if ahead else f"{text} ago"


def _moment(when: datetime | str | None) -> datetime | None:
    """The read models' JSON-ready ISO strings back to moments, for display."""
    if isinstance(when, str):
        try:
            return datetime.fromisoformat(when)
        except ValueError:
            return None
    return when


def _clockface(access: Access, viewer: Viewer) -> Clockface:
    zone = workspaces.get_workspace(access.db, viewer.workspace_id).timezone
    return Clockface(zone, access.clock.now())


def customer_url(user_id: str | None, **query: str) -> str:
    url = f"/customers/{quote(user_id or '', safe='')}"
    return url + ("?" + urlencode(query) if query else "")


# ---- pages ------------------------------------------------------------------------------------


def _base(viewer: Viewer) -> dict[str, Any]:
    return {"user": viewer, "csrf_token": viewer.csrf_token, "nav": "customers"}


@router.get("/customers")
def customers_page(viewer: PageViewer, access: AccessDep, q: str = "", offset: str = "0") -> Response:
    try:
        start = _offset(offset)
        found = overview.search(access.db, viewer.workspace_id, viewer.locations, q, offset=start)
    except InvalidInputError as exc:
        return page("customers.html", 400, error=exc.message, q=q[: overview.MAX_QUERY], found=None, **_base(viewer))
    more = customers_more(found)
    return page(
        "customers.html",
        q=found.q,
        found=found,
        more=more,
        customer_url=customer_url,
        clock=_clockface(access, viewer),
        **_base(viewer),
    )


def customers_more(found: overview.CustomerList) -> str | None:
    if found.next_offset is None:
        return None
    return "/customers?" + urlencode({"q": found.q, "offset": str(found.next_offset)})


def _offset(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 7:
        raise InvalidInputError("offset must be a whole number")
    return int(text)


@router.get("/customers/{user_id}")
def customer_page(viewer: PageViewer, access: AccessDep, user_id: str, before: str = "") -> Response:
    try:
        found = overview.customer_page(access.db, viewer.workspace_id, viewer.locations, user_id, before=before or None)
    except NotFoundError:
        return page("customer.html", 404, missing=True, **_base(viewer))
    except InvalidInputError as exc:
        return page("customer.html", 400, missing=True, error=exc.message, **_base(viewer))
    older = None
    if found.timeline.next_before:
        older = customer_url(found.user_id, before=found.timeline.next_before) + "#timeline"
    return page(
        "customer.html",
        c=found,
        older=older,
        paged=bool(before),
        clock=_clockface(access, viewer),
        customer_url=customer_url,
        **_base(viewer),
    )


def _take_over(access: Access, viewer: Viewer, user_id: str, paused: bool) -> str | None:
    """404 for a person the viewer may not see, before anything is written."""
    doc = overview.find_person(access.db, viewer.workspace_id, viewer.locations, user_id)
    assert doc.user_id is not None
    return journeys.set_automation(access.db, viewer.workspace_id, doc.user_id, paused, access.clock.now())


@router.post("/customers/{user_id}/automation")
async def take_over_form(viewer: PageViewer, access: AccessDep, request: Request, form: Form, user_id: str) -> Response:
    check_csrf(viewer, request, form)
    paused = form.get("paused", "")
    if paused not in ("1", "0", "true", "false"):
        return page("customer.html", 400, missing=True, error="say paused=1 or paused=0", **_base(viewer))
    try:
        await run_in_threadpool(_take_over, access, viewer, user_id, paused in ("1", "true"))
    except NotFoundError:
        return page("customer.html", 404, missing=True, **_base(viewer))
    # 303 for the plain form; htmx follows it too and swaps in the fresh automation panel.
    return redirect(customer_url(user_id) + "#automation")


# ---- JSON twins -------------------------------------------------------------------------------


@api.get(
    "/customers", responses=_ERRORS, summary="Search the people the caller may see (identifiers and names), 50 a page"
)
def customers_json(
    viewer: ApiViewer,
    access: AccessDep,
    q: Annotated[str, Query(description="user id, e-mail, phone or name (part of one)")] = "",
    offset: Annotated[int, Query(ge=0, le=overview.MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    return overview.search(access.db, viewer.workspace_id, viewer.locations, q, offset=offset).to_dict()


@api.get(
    "/customers/{user_id}",
    responses=_ERRORS,
    summary="One customer: identifiers, merges, consent, score, automation, timeline",
)
def customer_json(
    viewer: ApiViewer,
    access: AccessDep,
    user_id: str,
    before: Annotated[str | None, Query(description="next_before of the previous timeline page")] = None,
    limit: Annotated[int, Query(ge=1, le=overview.MAX_TIMELINE_LIMIT)] = overview.TIMELINE_LIMIT,
) -> dict[str, Any]:
    found = overview.customer_page(
        access.db, viewer.workspace_id, viewer.locations, user_id, before=before, limit=limit
    )
    return found.to_dict()


@api.get("/profiles/{user_id}/timeline", responses=_ERRORS, summary="One person's timeline, newest first")
def timeline_json(
    viewer: ApiViewer,
    access: AccessDep,
    user_id: str,
    before: Annotated[str | None, Query(description="next_before of the previous page, or an ISO 8601 time")] = None,
    limit: Annotated[int, Query(ge=1, le=overview.MAX_TIMELINE_LIMIT)] = overview.TIMELINE_LIMIT,
) -> dict[str, Any]:
    found = overview.timeline(access.db, viewer.workspace_id, viewer.locations, user_id, before=before, limit=limit)
    return found.to_dict()


class AutomationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    paused: bool


@api.post(
    "/customers/{user_id}/automation",
    responses=_WRITE_ERRORS,
    summary="Take over: pause (or resume) automation for one person",
)
async def take_over_json(
    viewer: ApiViewer, access: AccessDep, request: Request, user_id: str, body: AutomationIn
) -> dict[str, Any]:
    check_csrf(viewer, request)
    uid = await run_in_threadpool(_take_over, access, viewer, user_id, body.paused)
    return {"user_id": uid, "automation": "paused" if body.paused else "active"}
