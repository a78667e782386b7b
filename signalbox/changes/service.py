"""The one write path into the change log, and how consumers read it.

Writers call `append` inside the transaction that makes the change, so a change and its log
row commit together or not at all. Sequence numbers come from a per-workspace counter row
whose lock is held until commit: commits are therefore in sequence order, and a consumer that
has read up to N can never later find an N-1 it missed, whatever the writers' clocks say.
Consumers keep their own position (`change_cursors`) and advance it only after their work is
stored (at least once: a crash in between means the same changes are read again).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, case, delete, func, select
from sqlalchemy.orm import Session

from signalbox.changes.models import Change, ChangeCursor, ChangeSequence
from signalbox.changes.schemas import ChangeColumns, ChangeInfo, LogStatus, NewChange, TrimResult, Window
from signalbox.core.db import Database, dialect_insert, insert_columns, json_dumps
from signalbox.core.errors import InvalidInputError

CHANGES: Table = Change.__table__  # type: ignore[assignment]
SEQUENCES: Table = ChangeSequence.__table__  # type: ignore[assignment]
CURSORS: Table = ChangeCursor.__table__  # type: ignore[assignment]
_CHUNK = 5000


def _allocate(session: Session, workspace_id: str, count: int) -> int:
    """Reserve `count` numbers; returns the last. The upsert locks the workspace's counter row
    until this transaction ends, which is what orders commits by sequence number."""
    stmt = (
        dialect_insert(session, SEQUENCES)
        .values(workspace_id=workspace_id, last_seq=count, trimmed_through=0)
        .on_conflict_do_update(index_elements=["workspace_id"], set_={"last_seq": SEQUENCES.c.last_seq + count})
        .returning(SEQUENCES.c.last_seq)
    )
    last: int = session.execute(stmt).scalar_one()
    return last


def append(session: Session, workspace_id: str, changes: Sequence[NewChange], now: datetime) -> None:
    """Log `changes` in the caller's transaction. Call it last in the transaction: the counter
    row stays locked from here to the commit. Inside `deferred` for the same workspace the
    changes are collected, in call order, and logged when the block ends."""
    if changes:
        _add(session, workspace_id, _Part.of(changes, now))


def append_columns(session: Session, workspace_id: str, batch: ChangeColumns, now: datetime) -> None:
    """`append` for changes given column by column (`ChangeColumns`)."""
    if len(batch):
        kinds = [batch.kind] * len(batch)
        _add(session, workspace_id, _Part(kinds, batch.profile_ids, [None] * len(batch), batch.names, batch.data, now))


@dataclass(frozen=True)
class _Part:
    """Rows to log, as columns (data as JSON text), all written at `at`."""

    kinds: Sequence[str]
    profile_ids: Sequence[str]
    refs: Sequence[str | None]
    names: Sequence[str | None]
    data: Sequence[str | None]
    at: datetime

    @classmethod
    def of(cls, changes: Sequence[NewChange], at: datetime) -> _Part:
        # A change without a document stores JSON null, as the column's own type would.
        data = [json_dumps(c.data) for c in changes]
        return cls(
            [c.kind for c in changes],
            [c.profile_id for c in changes],
            [c.ref for c in changes],
            [c.name for c in changes],
            data,
            at,
        )


def _add(session: Session, workspace_id: str, part: _Part) -> None:
    held: _Deferred | None = session.info.get(_DEFERRED)
    if held is not None and held.workspace_id == workspace_id:
        held.parts.append(part)
        return
    _log(session, workspace_id, [part])


@dataclass
class _Deferred:
    workspace_id: str
    parts: list[_Part] = field(default_factory=list)


_DEFERRED = "signalbox.changes.deferred"


@contextmanager
def deferred(session: Session, workspace_id: str) -> Iterator[None]:
    """Collect the workspace's `append`s made inside the block and log them all at its end, in
    the same transaction and in the order made: one counter update and one COPY instead of one
    of each per writer (an ingestion batch had four, round trips that showed in the HTTP
    path's profile), and the counter row is locked only from the block's end to the commit.
    On an exception nothing is logged (the caller's transaction is rolling back)."""
    if session.info.get(_DEFERRED) is not None:
        raise RuntimeError("changes.deferred does not nest")
    held = _Deferred(workspace_id)
    session.info[_DEFERRED] = held
    try:
        yield
    finally:
        session.info.pop(_DEFERRED, None)
    _log(session, workspace_id, held.parts)


def _log(session: Session, workspace_id: str, parts: list[_Part]) -> None:
    total = sum(len(p.kinds) for p in parts)
    if not total:
        return
    first = _allocate(session, workspace_id, total) - total + 1
    done = 0
    for part in parts:
        n = len(part.kinds)
        # COPY / a driver executemany, column by column: one change row per stored event made
        # the Core executemany here as costly as the event insert itself, and a first
        # scoring's million rows as costly as the scores' own UPDATE.
        for start in range(0, n, _CHUNK):
            end = min(start + _CHUNK, n)
            columns: dict[str, Sequence[Any]] = {
                "workspace_id": [workspace_id] * (end - start),
                "seq": range(first + done + start, first + done + end),
                "kind": part.kinds[start:end],
                "profile_id": part.profile_ids[start:end],
                "ref": part.refs[start:end],
                "name": part.names[start:end],
                "data": part.data[start:end],
                "created_at": [part.at] * (end - start),
            }
            insert_columns(session, CHANGES, columns, json_text=_DATA)
        done += n


_DATA = frozenset({"data"})


def _sequence(session: Session, workspace_id: str) -> tuple[int, int]:
    row = session.execute(
        select(SEQUENCES.c.last_seq, SEQUENCES.c.trimmed_through).where(SEQUENCES.c.workspace_id == workspace_id)
    ).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def head(session: Session, workspace_id: str) -> int:
    """The newest sequence number handed out (committed, as seen by this session)."""
    return _sequence(session, workspace_id)[0]


def window(session: Session, workspace_id: str, consumer: str) -> Window:
    """The changes `consumer` has not read, up to the newest committed one. One statement: a
    worker reads a window after every batch it is woken by."""
    of_workspace = SEQUENCES.c.workspace_id == workspace_id
    head, trimmed, after = session.execute(
        select(
            select(SEQUENCES.c.last_seq).where(of_workspace).scalar_subquery(),
            select(SEQUENCES.c.trimmed_through).where(of_workspace).scalar_subquery(),
            select(CURSORS.c.position)
            .where(CURSORS.c.workspace_id == workspace_id, CURSORS.c.consumer == consumer)
            .scalar_subquery(),
        )
    ).one()
    after = int(after or 0)
    return Window(consumer, after, int(head or 0), complete=after >= int(trimmed or 0))


def profiles_in(session: Session, workspace_id: str, win: Window, kinds: Sequence[str]) -> set[str]:
    """The profile ids (nodes or roots as written) that changes of `kinds` in `win` name."""
    if win.upto <= win.after:
        return set()
    rows = session.scalars(
        select(CHANGES.c.profile_id)
        .where(
            CHANGES.c.workspace_id == workspace_id,
            CHANGES.c.seq > win.after,
            CHANGES.c.seq <= win.upto,
            CHANGES.c.kind.in_(list(kinds)),
        )
        .distinct()
    )
    return set(rows)


def read(
    session: Session,
    workspace_id: str,
    *,
    after: int = 0,
    upto: int | None = None,
    kinds: Sequence[str] | None = None,
    limit: int = 10_000,
) -> list[ChangeInfo]:
    """Changes after `after`, oldest first."""
    stmt = select(Change).where(Change.workspace_id == workspace_id, Change.seq > after)
    if upto is not None:
        stmt = stmt.where(Change.seq <= upto)
    if kinds:
        stmt = stmt.where(Change.kind.in_(list(kinds)))
    rows = session.scalars(stmt.order_by(Change.seq).limit(limit))
    return [ChangeInfo(r.seq, r.kind, r.profile_id, r.ref, r.name, r.data, r.created_at) for r in rows]


def advance(session: Session, workspace_id: str, consumer: str, to: int, now: datetime) -> None:
    """Move `consumer` to `to`; never backwards (two overlapping runs may finish out of order)."""
    stmt = (
        dialect_insert(session, CURSORS)
        .values(workspace_id=workspace_id, consumer=consumer, position=to, updated_at=now)
        .on_conflict_do_update(
            index_elements=["workspace_id", "consumer"],
            set_={"position": case((CURSORS.c.position > to, CURSORS.c.position), else_=to), "updated_at": now},
        )
    )
    session.execute(stmt)


def status(db: Database, workspace_id: str) -> LogStatus:
    with db.session() as session:
        head, trimmed = _sequence(session, workspace_id)
        rows = session.scalar(select(func.count()).select_from(CHANGES).where(CHANGES.c.workspace_id == workspace_id))
        consumers = session.execute(
            select(CURSORS.c.consumer, CURSORS.c.position)
            .where(CURSORS.c.workspace_id == workspace_id)
            .order_by(CURSORS.c.consumer)
        )
        positions = {str(name): int(at) for name, at in consumers}
        return LogStatus(head, trimmed, int(rows or 0), positions)


def list_changes(
    db: Database, workspace_id: str, *, after: int = 0, kinds: Sequence[str] | None = None, limit: int = 10_000
) -> list[ChangeInfo]:
    if after < 0:
        raise InvalidInputError("--after must be 0 or more")
    with db.session() as session:
        return read(session, workspace_id, after=after, kinds=kinds, limit=limit)


def trim(db: Database, workspace_id: str, now: datetime, *, keep_days: int = 7, max_days: int = 30) -> TrimResult:
    """Delete rows every consumer has read once they are `keep_days` old, and any row older
    than `max_days` (a consumer that far behind does a full pass instead; see `Window`)."""
    if keep_days < 0 or max_days < keep_days:
        raise InvalidInputError("--keep-days must be 0 or more and --max-days at least --keep-days")
    with db.transaction() as session:
        consumers = session.scalars(select(CURSORS.c.position).where(CURSORS.c.workspace_id == workspace_id)).all()
        read_by_all = min(consumers) if consumers else 0
        mine = CHANGES.c.workspace_id == workspace_id
        doomed = ((CHANGES.c.seq <= read_by_all) & (CHANGES.c.created_at < now - timedelta(days=keep_days))) | (
            CHANGES.c.created_at < now - timedelta(days=max_days)
        )
        highest = session.scalar(select(func.max(CHANGES.c.seq)).where(mine, doomed))
        deleted = session.connection().execute(delete(CHANGES).where(mine, doomed)).rowcount or 0
        _, trimmed = _sequence(session, workspace_id)
        if highest is not None and highest > trimmed:
            trimmed = int(highest)
            session.execute(
                SEQUENCES.update().where(SEQUENCES.c.workspace_id == workspace_id).values(trimmed_through=trimmed)
            )
        return TrimResult(int(deleted), trimmed)
