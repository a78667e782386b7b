"""Applying playbooks and templates: versions only on change, all or nothing, pause and resume."""

from __future__ import annotations

from tests.factories import jrun
from tests.unit.journeys.test_spec import GOOD

TEMPLATES = {
    "payment-failed-1.yaml": (
        "template: payment-failed-1\nchannel: email\nsubject: Your payment\nbody: Hi {{ profile.user_id }}\n"
    ),
    "payment-failed-2.yaml": (
        "template: payment-failed-2\nchannel: email\nsubject: Still open\nbody: Update your card\n"
    ),
    "payment-failed-sms.yaml": "template: payment-failed-sms\nchannel: sms\nbody: Your card was declined\n",
}


def _templates(tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir()
    for name, text in TEMPLATES.items():
        (folder / name).write_text(text)
    return folder


def test_apply_versions_only_changed_files_and_pause_resume(cli, tmp_path):
    jrun(cli, "workspace", "create", "pb")
    folder = _templates(tmp_path)
    playbook = tmp_path / "failed-payment-recovery.yaml"
    playbook.write_text(GOOD)
    # A playbook naming templates that were never applied is refused whole.
    refused = cli("playbooks", "apply", str(playbook), "-w", "pb", ok=False)
    assert refused.exit_code == 1
    assert f"{playbook}:18: steps[0].send.template: no template 'payment-failed-1'" in refused.stderr
    assert jrun(cli, "playbooks", "list", "-w", "pb") == []

    applied = jrun(cli, "templates", "apply", str(folder), "-w", "pb")
    assert [a["template"] for a in applied] == ["payment-failed-1", "payment-failed-2", "payment-failed-sms"]
    assert all(a["version"] == 1 and a["changed"] for a in applied)
    assert jrun(cli, "playbooks", "apply", str(playbook), "-w", "pb") == {
        "playbook": "failed-payment-recovery",
        "version": 1,
        "changed": True,
    }
    # The same file again (a comment added) is not a new version.
    playbook.write_text("# reviewed\n" + GOOD)
    assert jrun(cli, "playbooks", "apply", str(playbook), "-w", "pb")["changed"] is False
    playbook.write_text(GOOD.replace("wait: 24h", "wait: 36h"))
    assert jrun(cli, "playbooks", "apply", str(playbook), "-w", "pb") == {
        "playbook": "failed-payment-recovery",
        "version": 2,
        "changed": True,
    }
    (listed,) = jrun(cli, "playbooks", "list", "-w", "pb")
    assert {k: listed[k] for k in ("playbook", "version", "status", "purpose", "trigger")} == {
        "playbook": "failed-payment-recovery",
        "version": 2,
        "status": "active",
        "purpose": "transactional",
        "trigger": "event:payment_failed",
    }
    assert jrun(cli, "playbooks", "pause", "failed-payment-recovery", "-w", "pb")["status"] == "paused"
    assert jrun(cli, "playbooks", "resume", "failed-payment-recovery", "-w", "pb")["status"] == "active"
    missing = cli("playbooks", "pause", "nope", "-w", "pb", ok=False)
    assert missing.exit_code == 1 and "no playbook 'nope'" in missing.stderr
    assert [t["template"] for t in jrun(cli, "templates", "list", "-w", "pb")] == sorted(
        name.removesuffix(".yaml") for name in TEMPLATES
    )


def test_a_directory_with_one_bad_file_stores_nothing(cli, tmp_path):
    jrun(cli, "workspace", "create", "pb-bad")
    folder = _templates(tmp_path)
    (folder / "zz-broken.yaml").write_text("template: broken\nchannel: fax\nbody: x\n")
    refused = cli("templates", "apply", str(folder), "-w", "pb-bad", ok=False)
    assert refused.exit_code == 1
    assert refused.stderr.strip().splitlines() == [
        f"{folder}/zz-broken.yaml:2: channel: 'fax' is not one of email, sms"
    ]
    assert jrun(cli, "templates", "list", "-w", "pb-bad") == []
    gone = cli("templates", "apply", str(tmp_path / "nowhere"), "-w", "pb-bad", ok=False)
    assert gone.exit_code == 1 and "no such file or directory" in gone.stderr
