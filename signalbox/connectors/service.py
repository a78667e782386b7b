"""Stripe inbound: the accepted signing secrets, and a webhook's way from raw body to event.

A webhook is (1) matched to its workspace, (2) verified against every accepted secret
before anything is read or stored, (3) parsed, (4) checked against the processed event ids,
(5) mapped to our vocabulary, (6) tied to its person (below), (7) ingested through the one
pipeline with the Stripe event's `created` as its timestamp and a message id derived from the
Stripe event id, and (8) recorded as processed.

Identity: the Stripe customer id (`stripe_customer_id`, an external id) is the key. When no
profile holds it yet, the customer's e-mail finds or creates the profile and the link is
recorded, except when that e-mail's profile is already linked to *another* Stripe customer
(a shared billing address, a family paying for two members): then the new customer gets a
profile of its own and nothing is merged. A known customer id is sent alone, so a changed
or shared billing e-mail can never merge two people either.
"""

from __future__ import annotations

import hashlib
import re
import threading
import zlib
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from signalbox.connectors import signatures
from signalbox.connectors import stripe_events as mapping
from signalbox.connectors import stripe_invoices as invoices
from signalbox.connectors.models import StripeProcessedEvent, StripeSigningSecret
from signalbox.connectors.schemas import (
    MappedEvent,
    Outcome,
    SigningSecretInfo,
    StripeEvent,
    WebhookRejected,
    WebhookResult,
)
from signalbox.core.clock import Clock
from signalbox.core.db import Database
from signalbox.core.errors import InvalidInputError, NotFoundError
from signalbox.core.logging import get_logger
from signalbox.core.secretbox import SecretBox, UnreadableSecretError, fingerprint
from signalbox.core.settings import Settings
from signalbox.identity import identifiers as ids
from signalbox.identity import service as identity
from signalbox.ingestion import importers
from signalbox.ingestion.schemas import BatchResult
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.workspaces import service as workspaces
from signalbox.workspaces.schemas import WorkspaceInfo

log = get_logger("connectors.stripe")
STRIPE_CUSTOMER_ID = "stripe_customer_id"
SOURCE = "stripe"
MAX_MESSAGE_ID = 255
LINK_STRIPES = 64
MAX_BODY_BYTES = 512 * 1024  # Stripe's events are far smaller; an invoice with many lines stays under
_SECRET = re.compile(r"^whsec_[!-~]{8,249}$")
_FINGERPRINT = re.compile(r"^sha256:[0-9a-f]{16}$")
_API_KEY_PREFIXES = ("sk_", "rk_", "pk_")
PROCESSED: Table = StripeProcessedEvent.__table__  # type: ignore[assignment]


@lru_cache(maxsize=4)
def _box_for(secret_key: str) -> SecretBox:
    return SecretBox(secret_key, "stripe-signing-secrets")


def _box(settings: Settings) -> SecretBox:
    # Derived once per key, not once per webhook.
    return _box_for(settings.secret_key)


# ---- signing secrets -------------------------------------------------------------------


def check_secret(secret: str) -> str:
    """A Stripe webhook signing secret as given, or a one-line reason it is not one."""
    text = secret.strip()
    if text.startswith(_API_KEY_PREFIXES):
        raise InvalidInputError(
            "that is a Stripe API key, not a webhook signing secret; copy the endpoint's signing secret "
            "(whsec_…) from the Stripe dashboard or `stripe listen`"
        )
    if not _SECRET.match(text):
        raise InvalidInputError(
            "a Stripe webhook signing secret starts with whsec_ and has at least 8 more printable characters, no spaces"
        )
    return text


def fingerprint_of(secret: str) -> str:
    return fingerprint(check_secret(secret))


def add_signing_secret(db: Database, settings: Settings, workspace_id: str, secret: str, now: datetime) -> bool:
    """Accept one more secret (rotation: add the new one, then remove the old one).
    Returns False when it was already accepted."""
    text = check_secret(secret)
    mark = fingerprint(text)
    with db.transaction() as session:
        found = session.scalar(
            select(StripeSigningSecret.id).where(
                StripeSigningSecret.workspace_id == workspace_id, StripeSigningSecret.fingerprint == mark
            )
        )
        if found is not None:
            return False
        session.add(
            StripeSigningSecret(
                workspace_id=workspace_id, fingerprint=mark, sealed=_box(settings).seal(text), created_at=now
            )
        )
    return True


def remove_signing_secret(db: Database, workspace_id: str, secret_or_fingerprint: str) -> str:
    """Stop accepting a secret, named by itself or by its fingerprint. Returns the fingerprint."""
    text = secret_or_fingerprint.strip()
    mark = text if _FINGERPRINT.match(text) else fingerprint(check_secret(text))
    where = (StripeSigningSecret.workspace_id == workspace_id, StripeSigningSecret.fingerprint == mark)
    with db.transaction() as session:
        if session.scalar(select(StripeSigningSecret.id).where(*where)) is None:
            raise NotFoundError(f"the workspace accepts no Stripe signing secret with fingerprint {mark}")
        session.execute(delete(StripeSigningSecret).where(*where))
    return mark


