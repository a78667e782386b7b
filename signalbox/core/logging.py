"""Structured JSON logs on stderr. Callers pass counts and ids, never keys or message bodies."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
# A last line of defence: these never reach a log line even if a caller passes them.
_REDACTED = {"write_key", "admin_key", "authorization", "password", "body", "message_body"}
# uvicorn adds an ANSI-coloured copy of its message for its own formatter.
_DROPPED = {"color_message"}
# uvicorn's own loggers; routed through ours so a server's stderr is one JSON line per record.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and key not in _DROPPED and not key.startswith("_"):
                doc[key] = "[redacted]" if key.lower() in _REDACTED else value
        # The exception's type only: its message and traceback can quote a statement, a body or
        # a value, and the type is enough to find the failure in the code.
        if record.exc_info and record.exc_info[0] is not None:
            doc["exc_type"] = record.exc_info[0].__name__
        return orjson.dumps(doc, default=str).decode()


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time of the record (a test runner or a CLI
    runner may swap it), never to a stream closed since configuration."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def configure_logging(level: str = "INFO") -> None:
    """Our records and uvicorn's reach the root logger, where one JSON handler writes them;
    other handlers on the root (a test's recorder, an operator's) keep receiving them too."""
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _StderrHandler)] + [handler]
    for name in ("signalbox", *UVICORN_LOGGERS):
        # No handler of their own (uvicorn's default configuration gives it some): everything
        # goes through the root's, once.
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("signalbox").setLevel(level.upper())


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"signalbox.{name}")
