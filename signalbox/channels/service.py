"""The sandbox provider (the default: nothing leaves the machine) and staff tasks.

The sandbox writes each call in a transaction of its own, as a remote provider would record it
on its side: a crash after the call but before our ledger says `sent` leaves the call here,
and `lookup` finds it by the idempotency key, which is how a send is reconciled, never redone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from signalbox.channels.links import Link
from signalbox.channels.models import OutboxMessage, Send, SendLink, StaffTask
from signalbox.channels.schemas import Delivery, Email, OutboxItem, SendInfo, Sms, TaskInfo
from signalbox.core.clock import Clock
from signalbox.core.db import Database, advisory_xact_lock, dialect_insert
from signalbox.core.errors import ConflictError, InvalidInputError, NotFoundError

_CHUNK = 500
# The table, not the mapped class: an UPDATE with WHERE over many parameter sets is plain SQL
# (the ORM would take a list of parameters as its bulk-by-primary-key form).
SENDS: Table = Send.__table__  # type: ignore[assignment]
OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]
# Built once: a provider call is one row, and building the statement cost more than running it.
_STORE_OUTBOX = insert(OUTBOX).returning(OUTBOX.c.id)


class SandboxProvider:
    """EmailSender and SmsSender that store every call in the `outbox` table."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    def send_email(self, workspace_id: str, message: Email, idempotency_key: str) -> Delivery:
        return self._store(
            workspace_id, "email", message.to, message.subject, message.body, idempotency_key, message.html
        )

    def send_sms(self, workspace_id: str, message: Sms, idempotency_key: str) -> Delivery:
        return self._store(workspace_id, "sms", message.to, None, message.body, idempotency_key)

    def lookup(self, workspace_id: str, idempotency_key: str) -> Delivery | None:
        with self.db.session() as session:
            found = session.scalar(
                select(OutboxMessage.id)
                .where(OutboxMessage.workspace_id == workspace_id, OutboxMessage.idempotency_key == idempotency_key)
                .limit(1)
            )
        return None if found is None else Delivery(f"sandbox-{found}", "delivered")

    def _store(
        self,
        workspace_id: str,
        channel: str,
        to: str,
        subject: str | None,
        body: str,
        key: str,
        html: str | None = None,
    ) -> Delivery:
        # The sandbox answers as it records: its row is the call and the delivery at once.
        now = self.clock.now()
        row_id = _write_call(
            self.db,
            workspace_id,
            key,
            channel,
            to,
            subject,
            body,
            "sandbox",
            "delivered",
            now,
            html=html,
            updated=False,
        )
        return Delivery(f"sandbox-{row_id}", "delivered")


def _outbox_item(r: OutboxMessage) -> OutboxItem:
    return OutboxItem(
        r.idempotency_key,
        r.channel,
        r.to,
        r.subject,
        r.body,
        r.created_at,
        r.provider,
        r.provider_id,
        r.status,
        r.error,
        r.updated_at,
        r.html,
    )


def list_outbox(
    db: Database,
    workspace_id: str,
    *,
    channel: str | None = None,
    provider: str | None = None,
    limit: int = 10_000,
) -> list[OutboxItem]:
    """Every provider call, sandbox or real, newest first, with the provider's status."""
    with db.session() as session:
        stmt = select(OutboxMessage).where(OutboxMessage.workspace_id == workspace_id)
        if channel:
            stmt = stmt.where(OutboxMessage.channel == channel)
        if provider:
            stmt = stmt.where(OutboxMessage.provider == provider)
        rows = session.scalars(stmt.order_by(OutboxMessage.id.desc()).limit(limit))
        return [_outbox_item(r) for r in rows]


# ---- real providers' calls -------------------------------------------------------------------

# A provider's statuses in the order they can follow one another: a callback that arrives late
# never moves a message back (a `sent` after `delivered` is dropped). The last rank is final.
STATUS_RANK = {
    "calling": 0,
    "accepted": 1,
    "scheduled": 1,
    "queued": 2,
    "sending": 3,
    "sent": 4,
    "delivered": 5,
    "undelivered": 5,
    "failed": 5,
    "canceled": 5,
    "refused": 5,
    "read": 6,
}
FINAL_RANK = 5


