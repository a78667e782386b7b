"""The change log: what changed, in commit order; consumer positions; trimming."""

from __future__ import annotations

from typing import Any

import typer

from signalbox.changes import service as changes
from signalbox.changes.schemas import KINDS, ChangeInfo
from signalbox.cli.common import JsonOpt, WorkspaceOpt, database, fail, handled, print_json, workspace
from signalbox.core.clock import SystemClock

changes_app = typer.Typer(
    help="The change log every stale recompute (and later each trigger) reads.", no_args_is_help=True
)


def _doc(c: ChangeInfo) -> dict[str, Any]:
    return {
        "seq": c.seq,
        "kind": c.kind,
        "profile_id": c.profile_id,
        "ref": c.ref,
        "name": c.name,
        "data": c.data,
        "created_at": c.created_at.isoformat(),
    }


@changes_app.command("list")
@handled
def changes_list(
    workspace_name: str = WorkspaceOpt,
    after: int = typer.Option(0, "--after", min=0, help="Only changes with a sequence number above this."),
    kind: list[str] = typer.Option(None, "--kind", help=f"One of {', '.join(KINDS)}; repeat for several."),
    limit: int = typer.Option(10_000, "--limit", min=1, max=1_000_000, help="At most this many changes."),
    json: bool = JsonOpt,
) -> None:
    """List changes, oldest first, from a position on.

    Example: signalbox changes list -w northside --after 1200 --kind score --json
    """
    unknown = sorted(set(kind or ()) - set(KINDS))
    if unknown:
        fail(f"--kind {', '.join(unknown)} is not one of {', '.join(KINDS)}")
    db = database()
    found = changes.list_changes(db, workspace(db, workspace_name).id, after=after, kinds=kind or None, limit=limit)
    if json:
        print_json([_doc(c) for c in found])
        return
    for c in found:
        typer.echo(f"{c.seq:>10}  {c.kind:<8} {c.profile_id}  {c.name or ''}  {c.created_at.isoformat()}")


@changes_app.command("status")
@handled
def changes_status(workspace_name: str = WorkspaceOpt, json: bool = JsonOpt) -> None:
    """The newest sequence number, what was trimmed, and where each consumer has read to.

    Example: signalbox changes status -w northside --json
    """
    db = database()
    found = changes.status(db, workspace(db, workspace_name).id)
    doc = {
        "head": found.head,
        "trimmed_through": found.trimmed_through,
        "rows": found.rows,
        "consumers": found.consumers,
    }
    if json:
        print_json(doc)
        return
    typer.echo(f"head={found.head} trimmed_through={found.trimmed_through} rows={found.rows}")
    for name, at in found.consumers.items():
        typer.echo(f"  {name:<12} at {at} ({found.head - at} behind)")


@changes_app.command("trim")
@handled
def changes_trim(
    workspace_name: str = WorkspaceOpt,
    keep_days: int = typer.Option(7, "--keep-days", min=0, help="Keep rows every consumer has read this long."),
    max_days: int = typer.Option(30, "--max-days", min=0, help="Delete anything older, read or not."),
    json: bool = JsonOpt,
) -> None:
    """Delete change rows every consumer has read (after --keep-days) and any row older than
    --max-days; a consumer that falls behind the latter does a full pass next time.

    Example: signalbox changes trim -w northside --json   (e.g. daily)
    """
    db = database()
    ws = workspace(db, workspace_name)
    result = changes.trim(db, ws.id, SystemClock().now(), keep_days=keep_days, max_days=max_days)
    doc = {"deleted": result.deleted, "trimmed_through": result.trimmed_through}
    print_json(doc) if json else typer.echo(f"deleted={result.deleted} trimmed_through={result.trimmed_through}")


def register(app: typer.Typer) -> None:
    app.add_typer(changes_app, name="changes")
