"""Domain errors; the API and CLI map them to status codes and messages in one place each."""

from __future__ import annotations


class SignalboxError(Exception):
    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(SignalboxError):
    code = "not_found"


class InvalidInputError(SignalboxError):
    code = "invalid_input"


class ConflictError(SignalboxError):
    code = "conflict"


class UnauthorizedError(SignalboxError):
    code = "unauthorized"


class ForbiddenError(SignalboxError):
    """Who is asking is known, and this is not theirs to do (a form without its CSRF token)."""

    code = "forbidden"


class SchemaOutOfDateError(SignalboxError):
    code = "schema_out_of_date"
