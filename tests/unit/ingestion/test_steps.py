"""validate and normalize, one rule at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from signalbox.ingestion.schemas import Drop, NormalizedMessage
from signalbox.ingestion.steps import StepContext, normalize, validate

RECEIVED = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # US DST ends this day


def ctx(**kw) -> StepContext:
    base = dict(
        workspace_id="ws",
        default_region="US",
        received_at=RECEIVED,
        max_message_bytes=32 * 1024,
        external_id_traits=("stripe_customer_id",),
    )
    base.update(kw)
    return StepContext(**base)


def run(raw, **kw) -> NormalizedMessage | Drop:
    c = ctx(**kw)
    checked = validate(raw, c)
    return checked if isinstance(checked, Drop) else normalize(checked, raw, 0, c)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not an object", "JSON object"),
        ({"type": "track", "event": "visit"}, "userId or anonymousId"),
        ({"type": "track", "userId": "null", "event": "visit"}, "userId or anonymousId"),
        ({"type": "track", "userId": "u1"}, "event name"),
        ({"type": "track", "userId": "u1", "event": "   "}, "event name"),
        ({"type": "boom", "userId": "u1"}, "type"),
        ({"type": "track", "userId": "u1", "event": "x", "properties": [1]}, "properties"),
        ({"type": "track", "userId": "u1", "event": "x", "timestamp": "yesterday"}, "timestamp"),
        ({"type": "alias", "userId": "u1"}, "previousId"),
        ({"type": "group", "userId": "u1"}, "groupId"),
        ({"type": "track", "userId": {"a": 1}, "event": "x"}, "userId"),
        # Far-off clocks would overflow the skew correction; they are refused, not a 5xx.
        ({"type": "track", "userId": "u1", "event": "x", "sentAt": "4026-01-01T00:00:00Z"}, "sentAt"),
        ({"type": "track", "userId": "u1", "event": "x", "timestamp": "0001-01-01T00:00:00+00:01"}, "timestamp"),
        ({"type": "page", "anonymousId": 1, "originalTimestamp": "1900-01-01T00:00:00Z"}, "originalTimestamp"),
    ],
)
def test_validate_drops_with_a_reason(raw, reason):
    out = run(raw)
    assert isinstance(out, Drop)
    assert out.step == "validate"
    assert reason in out.reason


def test_oversize_message_is_dropped():
    out = run({"type": "track", "userId": "u1", "event": "x", "properties": {"blob": "a" * 40_000}})
    assert isinstance(out, Drop) and "limit" in out.reason


def test_email_and_phone_are_normalized_and_junk_ignored():
    out = run(
        {
            "type": "identify",
            "userId": 42,
            "anonymousId": "undefined",
            "traits": {"email": "  Pat@Example.COM ", "phone": "(415) 555-0132", "stripe_customer_id": "cus_test_1"},
        }
    )
    assert isinstance(out, NormalizedMessage)
    assert out.user_id == "42"
    assert out.anonymous_id is None
    assert out.identifiers == [
        ("user_id", "42"),
        ("stripe_customer_id", "cus_test_1"),
        ("email", "pat@example.com"),
        ("phone", "+14155550132"),
    ]


@pytest.mark.parametrize("email", ["test@test.com", "not-an-email", "", "null"])
@pytest.mark.parametrize("phone", ["555-555-5555", "0000000000", "123", "1234567890"])
def test_junk_identifiers_do_not_become_identifiers(email, phone):
    out = run({"type": "identify", "userId": "u1", "traits": {"email": email, "phone": phone}})
    assert isinstance(out, NormalizedMessage)
    assert out.identifiers == [("user_id", "u1")]
    assert out.profile_traits["email"] == email  # the trait is kept as sent


def test_clock_skew_is_corrected_from_sent_at():
    device_ts = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)  # device clock 5 h fast
    sent = device_ts + timedelta(seconds=10)
    out = run(
        {"type": "track", "userId": "u", "event": "x", "timestamp": device_ts.isoformat(), "sentAt": sent.isoformat()}
    )
    assert isinstance(out, NormalizedMessage)
    assert out.timestamp == RECEIVED - timedelta(seconds=10)
    assert out.original_timestamp == device_ts


def test_offsets_become_utc_and_naive_means_utc():
    out = run({"type": "track", "userId": "u", "event": "x", "timestamp": "2026-11-01T01:30:00-04:00"})
    assert isinstance(out, NormalizedMessage)
    assert out.timestamp == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    naive = run({"type": "track", "userId": "u", "event": "x", "timestamp": "2026-11-01T01:30:00"})
    assert isinstance(naive, NormalizedMessage)
    assert naive.timestamp == datetime(2026, 11, 1, 1, 30, tzinfo=UTC)


def test_batch_context_is_merged_and_message_wins():
    out = run(
        {"type": "track", "userId": "u", "event": "x", "context": {"ip": "1"}},
        batch_context={"ip": "0", "library": {"name": "analytics-node"}},
    )
    assert isinstance(out, NormalizedMessage)
    assert out.context == {"ip": "1", "library": {"name": "analytics-node"}}


def test_message_id_is_derived_from_content_when_absent():
    raw = {"type": "track", "userId": "u", "event": "x", "timestamp": "2026-11-01T00:00:00Z"}
    a, b = run(raw), run(dict(raw))
    assert isinstance(a, NormalizedMessage) and isinstance(b, NormalizedMessage)
    assert a.message_id == b.message_id


def test_context_traits_feed_identifiers_and_traits_win():
    out = run(
        {
            "type": "identify",
            "userId": "u",
            "traits": {"plan": "gold"},
            "context": {"traits": {"email": "a@example.org", "plan": "basic"}},
        }
    )
    assert isinstance(out, NormalizedMessage)
    assert out.profile_traits == {"email": "a@example.org", "plan": "gold"}
    assert ("email", "a@example.org") in out.identifiers


TRACK = {"type": "track", "userId": "u1", "event": "visit"}


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"userId": "u\x00"}, "userId: contains a NUL"),
        ({"anonymousId": "\ud800"}, "anonymousId: contains a lone surrogate"),
        ({"messageId": "m\x00"}, "messageId: contains a NUL"),
        ({"event": "visit\x00"}, "event: contains a NUL"),
        ({"properties": {"a": {"b\x00": 1}}}, 'properties.a["b\\u0000"]: the key'),
        ({"properties": {"n": float("inf")}}, "properties.n: is a number beyond double range"),
        ({"context": {"page": {"title": "\udc00"}}}, "context.page.title: contains a lone surrogate"),
        ({"timestamp": "2026-01-01\x00"}, "timestamp: contains a NUL"),
        ({"userId": "u" * 10_000}, "userId: is 10000 characters, over the 255-character limit"),
        ({"anonymousId": "a" * 256}, "anonymousId: is 256 characters"),
        ({"userId": 10**300}, "userId: "),
        ({"event": "e" * 10_000}, "event: String should have at most 255 characters"),
        ({"messageId": "m" * 256}, "messageId: String should have at most 255 characters"),
    ],
)
def test_unstorable_or_overlong_content_is_dropped_naming_the_field(changes, where):
    out = run({**TRACK, **changes})
    assert isinstance(out, Drop) and out.step == "validate"
    assert out.reason.startswith(where), out.reason


def test_a_bad_batch_context_drops_each_message_with_its_path():
    out = run(TRACK, batch_context={"library": {"name": "x\x00"}})
    assert isinstance(out, Drop) and out.reason.startswith("context.library.name: contains a NUL")


def test_clock_skew_correction_is_range_checked_after_it_is_applied():
    # A device clock 100 years fast is corrected into range: the event is stored.
    raw = {**TRACK, "timestamp": "2126-11-01T06:00:00Z", "sentAt": "2126-11-01T06:00:10Z"}
    out = run(raw)
    assert isinstance(out, NormalizedMessage) and out.timestamp == RECEIVED - timedelta(seconds=10)
    # Both fields are in range, but an event sent 229 years after it happened lands before 1970.
    raw = {**TRACK, "timestamp": "1970-01-02T00:00:00Z", "sentAt": "2199-01-01T00:00:00Z"}
    out = run(raw)
    assert isinstance(out, Drop) and "corrected for the device's clock" in out.reason
    out = run({**TRACK, "timestamp": "1970-01-02T00:00:00Z"}, batch_sent_at=datetime(2199, 1, 1, tzinfo=UTC))
    assert isinstance(out, Drop) and out.reason.startswith("timestamp:")
