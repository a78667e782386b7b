"""The journey engine's commands: worker, enrolments, decisions, sends, outbox, tasks,
automation holds and the workspace's send-time settings."""

from __future__ import annotations

import signal
import threading
from typing import Any

import typer

from signalbox import documents
from signalbox.channels import service as channels
from signalbox.cli import data, ops
from signalbox.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    database,
    err,
    handled,
    parse_when,
    print_json,
    settings,
    workspace,
)
from signalbox.connectors import smtp as smtp_connector
from signalbox.connectors import twilio
from signalbox.core.clock import SystemClock
from signalbox.core.logging import configure_logging
from signalbox.documents import iso
from signalbox.journeys import policy
from signalbox.journeys import service as journeys
from signalbox.journeys.worker import Worker
from signalbox.workspaces import service as workspaces

enrollments_app = typer.Typer(help="Enrolments: people in playbooks.", no_args_is_help=True)
decisions_app = typer.Typer(help="The decision trace: every action and non-action.", no_args_is_help=True)
sends_app = typer.Typer(help="The send ledger (one row per send, keyed <enrolment>:<step>).", no_args_is_help=True)
outbox_app = typer.Typer(
    help="Every provider call, sandbox or real (Twilio, SMTP), with its status.", no_args_is_help=True
)
tasks_app = typer.Typer(help="Staff tasks from playbooks.", no_args_is_help=True)
automation_app = typer.Typer(help="Take one person out of (or back into) automation.", no_args_is_help=True)
LimitOpt = typer.Option(10_000, "--limit", min=1, max=1_000_000, help="At most this many, newest first.")
UserOpt = typer.Option(None, "--user-id", "-u", help="Only this person.")


def worker(
    once: bool = typer.Option(False, "--once", help="Run what is due now, then exit."),
    poll: float = typer.Option(1.0, "--poll", min=0.05, max=60, help="Seconds between polls when idle."),
    stale_every: float = typer.Option(60.0, "--stale-every", min=1, help="Seconds between stale recomputes."),
    json: bool = JsonOpt,
) -> None:
    """Run triggers and due steps for every workspace until SIGTERM (or once).

    Example: signalbox worker            (several may run against one PostgreSQL)
    """
    configure_logging(settings().log_level)
    db = database()
    clock = SystemClock()
    runner = Worker(
        db,
        settings(),
        clock,
        poll_seconds=poll,
        stale_every_seconds=stale_every,
        email=smtp_connector.email_sender(db, settings(), clock),
        sms=twilio.sms_sender(db, settings(), clock),
    )
    if once:
        report = runner.drain()
        doc = {"changes": report.changes, "steps": report.steps, "rescored": report.rescored}
        print_json(doc) if json else typer.echo(" ".join(f"{k}={v}" for k, v in doc.items()))
        return
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        # Finish the tick in progress (its steps are committed one by one), then leave.
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    err.print("worker running; SIGTERM or Ctrl-C stops it after the current tick")
    runner.run(stop)


worker = handled(worker)


@enrollments_app.command("list")
@handled
def enrollments_list(
    workspace_name: str = WorkspaceOpt,
    playbook: str | None = typer.Option(None, "--playbook", help="Only this playbook (its playbook: id)."),
    user_id: str | None = UserOpt,
    limit: int = LimitOpt,
    json: bool = JsonOpt,
) -> None:
    """Enrolments, newest first.  Example: signalbox enrollments list -w northside --playbook at-risk --json"""
    db = database()
    found = journeys.list_enrollments(
        db, workspace(db, workspace_name).id, playbook=playbook, user_id=user_id, limit=limit
    )
    docs = [documents.enrollment_doc(e) for e in found]
    _print(docs, json, ("created_at", "playbook", "user_id", "status", "exit_reason", "next_step"))


