"""POST /webhooks/stripe/{workspace} over real loopback HTTP, on SQLite and PostgreSQL, with
payloads made and signed by the official stripe library. The server's clock is the test's."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from signalbox.connectors import service as connectors
from signalbox.core.clock import SystemClock
from signalbox.events.models import Event
from signalbox.identity import service as identity
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.journeys.worker import Worker
from signalbox.workspaces import service as workspaces
from tests import stripe_factory as sf
from tests.factories import identify
from tests.integration.journeys.test_apply import TEMPLATES
from tests.unit.journeys.test_spec import GOOD


@pytest.fixture
def ws(db, settings, workspace, clock):
    connectors.add_signing_secret(db, settings, workspace.id, sf.SECRET, clock.now())
    return workspaces.get_workspace(db, workspace.id)


def deliver(server, ws_ref, body, header=None, *, at=None, clock=None, secret=sf.SECRET):
    if header is None:
        header = sf.sign(body, at or clock.now(), secret)
    return httpx.post(
        f"{server.url}/webhooks/stripe/{ws_ref}",
        content=body.encode(),
        headers={"Stripe-Signature": header, "Content-Type": "application/json; charset=utf-8"},
    )


def stored(db, ws_id):
    with db.session() as session:
        return list(session.scalars(select(Event).where(Event.workspace_id == ws_id).order_by(Event.id)))


def person(db, ws_id, kind, value):
    with db.session() as session:
        root = identity.find_root(session, ws_id, (kind, value))
        return identity.person(session, ws_id, root) if root else None


def identifiers(doc):
    return sorted((i.type, i.value) for i in doc.identifiers)


def nothing_stored(db, ws_id):
    return stored(db, ws_id) == [] and connectors.processed_events(db, ws_id) == []


def test_every_mapped_type_lands_with_its_properties(clocked_server, db, ws, clock):
    now = clock.now()
    created = now - timedelta(minutes=2)
    sends = [
        ("invoice.payment_failed", sf.invoice(next_attempt=now + timedelta(days=3)), None),
        ("invoice.paid", sf.invoice("in_test_2", paid=True), None),
        ("invoice.payment_succeeded", sf.invoice("in_test_3", paid=True), None),
        ("customer.subscription.deleted", sf.subscription(status="canceled"), None),
        (
            "customer.subscription.updated",
            sf.subscription(pause={"behavior": "void", "resumes_at": None}),
            {"pause_collection": None},
        ),
        ("charge.refunded", sf.charge(), None),
        ("customer.source.expiring", sf.card(), None),
    ]
    for kind, obj, previous in sends:
        body = sf.event(kind, obj, created, previous=previous)
        header = sf.sign(body, now)
        assert sf.verified_by_stripe(body, header)  # the library accepts what we send
        r = deliver(clocked_server, ws.name, body, header)
        assert r.status_code == 200, r.text
        assert r.json()["outcome"] == "stored" and r.json()["type"] == kind
    events = {e.event: e for e in stored(db, ws.id)}
    assert set(events) == {
        "payment_failed",
        "payment_succeeded",
        "subscription_cancelled",
        "subscription_paused",
        "refund_initiated",
        "card_expiring",
    }
    failed = events["payment_failed"]
    assert {k: failed.properties[k] for k in ("invoice_id", "amount", "currency", "attempt_count")} == {
        "invoice_id": "in_test_1",
        "amount": 49.00,
        "currency": "usd",
        "attempt_count": 1,
    }
    assert failed.properties["next_payment_attempt"] == (now + timedelta(days=3)).isoformat()
    assert failed.properties["hosted_invoice_url"] == "https://invoice.stripe.com/i/acct_test/in_test_1"
    assert failed.timestamp == created  # Stripe's `created`, not the arrival time
    assert failed.message_id.startswith("stripe:evt_test_")
    assert events["refund_initiated"].properties["amount"] == 49.00
    assert events["card_expiring"].properties["last4"] == "4242"
    # All of them are one person, found by the Stripe customer id.
    doc = person(db, ws.id, "stripe_customer_id", "cus_test_1")
    assert doc.event_counts["total"] == 7
    assert ("email", "pat@example.com") in identifiers(doc)


def test_zero_and_three_decimal_currencies(clocked_server, db, ws, clock):
    cases = [("jpy", 5000, 5000.0), ("kwd", 1234, 1.234), ("eur", 1999, 19.99)]
    for n, (currency, minor, _) in enumerate(cases):
        obj = sf.invoice(f"in_test_c{n}", amount=minor, currency=currency)
        assert deliver(
            clocked_server, ws.name, sf.event("invoice.payment_failed", obj, clock.now()), clock=clock
        ).is_success
    amounts = {e.properties["currency"]: e.properties["amount"] for e in stored(db, ws.id)}
    assert amounts == {currency: major for currency, _, major in cases}


def test_paid_and_payment_succeeded_for_one_invoice_store_one_event(clocked_server, db, ws, clock):
    for kind in ("invoice.paid", "invoice.payment_succeeded"):
        body = sf.event(kind, sf.invoice("in_test_9", paid=True, paid_at=clock.now()), clock.now())
        assert deliver(clocked_server, ws.name, body, clock=clock).json()["outcome"] in ("stored", "duplicate_message")
    assert [e.event for e in stored(db, ws.id)] == ["payment_succeeded"]
    assert len(connectors.processed_events(db, ws.id)) == 2


@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        (lambda body, header: (body.replace("4900", "490"), header), "bad_signature"),  # tampered body
        (lambda body, header: (body, sf.sign(body, _NOW, "whsec_test_wrongwrongwrongwrong")), "bad_signature"),
        (lambda body, header: (body, None), "missing_signature"),
        (lambda body, header: (body, "garbage"), "bad_signature_header"),
        (lambda body, header: (body, "t=abc,v1=" + "0" * 64), "bad_signature_header"),
        (lambda body, header: (body, header.split(",")[0]), "bad_signature_header"),  # t only
        (lambda body, header: (body, header.replace("v1=", "v0=")), "bad_signature_header"),
    ],
)
def test_untrusted_deliveries_are_400_and_store_nothing(clocked_server, db, ws, clock, mangle, code):
    body = sf.event("invoice.payment_failed", sf.invoice(), clock.now())
    header = sf.sign(body, clock.now())
    body, header = mangle(body, header)
    headers = {"Stripe-Signature": header} if header is not None else {}
    r = httpx.post(f"{clocked_server.url}/webhooks/stripe/{ws.name}", content=body.encode(), headers=headers)
    assert r.status_code == 400 and r.json()["code"] == code and r.json()["message"]
    assert nothing_stored(db, ws.id)


_NOW = SystemClock().now()


@pytest.mark.parametrize(("offset", "code"), [(-301, "stale_timestamp"), (301, "future_timestamp")])
def test_timestamps_over_300_s_away_either_way_are_400(clocked_server, db, ws, clock, offset, code):
    body = sf.event("invoice.payment_failed", sf.invoice(), clock.now())
    header = sf.sign(body, clock.now() + timedelta(seconds=offset))
    r = deliver(clocked_server, ws.name, body, header)
    assert r.status_code == 400 and r.json()["code"] == code
    assert nothing_stored(db, ws.id)
    # Stripe's library (its clock aside) takes the same header: its check is ours minus the future.
    assert sf.verified_by_stripe(body, header)


@pytest.mark.parametrize("offset", [-300, 300])
def test_timestamps_exactly_300_s_away_are_accepted(clocked_server, db, ws, clock, offset):
    body = sf.event("invoice.payment_failed", sf.invoice(), clock.now())
    r = deliver(clocked_server, ws.name, body, at=clock.now() + timedelta(seconds=offset))
    assert r.status_code == 200 and r.json()["outcome"] == "stored"


def test_rotated_secrets_both_work_until_the_old_one_is_removed(clocked_server, db, settings, ws, clock):
    connectors.add_signing_secret(db, settings, ws.id, sf.OTHER_SECRET, clock.now())
    for n, secret in enumerate((sf.SECRET, sf.OTHER_SECRET)):
        body = sf.event("invoice.payment_failed", sf.invoice(f"in_test_r{n}"), clock.now())
        assert deliver(clocked_server, ws.name, body, clock=clock, secret=secret).status_code == 200
    # Stripe signs with both secrets while it rolls one: one header, two v1 values.
    body = sf.event("invoice.payment_failed", sf.invoice("in_test_r2"), clock.now())
    ours = sf.sign(body, clock.now()).split(",")[1]
    both = sf.sign(body, clock.now(), "whsec_test_unknownunknownunknown") + "," + ours
    assert deliver(clocked_server, ws.name, body, both).status_code == 200
    connectors.remove_signing_secret(db, ws.id, sf.SECRET)
    body = sf.event("invoice.payment_failed", sf.invoice("in_test_r3"), clock.now())
    assert deliver(clocked_server, ws.name, body, clock=clock, secret=sf.SECRET).json()["code"] == "bad_signature"
    assert deliver(clocked_server, ws.name, body, clock=clock, secret=sf.OTHER_SECRET).status_code == 200
    assert len(stored(db, ws.id)) == 4


def test_a_duplicate_and_a_72_hour_late_replay_change_nothing(clocked_server, db, ws, clock):
    body = sf.event("invoice.payment_failed", sf.invoice(), clock.now())
    first = deliver(clocked_server, ws.name, body, clock=clock)
    assert first.json()["outcome"] == "stored"
    original_header = first.request.headers["Stripe-Signature"]
    again = deliver(clocked_server, ws.name, body, clock=clock)
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate_event"
    clock.advance(timedelta(hours=72))
    # Stripe's own retry is signed afresh: acknowledged, nothing changes.
    late = deliver(clocked_server, ws.name, body, clock=clock)
    assert late.status_code == 200 and late.json()["outcome"] == "duplicate_event"
    # A captured copy of the first delivery is refused outright.
    replayed = deliver(clocked_server, ws.name, body, original_header)
    assert replayed.status_code == 400 and replayed.json()["code"] == "stale_timestamp"
    assert len(stored(db, ws.id)) == 1
    (processed,) = connectors.processed_events(db, ws.id)
    assert processed["outcome"] == "stored"


def test_unknown_types_are_acknowledged_and_ignored(clocked_server, db, ws, clock):
    body = sf.event("customer.updated", {"id": "cus_test_1", "object": "customer"}, clock.now())
    r = deliver(clocked_server, ws.name, body, clock=clock)
    assert r.status_code == 200 and r.json()["outcome"] == "ignored"
    # An update that does not set a pause is not a pause.
    body = sf.event("customer.subscription.updated", sf.subscription(), clock.now(), previous={"status": "trialing"})
    assert deliver(clocked_server, ws.name, body, clock=clock).json()["outcome"] == "ignored"
    assert stored(db, ws.id) == []
    assert [p["outcome"] for p in connectors.processed_events(db, ws.id)] == ["ignored", "ignored"]


def test_unknown_workspace_is_404_and_by_id_works(clocked_server, db, ws, clock):
    body = sf.event("invoice.payment_failed", sf.invoice(), clock.now())
    r = deliver(clocked_server, "no-such-workspace", body, clock=clock)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert deliver(clocked_server, ws.id, body, clock=clock).status_code == 200


def test_a_workspace_without_a_secret_refuses_with_a_hint(clocked_server, db, clock):
    other = workspaces.create_workspace(db, "no-secret")
    body = sf.event("invoice.payment_failed", sf.invoice(), clock.now())
    r = deliver(clocked_server, other.name, body, clock=clock)
    assert r.status_code == 400 and r.json()["code"] == "no_signing_secret"
    assert "connect stripe" in r.json()["message"]


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("not json", "not JSON"),
        ("[]", "JSON object"),
        ('{"object": "v2.core.event", "id": "evt_1"}', "object"),
        ('{"object": "event", "id": "evt_1", "type": "invoice.paid", "created": "x", "data": {}}', "created"),
        (
            '{"object": "event", "id": "evt_1", "type": "invoice.paid", "created": 1767225600, "data": {}}',
            "data.object",
        ),
        (
            '{"object": "event", "id": "evt_1", "type": "invoice.paid", "created": 1767225600,'
            ' "data": {"object": {"id": "in_1", "currency": "usd", "amount_paid": "lots"}}}',
            "amount_paid",
        ),
    ],
)
def test_signed_but_unreadable_events_are_400_naming_the_field(clocked_server, db, ws, clock, body, names):
    r = deliver(clocked_server, ws.name, body, clock=clock)
    assert r.status_code == 400 and r.json()["code"] == "invalid_event"
    assert names in r.json()["message"]
    assert nothing_stored(db, ws.id)


def test_email_finds_the_profile_and_records_the_link(clocked_server, db, settings, ws, clock):
    Pipeline(db, settings, clock).ingest(ws, BatchInput([identify("m-1", email="Pat@Example.com")]))
    body = sf.event("invoice.payment_failed", sf.invoice(customer="cus_test_pat", email="pat@example.com"), clock.now())
    assert deliver(clocked_server, ws.name, body, clock=clock).json()["outcome"] == "stored"
    doc = identity.profile_document(db, ws.id, "m-1")
    assert ("stripe_customer_id", "cus_test_pat") in identifiers(doc)
    assert doc.event_counts["by_event"] == {"payment_failed": 1}
    # From now on the customer id alone finds them, whatever e-mail the invoice carries.
    body = sf.event("charge.refunded", sf.charge("cus_test_pat", email="someone.else@example.org"), clock.now())
    assert deliver(clocked_server, ws.name, body, clock=clock).json()["outcome"] == "stored"
    doc = identity.profile_document(db, ws.id, "m-1")
    assert doc.event_counts["total"] == 3
    assert ("email", "someone.else@example.org") not in identifiers(doc)


def test_email_only_customer_creates_a_profile(clocked_server, db, ws, clock):
    body = sf.event("invoice.payment_failed", sf.invoice(customer="cus_test_new", email="new@example.org"), clock.now())
    assert deliver(clocked_server, ws.name, body, clock=clock).json()["outcome"] == "stored"
    doc = person(db, ws.id, "email", "new@example.org")
    assert identifiers(doc) == [("email", "new@example.org"), ("stripe_customer_id", "cus_test_new")]
    # A refund with no Stripe customer (a guest charge) is found by its receipt e-mail.
    body = sf.event("charge.refunded", sf.charge(None, email="new@example.org"), clock.now())
    assert deliver(clocked_server, ws.name, body, clock=clock).json()["outcome"] == "stored"
    assert person(db, ws.id, "email", "new@example.org").event_counts["total"] == 2
    # Nobody named at all: acknowledged, nothing stored.
    body = sf.event("charge.refunded", sf.charge(None, email=None), clock.now())
    assert deliver(clocked_server, ws.name, body, clock=clock).json()["outcome"] == "no_customer"


def test_a_shared_email_never_joins_two_stripe_customers(clocked_server, db, ws, clock):
    """A parent paying for two members: one billing e-mail, two Stripe customers."""
    for n, customer in enumerate(("cus_test_kid1", "cus_test_kid2")):
        obj = sf.invoice(f"in_test_k{n}", customer, "parent@example.com")
        body = sf.event("invoice.payment_failed", obj, clock.now())
        assert deliver(clocked_server, ws.name, body, clock=clock).json()["outcome"] == "stored"
    first = person(db, ws.id, "stripe_customer_id", "cus_test_kid1")
    second = person(db, ws.id, "stripe_customer_id", "cus_test_kid2")
    assert first.id != second.id
    assert ("stripe_customer_id", "cus_test_kid2") not in identifiers(first)
    assert identity.merge_log(db, ws.id) == []


def test_an_older_success_does_not_close_a_newer_failure(clocked_server, db, settings, ws, clock):
    """Order is Stripe's `created`: the recovery playbook's goal only counts a success at or
    after the failure, however the deliveries are ordered."""
    journeys.apply(db, ws.id, "template", list(TEMPLATES.items()), clock.now())
    journeys.apply(db, ws.id, "playbook", [("fpr.yaml", GOOD.replace("holdout: 10%", "holdout: 0%"))], clock.now())
    Pipeline(db, settings, clock).ingest(ws, BatchInput([identify("m-1", email="pat@example.com")]))
    worker = Worker(db, settings, clock, stale_every_seconds=1e9)
    failed_at = clock.now() - timedelta(minutes=1)
    failure = sf.event("invoice.payment_failed", sf.invoice("in_test_o"), failed_at)
    older_success = sf.event("invoice.paid", sf.invoice("in_test_o", paid=True), failed_at - timedelta(seconds=30))
    assert deliver(clocked_server, ws.name, failure, clock=clock).json()["outcome"] == "stored"
    worker.drain()
    assert deliver(clocked_server, ws.name, older_success, clock=clock).json()["outcome"] == "stored"
    worker.drain()
    (enr,) = journeys.list_enrollments(db, ws.id, playbook="failed-payment-recovery")
    assert enr.status == "active"
    newer = sf.event("invoice.payment_succeeded", sf.invoice("in_test_o", paid=True), failed_at + timedelta(seconds=30))
    assert deliver(clocked_server, ws.name, newer, clock=clock).json()["outcome"] == "stored"
    worker.drain()
    (enr,) = journeys.list_enrollments(db, ws.id, playbook="failed-payment-recovery")
    assert enr.status == "exited" and enr.exit_reason == "goal_met"


def test_a_concurrent_burst_keeps_every_rule(clocked_server, db, ws, clock):
    """40 deliveries at once: the same event twice, two new customers sharing a billing e-mail,
    the paid/payment_succeeded pair of one payment, and plain failures."""
    from concurrent.futures import ThreadPoolExecutor

    now = clock.now()
    repeated = sf.event("invoice.payment_failed", sf.invoice("in_test_b0", "cus_test_b0", "b0@example.com"), now)
    bodies = [repeated, repeated]
    bodies += [
        sf.event("invoice.payment_failed", sf.invoice(f"in_test_s{n}", f"cus_test_s{n}", "family@example.com"), now)
        for n in range(2)
    ]
    bodies += [
        sf.event(kind, sf.invoice("in_test_pp", "cus_test_pp", "pp@example.com", paid=True, paid_at=now), now)
        for kind in ("invoice.paid", "invoice.payment_succeeded")
    ]
    bodies += [
        sf.event("invoice.payment_failed", sf.invoice(f"in_test_f{n}", f"cus_test_f{n}", f"f{n}@example.com"), now)
        for n in range(34)
    ]
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda body: deliver(clocked_server, ws.name, body, clock=clock), bodies))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200]
    outcomes = [a.json()["outcome"] for a in answers]
    # The second copy is caught by the event id, or (both in flight at once) by the message id.
    assert sorted(outcomes[:2]) in (["duplicate_event", "stored"], ["duplicate_message", "stored"])
    assert sorted(outcomes[4:6]) == ["duplicate_message", "stored"]
    assert outcomes[6:] == ["stored"] * 34
    assert len(stored(db, ws.id)) == 1 + 2 + 1 + 34
    assert len(connectors.processed_events(db, ws.id)) == 39
    first = person(db, ws.id, "stripe_customer_id", "cus_test_s0")
    second = person(db, ws.id, "stripe_customer_id", "cus_test_s1")
    assert first.id != second.id and identity.merge_log(db, ws.id) == []
    # Exactly one of the two is linked to the shared e-mail.
    assert [("email", "family@example.com") in identifiers(d) for d in (first, second)].count(True) == 1
