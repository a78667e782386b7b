"""Today (`/today`), its JSON twin (`/api/v1/today`) and the Tasks panel's one-click actions.

Routes only translate: the panels are read by `overview.today`; a task is finished or snoozed
through `overview.actions` (the owners' write paths: `channels` for tasks, the ingestion
pipeline for the `task_outcome` event). Every action works as a plain form POST (303 back to
Today) and through htmx (the answer is the task's new row).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from signalbox.core.clock import Clock
from signalbox.core.db import Database
from signalbox.core.errors import InvalidInputError, NotFoundError
from signalbox.core.settings import Settings
from signalbox.dashboard.access import (
    TWIN_DEPENDENCIES,
    TWIN_RESPONSES,
    AccessDep,
    ApiViewer,
    PageViewer,
    Viewer,
    check_csrf,
)
from signalbox.dashboard.web import form_body, page, redirect
from signalbox.overview import actions
from signalbox.overview import today as overview


def _location_param(location: str | None) -> str | None:
    if location is None or location == "":
        return None
    if len(location) > 64:
        raise InvalidInputError("location is at most 64 characters")
    return location


def _read_today(access_db: Database, viewer: Viewer, location: str | None, clock: Clock) -> overview.Today:
    picked = _location_param(location)
    viewer.scope(picked)  # 404 for a location that is not the viewer's
    return overview.build_today(access_db, viewer.workspace_id, viewer.locations, picked, clock.now())


def _back(viewer: Viewer, form: dict[str, str]) -> str:
    """Back to Today, on the location the form was posted from when it is the viewer's."""
    location = form.get("location", "")
    if location and len(location) <= 64 and viewer.sees(location):
        return "/today?" + urlencode({"location": location})
    return "/today"


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request", "").lower() == "true"


# A database integer: a larger number is a 400, never an overflow inside the query.
TaskId = Annotated[int, Path(ge=1, le=2**62)]


def build(db: Database, settings: Settings, clock: Clock) -> APIRouter:
    router = APIRouter()

    @router.get("/today", include_in_schema=False)
    async def today_page(viewer: PageViewer, access: AccessDep, location: str | None = None) -> Response:
        found = await run_in_threadpool(_read_today, access.db, viewer, location, access.clock)
        return page(
            "today.html",
            user=viewer,
            csrf_token=viewer.csrf_token,
            nav="today",
            today=found,
            picked=found.location,
            outcomes=overview.OUTCOMES,
            snoozes=actions.SNOOZES,
            reviews_message=overview.REVIEWS_MESSAGE,
        )

    @router.get(
        "/api/v1/today",
        tags=["dashboard"],
        responses=TWIN_RESPONSES,
        dependencies=TWIN_DEPENDENCIES,
        summary="Today's panels (attention, failed payments, leads, tasks, reviews, playbooks, locations)",
    )
    async def today_twin(viewer: ApiViewer, access: AccessDep, location: str | None = None) -> dict[str, Any]:
        found = await run_in_threadpool(_read_today, access.db, viewer, location, access.clock)
        return found.to_dict()

    def checked_task(viewer: Viewer, task_id: int) -> overview.TaskRef:
        ref = overview.task_ref(db, viewer.workspace_id, task_id)
        if ref is None:
            raise NotFoundError("not found")
        viewer.check(ref.location)
        return ref

    def answer(request: Request, viewer: Viewer, form: dict[str, str], task_id: int, note: str) -> Response:
        if not _is_htmx(request):
            return redirect(_back(viewer, form))
        row = overview.task_row(db, viewer.workspace_id, task_id, clock.now())
        return page(
            "today_task_row.html",
            task=row,
            note=note,
            csrf_token=viewer.csrf_token,
            outcomes=overview.OUTCOMES,
            snoozes=actions.SNOOZES,
            picked=form.get("location") or None,
        )

    @router.post("/today/tasks/{task_id}/done", include_in_schema=False)
    async def task_done(request: Request, task_id: TaskId, viewer: PageViewer) -> Response:
        form = await form_body(request)
        check_csrf(viewer, request, form)
        await run_in_threadpool(checked_task, viewer, task_id)
        await run_in_threadpool(actions.finish, db, viewer.workspace_id, task_id, clock.now())
        return answer(request, viewer, form, task_id, "Done.")

    @router.post("/today/tasks/{task_id}/snooze", include_in_schema=False)
    async def task_snooze(request: Request, task_id: TaskId, viewer: PageViewer) -> Response:
        form = await form_body(request)
        check_csrf(viewer, request, form)
        choice = form.get("until", "tomorrow")
        if choice not in actions.SNOOZES:
            raise InvalidInputError(f"until must be one of {', '.join(actions.SNOOZES)}")
        await run_in_threadpool(checked_task, viewer, task_id)
        await run_in_threadpool(actions.snooze, db, viewer.workspace_id, task_id, choice, clock.now())
        return answer(request, viewer, form, task_id, f"Snoozed ({actions.SNOOZES[choice]}).")

    @router.post("/today/tasks/{task_id}/outcome", include_in_schema=False)
    async def task_outcome(request: Request, task_id: TaskId, viewer: PageViewer) -> Response:
        form = await form_body(request)
        check_csrf(viewer, request, form)
        outcome, note = form.get("outcome", ""), form.get("note", "")
        actions.check_outcome(outcome, note)  # a bad form is a 400 before any lookup
        ref = await run_in_threadpool(checked_task, viewer, task_id)
        await run_in_threadpool(
            actions.record_outcome, db, settings, clock, ref, outcome, note, viewer.email, viewer.workspace_id
        )
        return answer(request, viewer, form, task_id, f"Outcome logged: {outcome.replace('_', ' ')}.")

    return router
