"""The Playbooks pages (list, detail with pause and resume) and the Outbox page, with their
JSON twins under /api/v1/dashboard/ (the admin API's /api/v1/playbooks is a different
resource: every number there is the whole workspace's, here the viewer's locations').

Routes only translate: the numbers come from `overview.playbooks` and `overview.outbox`,
pause and resume go through `journeys.set_status`, the same write as `signalbox playbooks
pause|resume`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from signalbox.core.errors import ForbiddenError, InvalidInputError, NotFoundError
from signalbox.dashboard.access import (
    TWIN_DEPENDENCIES,
    TWIN_RESPONSES,
    Access,
    AccessDep,
    ApiViewer,
    PageViewer,
    Viewer,
    check_csrf,
)
from signalbox.dashboard.web import Form, page, redirect
from signalbox.journeys import service as journeys
from signalbox.overview import outbox as overview_outbox
from signalbox.overview import playbooks as overview_playbooks

# Who may switch a playbook off for everyone: it changes what every location's people receive.
STEERING_ROLES = frozenset({"owner", "manager"})
STATUS_FOR = {"pause": "paused", "resume": "active"}
MAX_KEY = 64


class MayNotSteer(ForbiddenError):
    code = "role_refused"

    def __init__(self) -> None:
        super().__init__("only an owner or a manager may pause or resume a playbook")


Channel = Annotated[str, Query(max_length=10, description="email or sms; empty: both")]
Before = Annotated[int | None, Query(ge=1, le=2**62, description="the `next_before` of the previous page")]

pages = APIRouter(include_in_schema=False)
twins = APIRouter(
    prefix="/api/v1/dashboard", tags=["dashboard"], responses=TWIN_RESPONSES, dependencies=TWIN_DEPENDENCIES
)


def may_steer(viewer: Viewer) -> bool:
    return viewer.role in STEERING_ROLES


def _key(key: str) -> str:
    # Longer than any playbook id can be, or with a control character (which PostgreSQL
    # refuses to compare): the same answer as an unknown one.
    if len(key) > MAX_KEY or not key.isprintable():
        raise NotFoundError(f"no playbook {key[:MAX_KEY]!r}")
    return key


def _channel(channel: str) -> str | None:
    if channel in ("", None):
        return None
    if channel not in overview_outbox.CHANNELS:
        raise InvalidInputError(f"channel must be one of {', '.join(overview_outbox.CHANNELS)} (or empty for both)")
    return channel


def _not_found(message: str) -> Response:
    return page("refused.html", 404, message=message)


def _detail_page(viewer: Viewer, access: Access, key: str, status: int = 200, notice: str | None = None) -> Response:
    detail = overview_playbooks.playbook_detail(access.db, viewer.workspace_id, key, viewer.locations)
    return page(
        "playbook.html",
        status,
        user=viewer,
        csrf_token=viewer.csrf_token,
        nav="playbooks",
        p=detail,
        bar=detail.row.lift.bar(),
        may_steer=may_steer(viewer),
        notice=notice,
    )


# ---- pages -------------------------------------------------------------------------------------


@pages.get("/playbooks")
def playbooks_page(viewer: PageViewer, access: AccessDep) -> Response:
    rows = overview_playbooks.list_playbooks(access.db, viewer.workspace_id, viewer.locations)
    return page("playbooks.html", user=viewer, csrf_token=viewer.csrf_token, nav="playbooks", rows=rows)


@pages.get("/playbooks/{key}")
def playbook_page(key: str, viewer: PageViewer, access: AccessDep) -> Response:
    try:
        return _detail_page(viewer, access, _key(key))
    except NotFoundError:
        return _not_found("There is no such playbook.")


async def _steer(
    key: str, action: str, request: Request, viewer: Viewer, access: Access, form: dict[str, str]
) -> Response:
    check_csrf(viewer, request, form)
    if not may_steer(viewer):
        return page(
            "refused.html",
            403,
            user=viewer,
            csrf_token=viewer.csrf_token,
            message="Only an owner or a manager may pause or resume a playbook.",
        )
    try:
        await run_in_threadpool(
            journeys.set_status, access.db, viewer.workspace_id, _key(key), STATUS_FOR[action], access.clock.now()
        )
    except NotFoundError:
        return _not_found("There is no such playbook.")
    if request.headers.get("hx-request"):
        # htmx swaps the controls out of the fresh page; a plain form follows the 303 back.
        done = "Paused: no new entries, due steps wait." if action == "pause" else "Resumed."
        return await run_in_threadpool(_detail_page, viewer, access, key, 200, done)
    return redirect(f"/playbooks/{key}")


@pages.post("/playbooks/{key}/pause")
async def pause_page(key: str, request: Request, viewer: PageViewer, access: AccessDep, form: Form) -> Response:
    return await _steer(key, "pause", request, viewer, access, form)


@pages.post("/playbooks/{key}/resume")
async def resume_page(key: str, request: Request, viewer: PageViewer, access: AccessDep, form: Form) -> Response:
    return await _steer(key, "resume", request, viewer, access, form)


@pages.get("/outbox")
def outbox_page(viewer: PageViewer, access: AccessDep, channel: Channel = "", before: Before = None) -> Response:
    found = overview_outbox.outbox_page(
        access.db, viewer.workspace_id, viewer.locations, channel=_channel(channel), before=before
    )
    return page(
        "outbox.html",
        user=viewer,
        csrf_token=viewer.csrf_token,
        nav="outbox",
        box=found,
        channel=found.channel or "",
        first_page=before is None,
    )


# ---- JSON twins ------------------------------------------------------------------------------


@twins.get("/playbooks", summary="The Playbooks page: each playbook with enrolments and lift from the caller's people")
def playbooks_twin(viewer: ApiViewer, access: AccessDep) -> dict[str, Any]:
    rows = overview_playbooks.list_playbooks(access.db, viewer.workspace_id, viewer.locations)
    return {"playbooks": [r.to_dict() for r in rows], "may_steer": may_steer(viewer)}


@twins.get("/playbooks/{key}", summary="A playbook's page: funnel per step, treated vs holdout, held-back decisions")
def playbook_twin(key: str, viewer: ApiViewer, access: AccessDep) -> dict[str, Any]:
    detail = overview_playbooks.playbook_detail(access.db, viewer.workspace_id, _key(key), viewer.locations)
    return {**detail.to_dict(), "may_steer": may_steer(viewer)}


def _steer_twin(key: str, action: str, request: Request, viewer: Viewer, access: Access) -> dict[str, Any]:
    check_csrf(viewer, request)
    if not may_steer(viewer):
        raise MayNotSteer()
    found = journeys.set_status(access.db, viewer.workspace_id, _key(key), STATUS_FOR[action], access.clock.now())
    return {"playbook": found.playbook, "status": found.status, "version": found.version}


@twins.post("/playbooks/{key}/pause", summary="Pause a playbook (owner or manager): no new entries, due steps wait")
def pause_twin(key: str, request: Request, viewer: ApiViewer, access: AccessDep) -> dict[str, Any]:
    return _steer_twin(key, "pause", request, viewer, access)


@twins.post("/playbooks/{key}/resume", summary="Resume a paused playbook (owner or manager)")
def resume_twin(key: str, request: Request, viewer: ApiViewer, access: AccessDep) -> dict[str, Any]:
    return _steer_twin(key, "resume", request, viewer, access)


@twins.get("/outbox", summary="The Outbox page: messages to the caller's people, newest first, a page at a time")
def outbox_twin(viewer: ApiViewer, access: AccessDep, channel: Channel = "", before: Before = None) -> dict[str, Any]:
    found = overview_outbox.outbox_page(
        access.db, viewer.workspace_id, viewer.locations, channel=_channel(channel), before=before
    )
    return found.to_dict()


def include(app: FastAPI) -> None:
    app.include_router(pages)
    app.include_router(twins)
