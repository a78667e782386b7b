"""Stripe's events read and mapped to signalbox's event vocabulary (pure functions).

| Stripe event | ours |
|---|---|
| `invoice.payment_failed` | `payment_failed` |
| `invoice.paid`, `invoice.payment_succeeded` | `payment_succeeded` |
| `customer.subscription.deleted` | `subscription_cancelled` |
| `customer.subscription.updated` that sets `pause_collection`, `customer.subscription.paused` | `subscription_paused` |
| `charge.refunded` | `refund_initiated` |
| `customer.source.expiring` | `card_expiring` |

Any other type is acknowledged and ignored. Amounts become major units of their currency
(49.00 for 4900 cents, 5000 for ¥5000, 1.234 for 1234 fils).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from signalbox.connectors.schemas import MappedEvent, StripeEvent, WebhookRejected

# https://docs.stripe.com/currencies#zero-decimal and #three-decimal. ISK, HUF, TWD and UGX's
# special cases are still written in hundredths in the API, so they stay at two decimals.
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
MAX_ID_LENGTH = 255
EARLIEST = datetime(2009, 1, 1, tzinfo=UTC)  # before Stripe existed
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def parse_event(body: bytes) -> StripeEvent:
    """The body of a verified webhook as a Stripe v1 (snapshot) event."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebhookRejected("invalid_event", "the body is not JSON") from None
    if not isinstance(doc, dict):
        raise WebhookRejected("invalid_event", "the body must be a JSON object (a Stripe event)")
    if doc.get("object") != "event":
        raise WebhookRejected(
            "invalid_event", 'object: must be "event" (a snapshot event; thin v2 event notifications are not read)'
        )
    event_id, kind = _text(doc, "id"), _text(doc, "type")
    created = doc.get("created")
    if not isinstance(created, int) or isinstance(created, bool):
        raise WebhookRejected("invalid_event", "created: must be an integer (unix seconds)")
    when = _unix(created, "created")
    data = doc.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise WebhookRejected("invalid_event", "data.object: must be an object")
    previous = data.get("previous_attributes") if isinstance(data, dict) else None
    return StripeEvent(
        id=event_id,
        type=kind,
        created=when,
        object=obj,
        previous_attributes=previous if isinstance(previous, dict) else None,
        livemode=doc.get("livemode") is True,
    )