def begin_call(
    db: Database,
    workspace_id: str,
    key: str,
    channel: str,
    to: str,
    body: str,
    provider: str,
    now: datetime,
    subject: str | None = None,
) -> int:
    """Write the call down, committed, *before* it is made (status `calling`): from then on a
    lookup knows a call may have gone out, and never lets it be made twice."""
    return _write_call(db, workspace_id, key, channel, to, subject, body, provider, "calling", now)


def _write_call(
    db: Database,
    workspace_id: str,
    key: str,
    channel: str,
    to: str,
    subject: str | None,
    body: str,
    provider: str,
    status: str,
    now: datetime,
    *,
    updated: bool = True,
    html: str | None = None,
) -> int:
    """One provider call's outbox row, in a transaction of its own. Returns its id. A call
    whose answer comes later is `updated` now; the sandbox's never is."""
    values = {
        "workspace_id": workspace_id,
        "idempotency_key": key,
        "channel": channel,
        "to": to[:320],
        "subject": subject,
        "body": body,
        "html": html,
        "created_at": now,
        "provider": provider,
        "status": status,
        "updated_at": now if updated else None,
    }
    with db.write() as conn:
        return int(conn.execute(_STORE_OUTBOX, values).scalar_one())


def _lower(status: str) -> list[str]:
    rank = STATUS_RANK[status]
    return [s for s, r in STATUS_RANK.items() if r < rank and r < FINAL_RANK]


def finish_call(
    db: Database, row_id: int, now: datetime, status: str, *, provider_id: str | None = None, error: str | None = None
) -> None:
    """What the provider answered: its id, and its status unless a callback moved it further."""
    with db.write() as conn:
        if provider_id is not None:
            conn.execute(update(OUTBOX).where(OUTBOX.c.id == row_id).values(provider_id=provider_id[:200]))
        conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == row_id, OUTBOX.c.status.in_(_lower(status)))
            .values(status=status, error=(error or None) and error[:500], updated_at=now)
        )


def record_status(
    db: Database,
    workspace_id: str,
    provider: str,
    provider_id: str,
    status: str,
    now: datetime,
    call_id: int | None = None,
) -> str:
    """A status callback: `updated`, `stale` (the message is already as far or further) or
    `unknown_message`. Only ever moves forward, in one statement, so racing callbacks agree.
    `call_id` (our outbox row, from the callback's signed URL) finds a message whose API answer,
    and so its id, has not been stored yet: the id is adopted from the callback."""
    if status not in STATUS_RANK:
        raise InvalidInputError(f"message status {status!r} is not one of {', '.join(STATUS_RANK)}")
    where = (
        OUTBOX.c.workspace_id == workspace_id,
        OUTBOX.c.provider == provider,
        OUTBOX.c.provider_id == provider_id,
    )
    with db.write() as conn:
        if call_id is not None:
            conn.execute(
                update(OUTBOX)
                .where(
                    OUTBOX.c.id == call_id,
                    OUTBOX.c.workspace_id == workspace_id,
                    OUTBOX.c.provider == provider,
                    OUTBOX.c.provider_id.is_(None),
                )
                .values(provider_id=provider_id[:200])
            )
        moved = conn.execute(
            update(OUTBOX).where(*where, OUTBOX.c.status.in_(_lower(status))).values(status=status, updated_at=now)
        ).rowcount
        if moved:
            return "updated"
        found = conn.execute(select(OUTBOX.c.id).where(*where).limit(1)).first()
    return "stale" if found is not None else "unknown_message"


def outbox_row_id(db: Database, workspace_id: str, key: str) -> int | None:
    """The newest outbox row of an idempotency key (what a status callback's URL names)."""
    with db.session() as session:
        return session.scalar(
            select(OutboxMessage.id)
            .where(OutboxMessage.workspace_id == workspace_id, OutboxMessage.idempotency_key == key)
            .order_by(OutboxMessage.id.desc())
            .limit(1)
        )


def find_call(db: Database, workspace_id: str, key: str) -> OutboxItem | None:
    """The newest provider call made with this idempotency key, if any was ever begun."""
    with db.session() as session:
        row = session.scalar(
            select(OutboxMessage)
            .where(OutboxMessage.workspace_id == workspace_id, OutboxMessage.idempotency_key == key)
            .order_by(OutboxMessage.id.desc())
            .limit(1)
        )
        return None if row is None else _outbox_item(row)


# ---- staff tasks ---------------------------------------------------------------------------


