"""Tracked links: `GET /l/{token}` records the click and redirects (302) to where the link
leads; `HEAD` redirects without recording. An unknown token is a 404 page, never an error a
link checker would retry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from signalbox.api.deps import ServicesDep
from signalbox.api.errors import SERVER_RESPONSES
from signalbox.core.errors import NotFoundError

router = APIRouter(prefix="/l", tags=["links"])
_NOT_FOUND = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Link not found</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}</style>
</head><body><h1>Link not found</h1><p>This link is not valid. Check that it was copied whole.</p></body></html>
"""
_RESPONSES: dict[int | str, dict[str, Any]] = {
    302: {"description": "To where the link leads (UTM tags added); the click is on the person's profile"},
    404: {"description": "No such link", "content": {"text/html": {"schema": {"type": "string"}}}},
    **SERVER_RESPONSES,
}
# A redirect that a browser or proxy cached would skip the next click.
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


async def _follow(token: str, svc: ServicesDep, *, count: bool) -> Response:
    try:
        found = await run_in_threadpool(svc.links.follow, token, count=count)
    except NotFoundError:
        return HTMLResponse(_NOT_FOUND, status_code=404, headers=_HEADERS)
    return RedirectResponse(found.url, status_code=302, headers=_HEADERS)


@router.get(
    "/{token}",
    summary="Follow a tracked link: records email_clicked / sms_link_clicked, then redirects",
    responses=_RESPONSES,
    response_class=RedirectResponse,
)
async def follow_link(token: str, svc: ServicesDep) -> Response:
    return await _follow(token, svc, count=True)


@router.head("/{token}", summary="Where a tracked link leads, without counting a click", responses=_RESPONSES)
async def peek_link(token: str, svc: ServicesDep) -> Response:
    return await _follow(token, svc, count=False)
