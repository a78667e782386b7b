"""Every error answers JSON {"code", "message"}; domain errors map to statuses here only."""

from __future__ import annotations

import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as db_errors
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from signalbox.core.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    SignalboxError,
    UnauthorizedError,
)
from signalbox.core.logging import get_logger
from signalbox.ingestion.schemas import ErrorBody

log = get_logger("api")

STATUS = {
    NotFoundError: 404,
    InvalidInputError: 400,
    ConflictError: 409,
    UnauthorizedError: 401,
    ForbiddenError: 403,
}
# SDKs retry a 5xx until it passes and drop any other 4xx, so 503 is kept for what a retry can
# cure: the database unreachable, locked or out of pooled connections.
UNAVAILABLE = (
    db_errors.OperationalError,
    db_errors.InterfaceError,
    db_errors.DisconnectionError,
    db_errors.TimeoutError,
)
RETRY_AFTER_SECONDS = 5
# The statuses every endpoint can give whatever it does, for the OpenAPI document.
SERVER_RESPONSES: dict[int | str, dict[str, Any]] = {
    500: {"model": ErrorBody, "description": "A bug of ours, logged without the body or the exception's message"},
    503: {
        "model": ErrorBody,
        "description": "The database is unreachable, locked or out of connections; retry",
        "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
    },
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.code, exc.message)

    @app.exception_handler(SignalboxError)
    async def _domain(_: Request, exc: SignalboxError) -> JSONResponse:
        status = next((s for kind, s in STATUS.items() if isinstance(exc, kind)), 400)
        return error(status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(400, "invalid_request", f"{where}: {first.get('msg')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(ClientDisconnect)
    async def _gone(_: Request, exc: ClientDisconnect) -> JSONResponse:
        # The client left mid-body; nobody reads this answer, and it is not our failure.
        return error(400, "incomplete_body", "the connection closed before the whole body arrived")

    app.add_middleware(CatchAll)


class CatchAll:
    """Answers what no handler caught. It sits inside the server's own error middleware on
    purpose: that one logs the traceback and the exception's message, which can quote
    customer data (a database error echoes its parameters)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started:  # too late for an answer of our own
                raise
            await unexpected(exc)(scope, receive, send)


def unexpected(exc: Exception) -> JSONResponse:
    if isinstance(exc, UNAVAILABLE):
        log.warning("database unavailable", extra={"exc_type": type(exc).__name__})
        return error(503, "unavailable", "the database is unreachable or busy; retry later")
    # A bug of ours, not an outage: 503 would page whoever watches the database. The message
    # and the body stay out of the log (they may hold customer data); type and place suffice.
    log.error("unhandled error", extra={"exc_type": type(exc).__name__, "where": _where(exc)})
    return error(500, "internal_error", "the server failed on this request; the failure is logged")


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "unknown"
