"""Today (`/today`), its JSON twin (`/api/v1/today`) and the Tasks panel's one-click actions.

Routes only translate: the panels are read by `overview.today`; a task is finished or snoozed
by `channels` (its one write path), and an outcome becomes a `task_outcome` event through the
ingestion pipeline like any other event. Every action works as a plain form POST (303 back to
Today) and through htmx (the answer is the task's new row).
"""

from __future__ import annotations

from contextlib import suppress
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from signalbox.channels import service as channels
from signalbox.core.clock import Clock
from signalbox.core.db import Database
from signalbox.core.errors import ConflictError, InvalidInputError, NotFoundError
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
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.overview import today as overview
from signalbox.workspaces import service as workspaces

NOTE_MAX = 500
SNOOZES = {"tomorrow": "tomorrow 09:00", "hour": "1 hour"}


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


def build(db: Database, settings: Settings, clock: Clock) -> APIRouter:  # noqa: C901, PLR0915 (one closure per route)
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
            snoozes=SNOOZES,
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
            snoozes=SNOOZES,
            picked=form.get("location") or None,
        )

    def finish(viewer: Viewer, task_id: int) -> None:
        with suppress(ConflictError):  # already done (a double click): the answer is the same
            channels.finish_task(db, viewer.workspace_id, task_id, clock.now())

    @router.post("/today/tasks/{task_id}/done", include_in_schema=False)
    async def task_done(request: Request, task_id: TaskId, viewer: PageViewer) -> Response:
        form = await form_body(request)
        check_csrf(viewer, request, form)
        await run_in_threadpool(checked_task, viewer, task_id)
        await run_in_threadpool(finish, viewer, task_id)
        return answer(request, viewer, form, task_id, "Done.")

    @router.post("/today/tasks/{task_id}/snooze", include_in_schema=False)
    async def task_snooze(request: Request, task_id: TaskId, viewer: PageViewer) -> Response:
        form = await form_body(request)
        check_csrf(viewer, request, form)
        choice = form.get("until", "tomorrow")
        if choice not in SNOOZES:
            raise InvalidInputError(f"until must be one of {', '.join(SNOOZES)}")
        await run_in_threadpool(checked_task, viewer, task_id)

        def snooze() -> None:
            now = clock.now()
            zone = overview.workspace_zone(db, viewer.workspace_id)
            until = overview.tomorrow_morning(now, zone) if choice == "tomorrow" else now + timedelta(hours=1)
            channels.snooze_task(db, viewer.workspace_id, task_id, until, now)

        await run_in_threadpool(snooze)
        return answer(request, viewer, form, task_id, f"Snoozed ({SNOOZES[choice]}).")

    @router.post("/today/tasks/{task_id}/outcome", include_in_schema=False)
    async def task_outcome(request: Request, task_id: TaskId, viewer: PageViewer) -> Response:
        form = await form_body(request)
        check_csrf(viewer, request, form)
        outcome = form.get("outcome", "")
        if outcome not in overview.OUTCOMES:
            raise InvalidInputError(f"outcome must be one of {', '.join(overview.OUTCOMES)}")
        note = form.get("note", "").strip()
        if len(note) > NOTE_MAX:
            raise InvalidInputError(f"the note is at most {NOTE_MAX} characters")
        ref = await run_in_threadpool(checked_task, viewer, task_id)
        if ref.user_id is None:
            raise ConflictError("this task's person has no user id to record the outcome on")

        def record() -> None:
            now = clock.now()
            message = {
                "type": "track",
                "event": "task_outcome",
                "userId": ref.user_id,
                # One event per task and outcome: a double submit is a duplicate, not a second call.
                "messageId": f"task-{task_id}-outcome-{outcome}",
                "timestamp": now.isoformat(),
                "properties": {
                    "task_id": task_id,
                    "outcome": outcome,
                    "note": note,
                    "location": ref.location,
                    "by": viewer.email,
                },
            }
            workspace = workspaces.get_workspace(db, viewer.workspace_id)
            result = Pipeline(db, settings, clock).ingest(workspace, BatchInput([message], source="dashboard"))
            if result.rejected:
                raise InvalidInputError(f"the outcome was refused: {result.rejected[0]}")
            finish(viewer, task_id)

        await run_in_threadpool(record)
        return answer(request, viewer, form, task_id, f"Outcome logged: {outcome.replace('_', ' ')}.")

    return router