@decisions_app.command("list")
@handled
def decisions_list(
    workspace_name: str = WorkspaceOpt,
    enrollment: str | None = typer.Option(None, "--enrollment", help="Only this enrolment id."),
    user_id: str | None = UserOpt,
    limit: int = LimitOpt,
    json: bool = JsonOpt,
) -> None:
    """Decisions, newest first.  Example: signalbox decisions list -w northside -u m-1 --json"""
    db = database()
    found = journeys.list_decisions(
        db, workspace(db, workspace_name).id, enrollment_id=enrollment, user_id=user_id, limit=limit
    )
    docs = [documents.decision_doc(d) for d in found]
    _print(docs, json, ("at", "playbook", "user_id", "step", "outcome", "reason"))


@sends_app.command("list")
@handled
def sends_list(
    workspace_name: str = WorkspaceOpt,
    user_id: str | None = UserOpt,
    status: str | None = typer.Option(None, "--status", help="pending, sent, failed or unknown."),
    limit: int = LimitOpt,
    json: bool = JsonOpt,
) -> None:
    """The send ledger, newest first.  Example: signalbox sends list -w northside --status unknown --json"""
    db = database()
    found = channels.list_sends(db, workspace(db, workspace_name).id, user_id=user_id, status=status, limit=limit)
    docs = [documents.send_doc(s) for s in found]
    _print(docs, json, ("created_at", "channel", "user_id", "playbook", "step", "status"))


@outbox_app.command("list")
@handled
def outbox_list(
    workspace_name: str = WorkspaceOpt,
    channel: str | None = typer.Option(None, "--channel", help="email or sms."),
    provider: str | None = typer.Option(None, "--provider", help="sandbox or twilio."),
    limit: int = LimitOpt,
    json: bool = JsonOpt,
) -> None:
    """Every provider call, sandbox or real, as made, with the provider's id and status
    (`calling`: begun, no answer yet).  Example: signalbox outbox list -w northside --channel sms"""
    db = database()
    found = channels.list_outbox(db, workspace(db, workspace_name).id, channel=channel, provider=provider, limit=limit)
    docs = [documents.outbox_doc(o) for o in found]
    _print(docs, json, ("created_at", "channel", "provider", "status", "provider_id", "to", "subject"))


@tasks_app.command("list")
@handled
def tasks_list(
    workspace_name: str = WorkspaceOpt,
    status: str | None = typer.Option(None, "--status", help="open, done or snoozed."),
    location: str | None = typer.Option(None, "--location", help="Only this location id."),
    limit: int = LimitOpt,
    json: bool = JsonOpt,
) -> None:
    """Staff tasks, newest first.  Example: signalbox tasks list -w northside --status open --json"""
    db = database()
    found = channels.list_tasks(db, workspace(db, workspace_name).id, status=status, location=location, limit=limit)
    _print([documents.task_doc(t) for t in found], json, ("id", "due_at", "priority", "status", "user_id", "title"))


@tasks_app.command("done")
@handled
def tasks_done(
    task_id: int = typer.Argument(..., help="The task id."), workspace_name: str = WorkspaceOpt, json: bool = JsonOpt
) -> None:
    """Mark a task done.  Example: signalbox tasks done 12 -w northside"""
    db = database()
    found = channels.finish_task(db, workspace(db, workspace_name).id, task_id, SystemClock().now())
    print_json(documents.task_doc(found)) if json else typer.echo(f"task {found.id}: {found.status}")


@tasks_app.command("snooze")
@handled
def tasks_snooze(
    task_id: int = typer.Argument(..., help="The task id."),
    workspace_name: str = WorkspaceOpt,
    until: str = typer.Option(..., "--until", help="ISO 8601 moment with an offset, e.g. 2026-03-02T09:00:00-06:00."),
    json: bool = JsonOpt,
) -> None:
    """Snooze a task until a moment.  Example: signalbox tasks snooze 12 -w northside --until 2026-03-02T09:00-06:00"""
    db = database()
    when = parse_when(until, "--until")
    assert when is not None
    found = channels.snooze_task(db, workspace(db, workspace_name).id, task_id, when, SystemClock().now())
    print_json(documents.task_doc(found)) if json else typer.echo(f"task {found.id}: snoozed until {iso(found.due_at)}")


