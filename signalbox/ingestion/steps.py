"""The per-message pipeline steps: validate, then normalize. Each returns a value or a Drop."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from signalbox.core.ids import content_id
from signalbox.identity import identifiers as ids
from signalbox.ingestion.content import find_problem
from signalbox.ingestion.schemas import Drop, NormalizedMessage, SegmentMessage

_PHONE_KEYS = ("phone", "phone_number", "phoneNumber", "mobile")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# The width of the user_id, anonymous_id and identifier value columns.
MAX_ID_LENGTH = 255
_ID_FIELDS = ("userId", "anonymousId", "previousId", "groupId")


@dataclass(frozen=True, slots=True)
class StepContext:
    workspace_id: str
    default_region: str
    received_at: datetime
    max_message_bytes: int
    external_id_traits: tuple[str, ...]
    batch_context: dict[str, Any] | None = None
    batch_sent_at: datetime | None = None
    implied_type: str | None = None
    identified_by_context: bool = False


def validate(raw: Any, ctx: StepContext) -> SegmentMessage | Drop:
    if not isinstance(raw, dict):
        return Drop("validate", "message must be a JSON object")
    # Before anything serialises it: orjson cannot write what find_problem refuses.
    problem = find_problem(raw)
    if problem is None and ctx.batch_context:
        problem = find_problem(ctx.batch_context, "context", depth=1)
    if problem is not None:
        return Drop("validate", problem)
    size = len(orjson.dumps(raw))
    if size > ctx.max_message_bytes:
        return Drop("validate", f"message is {size} bytes, over the {ctx.max_message_bytes}-byte limit")
    if ctx.implied_type is not None:
        raw = {**raw, "type": ctx.implied_type}
    try:
        msg = SegmentMessage.model_validate(raw)
    except ValidationError as exc:
        return Drop("validate", _describe(exc))
    checked = _check_id_lengths(msg) or _check_times(msg, ctx)
    return checked if checked is not None else _check_required(msg, ctx)


def _check_id_lengths(msg: SegmentMessage) -> Drop | None:
    # clean_id would quietly treat an over-long id as absent, and the event would land
    # without the person it names.
    for name in _ID_FIELDS:
        text = _id_text(getattr(msg, name))
        if text is not None and len(text) > MAX_ID_LENGTH:
            return Drop("validate", f"{name}: is {len(text)} characters, over the {MAX_ID_LENGTH}-character limit")
    return None


def _id_text(value: str | int | None) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    return value.strip() if isinstance(value, str) else str(value)


def _check_times(msg: SegmentMessage, ctx: StepContext) -> Drop | None:
    for name in ("timestamp", "originalTimestamp", "sentAt"):
        value = getattr(msg, name)
        if value is not None and utc_in_range(value) is None:
            return Drop("validate", f"{name}: must be between {EARLIEST.year} and {LATEST.year - 1}")
    # Each field may be in range while the corrected time is not (a device clock decades off).
    try:
        corrected = utc_in_range(event_time(msg, ctx))
    except OverflowError:
        corrected = None
    if corrected is None:
        return Drop(
            "validate",
            "timestamp: corrected for the device's clock (receivedAt - (sentAt - timestamp)) it falls "
            f"outside {EARLIEST.year}-{LATEST.year - 1}",
        )
    return None


def utc_in_range(value: datetime) -> datetime | None:
    """The value in UTC, or None when it is outside the years an event can have happened in.
    Far-off values would overflow the clock-skew arithmetic (and no customer acted in year 1)."""
    try:
        aware = _aware(value)
    except OverflowError:
        return None
    assert aware is not None
    return aware if EARLIEST <= aware < LATEST else None


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "message"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _check_required(msg: SegmentMessage, ctx: StepContext) -> SegmentMessage | Drop:
    user_id, anonymous_id = ids.clean_id(msg.userId), ids.clean_id(msg.anonymousId)
    if msg.type == "alias":
        if user_id is None or ids.clean_id(msg.previousId) is None:
            return Drop("validate", "alias needs a usable userId and previousId")
    elif user_id is None and anonymous_id is None and not ctx.identified_by_context:
        return Drop("validate", "message needs a usable userId or anonymousId")
    if msg.type == "track" and not (msg.event and msg.event.strip()):
        return Drop("validate", "track needs a non-empty event name")
    if msg.type == "group" and ids.clean_id(msg.groupId) is None:
        return Drop("validate", "group needs a groupId")
    return msg


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    # Clients that omit the offset mean UTC (every official SDK sends UTC or an offset).
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normalize(msg: SegmentMessage, raw: dict[str, Any], index: int, ctx: StepContext) -> NormalizedMessage:
    context: dict[str, Any] = {**(ctx.batch_context or {}), **(msg.context or {})}
    received_at = ctx.received_at
    timestamp = _aware(msg.timestamp) or _aware(msg.originalTimestamp)
    sent_at = _aware(msg.sentAt) or ctx.batch_sent_at
    message_id = msg.messageId.strip() if msg.messageId and msg.messageId.strip() else None
    traits: dict[str, Any] = msg.traits or {}
    found_traits = context.get("traits")
    context_traits: dict[str, Any] = found_traits if isinstance(found_traits, dict) else {}
    person_traits: dict[str, Any] = {**context_traits, **traits} if msg.type == "identify" else context_traits
    user_id = ids.clean_id(msg.userId)
    out = NormalizedMessage(
        index=index,
        raw=raw,
        message_id=message_id or content_id("gen", raw),
        type=msg.type,
        event=_event_name(msg),
        user_id=user_id,
        anonymous_id=ids.clean_id(msg.anonymousId),
        previous_id=ids.clean_id(msg.previousId) if msg.type == "alias" else None,
        properties=msg.properties or {},
        traits={**context_traits, **traits} if msg.type in ("identify", "group") else {},
        context=context,
        timestamp=event_time(msg, ctx),
        original_timestamp=timestamp,
        sent_at=sent_at,
        received_at=received_at,
        profile_traits=person_traits if msg.type == "identify" else {},
    )
    out.identifiers = _identifiers(out, person_traits, context, ctx)
    return out


def event_time(msg: SegmentMessage, ctx: StepContext) -> datetime:
    """When the event happened by the server's clock; validate has range-checked the result."""
    timestamp = _aware(msg.timestamp) or _aware(msg.originalTimestamp)
    sent_at = _aware(msg.sentAt) or ctx.batch_sent_at
    if timestamp is None:
        return ctx.received_at
    if sent_at is None:
        return timestamp
    # The device clock may be wrong; what it got wrong is the same for both fields.
    return ctx.received_at - (sent_at - timestamp)


