"""Stripe events made with the official `stripe` library, and signed the way it verifies them.

Shapes follow Stripe's API reference (v1 snapshot events); ids are fictional (`cus_test_…`).
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import stripe

SECRET = "whsec_test_5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH"
OTHER_SECRET = "whsec_test_rolled0000000000000000000000000"
_seq = itertools.count(1)


def event(kind: str, obj: dict[str, Any], created: datetime, *, previous: dict[str, Any] | None = None) -> str:
    """The JSON body Stripe would POST, built as a stripe.Event."""
    n = next(_seq)
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    built = stripe.Event.construct_from(
        {
            "id": f"evt_test_{n:08d}",
            "object": "event",
            "api_version": "2024-06-20",
            "created": int(created.timestamp()),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
        },
        None,
    )
    return str(built)  # the library's own JSON rendering


def sign(body: str, at: datetime, secret: str = SECRET) -> str:
    return stripe.WebhookSignature.generate_signature_header(body, secret, int(at.timestamp()))


def invoice(
    invoice_id: str = "in_test_1",
    customer: str | None = "cus_test_1",
    email: str | None = "pat@example.com",
    *,
    amount: int = 4900,
    currency: str = "usd",
    paid: bool = False,
    attempt_count: int = 1,
    next_attempt: datetime | None = None,
    paid_at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer,
        "customer_email": email,
        "amount_due": amount,
        "amount_paid": amount if paid else 0,
        "amount_remaining": 0 if paid else amount,
        "currency": currency,
        "attempt_count": attempt_count,
        "attempted": True,
        "next_payment_attempt": int(next_attempt.timestamp()) if next_attempt else None,
        "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_test/{invoice_id}",
        "status": "paid" if paid else "open",
        "subscription": "sub_test_1",
        "status_transitions": {"paid_at": int(paid_at.timestamp()) if paid_at else None},
    }


def subscription(customer: str = "cus_test_1", *, status: str = "active", pause: dict[str, Any] | None = None) -> dict:
    return {
        "id": "sub_test_1",
        "object": "subscription",
        "customer": customer,
        "status": status,
        "pause_collection": pause,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
    }


def charge(customer: str | None = "cus_test_1", *, refunded: int = 4900, email: str | None = None) -> dict:
    return {
        "id": "ch_test_1",
        "object": "charge",
        "customer": customer,
        "amount": 4900,
        "amount_refunded": refunded,
        "currency": "usd",
        "refunded": True,
        "invoice": "in_test_1",
        "payment_intent": "pi_test_1",
        "receipt_email": email,
        "billing_details": {"email": email, "name": None},
    }


def card(customer: str = "cus_test_1") -> dict:
    return {
        "id": "card_test_1",
        "object": "card",
        "customer": customer,
        "brand": "Visa",
        "last4": "4242",
        "exp_month": 3,
        "exp_year": 2026,
    }


def verified_by_stripe(body: str, header: str, secret: str = SECRET) -> bool:
    """The official library's own check (past tolerance waived: it reads the real clock)."""
    try:
        stripe.Webhook.construct_event(body, header, secret, tolerance=10**10)
    except stripe.SignatureVerificationError:
        return False
    return True
