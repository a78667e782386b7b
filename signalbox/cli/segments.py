"""Segments: apply definitions, list them, read and refresh their members."""

from __future__ import annotations

import sys

import typer

from signalbox.cli.common import JsonOpt, WorkspaceOpt, database, handled, print_json, workspace
from signalbox.cli.playbooks import PathArg, read_files
from signalbox.core.clock import SystemClock
from signalbox.documents import iso
from signalbox.segments import service as segments

segments_app = typer.Typer(help="Segments: who is in which audience, now.", no_args_is_help=True)


@segments_app.command("apply")
@handled
def segments_apply(target: str = PathArg, workspace_name: str = WorkspaceOpt, json: bool = JsonOpt) -> None:
    """Check segment files, store the changed ones and compute their members (all or nothing).

    Example: signalbox segments apply segments/lapsing-vips.yaml -w northside --json
    """
    db = database()
    ws = workspace(db, workspace_name)
    try:
        applied = segments.apply(db, ws.id, read_files(target), SystemClock().now())
    except segments.InvalidSegmentError as exc:
        for line in exc.lines:
            sys.stderr.write(line + "\n")
        raise typer.Exit(1) from None
    if json:
        print_json(applied[0] if len(applied) == 1 else applied)
        return
    for a in applied:
        typer.echo(f"{a['segment']}: version {a['version']} ({'changed' if a['changed'] else 'unchanged'})")


@segments_app.command("list")
@handled
def segments_list(workspace_name: str = WorkspaceOpt, json: bool = JsonOpt) -> None:
    """Segments with their member counts.  Example: signalbox segments list -w northside --json"""
    db = database()
    found = segments.list_segments(db, workspace(db, workspace_name).id)
    docs = [
        {
            "name": s.segment,
            "title": s.name,
            "version": s.version,
            "members": s.members,
            "refreshed_at": iso(s.refreshed_at),
            "updated_at": iso(s.updated_at),
        }
        for s in found
    ]
    if json:
        print_json(docs)
        return
    for d in docs:
        typer.echo(f"{d['name']:<32} {d['members']:>8} members  v{d['version']}")


@segments_app.command("members")
@handled
def segments_members(
    name: str = typer.Argument(..., help="The segment: id."),
    workspace_name: str = WorkspaceOpt,
    limit: int = typer.Option(10_000, "--limit", min=1, max=1_000_000),
    json: bool = JsonOpt,
) -> None:
    """A segment's members, newest entries first.  Example: signalbox segments members lapsing-vips -w northside"""
    db = database()
    found = segments.members(db, workspace(db, workspace_name).id, name, limit=limit)
    docs = [{"user_id": m.user_id, "profile_id": m.profile_id, "entered_at": iso(m.entered_at)} for m in found]
    if json:
        print_json(docs)
        return
    for d in docs:
        typer.echo(f"{d['entered_at']}  {d['user_id'] or d['profile_id']}")


@segments_app.command("refresh")
@handled
def segments_refresh(
    name: str = typer.Argument(..., help="The segment: id."), workspace_name: str = WorkspaceOpt, json: bool = JsonOpt
) -> None:
    """Re-evaluate everyone against a segment (members are otherwise kept current as people change).

    Example: signalbox segments refresh lapsing-vips -w northside --json
    """
    db = database()
    ws = workspace(db, workspace_name)
    done = segments.refresh(db, ws.id, name, SystemClock().now())
    doc = {"segment": done.segment, "members": done.members, "entered": done.entered, "left": done.left}
    print_json(doc) if json else typer.echo(" ".join(f"{k}={v}" for k, v in doc.items()))


def register(app: typer.Typer) -> None:
    app.add_typer(segments_app, name="segments")
