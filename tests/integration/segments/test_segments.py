"""Segments: apply, members kept current as people change, and the `enters: {segment}` trigger."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from signalbox.channels import service as channels
from signalbox.core.clock import FixedClock
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.journeys.worker import Worker
from signalbox.segments import service as segments
from signalbox.workspaces import service as workspaces
from tests.factories import identify, jrun
from tests.integration.journeys.test_apply import TEMPLATES

VIPS = """\
segment: vips
name: Premium members
where:
  traits.plan: premium
  traits.monthly_price: {gte: 80}
"""
WELCOME_VIPS = """\
playbook: vip-welcome
name: VIP welcome
purpose: marketing
trigger: {enters: {segment: vips}}
holdout: 0%
steps:
  - id: hello
    send: {channel: email, template: payment-failed-2}
"""


@pytest.fixture
def clock():
    return FixedClock(datetime(2026, 1, 13, 15, 0, tzinfo=UTC))


def test_members_follow_changes_and_entering_enrols(db, settings, workspace, clock):
    ws = workspaces.get_workspace(db, workspace.id)
    pipeline = Pipeline(db, settings, clock)
    worker = Worker(db, settings, clock, stale_every_seconds=1e9)
    people = [
        identify("v-1", email="v1@example.com", plan="premium", monthly_price=89, email_subscribe="opted_in"),
        identify("v-2", email="v2@example.com", plan="basic", monthly_price=29, email_subscribe="opted_in"),
    ]
    pipeline.ingest(ws, BatchInput(people))
    (applied,) = segments.apply(db, ws.id, [("vips.yaml", VIPS)], clock.now())
    assert applied == {"segment": "vips", "version": 1, "changed": True, "members": 1}
    assert segments.apply(db, ws.id, [("vips.yaml", VIPS)], clock.now())[0]["changed"] is False
    journeys.apply(db, ws.id, "template", list(TEMPLATES.items()), clock.now())
    journeys.apply(db, ws.id, "playbook", [("vip.yaml", WELCOME_VIPS)], clock.now())
    worker.drain()
    assert journeys.list_enrollments(db, ws.id) == []  # v-1 was a member before the playbook
    # v-2 upgrades: they enter the segment, and the playbook greets them.
    pipeline.ingest(ws, BatchInput([identify("v-2", plan="premium", monthly_price=89)]))
    worker.drain()
    assert sorted(m.user_id for m in segments.members(db, ws.id, "vips")) == ["v-1", "v-2"]
    (enr,) = journeys.list_enrollments(db, ws.id)
    assert enr.user_id == "v-2" and enr.status == "completed"
    assert [o.to for o in channels.list_outbox(db, ws.id)] == ["v2@example.com"]
    # v-1 downgrades and leaves.
    pipeline.ingest(ws, BatchInput([identify("v-1", plan="basic", monthly_price=29)]))
    worker.drain()
    assert [m.user_id for m in segments.members(db, ws.id, "vips")] == ["v-2"]
    (listed,) = segments.list_segments(db, ws.id)
    assert listed.members == 1


def test_segment_files_and_commands(cli, tmp_path):
    jrun(cli, "workspace", "create", "seg")
    good, bad = tmp_path / "vips.yaml", tmp_path / "bad.yaml"
    good.write_text(VIPS)
    bad.write_text("segment: Bad Name\nwhere: {event.amount: 3}\n")
    refused = cli("segments", "apply", str(bad), "-w", "seg", ok=False)
    assert refused.exit_code == 1
    assert refused.stderr.splitlines() == [
        f"{bad}:1: segment: 'Bad Name' is not an id like lapsing-vips",
        f"{bad}:2: where.event.amount: 'event.amount' cannot exist here: only an event trigger has an event",
    ]
    assert jrun(cli, "segments", "apply", str(good), "-w", "seg")["members"] == 0
    (row,) = jrun(cli, "segments", "list", "-w", "seg")
    assert row["name"] == "vips" and row["members"] == 0
    assert jrun(cli, "segments", "refresh", "vips", "-w", "seg")["members"] == 0
    missing = cli("segments", "members", "nope", "-w", "seg", ok=False)
    assert missing.exit_code == 1 and "no segment 'nope'" in missing.stderr
    pb = tmp_path / "pb.yaml"
    pb.write_text(WELCOME_VIPS.replace("segment: vips", "segment: nobody"))
    jrun(cli, "templates", "apply", str(_template(tmp_path)), "-w", "seg")
    refused = cli("playbooks", "apply", str(pb), "-w", "seg", ok=False)
    assert "no segment 'nobody' in this workspace" in refused.stderr


def _template(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(TEMPLATES["payment-failed-2.yaml"])
    return path


def test_members_follow_changes_in_a_workspace_without_playbooks(db, settings, workspace, clock):
    """Before any playbook the worker skips history whole only when nothing can feel it; a
    segment's members can."""
    ws = workspaces.get_workspace(db, workspace.id)
    pipeline = Pipeline(db, settings, clock)
    worker = Worker(db, settings, clock, stale_every_seconds=1e9)
    pipeline.ingest(ws, BatchInput([identify("v-1", email="v1@example.com", plan="basic", monthly_price=29)]))
    segments.apply(db, ws.id, [("vips.yaml", VIPS)], clock.now())
    worker.drain()
    assert segments.members(db, ws.id, "vips") == []
    pipeline.ingest(ws, BatchInput([identify("v-1", plan="premium", monthly_price=89)]))
    worker.drain()
    assert [m.user_id for m in segments.members(db, ws.id, "vips")] == ["v-1"]