def list_signing_secrets(db: Database, settings: Settings, workspace_id: str) -> list[SigningSecretInfo]:
    box = _box(settings)
    out: list[SigningSecretInfo] = []
    for row in _secret_rows(db, workspace_id):
        try:
            box.open(row.sealed)
            usable = True
        except UnreadableSecretError:
            usable = False
        out.append(SigningSecretInfo(row.fingerprint, row.created_at, usable))
    return out


def _secret_rows(db: Database, workspace_id: str) -> list[StripeSigningSecret]:
    with db.session() as session:
        return list(
            session.scalars(
                select(StripeSigningSecret)
                .where(StripeSigningSecret.workspace_id == workspace_id)
                .order_by(StripeSigningSecret.id)
            )
        )


def _usable_secrets(db: Database, settings: Settings, workspace_id: str) -> list[str]:
    box = _box(settings)
    usable: list[str] = []
    for row in _secret_rows(db, workspace_id):
        try:
            usable.append(box.open(row.sealed))
        except UnreadableSecretError:
            # The fingerprint names it; the secret itself is never logged.
            log.error(
                "stripe signing secret unreadable with this SIGNALBOX_SECRET_KEY",
                extra={"workspace_id": workspace_id, "fingerprint": row.fingerprint},
            )
    return usable


# ---- webhooks --------------------------------------------------------------------------


class StripeInbound:
    """What a webhook needs, wired once by the app (the clock decides the tolerance window)."""

    def __init__(self, db: Database, settings: Settings, pipeline: Pipeline, clock: Clock) -> None:
        self.db, self.settings, self.pipeline, self.clock = db, settings, pipeline, clock
        # Deliveries that may link a new customer by the same e-mail take turns (check, then
        # store), so two new customers sharing an e-mail cannot both pass the check before
        # either is stored. Striped by e-mail: different e-mails never wait for each other.
        self._linking = [threading.Lock() for _ in range(LINK_STRIPES)]

    def receive(self, workspace_ref: str, body: bytes, signature: str | None) -> WebhookResult:
        workspace = workspaces.get_workspace(self.db, workspace_ref)
        if len(body) > MAX_BODY_BYTES:
            raise WebhookRejected("too_large", f"the body is over {MAX_BODY_BYTES} bytes")
        secrets = _usable_secrets(self.db, self.settings, workspace.id)
        if not secrets:
            raise WebhookRejected(
                "no_signing_secret",
                "this workspace has no usable Stripe signing secret; add one with "
                "`signalbox connect stripe --workspace W --signing-secret whsec_…`",
            )
        signatures.verify(body, signature, secrets, self.clock.now())
        event = mapping.parse_event(body)
        if _processed(self.db, workspace.id, event.id):
            return WebhookResult(event.id, event.type, "duplicate_event")
        mapped = mapping.map_event(event)
        outcome = self._ingest(workspace, event, mapped)
        log.info(
            "stripe event",
            extra={"workspace_id": workspace.id, "event_id": event.id, "type": event.type, "outcome": outcome},
        )
        return WebhookResult(event.id, event.type, outcome, mapped.event if mapped else None)

    def _ingest(self, workspace: WorkspaceInfo, event: StripeEvent, mapped: MappedEvent | None) -> Outcome:
        customer, email = _who(self.db, workspace.id, mapped) if mapped else (None, None)
        if mapped is None or (customer is None and email is None):
            outcome: Outcome = "ignored" if mapped is None else "no_customer"
            with self.db.transaction() as session:
                _mark_processed(session, workspace.id, event, outcome, self.clock.now())
            return outcome
        # Stripe's `created` orders the events: a success older than a failure of the same
        # invoice stays older however late it arrives.
        message = _message(mapped, customer, email, mapped.dedupe_key or event.id, event.created)
        context = message["context"]
        if customer is None or email is None:
            return self._store(workspace, event, message)
        with self._linking[zlib.crc32(email.encode()) % LINK_STRIPES]:
            if not _may_link(self.db, workspace.id, customer, email):  # again, now that we take turns
                message["context"] = {k: v for k, v in context.items() if k != "traits"}
            return self._store(workspace, event, message)

    def _store(self, workspace: WorkspaceInfo, event: StripeEvent, message: dict[str, Any]) -> Outcome:
        outcome: list[Outcome] = []

        def mark(session: Session, result: BatchResult) -> None:
            # In the batch's own transaction: the event id counts as processed exactly when
            # what it brought is stored.
            found: Outcome = "rejected" if result.rejected else "stored" if result.accepted else "duplicate_message"
            _mark_processed(session, workspace.id, event, found, self.clock.now())
            outcome.append(found)

        result = self.pipeline.ingest(
            workspace, BatchInput([message], source=SOURCE, identified_by_context=True), along=mark
        )
        if result.dead_lettered or not outcome:
            # Our failure; the message waits in the dead-letter table and Stripe retries on
            # a 5xx. The message id keeps the two from storing it twice.
            raise RuntimeError("the Stripe event could not be stored; it was dead-lettered")
        return outcome[0]