def create_task(
    session: Session,
    workspace_id: str,
    *,
    idempotency_key: str,
    profile_id: str,
    user_id: str | None,
    playbook: str | None,
    title: str,
    role: str,
    location: str | None,
    priority: str,
    due_at: datetime,
    now: datetime,
) -> bool:
    """Create the task unless one with this key exists (a retried step). True when created."""
    values = {
        "workspace_id": workspace_id,
        "idempotency_key": idempotency_key,
        "profile_id": profile_id,
        "user_id": user_id,
        "playbook": playbook,
        "title": title[:500],
        "role": role,
        "location": location,
        "priority": priority,
        "status": "open",
        "due_at": due_at,
        "created_at": now,
        "done_at": None,
    }
    base = dialect_insert(session, StaffTask)
    created = session.execute(
        base.values(values)
        .on_conflict_do_nothing(index_elements=["workspace_id", "idempotency_key"])
        .returning(StaffTask.id)
    ).scalar_one_or_none()
    return created is not None


def tasks_created_since(
    session: Session, workspace_id: str, location: str | None, since: datetime, *, lock: bool = False
) -> int:
    """Tasks for a location created since a moment; with `lock`, serialised per location
    until the transaction ends (a capacity check followed by its insert)."""
    if lock:
        advisory_xact_lock(session, f"{workspace_id}|tasks|{location}")
    place = StaffTask.location.is_(None) if location is None else StaffTask.location == location
    found = session.scalar(
        select(func.count())
        .select_from(StaffTask)
        .where(StaffTask.workspace_id == workspace_id, place, StaffTask.created_at >= since)
    )
    return int(found or 0)


def _task_info(r: StaffTask) -> TaskInfo:
    return TaskInfo(
        r.id,
        r.idempotency_key,
        r.user_id,
        r.profile_id,
        r.playbook,
        r.title,
        r.role,
        r.location,
        r.priority,
        r.status,
        r.due_at,
        r.created_at,
        r.done_at,
    )


def list_tasks(
    db: Database, workspace_id: str, *, status: str | None = None, location: str | None = None, limit: int = 10_000
) -> list[TaskInfo]:
    with db.session() as session:
        stmt = select(StaffTask).where(StaffTask.workspace_id == workspace_id)
        if status:
            stmt = stmt.where(StaffTask.status == status)
        if location:
            stmt = stmt.where(StaffTask.location == location)
        rows = session.scalars(stmt.order_by(StaffTask.id.desc()).limit(limit))
        return [_task_info(r) for r in rows]


def finish_task(db: Database, workspace_id: str, task_id: int, now: datetime) -> TaskInfo:
    return _move_task(db, workspace_id, task_id, {"status": "done", "done_at": now}, ("open", "snoozed"))


def snooze_task(db: Database, workspace_id: str, task_id: int, until: datetime, now: datetime) -> TaskInfo:
    if until <= now:
        raise InvalidInputError("snooze until a moment in the future")
    if until - now > timedelta(days=90):
        raise InvalidInputError("snooze for at most 90 days")
    return _move_task(db, workspace_id, task_id, {"status": "snoozed", "due_at": until}, ("open", "snoozed"))


def _move_task(
    db: Database, workspace_id: str, task_id: int, values: dict[str, object], allowed: tuple[str, ...]
) -> TaskInfo:
    with db.transaction() as session:
        row = session.scalar(select(StaffTask).where(StaffTask.workspace_id == workspace_id, StaffTask.id == task_id))
        if row is None:
            raise NotFoundError(f"no task {task_id} in this workspace")
        if row.status not in allowed:
            raise ConflictError(f"task {task_id} is already {row.status}")
        session.execute(update(StaffTask).where(StaffTask.id == task_id).values(**values))
        session.flush()
        session.refresh(row)
        return _task_info(row)


# ---- the send ledger -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerRow:
    id: int
    idempotency_key: str
    status: str
    provider_id: str | None


def lock_recipient(session: Session, workspace_id: str, profile_id: str, channel: str) -> None:
    """Serialise sends to one person on one channel until this transaction ends (PostgreSQL;
    SQLite has one writer), so a frequency cap holds when workers race."""
    advisory_xact_lock(session, f"{workspace_id}|{profile_id}|{channel}")


