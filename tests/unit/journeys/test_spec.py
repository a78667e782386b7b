"""The playbook and template formats: every bad file names its problem as PATH:LINE: field: message."""

from __future__ import annotations

import textwrap

import pytest

from signalbox.core import yamlsource as source
from signalbox.journeys import spec
from signalbox.journeys.service import _check

TEMPLATES = {"payment-failed-1": "email", "payment-failed-sms": "sms", "payment-failed-2": "email"}

GOOD = """\
playbook: failed-payment-recovery
name: Failed payment recovery
purpose: transactional
trigger:
  event: payment_failed
  where: {event.amount: {gte: 30}}
entry:
  key: event.invoice_id
  reentry: after_exit
  cooldown: 30d
holdout: 10%
goals:
  - event: payment_succeeded
    match: invoice_id
  - event: subscription_cancelled
steps:
  - id: email-now
    send: {channel: email, template: payment-failed-1}
  - id: wait-a-day
    wait: 24h
  - id: sms
    send: {channel: sms, template: payment-failed-sms}
  - id: wait-for-reply
    wait_for: {event: sms_replied, timeout: 48h}
    on_timeout:
      - id: high-value
        branch:
          - when: {traits.monthly_value: {gte: 100}}
            steps:
              - id: call
                task: {title: Call about the failed payment, role: front_desk, location: home, sla: 4h, priority: high}
          - else:
              steps:
                - id: last-email
                  send: {channel: email, template: payment-failed-2}
  - id: mark
    set: {traits.recovery_stage: contacted}
"""


def lines_of(text: str, templates=TEMPLATES, kind: str = "playbook") -> list[str]:
    return _check(kind, "pb.yaml", textwrap.dedent(text), dict(templates))[1]


def test_the_documented_example_is_accepted_with_durations_in_seconds():
    definition, problems = spec.check_playbook(source.load(GOOD).data, TEMPLATES)
    assert problems == []
    assert definition["entry"] == {"key": "event.invoice_id", "reentry": "after_exit", "cooldown": 30 * 86400}
    assert definition["holdout"] == pytest.approx(0.10)
    assert definition["steps"][1] == {"id": "wait-a-day", "verb": "wait", "wait": {"seconds": 86400}}
    branch = definition["steps"][3]["on_timeout"][0]["branch"]
    assert branch["arms"][0]["when"] == {"path": "traits.monthly_value", "op": "gte", "value": 100}
    assert branch["else"][0]["send"] == {"channel": "email", "template": "payment-failed-2"}


def _swap(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_swap("    wait: 24h", "    sleep: 24h"), "pb.yaml:20: steps[1].sleep: unknown step verb or field"),
        (
            _swap(
                "          - else:\n              steps:\n                - id: last-email\n"
                "                  send: {channel: email, template: payment-failed-2}\n",
                "",
            ),
            "pb.yaml:27: steps[3].on_timeout[0].branch: a branch must end with an else arm",
        ),
        (_swap("wait: 24h", "wait: 24 hours"), "pb.yaml:20: steps[1].wait: '24 hours' is not a duration"),
        (_swap("timeout: 48h", "timeout: 0h"), "pb.yaml:24: steps[3].wait_for.timeout: '0h' is not a duration"),
        (_swap("id: mark", "id: sms"), "pb.yaml:36: steps[4].id: duplicate step id 'sms'"),
        (
            _swap("traits.monthly_value", "scores.lifetime_value"),
            "pb.yaml:28: steps[3].on_timeout[0].branch[0].when.scores.lifetime_value: "
            "'scores.lifetime_value' cannot exist",
        ),
        (
            _swap("  event: payment_failed\n", "  event: payment_failed\n  enters: {scores.at_risk_band: High}\n"),
            "pb.yaml:4: trigger: needs exactly one of event, enters, date (found event, enters)",
        ),
        (
            _swap("template: payment-failed-2", "template: payment-failed-9"),
            "pb.yaml:35: steps[3].on_timeout[0].branch[1].else.steps[0].send.template: "
            "no template 'payment-failed-9' in this workspace",
        ),
        (
            _swap("template: payment-failed-1", "template: payment-failed-sms"),
            "pb.yaml:18: steps[0].send.template: template 'payment-failed-sms' is for sms, not email",
        ),
        (
            _swap("set: {traits.recovery_stage: contacted}", "set: {recovery_stage: contacted}"),
            "pb.yaml:37: steps[4].set.recovery_stage: set writes traits only",
        ),
        (_swap("holdout: 10%", "holdout: 95%"), "pb.yaml:11: holdout: '95%' is not a share"),
        (
            _swap("purpose: transactional", "purpose: promotional"),
            "pb.yaml:3: purpose: 'promotional' is not one of transactional, marketing",
        ),
        (
            _swap("reentry: after_exit", "reentry: once"),
            "pb.yaml:10: entry.cooldown: cooldown applies only with reentry: after_exit",
        ),
        (
            _swap("{event.amount: {gte: 30}}", "{event.amount: {between: 30}}"),
            "pb.yaml:6: trigger.where.event.amount.between: unknown operator",
        ),
        (
            _swap("template: payment-failed-sms}", "template: payment-failed-sms, fallback: sms}"),
            "pb.yaml:22: steps[2].send.fallback: the fallback must be the other channel",
        ),
        (
            _swap("template: payment-failed-sms}", "template: payment-failed-sms, fallback: email}"),
            "pb.yaml:22: steps[2].send.fallback: fallback: email needs fallback_template",
        ),
        (
            _swap(
                "template: payment-failed-sms}", "template: payment-failed-sms, fallback_template: payment-failed-1}"
            ),
            "pb.yaml:22: steps[2].send.fallback_template: fallback_template needs fallback",
        ),
        (
            _swap(
                "template: payment-failed-sms}",
                "template: payment-failed-sms, fallback: email, fallback_template: payment-failed-sms}",
            ),
            "pb.yaml:22: steps[2].send.fallback_template: template 'payment-failed-sms' is for sms, not email",
        ),
        (
            _swap("template: payment-failed-sms}", "template: payment-failed-sms, fallback: fax}"),
            "pb.yaml:22: steps[2].send.fallback: 'fax' is not one of email, sms",
        ),
    ],
)
def test_each_bad_playbook_names_its_line_field_and_problem(text, expected):
    found = lines_of(text)
    assert any(line.startswith(expected) for line in found), found


