"""Playbooks and message templates: apply versioned YAML files, list, pause, resume."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from signalbox import documents
from signalbox.cli.common import JsonOpt, WorkspaceOpt, database, fail, handled, print_json, workspace
from signalbox.core.clock import SystemClock
from signalbox.journeys import report
from signalbox.journeys import service as journeys
from signalbox.journeys.schemas import Applied

playbooks_app = typer.Typer(help="Playbooks (journeys) as versioned YAML files.", no_args_is_help=True)
templates_app = typer.Typer(help="Message templates (email, sms) as versioned YAML files.", no_args_is_help=True)

PathArg = typer.Argument(..., help="A YAML file, or a directory whose *.yaml / *.yml files are applied together.")


def read_files(target: str) -> list[tuple[str, str]]:
    """(label as given on the command line, text) of a file or of a directory's YAML files."""
    path = Path(target)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not found:
            fail(f"{target}: no *.yaml or *.yml files in this directory")
        return [(str(Path(target) / p.name), _text(p)) for p in found]
    if not path.exists():
        fail(f"{target}: no such file or directory")
    return [(target, _text(path))]


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        fail(f"{path}: not UTF-8 text")
        raise


def _apply(kind: str, workspace_name: str, target: str, json: bool) -> None:
    db = database()
    ws = workspace(db, workspace_name)
    files = read_files(target)
    try:
        applied = journeys.apply(db, ws.id, kind, files, SystemClock().now())
    except journeys.InvalidFilesError as exc:
        for line in exc.lines:  # one line per problem, as editors and CI annotations read them
            sys.stderr.write(line + "\n")
        raise typer.Exit(1) from None
    docs = [_applied(a) for a in applied]
    if json:
        print_json(docs[0] if len(docs) == 1 and not Path(target).is_dir() else docs)
        return
    for a in applied:
        typer.echo(f"{a.source}: {a.kind} {a.key} version {a.version} ({'new version' if a.changed else 'unchanged'})")


def _applied(a: Applied) -> dict[str, Any]:
    return {a.kind: a.key, "version": a.version, "changed": a.changed}


@playbooks_app.command("apply")
@handled
def playbooks_apply(target: str = PathArg, workspace_name: str = WorkspaceOpt, json: bool = JsonOpt) -> None:
    """Check playbook files and store each changed one as a new version (all or nothing).

    Example: signalbox playbooks apply playbooks/ -w northside --json
    Problems print as PATH:LINE: field.path: message, one per line, and nothing is stored.
    """
    _apply("playbook", workspace_name, target, json)


@playbooks_app.command("list")
@handled
def playbooks_list(workspace_name: str = WorkspaceOpt, json: bool = JsonOpt) -> None:
    """List playbooks with their current version and status.

    Example: signalbox playbooks list -w northside --json
    """
    db = database()
    found = journeys.list_playbooks(db, workspace(db, workspace_name).id)
    if json:
        print_json([documents.playbook_doc(p) for p in found])
        return
    for p in found:
        typer.echo(f"{p.playbook:<32} v{p.version:<4} {p.status:<7} {p.purpose:<13} {p.trigger}")


def _status(workspace_name: str, name: str, status: str, json: bool) -> None:
    db = database()
    found = journeys.set_status(db, workspace(db, workspace_name).id, name, status, SystemClock().now())
    print_json(documents.playbook_doc(found)) if json else typer.echo(f"{found.playbook}: {found.status}")


@playbooks_app.command("pause")
@handled
def playbooks_pause(
    name: str = typer.Argument(..., help="The playbook: id."), workspace_name: str = WorkspaceOpt, json: bool = JsonOpt
) -> None:
    """Pause a playbook: no new entries; due steps wait until it is resumed.

    Example: signalbox playbooks pause failed-payment-recovery -w northside
    """
    _status(workspace_name, name, "paused", json)


@playbooks_app.command("resume")
@handled
def playbooks_resume(
    name: str = typer.Argument(..., help="The playbook: id."), workspace_name: str = WorkspaceOpt, json: bool = JsonOpt
) -> None:
    """Resume a paused playbook.

    Example: signalbox playbooks resume failed-payment-recovery -w northside
    """
    _status(workspace_name, name, "active", json)


@playbooks_app.command("report")
@handled
def playbooks_report(
    name: str = typer.Argument(..., help="The playbook: id."), workspace_name: str = WorkspaceOpt, json: bool = JsonOpt
) -> None:
    """Conversion per arm (treated vs holdout), the lift with its 95 % interval, and revenue.

    Example: signalbox playbooks report failed-payment-recovery -w northside --json
    """
    db = database()
    doc = report.report(db, workspace(db, workspace_name).id, name)
    if json:
        print_json(doc)
        return
    for arm, figures in doc["arms"].items():
        typer.echo(f"{arm:<8} enrolled={figures['enrolled']} converted={figures['converted']} rate={figures['rate']}")
    lift = doc["lift"]
    typer.echo(f"lift {lift['absolute']} (95% CI {lift['ci95']}, Newcombe); revenue {doc['revenue']}")


@templates_app.command("apply")
@handled
def templates_apply(target: str = PathArg, workspace_name: str = WorkspaceOpt, json: bool = JsonOpt) -> None:
    """Check template files (Jinja2, sandboxed) and store each changed one as a new version.

    Example: signalbox templates apply templates/ -w northside --json
    """
    _apply("template", workspace_name, target, json)


@templates_app.command("list")
@handled
def templates_list(workspace_name: str = WorkspaceOpt, json: bool = JsonOpt) -> None:
    """List message templates.  Example: signalbox templates list -w northside --json"""
    db = database()
    found = journeys.list_templates(db, workspace(db, workspace_name).id)
    docs = [
        {"template": t.template, "channel": t.channel, "version": t.version, "updated_at": t.updated_at.isoformat()}
        for t in found
    ]
    if json:
        print_json(docs)
        return
    for d in docs:
        typer.echo(f"{d['template']:<32} {d['channel']:<6} v{d['version']}")


def register(app: typer.Typer) -> None:
    app.add_typer(playbooks_app, name="playbooks")
    app.add_typer(templates_app, name="templates")