def _message(mapped: MappedEvent, customer: str | None, email: str | None, key: str, at: datetime) -> dict[str, Any]:
    """The track message a Stripe event (or an exported invoice) becomes, naming its person
    by the customer id and, where it may link, the e-mail."""
    context: dict[str, Any] = {}
    if customer is not None:
        context["externalIds"] = [
            {"type": STRIPE_CUSTOMER_ID, "id": customer, "collection": "users", "encoding": "none"}
        ]
    if email is not None:
        context["traits"] = {"email": email}
    return {
        "type": "track",
        "event": mapped.event,
        "messageId": _message_id(key),
        "properties": mapped.properties,
        "timestamp": at.isoformat(),
        "context": context,
    }


def import_invoices(
    db: Database,
    pipeline: Pipeline,
    workspace: WorkspaceInfo,
    path: Path,
    *,
    reject_path: Path | None = None,
    progress: importers.Progress | None = None,
) -> importers.ImportResult:
    """A Stripe invoice export as payment history (`import transactions --format
    stripe-invoices`). A paid invoice with its paid-at time gets the webhook's own message id,
    so the export and the webhook never store one payment twice."""
    found = invoices.Header({})

    def required(names: list[str]) -> list[str]:
        nonlocal found
        found = invoices.Header.of(names)
        return found.missing()

    def to_message(row: dict[str, str]) -> dict[str, Any] | None:
        mapped = invoices.map_row(found, row)
        if mapped is None:
            return None
        event, at = mapped
        customer, email = _who(db, workspace.id, event)
        if customer is None and email is None:
            raise ValueError("neither the customer id nor the e-mail is usable")
        return _message(event, customer, email, event.dedupe_key or "", at)

    return importers.import_csv_rows(
        pipeline, workspace, path, to_message, required=required, reject_path=reject_path, progress=progress
    )


def _message_id(key: str) -> str:
    text = f"stripe:{key}"
    # Stripe's ids are short; a key too long for the column is hashed rather than refused.
    return text if len(text) <= MAX_MESSAGE_ID else "stripe:sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _who(db: Database, workspace_id: str, mapped: MappedEvent) -> tuple[str | None, str | None]:
    """The customer id, and the e-mail when it may go along (to find or link the profile)."""
    customer = ids.clean_id(mapped.customer_id)
    email = ids.normalize_email(mapped.email) if mapped.email else None
    if email is not None and customer is not None and not _may_link(db, workspace_id, customer, email):
        email = None
    return customer, email


def _may_link(db: Database, workspace_id: str, customer: str, email: str) -> bool:
    """Send the e-mail along only when the customer id is unknown and the e-mail's profile is
    not already another Stripe customer's."""
    with db.session() as session:
        if identity.find_root(session, workspace_id, (STRIPE_CUSTOMER_ID, customer)) is not None:
            return False
        root = identity.find_root(session, workspace_id, (ids.EMAIL, email))
        if root is None:
            return True
        doc = identity.person(session, workspace_id, root)
    held = {i.value for i in doc.identifiers if i.type == STRIPE_CUSTOMER_ID} if doc else set()
    return not (held - {customer})


def _processed(db: Database, workspace_id: str, event_id: str) -> bool:
    with db.session() as session:
        found = session.scalar(
            select(StripeProcessedEvent.id).where(
                StripeProcessedEvent.workspace_id == workspace_id, StripeProcessedEvent.event_id == event_id
            )
        )
    return found is not None


def _mark_processed(session: Session, workspace_id: str, event: StripeEvent, outcome: str, now: datetime) -> None:
    row = {
        "workspace_id": workspace_id,
        "event_id": event.id,
        "type": event.type[:255],
        "outcome": outcome,
        "created": event.created,
        "processed_at": now,
    }
    dialect = session.get_bind().dialect.name
    base = postgresql.insert(PROCESSED) if dialect == "postgresql" else sqlite.insert(PROCESSED)
    # Two deliveries of one event racing: the first row stays, the second does nothing.
    session.execute(base.on_conflict_do_nothing(index_elements=["workspace_id", "event_id"]), [row])


def processed_events(db: Database, workspace_id: str, limit: int = 10_000) -> list[dict[str, Any]]:
    """The processed Stripe event ids, newest first (for operators and tests)."""
    with db.session() as session:
        rows = session.scalars(
            select(StripeProcessedEvent)
            .where(StripeProcessedEvent.workspace_id == workspace_id)
            .order_by(StripeProcessedEvent.id.desc())
            .limit(limit)
        )
        return [
            {
                "event_id": r.event_id,
                "type": r.type,
                "outcome": r.outcome,
                "created": r.created.isoformat(),
                "processed_at": r.processed_at.isoformat(),
            }
            for r in rows
        ]
