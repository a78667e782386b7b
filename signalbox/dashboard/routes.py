"""The dashboard's pages: sign in and out, and Today. Routes only translate: the accounts
service decides who is signed in; these turn its answers into pages, cookies and redirects."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from signalbox.accounts import service as accounts
from signalbox.accounts.schemas import BadCredentialsError, RateLimitedError, UserInfo
from signalbox.core.clock import Clock
from signalbox.core.db import Database
from signalbox.core.settings import Settings
from signalbox.dashboard import pages_customer, pages_insights, pages_playbooks, pages_today, twins
from signalbox.dashboard.access import Access, SignInNeeded
from signalbox.dashboard.web import (
    CSRF_FIELD,
    CSRF_HEADER,
    LOGIN_COOKIE,
    LOGIN_TOKEN_SECONDS,
    SESSION_COOKIE,
    STATIC_DIR,
    Form,
    clear_cookie,
    new_login_token,
    page,
    redirect,
    same_token,
    set_cookie,
)

STATIC_PATH = "/static"


def install(app: FastAPI, db: Database, settings: Settings, clock: Clock) -> None:
    app.state.dashboard_access = Access(db, clock)

    async def sign_in_first(request: Request, _: Exception) -> Response:
        response = redirect("/login")
        if SESSION_COOKIE in request.cookies:  # expired or ended: the browser can forget it
            clear_cookie(response, request, settings, SESSION_COOKIE)
        return response

    app.add_exception_handler(SignInNeeded, sign_in_first)
    app.include_router(build(db, settings, clock))
    app.include_router(twins.router)
    pages_playbooks.include(app)
    pages_customer.include(app)
    app.include_router(pages_insights.router)
    app.include_router(pages_today.build(db, settings, clock))  # /today, its twin and its task actions
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="static")


def build(db: Database, settings: Settings, clock: Clock) -> APIRouter:  # noqa: C901 (one closure per page)
    # Pages for people, not the API: kept out of the OpenAPI document.
    router = APIRouter(include_in_schema=False)

    def signed_in(request: Request) -> tuple[str, UserInfo] | None:
        token = request.cookies.get(SESSION_COOKIE)
        user = accounts.user_for_session(db, token, clock) if token else None
        return None if token is None or user is None else (token, user)

    def to_login(request: Request) -> Response:
        response = redirect("/login")
        if SESSION_COOKIE in request.cookies:  # expired or ended: the browser can forget it
            clear_cookie(response, request, settings, SESSION_COOKIE)
        return response

    def login_page(
        request: Request,
        status: int = 200,
        *,
        error: str | None = None,
        workspace: str = "",
        email: str = "",
        headers: dict[str, str] | None = None,
    ) -> Response:
        token = new_login_token()
        response = page("login.html", status, headers, login_token=token, error=error, workspace=workspace, email=email)
        set_cookie(response, request, settings, LOGIN_COOKIE, token, LOGIN_TOKEN_SECONDS, path="/login")
        return response

    @router.get("/")
    def root(request: Request) -> Response:
        return redirect("/today") if signed_in(request) else to_login(request)

    @router.get("/login")
    def login_form(request: Request, workspace: str = "") -> Response:
        if signed_in(request):
            return redirect("/today")
        return login_page(request, workspace=workspace[:100])

    @router.post("/login")
    def login(request: Request, form: Form) -> Response:
        workspace, email = form.get("workspace", "").strip()[:100], form.get("email", "").strip()[:254]
        if not same_token(request.cookies.get(LOGIN_COOKIE), form.get(CSRF_FIELD)):
            return login_page(
                request, 403, error="The form had expired. Please sign in again.", workspace=workspace, email=email
            )
        try:
            signed = accounts.sign_in(
                db,
                workspace,
                email,
                form.get("password", ""),
                client=request.client.host if request.client else None,
                clock=clock,
            )
        except RateLimitedError as exc:
            wait = str(exc.retry_after_seconds)
            message = f"Too many failed sign-ins. Try again in {max(1, exc.retry_after_seconds // 60)} minute(s)."
            return login_page(
                request, 429, error=message, workspace=workspace, email=email, headers={"Retry-After": wait}
            )
        except BadCredentialsError:
            return login_page(
                request, 401, error="The workspace, e-mail or password is not right.", workspace=workspace, email=email
            )
        response = redirect("/today")
        lifetime = int(accounts.SESSION_LIFETIME.total_seconds())
        set_cookie(response, request, settings, SESSION_COOKIE, signed.token, lifetime)
        clear_cookie(response, request, settings, LOGIN_COOKIE, path="/login")
        return response

    @router.post("/logout")
    def logout(request: Request, form: Form) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        if token is None:
            return redirect("/login")
        if not accounts.csrf_matches(token, form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)):
            return page("refused.html", 403, message="This request did not come from a signalbox page.")
        accounts.sign_out(db, token)
        response = redirect("/login")
        clear_cookie(response, request, settings, SESSION_COOKIE)
        return response

    return router