@dataclass(frozen=True, slots=True)
class SendRequest:
    workspace_id: str
    idempotency_key: str
    profile_id: str
    user_id: str | None
    playbook: str | None
    step_id: str | None
    channel: str
    purpose: str
    to: str
    links: tuple[Link, ...] = ()  # the message's tracked links, stored with its ledger row


@dataclass(frozen=True, slots=True)
class SendOutcome:
    workspace_id: str
    idempotency_key: str
    status: str  # sent | failed | unknown
    provider_id: str | None = None
    error: str | None = None


def ledger_row(db: Database, workspace_id: str, idempotency_key: str) -> LedgerRow | None:
    with db.session() as session:
        return _ledger(session, workspace_id, idempotency_key)


def ledger_rows(session: Session, keys: list[tuple[str, str]]) -> dict[str, LedgerRow]:
    """The ledger rows of these (workspace, idempotency key) pairs that exist, by key."""
    by_workspace: dict[str, list[str]] = {}
    for workspace_id, key in keys:
        by_workspace.setdefault(workspace_id, []).append(key)
    out: dict[str, LedgerRow] = {}
    for workspace_id, wanted in by_workspace.items():
        for start in range(0, len(wanted), _CHUNK):
            rows = session.execute(
                select(Send.id, Send.idempotency_key, Send.status, Send.provider_id).where(
                    Send.workspace_id == workspace_id, Send.idempotency_key.in_(wanted[start : start + _CHUNK])
                )
            )
            for row_id, key, status, provider_id in rows:
                out[key] = LedgerRow(row_id, key, status, provider_id)
    return out


def begin_send(
    db: Database,
    workspace_id: str,
    *,
    idempotency_key: str,
    profile_id: str,
    user_id: str | None,
    playbook: str | None,
    step_id: str | None,
    channel: str,
    purpose: str,
    to: str,
    now: datetime,
    precheck: Callable[[Session], str | None] | None = None,
) -> tuple[LedgerRow | None, str | None]:
    """One send through `begin_sends`: (row, None), or (None, reason) when refused; an
    existing row is returned as it is (the step already began a send)."""
    request = SendRequest(workspace_id, idempotency_key, profile_id, user_id, playbook, step_id, channel, purpose, to)

    def check(session: Session, fresh: list[SendRequest]) -> dict[str, str]:
        refused = precheck(session) if precheck is not None and fresh else None
        return {} if refused is None else {idempotency_key: refused}

    rows, _fresh, refused = begin_sends(db, [request], now, check)
    if idempotency_key in refused:
        return None, refused[idempotency_key]
    return rows[idempotency_key], None


def begin_sends(
    db: Database,
    requests: list[SendRequest],
    now: datetime,
    precheck: Callable[[Session, list[SendRequest]], dict[str, str]] | None = None,
) -> tuple[dict[str, LedgerRow], set[str], dict[str, str]]:
    """The one write path for sends, step one: commit a `pending` row per send before any
    provider call, a batch in one transaction. `precheck` runs in that transaction (consent,
    caps) over the sends not begun before and may refuse some, by key with a reason. Returns
    the rows by key (existing ones as they are: the step already began that send), the keys
    begun now (only those may call the provider) and the refusals."""
    with db.transaction() as session:
        existing = ledger_rows(session, [(r.workspace_id, r.idempotency_key) for r in requests])
        fresh = [r for r in requests if r.idempotency_key not in existing]
        refused = precheck(session, fresh) if precheck is not None and fresh else {}
        rows = [
            {
                "workspace_id": r.workspace_id,
                "idempotency_key": r.idempotency_key,
                "profile_id": r.profile_id,
                "user_id": r.user_id,
                "playbook": r.playbook,
                "step_id": r.step_id,
                "channel": r.channel,
                "purpose": r.purpose,
                "to": r.to[:320],
                "status": "pending",
                "provider_id": None,
                "error": None,
                "created_at": now,
                "updated_at": now,
            }
            for r in fresh
            if r.idempotency_key not in refused
        ]
        began = dict(existing)
        if rows:
            returned = session.execute(insert(Send).returning(Send.id, Send.idempotency_key), rows)
            for row_id, key in returned:
                began[key] = LedgerRow(row_id, key, "pending", None)
            _store_links(session, [r for r in fresh if r.idempotency_key not in refused], now)
        return began, {str(row["idempotency_key"]) for row in rows}, refused


