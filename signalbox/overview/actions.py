"""What the Today page's one-click task actions do, kept out of the routes.

Each action goes through its owner's one write path: a task is finished or snoozed by
`channels`, and a call's outcome becomes a `task_outcome` event through the ingestion pipeline,
so it lands on the person's timeline, the change log and any playbook goal like any other event.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime, timedelta

from signalbox.channels import service as channels
from signalbox.core.clock import Clock
from signalbox.core.db import Database
from signalbox.core.errors import ConflictError, InvalidInputError
from signalbox.core.settings import Settings
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.overview.today import OUTCOMES, TaskRef, tomorrow_morning, workspace_zone
from signalbox.workspaces import service as workspaces

NOTE_MAX = 500
SNOOZES = {"tomorrow": "tomorrow 09:00", "hour": "1 hour"}


def finish(db: Database, workspace_id: str, task_id: int, now: datetime) -> None:
    with suppress(ConflictError):  # already done (a double click): the answer is the same
        channels.finish_task(db, workspace_id, task_id, now)


def snooze(db: Database, workspace_id: str, task_id: int, choice: str, now: datetime) -> None:
    """Until 09:00 tomorrow in the workspace's zone, or for an hour."""
    if choice not in SNOOZES:
        raise InvalidInputError(f"until must be one of {', '.join(SNOOZES)}")
    zone = workspace_zone(db, workspace_id)
    until = tomorrow_morning(now, zone) if choice == "tomorrow" else now + timedelta(hours=1)
    channels.snooze_task(db, workspace_id, task_id, until, now)


def check_outcome(outcome: str, note: str) -> str:
    """The note, trimmed, once the outcome and note are valid (checked before any lookup)."""
    if outcome not in OUTCOMES:
        raise InvalidInputError(f"outcome must be one of {', '.join(OUTCOMES)}")
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise InvalidInputError(f"the note is at most {NOTE_MAX} characters")
    return note


def record_outcome(
    db: Database, settings: Settings, clock: Clock, task: TaskRef, outcome: str, note: str, by: str, workspace_id: str
) -> None:
    """Log a call's outcome as a `task_outcome` event on the task's person, then finish the task."""
    note = check_outcome(outcome, note)
    if task.user_id is None:
        raise ConflictError("this task's person has no user id to record the outcome on")
    now = clock.now()
    message = {
        "type": "track",
        "event": "task_outcome",
        "userId": task.user_id,
        # One event per task and outcome: a double submit is a duplicate, not a second call.
        "messageId": f"task-{task.id}-outcome-{outcome}",
        "timestamp": now.isoformat(),
        "properties": {"task_id": task.id, "outcome": outcome, "note": note, "location": task.location, "by": by},
    }
    workspace = workspaces.get_workspace(db, workspace_id)
    result = Pipeline(db, settings, clock).ingest(workspace, BatchInput([message], source="dashboard"))
    if result.rejected:
        raise InvalidInputError(f"the outcome was refused: {result.rejected[0]}")
    finish(db, workspace_id, task.id, now)
