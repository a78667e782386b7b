"""What every command shares: settings, the database, one-line errors, JSON output."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, ParamSpec, TypeVar

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.exc import DBAPIError

from signalbox.core.db import Database, describe_error
from signalbox.core.errors import SignalboxError
from signalbox.core.logging import configure_logging
from signalbox.core.settings import Settings, get_settings
from signalbox.workspaces import service as workspaces
from signalbox.workspaces.schemas import WorkspaceInfo

P = ParamSpec("P")
R = TypeVar("R")

err = Console(stderr=True)
JsonOpt = typer.Option(False, "--json", help="Print one JSON document on stdout.")
WorkspaceOpt = typer.Option(..., "--workspace", "-w", help="Workspace name or id.")


def fail(message: str, code: int = 1) -> None:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def handled(fn: Callable[P, R]) -> Callable[P, R]:
    """Every failure becomes one line on stderr and exit code 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except SignalboxError as exc:
            fail(exc.message)
        except DBAPIError as exc:  # locked, unreachable, refused: the driver's first line only
            fail(describe_error(exc, settings()))
        except ValueError as exc:  # settings refused, bad values
            fail(_first_line(exc))
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else _first_line(exc))
        except Exception as exc:
            if type(exc).__module__.split(".")[0] in ("click", "typer"):
                raise  # a clean exit, or a usage error that click prints itself (typer may vendor click)
            # A bug of ours: still one line, and only the first line of its message, which
            # names the problem without echoing data.
            fail(f"unexpected {type(exc).__name__}: {_first_line(exc)}")
        raise AssertionError("unreachable")

    return wrapper


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        # pydantic's first line only counts the errors; the first error itself names the problem.
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        fail(f"invalid settings: {where + ': ' if where else ''}{first['msg']}".splitlines()[0])
        raise
    except ValueError as exc:
        fail(f"invalid settings: {exc}".splitlines()[0])
        raise


def database(require_schema: bool = True) -> Database:
    # Every command that can log reaches the database through here: its log records become
    # JSON lines on stderr, never Python's default rendering with a traceback.
    configure_logging(settings().log_level)
    db = Database(settings())
    if require_schema:
        db.require_current_schema()
    return db


def workspace(db: Database, name_or_id: str) -> WorkspaceInfo:
    return workspaces.get_workspace(db, name_or_id)


def print_json(doc: Any) -> None:
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")


def parse_when(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{name} {text!r} is not an ISO 8601 date or timestamp")
        raise
    if value.tzinfo is None:
        fail(f"{name} {text!r} needs a UTC offset, e.g. {text}+00:00")
    return value


def parse_day(text: str | None, name: str = "--as-of") -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{name} {text!r} is not a date like 2026-03-01")
        raise


@contextmanager
def lazy_progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A counted progress bar that appears with the first report (done, total): a command
    refused before any work prints its one error line and nothing else."""
    bar = progress_bar(label)
    task = bar.add_task(label, total=None)

    def report(done: int, total: int) -> None:
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=done, total=total)

    try:
        yield report
    finally:
        if bar.live.is_started:  # stopping a bar never shown would still print a blank line
            bar.stop()


def progress_bar(label: str) -> Progress:
    """A counted progress bar on stderr (stdout stays one JSON document)."""
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )
