"""Every error answers JSON {"code", "message"}; domain errors map to statuses here only."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from signalbox.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    SignalboxError,
    UnauthorizedError,
)
from signalbox.core.logging import get_logger

log = get_logger("api")

STATUS = {NotFoundError: 404, InvalidInputError: 400, ConflictError: 409, UnauthorizedError: 401}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.code, exc.message)

    @app.exception_handler(SignalboxError)
    async def _domain(_: Request, exc: SignalboxError) -> JSONResponse:
        return error(STATUS.get(type(exc), 400), exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(400, "invalid_request", f"{where}: {first.get('msg')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Our failure, not the client's: 503 tells SDKs to retry, and message ids make a
        # retry safe.
        log.error("unhandled error", extra={"exc_type": type(exc).__name__})
        return error(503, "unavailable", "the server could not process the request; retry later")
