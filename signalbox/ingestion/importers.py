"""File imports (JSON Lines of Segment messages, POS/billing CSV) through the same pipeline.

Re-running an import stores nothing twice: a message without a messageId gets one derived
from its content. Rejected lines go to a reject file with their line number and reason.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import orjson

from signalbox.core import collector
from signalbox.core.errors import InvalidInputError
from signalbox.core.ids import content_id
from signalbox.ingestion import content
from signalbox.ingestion.schemas import BatchResult
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.workspaces.schemas import WorkspaceInfo

# Lines per pipeline batch, and so per transaction: each commit is durable and counted on the
# progress bar as it lands. Larger than HTTP's 500 because a file has no client waiting on a
# reply, and per-batch costs dominate small batches: the SQLite commit's WAL sync and
# checkpoint, PostgreSQL's round trips per statement, and the read-model fold, which rewrites
# every person a batch touches once per batch (a person seen in five batches is rewritten five
# times). 5,000 rather than 2,000 took the bench's import from ~5,800 to ~6,700 messages/s
# on PostgreSQL and ~5,700 to ~7,200 on SQLite; the cost is a longer hold of the workspace
# lock (~0.7 s a batch, which HTTP batches for the same workspace wait behind) and up to
# 5,000 messages dead-lettered together (replayable) if we fail.
CHUNK = 5000
# ...and at most this much line text, so a file of large messages (up to max_message_bytes,
# 32 KB, each) is not held 5,000 at a time: the bound on a chunk's memory stays below the
# 2,000 x 32 KB it was before the chunk grew.
CHUNK_BYTES = 16 * 1024 * 1024
Progress = Callable[[int], None]


@dataclass
class ImportResult:
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    skipped: int = 0  # rows that are not events (e.g. a draft invoice), counted, not rejected
    reject_file: str | None = None


@dataclass(frozen=True)
class _Line:
    number: int
    message: dict[str, Any] | None  # None: rejected before the pipeline (or skipped)
    error: str | None = None
    skip: bool = False
    size: int = 0  # the line's length, for CHUNK_BYTES


class _Rejects:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None
        self.count = 0

    def write(self, line: int, reason: str, raw: str | None = None) -> None:
        if self._file is None:
            self._file = self.path.open("w", encoding="utf-8")
        record = {"line": line, "reason": content.safe_text(reason), "raw": raw}
        self._file.write(orjson.dumps(record).decode() + "\n")
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def default_reject_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejects.jsonl")


# The whole run, not only each chunk's ingest: a chunk's lines are parsed while it fills and
# stay alive until it is stored.
@collector.bulk_work()
def _run(
    pipeline: Pipeline,
    workspace: WorkspaceInfo,
    lines: Iterator[_Line],
    rejects: _Rejects,
    raw_of: dict[int, str],
    progress: Progress | None,
    *,
    identified_by_context: bool = False,
) -> ImportResult:
    result = ImportResult()
    chunk: list[_Line] = []
    chunk_size = 0

    def flush() -> None:
        nonlocal chunk_size
        chunk_size = 0
        batch = [line.message for line in chunk if line.message is not None]
        numbers = [line.number for line in chunk if line.message is not None]
        outcome: BatchResult = pipeline.ingest(
            workspace, BatchInput(batch, source="import", identified_by_context=identified_by_context)
        )
        result.accepted += outcome.accepted
        result.duplicates += outcome.duplicates
        result.dead_lettered += outcome.dead_lettered
        for r in outcome.rejected:
            rejects.write(numbers[r.index], r.reason, raw_of.get(numbers[r.index]))
        if progress:
            progress(len(chunk))
        chunk.clear()
        raw_of.clear()

    try:
        for line in lines:
            result.lines += 1
            if line.skip:
                result.skipped += 1
                raw_of.pop(line.number, None)
                if progress:
                    progress(1)
                continue
            if line.message is None:
                rejects.write(line.number, line.error or "unreadable line", raw_of.pop(line.number, None))
                if progress:
                    progress(1)
                continue
            chunk.append(line)
            chunk_size += line.size
            if len(chunk) >= CHUNK or chunk_size >= CHUNK_BYTES:
                flush()
        if chunk:
            flush()
    finally:
        rejects.close()
    result.rejected = rejects.count
    result.reject_file = str(rejects.path) if rejects.count else None
    return result


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def import_events(
    pipeline: Pipeline,
    workspace: WorkspaceInfo,
    path: Path,
    *,
    reject_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    raw_of: dict[int, str] = {}

    def lines() -> Iterator[_Line]:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                raw_of[number] = text.rstrip("\n")[:2000]
                try:
                    # As over HTTP: a lone surrogate or 1e400 is JSON, and validation rejects
                    # the line naming the field instead of calling it unreadable.
                    doc = content.loads(text)
                except content.UnreadableJSON as exc:
                    yield _Line(number, None, f"not valid JSON ({exc})")
                    continue
                if not isinstance(doc, dict):
                    yield _Line(number, None, "line must be a JSON object")
                    continue
                doc.pop("writeKey", None)
                # A line that validation will reject keeps no derived id (orjson cannot hash it).
                if not doc.get("messageId") and content.find_problem(doc) is None:
                    doc["messageId"] = content_id("imp", doc)
                yield _Line(number, doc, size=len(text))

    rejects = _Rejects(reject_path or default_reject_path(path))
    return _run(pipeline, workspace, lines(), rejects, raw_of, progress)


@dataclass(frozen=True)
class TransactionColumns:
    customer: str
    timestamp: str
    amount: str
    timestamp_format: str | None = None
    event: str = "purchase"


def _parse_time(text: str, fmt: str | None, zone: ZoneInfo) -> datetime:
    value = datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text)  # noqa: DTZ007
    # A POS export without an offset is in the business's local time, not UTC.
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def _parse_amount(text: str) -> float:
    cleaned = text.strip().replace(",", "").lstrip("$€£")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"amount {text!r} is not a number") from None
    if not amount.is_finite():
        raise ValueError(f"amount {text!r} is not a number")
    return float(amount)


def import_transactions(
    pipeline: Pipeline,
    workspace: WorkspaceInfo,
    path: Path,
    columns: TransactionColumns,
    *,
    reject_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    zone = ZoneInfo(workspace.timezone)
    raw_of: dict[int, str] = {}
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), None)
    if header is None:
        raise InvalidInputError(f"{path} is empty")
    missing = [c for c in (columns.customer, columns.timestamp, columns.amount) if c not in header]
    if missing:
        raise InvalidInputError(
            f"{path} has no column {', '.join(map(repr, missing))}; its columns are {', '.join(header)}"
        )

    def lines() -> Iterator[_Line]:
        seen: Counter[str] = Counter()
        for number, fields in _csv_rows(path, len(header)):
            if isinstance(fields, str):
                yield _Line(number, None, fields)
                continue
            raw_of[number] = ",".join(fields)[:2000]
            row = dict(zip(header, fields, strict=True))
            try:
                message = _transaction_message(row, columns, zone)
            except ValueError as exc:
                yield _Line(number, None, str(exc))
                continue
            # Identical rows are distinct purchases; the ordinal keeps them apart while a
            # re-run of the same file still maps each one to the same id.
            key = orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode()
            seen[key] += 1
            message["messageId"] = content_id("txn", {"row": row, "n": seen[key], "event": columns.event})
            yield _Line(number, message)

    rejects = _Rejects(reject_path or default_reject_path(path))
    return _run(pipeline, workspace, lines(), rejects, raw_of, progress)


RowMapper = Callable[[dict[str, str]], dict[str, Any] | None]


def import_csv_rows(
    pipeline: Pipeline,
    workspace: WorkspaceInfo,
    path: Path,
    to_message: RowMapper,
    *,
    required: Callable[[list[str]], list[str]],
    reject_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """A CSV whose rows a connector maps to messages (None: a row that is no event, skipped;
    ValueError: a rejected row). Messages name people by `context` (external ids, traits) as
    the connector's webhooks do. `required` returns the columns the header lacks."""
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), None)
    if header is None:
        raise InvalidInputError(f"{path} is empty")
    missing = required(header)
    if missing:
        raise InvalidInputError(f"{path} has no column {', '.join(missing)}; its columns are {', '.join(header)}")
    raw_of: dict[int, str] = {}

    def lines() -> Iterator[_Line]:
        for number, fields in _csv_rows(path, len(header)):
            if isinstance(fields, str):
                yield _Line(number, None, fields)
                continue
            raw_of[number] = ",".join(fields)[:2000]
            try:
                message = to_message(dict(zip(header, fields, strict=True)))
            except ValueError as exc:
                yield _Line(number, None, str(exc))
                continue
            yield _Line(number, message, skip=message is None)

    rejects = _Rejects(reject_path or default_reject_path(path))
    return _run(pipeline, workspace, lines(), rejects, raw_of, progress, identified_by_context=True)


