"""One-click unsubscribe: `GET /u/{token}` shows a page whose button POSTs; `POST /u/{token}` with
the RFC 8058 body `List-Unsubscribe=One-Click` (what mail providers send, no cookies) revokes
marketing e-mail through the consent ledger. GET never changes anything: link scanners and
prefetchers follow every link in a message."""

from __future__ import annotations

import html
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from signalbox.api.deps import Services, ServicesDep
from signalbox.api.errors import SERVER_RESPONSES
from signalbox.consent import unsubscribe
from signalbox.core.errors import NotFoundError
from signalbox.workspaces import service as workspaces

router = APIRouter(prefix="/u", tags=["unsubscribe"])
MAX_BODY_BYTES = 16 * 1024
ONE_CLICK = ("List-Unsubscribe", "One-Click")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}}
button{{font:inherit;padding:.5rem 1rem}}</style>
</head><body><h1>{title}</h1>{content}</body></html>
"""
_HTML: dict[str, Any] = {"content": {"text/html": {"schema": {"type": "string"}}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The page (GET) or the confirmation (POST)", **_HTML},
    400: {
        "description": "Malformed, altered, expired or unknown link; a POST without List-Unsubscribe=One-Click",
        **_HTML,
    },
    **SERVER_RESPONSES,
}


def _page(title: str, content: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=html.escape(title), content=content), status_code=status)


def _refused(message: str) -> HTMLResponse:
    return _page("This link does not work", f"<p>{html.escape(message)}</p>", 400)


def _check(svc: Services, token: str) -> unsubscribe.UnsubscribeToken:
    found = unsubscribe.read(svc.settings.secret_key, token, svc.clock.now())
    try:
        workspaces.get_workspace(svc.db, found.workspace_id)
    except NotFoundError:
        gone = "this unsubscribe link belongs to an account that no longer exists"
        raise unsubscribe.BadUnsubscribeToken(gone) from None
    return found


@router.get("/{token}", summary="Unsubscribe page: its button POSTs; GET changes nothing", responses=_RESPONSES)
async def unsubscribe_page(token: str, svc: ServicesDep) -> HTMLResponse:
    try:
        await run_in_threadpool(_check, svc, token)
    except unsubscribe.BadUnsubscribeToken as exc:
        return _refused(exc.message)
    form = (
        f'<p>Stop receiving marketing e-mail from us?</p><form method="post" action="/u/{html.escape(token)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return _page("Unsubscribe", form)


@router.post(
    "/{token}",
    summary="One-click unsubscribe (RFC 8058): revokes marketing e-mail consent",
    responses=_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {"List-Unsubscribe": {"type": "string", "enum": ["One-Click"]}},
                        "required": ["List-Unsubscribe"],
                    }
                }
            },
        }
    },
)
async def unsubscribe_post(token: str, request: Request, svc: ServicesDep) -> HTMLResponse:
    """The body is `List-Unsubscribe=One-Click`, form-urlencoded or multipart/form-data. Answered
    200 also when the person had already unsubscribed."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return _refused(f"the request body is over {MAX_BODY_BYTES} bytes")
    if not _one_click(request.headers.get("content-type", ""), body):
        return _refused("the request body must be List-Unsubscribe=One-Click (RFC 8058)")
    try:
        found = await run_in_threadpool(_check, svc, token)
    except unsubscribe.BadUnsubscribeToken as exc:
        return _refused(exc.message)
    await run_in_threadpool(_revoke, svc, found)
    return _page("You are unsubscribed", "<p>You will receive no more marketing e-mail from us.</p>")


def _revoke(svc: Services, found: unsubscribe.UnsubscribeToken) -> None:
    with svc.db.transaction() as session:
        unsubscribe.revoke(session, found, svc.clock.now(), via="POST /u/{token}")


def _one_click(content_type: str, body: bytes) -> bool:
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if kind == "multipart/form-data":
        try:
            message = BytesParser(policy=policy.HTTP).parsebytes(
                b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
            )
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if name == ONE_CLICK[0] and str(part.get_content()).strip() == ONE_CLICK[1]:
                    return True
        except Exception:  # a malformed multipart body is a refusal, not our failure
            return False
        return False
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return False
    return fields.get(ONE_CLICK[0]) == [ONE_CLICK[1]]
