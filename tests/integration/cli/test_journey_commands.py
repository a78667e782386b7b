"""The journey commands end to end through the CLI, with the real clock."""

from __future__ import annotations

import orjson

from tests.factories import jrun
from tests.integration.journeys.test_apply import _templates
from tests.unit.journeys.test_spec import GOOD


def test_apply_run_and_inspect_a_playbook(cli, tmp_path):
    jrun(cli, "workspace", "create", "jr", "--timezone", "America/Chicago")
    jrun(cli, "templates", "apply", str(_templates(tmp_path)), "-w", "jr")
    playbook = tmp_path / "fpr.yaml"
    playbook.write_text(GOOD.replace("holdout: 10%", "holdout: 0%"))
    jrun(cli, "playbooks", "apply", str(playbook), "-w", "jr")
    events = tmp_path / "events.jsonl"
    lines = [
        {"type": "identify", "userId": "m-1", "traits": {"email": "pat@example.com", "phone": "+14155550132"}},
        {
            "type": "track",
            "userId": "m-1",
            "event": "payment_failed",
            "properties": {"invoice_id": "in_9", "amount": 40},
        },
    ]
    events.write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    jrun(cli, "import", "events", str(events), "-w", "jr")

    ran = jrun(cli, "worker", "--once")
    assert ran["changes"] >= 2 and ran["steps"] >= 1
    (enr,) = jrun(cli, "enrollments", "list", "-w", "jr", "--playbook", "failed-payment-recovery")
    assert enr["user_id"] == "m-1" and enr["status"] == "active" and enr["entry_key"] == "in_9"
    assert enr["next_step"] == "sms" and enr["holdout"] is False
    (sent,) = jrun(cli, "sends", "list", "-w", "jr")
    assert sent["status"] == "sent" and sent["idempotency_key"] == f"{enr['id']}:email-now"
    (mail,) = jrun(cli, "outbox", "list", "-w", "jr", "--channel", "email")
    assert mail["to"] == "pat@example.com" and mail["subject"] == "Your payment"
    decisions = jrun(cli, "decisions", "list", "-w", "jr", "-u", "m-1")
    assert [(d["step"], d["outcome"]) for d in decisions] == [("email-now", "sent")]
    assert jrun(cli, "worker", "--once")["steps"] == 0  # nothing due: nothing doubled
    assert jrun(cli, "tasks", "list", "-w", "jr") == []

    updated = jrun(cli, "workspace", "update", "jr", "--quiet-hours", "09:00-20:00", "--cap", "sms=1/1d")
    assert updated["quiet_hours"] == "09:00-20:00" and updated["caps"] == {"sms": "1/86400s"}
    assert jrun(cli, "profile", "automation", "pause", "-w", "jr", "-u", "m-1") == {
        "user_id": "m-1",
        "automation": "paused",
    }
    for args, message in [
        (("workspace", "update", "jr", "--quiet-hours", "21:00-08:00"), "must start before it ends"),
        (("workspace", "update", "jr", "--cap", "fax=1/1d"), "email or sms"),
        (("workspace", "update", "jr", "--cap", "sms=often"), "is not like sms=1/1d"),
        (("tasks", "done", "99", "-w", "jr"), "no task 99"),
    ]:
        bad = cli(*args, ok=False)
        assert bad.exit_code == 1 and message in bad.stderr, (args, bad.stderr)