def _event_name(msg: SegmentMessage) -> str | None:
    if msg.type == "track":
        return (msg.event or "").strip()
    if msg.type in ("page", "screen"):
        return msg.name
    return None


def _identifiers(
    msg: NormalizedMessage, traits: dict[str, Any], context: dict[str, Any], ctx: StepContext
) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if msg.user_id:
        found.append((ids.USER_ID, msg.user_id))
    if traits:
        found.extend(_trait_identifiers(traits, ctx))
    found.extend(_context_external_ids(context))
    if msg.anonymous_id:
        found.append((ids.ANONYMOUS_ID, msg.anonymous_id))
    if len(found) < 2:  # most track calls: nothing to deduplicate or order
        return found
    unique = list(dict.fromkeys(found))
    unique.sort(key=lambda pair: ids.priority(pair[0]))
    return unique


def _trait_identifiers(traits: dict[str, Any], ctx: StepContext) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    email = traits.get("email")
    if isinstance(email, str) and (normal := ids.normalize_email(email)):
        found.append((ids.EMAIL, normal))
    for key in _PHONE_KEYS:
        phone = traits.get(key)
        if isinstance(phone, str | int) and (normal := ids.normalize_phone(str(phone), ctx.default_region)):
            found.append((ids.PHONE, normal))
            break
    for key in ctx.external_id_traits:
        if (value := ids.clean_id(traits.get(key))) is not None:
            found.append((key, value))
    return found


def _context_external_ids(context: dict[str, Any]) -> list[tuple[str, str]]:
    # Segment's `context.externalIds`: [{"id": "...", "type": "stripe_customer_id", ...}]
    raw = context.get("externalIds")
    out: list[tuple[str, str]] = []
    if not isinstance(raw, list):
        return out
    for item in raw:
        if not isinstance(item, dict):
            continue
        kind, value = item.get("type"), ids.clean_id(item.get("id"))
        if isinstance(kind, str) and kind.strip() and value is not None:
            kind = kind.strip().lower()[:64]
            if kind not in (ids.USER_ID, ids.ANONYMOUS_ID, ids.EMAIL, ids.PHONE):
                out.append((kind, value))
    return out
