"""The pure parts of Stripe inbound: the signature check, the event mapping, sealed secrets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from signalbox.connectors import signatures
from signalbox.connectors import stripe_events as mapping
from signalbox.connectors.schemas import WebhookRejected
from signalbox.core.secretbox import SecretBox, UnreadableSecretError, fingerprint
from signalbox.core.settings import INSECURE_SECRET_KEY, Settings
from tests import stripe_factory as sf

NOW = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)


def rejected(fn, *args) -> str:
    with pytest.raises(WebhookRejected) as caught:
        fn(*args)
    return caught.value.code


def test_our_check_agrees_with_the_library_and_adds_the_future_bound():
    body = sf.event("invoice.paid", sf.invoice(paid=True), NOW)
    for offset, ok in [(0, True), (-300, True), (300, True), (-301, False), (301, False), (3600, False)]:
        header = sf.sign(body, NOW + timedelta(seconds=offset))
        assert sf.verified_by_stripe(body, header)  # the library never looks ahead
        if ok:
            signatures.verify(body.encode(), header, [sf.SECRET], NOW)
        else:
            assert rejected(signatures.verify, body.encode(), header, [sf.SECRET], NOW).endswith("_timestamp")


def test_any_v1_under_any_secret_matches():
    body = b'{"object": "event"}'
    good = signatures.expected_signature(body, int(NOW.timestamp()), sf.OTHER_SECRET)
    header = f"t={int(NOW.timestamp())},v1={'ab' * 32},v0=whatever,v1={good.upper()}"
    signatures.verify(body, header, [sf.SECRET, sf.OTHER_SECRET], NOW)
    assert rejected(signatures.verify, body, header, [sf.SECRET], NOW) == "bad_signature"
    assert rejected(signatures.verify, body, header, [], NOW) == "bad_signature"


@pytest.mark.parametrize(
    "header",
    [
        "t=1,t=2,v1=" + "a" * 64,
        "v1=" + "a" * 64,
        "t=-5,v1=" + "a" * 64,
        "t=1,v1=xyz",
        "t=1," + ",".join(["v1=" + "a" * 64] * 17),
        "t=1;v1=" + "a" * 64,
        "x" * 5000,
    ],
)
def test_unparsable_headers(header):
    assert rejected(signatures.parse_header, header) == "bad_signature_header"


def test_major_units():
    assert mapping.major_units(4900, "usd", "amount_due") == 49.0
    assert mapping.major_units(5000, "jpy", "amount_due") == 5000.0
    assert mapping.major_units(1234, "kwd", "amount_due") == 1.234
    assert mapping.major_units(10000, "isk", "amount_due") == 100.0  # written in hundredths by Stripe
    assert rejected(mapping.major_units, 49.5, "usd", "amount_due") == "invalid_event"
    assert rejected(mapping.major_units, True, "usd", "amount_due") == "invalid_event"


def parsed(kind, obj, previous=None):
    return mapping.parse_event(sf.event(kind, obj, NOW, previous=previous).encode())


def test_only_an_update_that_sets_the_pause_is_a_pause():
    paused = sf.subscription(pause={"behavior": "keep_as_draft", "resumes_at": int(NOW.timestamp()) + 86400})
    found = mapping.map_event(parsed("customer.subscription.updated", paused, {"pause_collection": None}))
    assert found is not None and found.event == "subscription_paused"
    assert found.properties["behavior"] == "keep_as_draft"
    assert found.properties["resumes_at"] == (NOW + timedelta(days=1)).isoformat()
    # Still paused, something else changed: not a new pause.
    assert mapping.map_event(parsed("customer.subscription.updated", paused, {"metadata": {}})) is None
    # Resumed: not a pause.
    resumed = sf.subscription()
    previous = {"pause_collection": {"behavior": "void", "resumes_at": None}}
    assert mapping.map_event(parsed("customer.subscription.updated", resumed, previous)) is None


def test_the_event_keeps_stripe_ids_and_its_created_time():
    ev = parsed("invoice.payment_failed", sf.invoice())
    assert ev.created == NOW and ev.id.startswith("evt_test_")
    found = mapping.map_event(ev)
    assert found.customer_id == "cus_test_1" and found.email == "pat@example.com"
    assert found.properties["stripe_event_id"] == ev.id and found.dedupe_key is None


def test_expanded_customer_and_2025_invoice_shape():
    obj = {**sf.invoice(), "customer": {"id": "cus_test_x", "object": "customer"}, "subscription": None}
    obj["parent"] = {"subscription_details": {"subscription": "sub_test_9"}}
    found = mapping.map_event(parsed("invoice.payment_failed", obj))
    assert found.customer_id == "cus_test_x" and found.properties["subscription_id"] == "sub_test_9"


@pytest.mark.parametrize(
    ("doc", "names"),
    [
        ({"object": "event", "id": "", "type": "x", "created": 1767225600, "data": {"object": {}}}, "id"),
        ({"object": "event", "id": "evt_1", "type": "x", "created": True, "data": {"object": {}}}, "created"),
        ({"object": "event", "id": "evt_1", "type": "x", "created": 10**15, "data": {"object": {}}}, "created"),
        ({"object": "event", "id": "e" * 300, "type": "x", "created": 1767225600, "data": {"object": {}}}, "id"),
    ],
)
def test_unreadable_events_name_the_field(doc, names):
    with pytest.raises(WebhookRejected) as caught:
        mapping.parse_event(orjson.dumps(doc))
    assert caught.value.code == "invalid_event" and caught.value.message.startswith(names)


def test_secret_box_round_trip_and_another_key():
    box = SecretBox("k" * 40, "stripe-signing-secrets")
    sealed = box.seal(sf.SECRET)
    assert sf.SECRET not in sealed and box.open(sealed) == sf.SECRET
    with pytest.raises(UnreadableSecretError):
        SecretBox("j" * 40, "stripe-signing-secrets").open(sealed)
    with pytest.raises(UnreadableSecretError):
        SecretBox("k" * 40, "another-purpose").open(sealed)
    assert fingerprint(sf.SECRET) == fingerprint(sf.SECRET) != fingerprint(sf.OTHER_SECRET)


def test_production_refuses_the_development_secret_key():
    url = "postgresql+psycopg://db.example.com/signalbox"
    with pytest.raises(ValueError, match="SIGNALBOX_SECRET_KEY"):
        Settings(environment="production", database_url=url)
    with pytest.raises(ValueError, match="SIGNALBOX_SECRET_KEY"):
        Settings(environment="production", database_url=url, secret_key="too-short")
    ok = Settings(environment="production", database_url=url, secret_key="r" * 48)
    assert ok.secret_key != INSECURE_SECRET_KEY and "r" * 48 not in repr(ok)
    assert Settings(environment="development").secret_key == INSECURE_SECRET_KEY