def _csv_rows(path: Path, width: int) -> Iterator[tuple[int, list[str] | str]]:
    """(line number, fields) for each data row, or (line number, reason) for a row that cannot
    be read: more or fewer fields than the header (never trimmed or padded: a shifted column
    would put an amount in a date), or a field the csv module refuses (e.g. over its size
    limit). Blank lines are skipped, as csv.DictReader does."""
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)  # the header, read and checked by the caller
        last = reader.line_num
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                # The reader does not count the line it failed on.
                last = max(reader.line_num, last + 1)
                yield last, f"unreadable CSV row: {exc}"
                continue
            last = reader.line_num
            if not fields:
                continue
            if len(fields) != width:
                yield last, f"row has {len(fields)} fields, the header has {width}"
                continue
            yield last, fields


def _transaction_message(row: dict[str, Any], columns: TransactionColumns, zone: ZoneInfo) -> dict[str, Any]:
    customer = (row.get(columns.customer) or "").strip()
    if not customer:
        raise ValueError(f"column {columns.customer!r} is empty")
    stamp = (row.get(columns.timestamp) or "").strip()
    try:
        when = _parse_time(stamp, columns.timestamp_format, zone)
    except ValueError:
        fmt = columns.timestamp_format or "ISO 8601"
        raise ValueError(f"timestamp {stamp!r} does not match {fmt}") from None
    amount = _parse_amount(row.get(columns.amount) or "")
    extra = {k: v for k, v in row.items() if k not in (columns.customer, columns.timestamp, columns.amount) and k}
    return {
        "type": "track",
        "event": columns.event,
        "userId": customer,
        "timestamp": when.isoformat(),
        "properties": {"amount": amount, **extra},
    }
