"""What every dashboard page shares: templates, the session cookie, CSRF checks, form bodies."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from signalbox.core.settings import Settings

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
SESSION_COOKIE = "sb_session"
# The login form's double-submit token: there is no session yet to derive one from.
LOGIN_COOKIE = "sb_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LOGIN_TOKEN_SECONDS = 3600
# A sign-in form is a few hundred bytes; anything much larger is not one.
MAX_FORM_BYTES = 16 * 1024
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})

templates = Environment(
    loader=FileSystemLoader(PACKAGE_DIR / "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)


def page(name: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    context.setdefault("user", None)
    context.setdefault("csrf_token", None)
    response = HTMLResponse(templates.get_template(name).render(**context), status_code=status, headers=headers)
    # Pages carry a person's data and a CSRF token: never from a shared cache, never framed.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def redirect(to: str) -> RedirectResponse:
    # 303: the browser follows with a GET whatever the method was, so a form is never re-posted.
    return RedirectResponse(to, status_code=303)


def secure_cookies(request: Request, settings: Settings) -> bool:
    """Secure, unless a developer runs it locally: in development, or over plain http to a
    loopback address, where a Secure cookie would not be sent back by every browser."""
    if settings.environment == "development":
        return False
    return not (request.url.scheme == "http" and (request.url.hostname or "") in LOOPBACK)


def set_cookie(
    response: Response, request: Request, settings: Settings, name: str, value: str, max_age: int, path: str = "/"
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request, settings),
    )


def clear_cookie(response: Response, request: Request, settings: Settings, name: str, path: str = "/") -> None:
    response.delete_cookie(name, path=path, httponly=True, samesite="lax", secure=secure_cookies(request, settings))


def new_login_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(expected or "", given or "")


class FormTooLarge(Exception):
    pass


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded body as its first value per field; anything else reads as empty (and so
    fails the CSRF check). Parsed here so that no multipart parser is needed for two fields."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormTooLarge()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    fields: dict[str, str] = {}
    for key, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
        fields.setdefault(key, value)
    return fields


async def form_body(request: Request) -> dict[str, str]:
    """A page's POSTed form, or 413 when it is larger than any of our forms."""
    try:
        return await read_form(request)
    except FormTooLarge:
        raise HTTPException(413, f"the form is larger than {MAX_FORM_BYTES} bytes") from None


Form = Annotated[dict[str, str], Depends(form_body)]
