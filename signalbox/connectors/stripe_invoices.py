"""A Stripe invoice export (Dashboard → Invoices → Export, CSV) read as payment history (pure
functions), so recovery playbooks and the at-risk score see the past before the webhook has
sent anything.

Columns are matched by name, case-insensitively, with the names Stripe's exports have used:

| what | columns |
|---|---|
| invoice id (required) | `id`, `Invoice ID` |
| status (required) | `Status` |
| currency (required) | `Currency` |
| when (required) | `Date (UTC)`, `Created (UTC)`, `Created` |
| who (one required) | `Customer`, `Customer ID`; `Customer Email` |
| amounts | `Amount Due`, `Amount Paid`, `Total` (major units, as exported) |
| optional | `Paid At (UTC)`, `Attempt Count`, `Subscription`, `Number` |

A `paid` invoice is a `payment_succeeded` (at `Paid At` when exported, else its date); an
`open` or `uncollectible` invoice that was attempted is a `payment_failed` at its date (the
export does not say when each attempt failed). Drafts, voided invoices and open invoices never
attempted are no payments: skipped and counted. Times without an offset are UTC, as the
column names say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from signalbox.connectors.schemas import MappedEvent

COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "invoice id"),
    "status": ("status",),
    "currency": ("currency",),
    "date": ("date (utc)", "created (utc)", "created"),
    "customer": ("customer", "customer id"),
    "email": ("customer email",),
    "amount_due": ("amount due", "total"),
    "amount_paid": ("amount paid", "total"),
    "paid_at": ("paid at (utc)",),
    "attempt_count": ("attempt count",),
    "subscription": ("subscription", "subscription id"),
    "number": ("number",),
}
REQUIRED = {"id": "id", "status": "Status", "currency": "Currency", "date": "Date (UTC)"}
FAILED = frozenset({"open", "uncollectible", "past_due"})
NOT_PAYMENTS = frozenset({"draft", "void", "deleted"})


@dataclass(frozen=True)
class Header:
    """Which column of this file holds each field."""

    columns: dict[str, str]

    @classmethod
    def of(cls, names: list[str]) -> Header:
        by_lower = {name.strip().lower(): name for name in names}
        found: dict[str, str] = {}
        for field, aliases in COLUMNS.items():
            for alias in aliases:
                if alias in by_lower:
                    found[field] = by_lower[alias]
                    break
        return cls(found)

    def missing(self) -> list[str]:
        out = [repr(name) for field, name in REQUIRED.items() if field not in self.columns]
        if "customer" not in self.columns and "email" not in self.columns:
            out.append("'Customer' or 'Customer Email'")
        if "amount_due" not in self.columns and "amount_paid" not in self.columns:
            out.append("'Amount Due', 'Amount Paid' or 'Total'")
        return out

    def get(self, row: dict[str, str], field: str) -> str:
        column = self.columns.get(field)
        return (row.get(column) or "").strip() if column else ""


def map_row(header: Header, row: dict[str, str]) -> tuple[MappedEvent, datetime] | None:
    """The event a row means and its moment; None for a row that is no payment; ValueError
    naming the column for a row that cannot be read."""
    invoice = header.get(row, "id")
    if not invoice:
        raise ValueError("column 'id' is empty")
    status = header.get(row, "status").lower()
    if not status:
        raise ValueError("column 'Status' is empty")
    if status in NOT_PAYMENTS:
        return None
    attempts = _count(header.get(row, "attempt_count"))
    if status in FAILED and attempts == 0:
        return None  # not attempted yet: nothing failed
    if status != "paid" and status not in FAILED:
        raise ValueError(f"status {status!r} is not one of paid, open, uncollectible, draft, void")
    currency = header.get(row, "currency").lower()
    if not currency.isalpha() or len(currency) != 3:
        raise ValueError(f"currency {currency!r} is not a three-letter code")
    created = _time(header.get(row, "date"), "date")
    props = _properties(header, row, invoice, currency, attempts)
    customer = header.get(row, "customer") or None
    email = header.get(row, "email") or None
    if customer is None and email is None:
        raise ValueError("neither 'Customer' nor 'Customer Email' names the customer")
    if status == "paid":
        props["amount"] = _amount(header.get(row, "amount_paid"), "Amount Paid")
        paid_text = header.get(row, "paid_at")
        paid_at = _time(paid_text, "Paid At (UTC)") if paid_text else None
        key = f"invoice-paid:{invoice}:{int(paid_at.timestamp())}" if paid_at else f"csv:{invoice}:paid"
        if paid_at:
            props["paid_at"] = paid_at.isoformat()
        return MappedEvent("payment_succeeded", props, customer, email, key), paid_at or created
    props["amount"] = _amount(header.get(row, "amount_due"), "Amount Due")
    return MappedEvent("payment_failed", props, customer, email, f"csv:{invoice}:failed:{attempts}"), created


def _properties(
    header: Header, row: dict[str, str], invoice: str, currency: str, attempts: int | None
) -> dict[str, Any]:
    props: dict[str, Any] = {"invoice_id": invoice, "currency": currency, "source": "stripe_csv"}
    if attempts is not None:
        props["attempt_count"] = attempts
    for field, name in (("subscription", "subscription_id"), ("number", "invoice_number")):
        value = header.get(row, field)
        if value:
            props[name] = value
    return props


def _count(text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(f"attempt count {text!r} is not a whole number")
    return int(text)


def _amount(text: str, column: str) -> float:
    try:
        amount = Decimal(text.replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"{column} {text!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{column} {text!r} is not an amount")
    return float(amount)


def _time(text: str, column: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{column} {text!r} is not a date and time like 2026-01-15 10:23") from None
    # The export's times are UTC (its column names say so).
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
