"""The keyword of an inbound SMS (the whole message, any case, spaces ignored), TwiML answers
made by the official library, and the order statuses may move in."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from signalbox.channels.service import STATUS_RANK, _lower
from signalbox.connectors.twilio import keyword, lookup_call, twiml


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("STOP", "stop"),
        ("  stop\n", "stop"),
        ("Stop.", "stop"),
        ("stopall", "stop"),
        ("OptOut", "stop"),
        ("start", "start"),
        (" YES ", "start"),
        ("unstop", "start"),
        ("help", "help"),
        ("Info", "help"),
        ("stop texting me please", "reply"),
        ("STOP ALL", "reply"),
        ("", "reply"),
        ("subscribe", "reply"),
    ],
)
def test_keyword(body, kind):
    assert keyword(body) == kind


def test_twiml_escapes_and_empty_answers():
    root = ET.fromstring(twiml("Tom & Jerry <3"))
    assert root.tag == "Response" and [m.text for m in root] == ["Tom & Jerry <3"]
    assert len(ET.fromstring(twiml())) == 0


def test_statuses_only_move_forward():
    assert "queued" in _lower("sending") and "sent" in _lower("delivered")
    assert "delivered" not in _lower("sent") and "delivered" not in _lower("undelivered")
    assert STATUS_RANK["queued"] < STATUS_RANK["sending"] < STATUS_RANK["sent"] < STATUS_RANK["delivered"]


def test_lookup_never_allows_a_resend_of_a_begun_call():
    assert lookup_call(None, "calling").status == "unknown"
    assert lookup_call(None, "refused").status == "failed"
    assert lookup_call("SM" + "a" * 32, "sent").status == "accepted"
    assert lookup_call("SM" + "a" * 32, "delivered").status == "delivered"