def test_a_fallback_channel_is_accepted_with_its_template():
    text = GOOD.replace(
        "template: payment-failed-sms}",
        "template: payment-failed-sms, fallback: email, fallback_template: payment-failed-1}",
    )
    assert lines_of(text) == []


def test_a_goal_that_can_never_match_and_event_paths_without_an_event():
    text = """\
    playbook: at-risk
    name: At risk
    purpose: marketing
    trigger: {enters: {scores.at_risk_band: High}}
    entry: {key: event.invoice_id}
    goals:
      - event: visit
        match: invoice_id
    steps:
      - id: hello
        send: {channel: email, template: payment-failed-1}
    """
    found = lines_of(text)
    assert "pb.yaml:5: entry.key: 'event.invoice_id' cannot exist here: only an event trigger has an event" in found
    assert any(line.startswith("pb.yaml:8: goals[0].match: can never match") for line in found), found


def test_every_problem_is_reported_not_only_the_first():
    found = lines_of(_swap("wait: 24h", "wait: soon").replace("purpose: transactional", "purpose: x"))
    assert len(found) == 2


def test_yaml_syntax_and_missing_fields():
    assert lines_of("playbook: [unclosed\n")[0].startswith("pb.yaml:2: (document): not valid YAML")
    found = lines_of("playbook: x\n")
    assert {"pb.yaml:1: name: is required", "pb.yaml:1: steps: is required"} <= set(found)
    assert lines_of("- just\n- a list\n") == ["pb.yaml:1: (document): must be a mapping"]


def test_templates_are_checked_for_their_channel_and_jinja_syntax():
    assert lines_of("template: t1\nchannel: email\nbody: Hi {{ profile.first_name }}\n", kind="template") == [
        "pb.yaml:1: subject: an email template needs a subject"
    ]
    found = lines_of("template: t2\nchannel: sms\nsubject: Hello\nbody: 'Hi {{ oops'\n", kind="template")
    assert found[0] == "pb.yaml:3: subject: an sms template has no subject"
    assert found[1].startswith("pb.yaml:4: body: template syntax:")


def test_durations():
    from signalbox.segments.spec import duration

    assert duration("30s") == 30 and duration("2w") == 1_209_600
    assert duration("-30d", signed=True) == -2_592_000
    assert duration("-30d") is None and duration("3 days") is None and duration(5) is None


def test_holdout_share_is_met_over_many_people():
    from signalbox.journeys.engine import holdout_of

    held = sum(holdout_of("ws_1", "at-risk", f"prof_{n}", 0.10) for n in range(20_000))
    assert 0.09 < held / 20_000 < 0.11
    assert holdout_of("ws_1", "at-risk", "prof_7", 0.10) == holdout_of("ws_1", "at-risk", "prof_7", 0.10)
