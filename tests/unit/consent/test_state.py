"""What a consent state allows: marketing needs a grant, transactional only no full revocation."""

from __future__ import annotations

from datetime import UTC, datetime

from signalbox.consent.schemas import UNKNOWN, ConsentState
from signalbox.consent.service import from_traits

AT = datetime(2026, 3, 1, tzinfo=UTC)


def test_purpose_rules():
    granted = ConsentState("granted", "all", "cli", AT)
    no_marketing = ConsentState("revoked", "marketing", "cli", AT)
    stopped = ConsentState("revoked", "all", "sms_keyword", AT)
    assert granted.allows("marketing") and granted.allows("transactional")
    assert not UNKNOWN.allows("marketing") and UNKNOWN.allows("transactional")
    assert not no_marketing.allows("marketing") and no_marketing.allows("transactional")
    assert not stopped.allows("marketing") and not stopped.allows("transactional")


def test_identify_traits_in_brazes_convention():
    assert from_traits({"email_subscribe": "opted_in", "sms_subscribe": "Unsubscribed"}) == [
        ("email", "granted"),
        ("sms", "revoked"),
    ]
    assert from_traits({"email_subscribe": "subscribed"}) == [("email", "granted")]
    assert from_traits({"email_subscribe": "maybe", "sms_subscribe": True}) == []