def _store_links(session: Session, begun: list[SendRequest], now: datetime) -> None:
    """In the ledger row's transaction, so a link in a message that went out always leads
    somewhere. A token is derived from the send's key and link: the same rows come again for
    the same send, and the conflict clause keeps one."""
    rows = [
        {
            "workspace_id": r.workspace_id,
            "token": link.token,
            "send_key": r.idempotency_key,
            "url": link.url,
            "created_at": now,
        }
        for r in begun
        for link in r.links
    ]
    if rows:
        session.execute(dialect_insert(session, SendLink).on_conflict_do_nothing(index_elements=["token"]), rows)


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """A tracked link, with the send it went out in."""

    workspace_id: str
    token: str
    url: str
    send_key: str
    profile_id: str
    user_id: str | None
    channel: str
    to: str
    playbook: str | None
    step_id: str | None


def find_link(db: Database, token: str) -> LinkTarget | None:
    with db.session() as session:
        row = session.execute(
            select(SendLink.workspace_id, SendLink.url, SendLink.send_key, Send.profile_id, Send.user_id)
            .add_columns(Send.channel, Send.to, Send.playbook, Send.step_id)
            .join(Send, (Send.workspace_id == SendLink.workspace_id) & (Send.idempotency_key == SendLink.send_key))
            .where(SendLink.token == token)
        ).one_or_none()
    if row is None:
        return None
    workspace_id, url, send_key, profile_id, user_id, channel, to, playbook, step_id = row
    return LinkTarget(workspace_id, token, url, send_key, profile_id, user_id, channel, to, playbook, step_id)


def finish_send(
    db: Database,
    workspace_id: str,
    idempotency_key: str,
    status: str,
    now: datetime,
    *,
    provider_id: str | None = None,
    error: str | None = None,
) -> None:
    with db.transaction() as session:
        finish_sends(session, [SendOutcome(workspace_id, idempotency_key, status, provider_id, error)], now)


def finish_sends(session: Session, outcomes: list[SendOutcome], now: datetime) -> None:
    """Step two, in the caller's transaction: what the provider said (`sent`, `failed`), or
    `unknown` for review."""
    for outcome in outcomes:
        if outcome.status not in ("sent", "failed", "unknown"):
            raise ValueError(f"unknown send status {outcome.status!r}")
    if outcomes:
        session.execute(
            update(SENDS)
            .where(SENDS.c.workspace_id == bindparam("ws"), SENDS.c.idempotency_key == bindparam("key"))
            .values(status=bindparam("st"), provider_id=bindparam("pid"), error=bindparam("err"), updated_at=now),
            [
                {
                    "ws": o.workspace_id,
                    "key": o.idempotency_key,
                    "st": o.status,
                    "pid": o.provider_id,
                    "err": (o.error or None) and o.error[:500],
                }
                for o in outcomes
            ],
        )


def _ledger(session: Session, workspace_id: str, key: str) -> LedgerRow | None:
    row = session.execute(
        select(Send.id, Send.status, Send.provider_id).where(
            Send.workspace_id == workspace_id, Send.idempotency_key == key
        )
    ).first()
    return None if row is None else LedgerRow(row[0], key, row[1], row[2])


def recent_sends(session: Session, workspace_id: str, profile_id: str, channel: str, since: datetime) -> int:
    """Marketing sends to a person on a channel since a moment (what a frequency cap counts)."""
    found = session.scalar(
        select(func.count())
        .select_from(Send)
        .where(
            Send.workspace_id == workspace_id,
            Send.profile_id == profile_id,
            Send.channel == channel,
            Send.purpose == "marketing",
            Send.status.in_(("pending", "sent", "unknown")),
            Send.created_at >= since,
        )
    )
    return int(found or 0)


def list_sends(
    db: Database, workspace_id: str, *, user_id: str | None = None, status: str | None = None, limit: int = 10_000
) -> list[SendInfo]:
    with db.session() as session:
        stmt = select(Send).where(Send.workspace_id == workspace_id)
        if user_id:
            stmt = stmt.where(Send.user_id == user_id)
        if status:
            stmt = stmt.where(Send.status == status)
        rows = session.scalars(stmt.order_by(Send.id.desc()).limit(limit))
        return [
            SendInfo(r.user_id, r.channel, r.playbook, r.step_id, r.status, r.idempotency_key, r.to, r.created_at)
            for r in rows
        ]
