"""The JSON twins of the dashboard's pages, under /api/v1/, for scripts and tests: the same
data as the page, the same scoping, with the session cookie or the workspace's admin key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from signalbox.dashboard.access import TWIN_DEPENDENCIES, TWIN_RESPONSES, AccessDep, ApiViewer
from signalbox.overview import locations as overview_locations

router = APIRouter(prefix="/api/v1", tags=["dashboard"], responses=TWIN_RESPONSES, dependencies=TWIN_DEPENDENCIES)


@router.get("/me", summary="Who the session or key is: e-mail, role and the locations they see")
async def me(viewer: ApiViewer) -> dict[str, Any]:
    return viewer.to_dict()


@router.get("/locations", summary="The locations the caller may see, with names and member counts")
async def locations(viewer: ApiViewer, access: AccessDep) -> dict[str, Any]:
    found = await run_in_threadpool(overview_locations.list_locations, access.db, viewer.workspace_id, viewer.locations)
    return {"locations": [loc.to_dict() for loc in found]}
