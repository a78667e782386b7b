"""The Playbooks page's pure logic: which steps an enrolment reached, how decisions that held
people back are grouped, how a lift is said, and how an SMS is counted in segments."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from signalbox.core import yamlsource as source
from signalbox.journeys import spec
from signalbox.overview.outbox import looks_like_html, sms_segments
from signalbox.overview.playbooks import HeldDecision, Lift, Trace, funnel, held_back, shape
from tests.unit.journeys.test_spec import GOOD, TEMPLATES


@pytest.fixture(scope="module")
def steps():
    definition, problems = spec.check_playbook(source.load(GOOD).data, TEMPLATES)
    assert problems == []
    return shape(definition)


def reached(steps, *traces):
    return {s.id: s.reached for s in funnel(steps, traces)}


def test_the_shape_reads_in_order_with_what_comes_before_each_step(steps):
    assert [(s.id, s.depth) for s in steps] == [
        ("email-now", 0),
        ("wait-a-day", 0),
        ("sms", 0),
        ("wait-for-reply", 0),
        ("high-value", 1),
        ("call", 2),
        ("last-email", 2),
        ("mark", 0),
    ]
    by_id = {s.id: s for s in steps}
    assert by_id["call"].before == ("email-now", "wait-a-day", "sms", "wait-for-reply", "high-value")
    # Only one arm is taken, and the timeout path is not on the way to `mark`.
    assert by_id["mark"].before == ("email-now", "wait-a-day", "sms", "wait-for-reply")
    assert by_id["last-email"].then == "mark" and by_id["wait-for-reply"].on_timeout == "high-value"


def test_a_new_enrolment_reached_only_the_first_step(steps):
    counts = reached(steps, Trace("active", "email-now", frozenset()))
    assert counts["email-now"] == 1 and sum(counts.values()) == 1


def test_a_step_decided_moves_the_enrolment_on_and_implies_every_step_before(steps):
    sent = Trace("exited", None, frozenset({("email-now", "sent")}))
    assert reached(steps, sent)["wait-a-day"] == 1 and reached(steps, sent)["sms"] == 0
    # Delayed at quiet hours: still at the SMS, not past it.
    delayed = Trace("active", "sms", frozenset({("email-now", "sent"), ("sms", "delayed")}))
    counts = reached(steps, delayed)
    assert counts["sms"] == 1 and counts["wait-for-reply"] == 0
    # A task in one arm: its branch and everything before it, not the other arm.
    called = Trace("active", "mark", frozenset({("call", "sent")}))
    counts = reached(steps, called)
    assert counts["call"] == counts["high-value"] == counts["sms"] == counts["mark"] == 1
    assert counts["last-email"] == 0


def test_a_timeout_goes_to_its_first_timeout_step(steps):
    timed_out = Trace("active", None, frozenset({("wait-for-reply", "skipped")}))
    counts = reached(steps, timed_out)
    assert counts["high-value"] == 1 and counts["mark"] == 0


def test_completed_went_through_every_top_level_step_and_here_counts_active_only(steps):
    done = Trace("completed", None, frozenset())
    waiting = Trace("active", "sms", frozenset())
    gone = Trace("exited", "sms", frozenset())
    result = {s.id: s for s in funnel(steps, [done, waiting, gone])}
    assert result["mark"].reached == 1 and result["call"].reached == 0
    assert result["sms"].reached == 3 and result["sms"].here == 1


def test_steps_of_an_older_version_are_ignored(steps):
    old = Trace("exited", "gone-step", frozenset({("gone-step", "sent")}))
    assert reached(steps, old) == {s.id: (1 if s.id == "email-now" else 0) for s in steps}


def _d(reason, outcome="delayed", user="u-1", step="sms"):
    at = datetime(2026, 3, 1, tzinfo=UTC)
    return HeldDecision(user, step, outcome, reason, "sms", at, "01 Mar 00:00")


def test_held_back_groups_by_reason_most_frequent_first():
    counts = {
        ("quiet_hours", "delayed"): 3,
        ("holdout", "held_out"): 1,
        ("no_consent", "suppressed"): 1,
        ("timeout", "skipped"): 4,  # a path, not a hold-up
        ("frequency_cap", "suppressed"): 1,
        ("no_address", "suppressed"): 2,
        ("no_address", "failed"): 1,
        ("sent", "sent"): 9,
    }
    people = {"quiet_hours": 2, "holdout": 1, "no_consent": 1, "frequency_cap": 1, "no_address": 2}
    examples = {"quiet_hours": [_d("quiet_hours"), _d("quiet_hours", user="u-2")]}
    groups = held_back(counts, people, examples)
    assert [(g.reason, g.count, g.people) for g in groups] == [
        ("no_address", 3, 2),
        ("quiet_hours", 3, 2),
        ("frequency_cap", 1, 1),
        ("holdout", 1, 1),
        ("no_consent", 1, 1),
    ]
    assert groups[0].outcomes == {"suppressed": 2, "failed": 1}
    assert len(groups[1].examples) == 2 and groups[2].examples == []


@pytest.mark.parametrize(
    ("lift", "said", "significant"),
    [
        (Lift(0.18, 0.07, 0.29), "+18 pts (95% CI +7 to +29)", True),
        (Lift(0.03, -0.04, 0.10), "+3 pts (95% CI -4 to +10): not significant", False),
        (Lift(-0.2, -0.3, -0.1), "-20 pts (95% CI -30 to -10)", True),
        (Lift(None, None, None), "no comparison yet", False),
    ],
)
def test_a_lift_is_said_with_its_interval(lift, said, significant):
    assert lift.statement.startswith(said) and lift.significant is significant


def test_the_interval_bar_keeps_zero_in_the_middle():
    bar = Lift(0.18, 0.07, 0.29).bar()
    assert bar is not None and bar["zero"] == 50 and bar["high"] == 100 and 50 < bar["low"] < bar["estimate"]
    small = Lift(0.01, -0.02, 0.04).bar()
    assert small is not None and small["low"] == 40 and small["high"] == 70  # at least ±10 pts wide
    assert Lift(None, None, None).bar() is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", (0, "gsm-7")),
        ("a" * 160, (1, "gsm-7")),
        ("a" * 161, (2, "gsm-7")),
        ("€" * 80, (1, "gsm-7")),  # two septets each: 160
        ("€" * 81, (2, "gsm-7")),
        ("ł" * 70, (1, "ucs-2")),
        ("ł" * 71, (2, "ucs-2")),
        ("🙂" * 35, (1, "ucs-2")),  # two UTF-16 units each
    ],
)
def test_sms_segments(body, expected):
    assert sms_segments(body) == expected


def test_only_a_whole_html_document_is_framed():
    assert looks_like_html("  <!DOCTYPE html><p>x") and looks_like_html("<html>")
    assert not looks_like_html("Hi <b>there</b>")