def _text(doc: dict[str, Any], key: str, where: str = "") -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip():
        raise WebhookRejected("invalid_event", f"{where}{key}: must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise WebhookRejected("invalid_event", f"{where}{key}: is over {MAX_ID_LENGTH} characters")
    return value.strip()


def _unix(value: int, name: str) -> datetime:
    try:
        when = datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        when = None
    if when is None or not EARLIEST <= when < LATEST:
        raise WebhookRejected("invalid_event", f"{name}: {value} is not a plausible unix time")
    return when


def major_units(amount: Any, currency: str, name: str) -> float:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise WebhookRejected("invalid_event", f"data.object.{name}: must be an integer amount in minor units")
    places = 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2
    return float(Decimal(amount).scaleb(-places))


def _currency(obj: dict[str, Any]) -> str:
    value = obj.get("currency")
    if not isinstance(value, str) or len(value.strip()) != 3 or not value.strip().isalpha():
        raise WebhookRejected("invalid_event", "data.object.currency: must be a three-letter ISO 4217 code")
    return value.strip().lower()


def _optional_text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value.strip()[:2048] if isinstance(value, str) and value.strip() else None


def _optional_time(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return _unix(value, f"data.object.{key}").isoformat()
    return None


def _customer(obj: dict[str, Any], key: str = "customer") -> str | None:
    value = obj.get(key)
    if isinstance(value, dict):  # expanded
        value = value.get("id")
    return value.strip() if isinstance(value, str) and value.strip() and len(value) <= MAX_ID_LENGTH else None


def _invoice(ev: StripeEvent, name: str, amount_key: str) -> MappedEvent:
    obj = ev.object
    currency = _currency(obj)
    props: dict[str, Any] = {
        "invoice_id": _text(obj, "id", "data.object."),
        "amount": major_units(obj.get(amount_key), currency, amount_key),
        "currency": currency,
        "attempt_count": obj.get("attempt_count") if isinstance(obj.get("attempt_count"), int) else None,
        "next_payment_attempt": _optional_time(obj, "next_payment_attempt"),
        "hosted_invoice_url": _optional_text(obj, "hosted_invoice_url"),
        "subscription_id": _subscription_of(obj),
    }
    key = None
    if name == "payment_succeeded":
        # Stripe sends both invoice.paid and invoice.payment_succeeded for one payment; both
        # carry the invoice's `status_transitions.paid_at`, which makes the pair one event.
        transitions = obj.get("status_transitions")
        paid_at = transitions.get("paid_at") if isinstance(transitions, dict) else None
        if isinstance(paid_at, int) and not isinstance(paid_at, bool):
            props["paid_at"] = _unix(paid_at, "data.object.status_transitions.paid_at").isoformat()
            key = f"invoice-paid:{props['invoice_id']}:{paid_at}"
    return MappedEvent(name, _with_source(ev, props), _customer(obj), _optional_text(obj, "customer_email"), key)


def _subscription_of(invoice: dict[str, Any]) -> str | None:
    found = invoice.get("subscription")
    if isinstance(found, dict):
        found = found.get("id")
    if not found:  # API versions from 2025 moved it under parent.subscription_details
        parent = invoice.get("parent")
        details = parent.get("subscription_details") if isinstance(parent, dict) else None
        found = details.get("subscription") if isinstance(details, dict) else None
    return found if isinstance(found, str) and found else None


def _payment_failed(ev: StripeEvent) -> MappedEvent:
    return _invoice(ev, "payment_failed", "amount_due")


def _payment_succeeded(ev: StripeEvent) -> MappedEvent:
    return _invoice(ev, "payment_succeeded", "amount_paid")


def _subscription(ev: StripeEvent, name: str, extra: dict[str, Any]) -> MappedEvent:
    obj = ev.object
    props: dict[str, Any] = {"subscription_id": _text(obj, "id", "data.object."), "status": obj.get("status"), **extra}
    return MappedEvent(name, _with_source(ev, props), _customer(obj), None)


def _subscription_cancelled(ev: StripeEvent) -> MappedEvent:
    details = ev.object.get("cancellation_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    return _subscription(
        ev,
        "subscription_cancelled",
        {
            "canceled_at": _optional_time(ev.object, "canceled_at"),
            "cancellation_reason": reason if isinstance(reason, str) else None,
        },
    )


def _subscription_updated(ev: StripeEvent) -> MappedEvent | None:
    # Only the update that *sets* a pause is a pause; later edits of a paused subscription
    # (or its resumption) are not.
    pause = ev.object.get("pause_collection")
    before = ev.previous_attributes or {}
    if not isinstance(pause, dict) or "pause_collection" not in before or before.get("pause_collection"):
        return None
    return _subscription(
        ev,
        "subscription_paused",
        {"behavior": pause.get("behavior"), "resumes_at": _optional_time(pause, "resumes_at")},
    )


def _subscription_paused(ev: StripeEvent) -> MappedEvent:
    return _subscription(ev, "subscription_paused", {"behavior": None, "resumes_at": None})


def _charge_refunded(ev: StripeEvent) -> MappedEvent:
    obj = ev.object
    currency = _currency(obj)
    billing = obj.get("billing_details")
    email = _optional_text(obj, "receipt_email") or (
        _optional_text(billing, "email") if isinstance(billing, dict) else None
    )
    props = {
        "charge_id": _text(obj, "id", "data.object."),
        "amount": major_units(obj.get("amount_refunded"), currency, "amount_refunded"),
        "currency": currency,
        "invoice_id": obj.get("invoice") if isinstance(obj.get("invoice"), str) else None,
        "payment_intent_id": obj.get("payment_intent") if isinstance(obj.get("payment_intent"), str) else None,
    }
    return MappedEvent("refund_initiated", _with_source(ev, props), _customer(obj), email)


def _card_expiring(ev: StripeEvent) -> MappedEvent:
    obj = ev.object
    props = {
        "card_id": _text(obj, "id", "data.object."),
        "brand": _optional_text(obj, "brand"),
        "last4": _optional_text(obj, "last4"),
        "exp_month": obj.get("exp_month") if isinstance(obj.get("exp_month"), int) else None,
        "exp_year": obj.get("exp_year") if isinstance(obj.get("exp_year"), int) else None,
    }
    return MappedEvent("card_expiring", _with_source(ev, props), _customer(obj), None)


def _with_source(ev: StripeEvent, props: dict[str, Any]) -> dict[str, Any]:
    return {**props, "stripe_event_id": ev.id, "stripe_event_type": ev.type, "livemode": ev.livemode}


MAPPERS: dict[str, Callable[[StripeEvent], MappedEvent | None]] = {
    "invoice.payment_failed": _payment_failed,
    "invoice.paid": _payment_succeeded,
    "invoice.payment_succeeded": _payment_succeeded,
    "customer.subscription.deleted": _subscription_cancelled,
    "customer.subscription.updated": _subscription_updated,
    "customer.subscription.paused": _subscription_paused,
    "charge.refunded": _charge_refunded,
    "customer.source.expiring": _card_expiring,
}


def map_event(ev: StripeEvent) -> MappedEvent | None:
    """Our event for a Stripe event, or None when the type (or this update) means nothing here."""
    mapper = MAPPERS.get(ev.type)
    return None if mapper is None else mapper(ev)
