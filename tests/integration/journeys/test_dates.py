"""Date-relative triggers: 30 days before a membership expires, at 09:00 in each person's own
zone, across a DST change; a renewed date is a new entry, a date in the past never fires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from signalbox.core.clock import FixedClock
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.journeys.worker import Worker
from signalbox.workspaces import service as workspaces
from tests.factories import identify
from tests.integration.journeys.test_apply import TEMPLATES

RENEWAL = """\
playbook: renewal
name: Renewal reminder
purpose: transactional
trigger: {date: {trait: membership_expires_at, offset: -30d, at: "09:00"}}
holdout: 0%
steps:
  - id: remind
    send: {channel: email, template: payment-failed-2}
"""


def test_date_trigger_fires_at_nine_local_thirty_days_before(db, settings, workspace):
    clock = FixedClock(datetime(2026, 2, 1, 12, 0, tzinfo=UTC))
    ws = workspaces.get_workspace(db, workspace.id)
    pipeline = Pipeline(db, settings, clock)
    worker = Worker(db, settings, clock, stale_every_seconds=1e9)
    # Expiring 8 April: the reminder is due 9 March at 09:00 local, the day after the US
    # clocks go forward.
    pipeline.ingest(
        ws,
        BatchInput(
            [
                identify("ny", email="ny@example.com", timezone="America/New_York", membership_expires_at="2026-04-08"),
                identify(
                    "la", email="la@example.com", timezone="America/Los_Angeles", membership_expires_at="2026-04-08"
                ),
                identify("old", email="old@example.com", membership_expires_at="2026-01-10"),  # already past
            ]
        ),
    )
    journeys.apply(db, ws.id, "template", list(TEMPLATES.items()), clock.now())
    journeys.apply(db, ws.id, "playbook", [("renewal.yaml", RENEWAL)], clock.now())  # plans everyone
    worker.drain()
    assert journeys.list_enrollments(db, ws.id) == []
    clock.set(datetime(2026, 3, 9, 12, 59, tzinfo=UTC))  # 08:59 EDT
    worker.drain()
    assert journeys.list_enrollments(db, ws.id) == []
    clock.set(datetime(2026, 3, 9, 13, 0, tzinfo=UTC))  # 09:00 EDT, 06:00 PDT
    worker.drain()
    assert [e.user_id for e in journeys.list_enrollments(db, ws.id)] == ["ny"]
    clock.set(datetime(2026, 3, 9, 16, 0, tzinfo=UTC))  # 09:00 PDT
    worker.drain()
    assert sorted(e.user_id for e in journeys.list_enrollments(db, ws.id)) == ["la", "ny"]
    # A renewal moves the date: the next reminder is a new entry (its key is the new date).
    pipeline.ingest(ws, BatchInput([identify("ny", membership_expires_at="2027-04-08")]))
    worker.drain()
    clock.set(datetime(2027, 3, 9, 13, 0, tzinfo=UTC) + timedelta(minutes=1))
    worker.drain()
    ny = [e for e in journeys.list_enrollments(db, ws.id) if e.user_id == "ny"]
    assert sorted(e.entry_key for e in ny) == ["2026-04-08", "2027-04-08"]
    assert "old" not in {e.user_id for e in journeys.list_enrollments(db, ws.id)}