def _automation(workspace_name: str, user_id: str, paused: bool, json: bool) -> None:
    db = database()
    found = journeys.set_automation(db, workspace(db, workspace_name).id, user_id, paused, SystemClock().now())
    out = {"user_id": found, "automation": "paused" if paused else "active"}
    print_json(out) if json else typer.echo(f"{found}: automation {out['automation']}")


@automation_app.command("pause")
@handled
def automation_pause(
    workspace_name: str = WorkspaceOpt, user_id: str = typer.Option(..., "--user-id", "-u"), json: bool = JsonOpt
) -> None:
    """Nothing automated reaches this person (steps are suppressed/automation_paused).

    Example: signalbox profile automation pause -w northside -u m-1
    """
    _automation(workspace_name, user_id, True, json)


@automation_app.command("resume")
@handled
def automation_resume(
    workspace_name: str = WorkspaceOpt, user_id: str = typer.Option(..., "--user-id", "-u"), json: bool = JsonOpt
) -> None:
    """Let automation reach this person again.  Example: signalbox profile automation resume -w northside -u m-1"""
    _automation(workspace_name, user_id, False, json)


def workspace_update(
    name: str = typer.Argument(..., help="Workspace name or id."),
    timezone: str | None = typer.Option(None, "--timezone", help="IANA zone of the business."),
    quiet_hours: str | None = typer.Option(None, "--quiet-hours", help="Local window for SMS, e.g. 08:00-21:00."),
    cap: list[str] = typer.Option(None, "--cap", help="Marketing cap, e.g. sms=1/1d or email=3/7d; sms=off removes."),
    task_capacity: list[str] = typer.Option(
        None,
        "--task-capacity",
        help="Staff tasks a location takes per day, e.g. loc-01=12 or *=20; loc-01=off removes.",
    ),
    public_base_url: str | None = typer.Option(
        None,
        "--public-base-url",
        help="The one public base URL (unsubscribe pages, links, Twilio's signature check); http:// warns.",
    ),
    json: bool = JsonOpt,
) -> None:
    """Change a workspace's zone and send-time settings.

    Example: signalbox workspace update northside --quiet-hours 09:00-20:00 --cap sms=1/1d --cap email=3/7d --json
    """
    db = database()
    ws = workspace(db, name)
    if timezone is not None:
        ws = workspaces.update_timezone(db, ws.id, timezone)
    if public_base_url is not None:
        _, warning = workspaces.set_public_base_url(db, ws.id, public_base_url)
        if warning:
            err.print(f"warning: {warning}", highlight=False)
    current = policy.update_settings(
        db, ws.id, quiet_hours=quiet_hours, caps=cap or None, task_capacity=task_capacity or None
    )
    doc = {
        "id": ws.id,
        "name": ws.name,
        "timezone": ws.timezone,
        "quiet_hours": current.quiet_hours,
        "caps": {k: f"{v.count}/{v.seconds}s" for k, v in current.caps.items()},
        "task_capacity": current.task_capacity,
        "public_base_url": workspaces.public_base_url(db, ws.id),
    }
    print_json(doc) if json else typer.echo(" ".join(f"{k}={v}" for k, v in doc.items()))


workspace_update = handled(workspace_update)


def _print(docs: list[dict[str, Any]], json: bool, columns: tuple[str, ...]) -> None:
    if json:
        print_json(docs)
        return
    for doc in docs:
        typer.echo("  ".join(str(doc.get(c) if doc.get(c) is not None else "-") for c in columns))


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    app.add_typer(enrollments_app, name="enrollments")
    app.add_typer(decisions_app, name="decisions")
    app.add_typer(sends_app, name="sends")
    app.add_typer(outbox_app, name="outbox")
    app.add_typer(tasks_app, name="tasks")
    data.profile_app.add_typer(automation_app, name="automation")
    ops.workspace_app.command("update")(workspace_update)
