"""`import transactions --format stripe-invoices`: a Stripe invoice export becomes payment
history on the right people, once, with the webhook's own message id where it can."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from sqlalchemy import select

from signalbox.events.models import Event
from signalbox.identity import service as identity
from signalbox.workspaces import service as workspaces
from tests.factories import jrun

HEADER = (
    "id,Number,Customer,Customer Email,Status,Amount Due,Amount Paid,Currency,Date (UTC),"
    "Paid At (UTC),Attempt Count,Subscription\n"
)
ROWS = [
    "in_test_1,A-1,cus_test_1,ana@example.com,paid,49.00,49.00,usd,2026-01-05 10:00,2026-01-05 10:02,1,sub_1",
    "in_test_2,A-2,cus_test_1,ana@example.com,open,49.00,0.00,usd,2026-02-05 10:00,,3,sub_1",
    "in_test_3,A-3,cus_test_2,,paid,5000,5000,jpy,2026-02-06 09:00,,1,",
    "in_test_4,A-4,,bo@example.com,uncollectible,20.50,0.00,eur,2026-02-07 08:00,,4,",
    "in_test_5,A-5,cus_test_3,cy@example.com,draft,10.00,0.00,usd,2026-02-08 08:00,,0,",
    "in_test_6,A-6,cus_test_3,cy@example.com,void,10.00,0.00,usd,2026-02-08 08:00,,0,",
    "in_test_7,A-7,cus_test_3,cy@example.com,open,10.00,0.00,usd,2026-02-09 08:00,,0,",
    "in_test_8,A-8,cus_test_3,cy@example.com,paid,10.00,ten,usd,2026-02-09 08:00,,1,",
    "in_test_9,A-9,cus_test_3,cy@example.com,refunded,10.00,10.00,usd,2026-02-09 08:00,,1,",
    "in_test_10,A-10,,,paid,10.00,10.00,usd,2026-02-09 08:00,,1,",
]


def _export(tmp_path, rows=ROWS, header=HEADER):
    path = tmp_path / "invoices.csv"
    path.write_text(header + "\n".join(rows) + "\n")
    return path


def test_an_invoice_export_becomes_payment_history_once(cli, db, tmp_path):
    jrun(cli, "workspace", "create", "billing")
    ws = workspaces.get_workspace(db, "billing")
    path = _export(tmp_path)
    doc = jrun(cli, "import", "transactions", str(path), "-w", "billing", "--format", "stripe-invoices")
    assert (doc["lines"], doc["accepted"], doc["skipped"], doc["rejected"]) == (10, 4, 3, 3)
    rejects = [orjson.loads(x) for x in (tmp_path / "invoices.csv.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejects] == [
        (9, "Amount Paid 'ten' is not a number"),
        (10, "status 'refunded' is not one of paid, open, uncollectible, draft, void"),
        (11, "neither 'Customer' nor 'Customer Email' names the customer"),
    ]
    with db.session() as session:
        ana = identity.find_root(session, ws.id, ("stripe_customer_id", "cus_test_1"))
        assert ana is not None and identity.find_root(session, ws.id, ("email", "ana@example.com")) == ana
        bo = identity.find_root(session, ws.id, ("email", "bo@example.com"))
        rows = session.execute(select(Event.message_id, Event.event, Event.timestamp, Event.properties)).all()
    assert bo is not None and bo != ana
    by_invoice = {props["invoice_id"]: (mid, name, at, props) for mid, name, at, props in rows}
    mid, name, at, props = by_invoice["in_test_1"]
    # The webhook's own id for this payment (invoice.paid carries the same paid-at moment).
    paid_at = datetime(2026, 1, 5, 10, 2, tzinfo=UTC)
    assert mid == f"stripe:invoice-paid:in_test_1:{int(paid_at.timestamp())}" and name == "payment_succeeded"
    assert at == paid_at and props["amount"] == 49.0 and props["subscription_id"] == "sub_1"
    _, name, at, props = by_invoice["in_test_2"]
    assert name == "payment_failed" and props["attempt_count"] == 3 and props["amount"] == 49.0
    assert at == datetime(2026, 2, 5, 10, 0, tzinfo=UTC)
    assert by_invoice["in_test_3"][3]["amount"] == 5000.0 and by_invoice["in_test_3"][3]["currency"] == "jpy"
    assert by_invoice["in_test_4"][1] == "payment_failed"
    assert {"in_test_5", "in_test_6", "in_test_7"}.isdisjoint(by_invoice)  # draft, void, never attempted
    again = jrun(cli, "import", "transactions", str(path), "-w", "billing", "--format", "stripe-invoices")
    assert (again["accepted"], again["duplicates"]) == (0, 4)


def test_an_export_without_the_columns_it_needs_is_refused_by_name(cli, tmp_path):
    jrun(cli, "workspace", "create", "billing")
    path = _export(tmp_path, ["x,1"], header="Number,Amount\n")
    result = cli("import", "transactions", str(path), "-w", "billing", "--format", "stripe-invoices", ok=False)
    assert result.exit_code != 0
    assert "'id'" in result.output and "'Status'" in result.output and "'Customer' or 'Customer Email'" in result.output


def test_format_and_column_options_are_checked(cli, tmp_path):
    jrun(cli, "workspace", "create", "billing")
    path = _export(tmp_path)
    wrong = cli("import", "transactions", str(path), "-w", "billing", "--format", "quickbooks", ok=False)
    assert wrong.exit_code != 0 and "--format 'quickbooks' is not one of columns, stripe-invoices" in wrong.output
    both = cli(
        "import",
        "transactions",
        str(path),
        "-w",
        "billing",
        "--format",
        "stripe-invoices",
        "--amount-column",
        "Total",
        ok=False,
    )
    assert both.exit_code != 0 and "a Stripe invoice export names its own columns" in both.output
    none = cli("import", "transactions", str(path), "-w", "billing", ok=False)
    assert none.exit_code != 0 and "--customer-column" in none.output and "stripe-invoices" in none.output
