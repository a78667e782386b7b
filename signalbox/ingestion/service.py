"""The ingestion pipeline: validate -> normalize -> resolve identity -> persist -> derive.

One transaction per batch. A message refused for its own fault is dropped with a reason and
kept in the dead-letter table (kind ``rejected``); when *we* fail, the batch's messages are
dead-lettered (kind ``failed``) so they can be replayed, and nothing is half-stored.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from signalbox.changes import service as changes
from signalbox.consent import service as consent
from signalbox.core import collector, wakeup
from signalbox.core.clock import Clock, SystemClock
from signalbox.core.db import Database, prefer_index_probes
from signalbox.core.errors import NotFoundError
from signalbox.core.logging import get_logger
from signalbox.core.metrics import (
    BATCH_LATENCY,
    EVENTS_ACCEPTED,
    EVENTS_DEAD_LETTERED,
    EVENTS_DUPLICATE,
    EVENTS_REJECTED,
)
from signalbox.core.settings import Settings
from signalbox.events import service as events
from signalbox.identity import service as identity
from signalbox.ingestion.content import safe_text, storable_copy, unescape
from signalbox.ingestion.models import DeadLetter
from signalbox.ingestion.schemas import (
    BatchResult,
    DeadLetterInfo,
    Drop,
    NormalizedMessage,
    Rejected,
    SegmentMessage,
)
from signalbox.ingestion.steps import StepContext, normalize, validate
from signalbox.profiles import service as profiles
from signalbox.profiles.schemas import Contribution
from signalbox.workspaces.schemas import WorkspaceInfo

log = get_logger("ingestion")
DEAD_LETTERS: Table = DeadLetter.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class BatchInput:
    messages: Sequence[Any]
    source: str = "http"
    batch_context: dict[str, Any] | None = None
    batch_sent_at: datetime | None = None
    implied_type: str | None = None
    received_at: datetime | None = None
    # Our own connectors (Stripe) name people by external ids and traits in `context` alone,
    # with no userId or anonymousId; Segment's clients may not.
    identified_by_context: bool = False


class Pipeline:
    def __init__(self, db: Database, settings: Settings, clock: Clock | None = None) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock or SystemClock()

    @collector.bulk_work()
    def ingest(
        self,
        workspace: WorkspaceInfo,
        batch: BatchInput,
        *,
        keep_rejects: bool = True,
        along: Callable[[Session, BatchResult], None] | None = None,
    ) -> BatchResult:
        """`along` is the caller's own write that must commit with the batch, or not at all
        (a connector's processed-event record); it sees the batch's result."""
        started = time.perf_counter()
        received_at = batch.received_at or self.clock.now()
        ctx = StepContext(
            workspace_id=workspace.id,
            default_region=workspace.default_region,
            received_at=received_at,
            max_message_bytes=self.settings.max_message_bytes,
            external_id_traits=self.settings.external_id_traits,
            batch_context=batch.batch_context,
            batch_sent_at=batch.batch_sent_at,
            implied_type=batch.implied_type,
            identified_by_context=batch.identified_by_context,
        )
        result = BatchResult(received=len(batch.messages))
        fresh = self._prepare(batch.messages, ctx, result)
        stored_rejects = self._rejects(workspace, batch, result, received_at) if keep_rejects else []
        try:
            self._persist(workspace, fresh, stored_rejects, result, along)
        except Exception as exc:
            log.exception("batch failed; dead-lettering", extra={"workspace_id": workspace.id, "messages": len(fresh)})
            if keep_rejects:  # a replay keeps its one dead-letter row instead of adding more
                self._dead_letter_batch(workspace, batch, fresh, stored_rejects, exc, received_at)
            result.dead_lettered += len(fresh)
            result.accepted = 0
            EVENTS_DEAD_LETTERED.labels("persist").inc(len(fresh))
        self._count(batch.source, result, time.perf_counter() - started)
        if result.accepted:
            wakeup.notify()
        return result

    def _prepare(self, messages: Sequence[Any], ctx: StepContext, result: BatchResult) -> list[NormalizedMessage]:
        seen: set[str] = set()
        fresh: list[NormalizedMessage] = []
        for index, raw in enumerate(messages):
            checked = validate(raw, ctx)
            if isinstance(checked, Drop):
                result.rejected.append(Rejected(index, checked.step, checked.reason))
                continue
            msg = normalize(checked, raw, index, ctx)
            if not msg.identifiers:  # only possible when identified_by_context
                result.rejected.append(Rejected(index, "validate", "message names nobody (no usable identifier)"))
                continue
            if msg.message_id in seen:
                result.duplicates += 1
                continue
            seen.add(msg.message_id)
            fresh.append(msg)
        return fresh

    def _rejects(
        self, workspace: WorkspaceInfo, batch: BatchInput, result: BatchResult, received_at: datetime
    ) -> list[dict[str, Any]]:
        return [
            _dead_letter_row(workspace.id, "rejected", r.step, r.reason, batch, batch.messages[r.index], received_at)
            for r in result.rejected
        ]

    def _persist(
        self,
        workspace: WorkspaceInfo,
        fresh: list[NormalizedMessage],
        rejects: list[dict[str, Any]],
        result: BatchResult,
        along: Callable[[Session, BatchResult], None] | None,
    ) -> None:
        with self.db.transaction() as session:
            if rejects:
                session.execute(insert(DEAD_LETTERS), rejects)
            if fresh:
                self._store(session, workspace, fresh, result)
            if along is not None:
                along(session, result)

    def _store(
        self, session: Session, workspace: WorkspaceInfo, fresh: list[NormalizedMessage], result: BatchResult
    ) -> None:
        now = self.clock.now()
        identity.lock_workspace(session, workspace.id)
        prefer_index_probes(session)
        # The batch's change-log rows (merges, events, traits) are logged together at the end.
        with changes.deferred(session, workspace.id):
            self._store_locked(session, workspace, fresh, result, now)

    def _store_locked(
        self,
        session: Session,
        workspace: WorkspaceInfo,
        fresh: list[NormalizedMessage],
        result: BatchResult,
        now: datetime,
    ) -> None:
        stored = events.existing_message_ids(session, workspace.id, [m.message_id for m in fresh])
        todo = [m for m in fresh if m.message_id not in stored]
        result.duplicates += len(fresh) - len(todo)
        if not todo:
            return
        stats = identity.resolve_batch(session, workspace.id, todo, now)
        # The workspace lock is held since the check above, so every row of `todo` is new.
        inserted = events.insert_events(session, workspace.id, [_event_row(workspace.id, m) for m in todo], now)
        if inserted != len(todo):
            raise RuntimeError(f"{len(todo) - inserted} messages changed under the workspace lock")
        result.accepted += inserted
        result.merges += stats.merges
        result.reviews += stats.reviews
        contributions: dict[str, Contribution] = {}
        for msg in todo:
            root = stats.root_of[msg.profile_id]
            if root not in stats.rebuild:
                contributions.setdefault(root, Contribution()).add(
                    msg.type, msg.event, msg.timestamp, msg.profile_traits
                )
        _record_consent(session, workspace.id, todo, now)
        profiles.apply_contributions(session, workspace.id, contributions, now)
        profiles.recompute(session, workspace.id, stats.rebuild, now)
        wakeup.notify_in(session)

    def _dead_letter_batch(
        self,
        workspace: WorkspaceInfo,
        batch: BatchInput,
        fresh: list[NormalizedMessage],
        rejects: list[dict[str, Any]],
        exc: Exception,
        received_at: datetime,
    ) -> None:
        reason = f"{type(exc).__name__}: {_scrub(str(exc))}"[:2000]
        rows = rejects + [
            _dead_letter_row(workspace.id, "failed", "persist", reason, batch, m.raw, received_at) for m in fresh
        ]
        if rows:
            # If this fails too the database is gone: the caller answers 503 and the client retries.
            with self.db.transaction() as session:
                session.execute(insert(DEAD_LETTERS), rows)

    def _count(self, source: str, result: BatchResult, seconds: float) -> None:
        EVENTS_ACCEPTED.labels(source).inc(result.accepted)
        EVENTS_DUPLICATE.labels(source).inc(result.duplicates)
        for rejected in result.rejected:
            EVENTS_REJECTED.labels(_reason_label(rejected.reason)).inc()
        BATCH_LATENCY.labels(source).observe(seconds)
        if result.rejected:
            log.info(
                "messages rejected",
                extra={"source": source, "rejected": len(result.rejected), "accepted": result.accepted},
            )


def _record_consent(session: Session, workspace_id: str, stored: list[NormalizedMessage], now: datetime) -> None:
    """identify traits `email_subscribe` / `sms_subscribe` go to the consent ledger, with the
    message as evidence and its timestamp as the moment of the change."""
    for msg in stored:
        if msg.type != "identify" or not msg.profile_traits:
            continue
        for channel, status in consent.from_traits(msg.profile_traits):
            consent.record(
                session,
                workspace_id,
                msg.profile_id,
                channel,
                status,
                source="identify",
                at=msg.timestamp,
                now=now,
                evidence={"message_id": msg.message_id},
            )


def _reason_label(reason: str) -> str:
    # Low-cardinality label: the top-level field or the rule, never the value, and never a
    # client's own key (a path such as properties.<key> would mint a label per key).
    if ":" in reason:
        field = re.split(r"[.\[]", reason.split(":", 1)[0], maxsplit=1)[0]
        return field.lower() if field in SegmentMessage.model_fields else "other_field"
    return re.sub(r"[^a-z_.]+", "_", reason.lower()).strip("_")[:40] or "invalid"


def _scrub(text: str) -> str:
    # Database errors echo parameters; keep only the first line, which names the problem.
    return text.splitlines()[0] if text else ""


def _event_row(workspace_id: str, m: NormalizedMessage) -> dict[str, Any]:
    return {
        "workspace_id": workspace_id,
        "message_id": m.message_id,
        "profile_id": m.profile_id,
        "type": m.type,
        "event": m.event,
        "user_id": m.user_id,
        "anonymous_id": m.anonymous_id,
        "properties": m.properties,
        "traits": m.traits,
        "context": m.context,
        "timestamp": m.timestamp,
        "original_timestamp": m.original_timestamp,
        "sent_at": m.sent_at,
        "received_at": m.received_at,
    }


def _dead_letter_row(
    workspace_id: str, kind: str, step: str, reason: str, batch: BatchInput, raw: Any, received_at: datetime
) -> dict[str, Any]:
    message = dict(raw) if isinstance(raw, dict) else {"raw": raw}
    # Keep what the batch added so a replay sees the message as it was meant.
    own_context = message.get("context") or {}
    if batch.batch_context and isinstance(own_context, dict):
        message["context"] = {**batch.batch_context, **own_context}
    if batch.batch_sent_at and isinstance(raw, dict) and "sentAt" not in raw:
        message["sentAt"] = batch.batch_sent_at.isoformat()
    if batch.implied_type and isinstance(raw, dict):
        message["type"] = batch.implied_type
    message.pop("writeKey", None)
    return {
        "workspace_id": workspace_id,
        "kind": kind,
        "step": step,
        # A rejected message is often rejected for what it holds; neither the copy nor the
        # reason may make this write fail in turn.
        "reason": safe_text(reason),
        "source": batch.source,
        "message": storable_copy(message),
        "received_at": received_at,
        "status": "pending",
        "replayed_at": None,
    }


# ---- dead-letter queue -----------------------------------------------------------------


def list_dead_letters(
    db: Database, workspace_id: str, *, status: str | None = "pending", kind: str | None = None, limit: int = 100
) -> list[DeadLetterInfo]:
    with db.session() as session:
        stmt = select(DeadLetter).where(DeadLetter.workspace_id == workspace_id)
        if status:
            stmt = stmt.where(DeadLetter.status == status)
        if kind:
            stmt = stmt.where(DeadLetter.kind == kind)
        rows = session.scalars(stmt.order_by(DeadLetter.id).limit(limit))
        return [_dl_info(r) for r in rows]


def _dl_info(r: DeadLetter) -> DeadLetterInfo:
    mid = r.message.get("messageId")
    return DeadLetterInfo(
        r.id,
        r.kind,
        r.step,
        r.reason,
        r.source,
        r.status,
        r.received_at,
        r.replayed_at,
        mid if isinstance(mid, str) else None,
    )


@dataclass(frozen=True)
class ReplayResult:
    replayed: int
    still_failing: int
    items: list[DeadLetterInfo]


def replay_dead_letters(
    pipeline: Pipeline, workspace: WorkspaceInfo, *, ids: Sequence[int] | None = None, kind: str | None = None
) -> ReplayResult:
    """Run pending dead letters through the pipeline again, each with its original receipt
    time so clock-skew correction gives the same timestamp it would have given then."""
    db = pipeline.db
    with db.session() as session:
        stmt = select(DeadLetter).where(DeadLetter.workspace_id == workspace.id, DeadLetter.status == "pending")
        if ids:
            stmt = stmt.where(DeadLetter.id.in_(list(ids)))
        if kind:
            stmt = stmt.where(DeadLetter.kind == kind)
        rows = list(session.scalars(stmt.order_by(DeadLetter.id)))
    if ids and len(rows) != len(set(ids)):
        missing = sorted(set(ids) - {r.id for r in rows})
        raise NotFoundError(f"no pending dead letters with id {', '.join(map(str, missing))}")
    replayed = failing = 0
    for row in rows:
        result = pipeline.ingest(
            workspace,
            BatchInput([unescape(row.message)], source="replay", received_at=row.received_at),
            keep_rejects=False,
        )
        ok = not result.rejected and not result.dead_lettered
        with db.transaction() as session:
            values: dict[str, Any] = (
                {"status": "replayed", "replayed_at": pipeline.clock.now()}
                if ok
                else {"reason": safe_text(result.rejected[0].reason) if result.rejected else row.reason}
            )
            session.execute(update(DeadLetter).where(DeadLetter.id == row.id).values(**values))
        replayed, failing = replayed + ok, failing + (not ok)
    done = {r.id for r in rows}
    items = [d for d in list_dead_letters(db, workspace.id, status=None, limit=100_000) if d.id in done]
    return ReplayResult(replayed, failing, items)
