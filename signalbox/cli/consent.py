"""Consent: record a change for a person, show their ledger."""

from __future__ import annotations

import typer

from signalbox.cli.common import JsonOpt, WorkspaceOpt, database, handled, print_json, workspace
from signalbox.consent.schemas import CHANNELS, PURPOSES
from signalbox.core.clock import SystemClock
from signalbox.identity import service as identity

consent_app = typer.Typer(help="The consent ledger every send checks.", no_args_is_help=True)
UserOpt = typer.Option(..., "--user-id", "-u", help="The person's user_id.")


@consent_app.command("set")
@handled
def consent_set(
    workspace_name: str = WorkspaceOpt,
    user_id: str = UserOpt,
    channel: str = typer.Option(..., "--channel", help=f"One of {', '.join(CHANNELS)}."),
    status: str = typer.Option(..., "--status", help="granted or revoked."),
    purpose: str = typer.Option("all", "--purpose", help=f"One of {', '.join(PURPOSES)}; `all` binds receipts too."),
    note: str | None = typer.Option(None, "--note", help="Evidence kept with the change, e.g. 'asked at the desk'."),
    json: bool = JsonOpt,
) -> None:
    """Record that a person granted or revoked a channel (a ledger row; the newest decides).

    Example: signalbox consent set -w northside -u m-1 --channel sms --status revoked --note "asked by phone"
    """
    db = database()
    ws = workspace(db, workspace_name)
    evidence = {"note": note} if note else {}
    doc = identity.change_consent(
        db, ws.id, user_id, channel, status, source="cli", now=SystemClock().now(), purpose=purpose, evidence=evidence
    )
    out = {"user_id": doc.user_id, "consent": doc.consent}
    if json:
        print_json(out)
    else:
        for name, state in doc.consent.items():
            typer.echo(f"{name}: {state['status']} ({state['purpose'] or '-'}, {state['source'] or '-'})")


@consent_app.command("list")
@handled
def consent_list(workspace_name: str = WorkspaceOpt, user_id: str = UserOpt, json: bool = JsonOpt) -> None:
    """A person's consent ledger, newest first.  Example: signalbox consent list -w northside -u m-1 --json"""
    db = database()
    rows = identity.consent_history(db, workspace(db, workspace_name).id, user_id)
    docs = [
        {
            "channel": r.channel,
            "purpose": r.purpose,
            "status": r.status,
            "source": r.source,
            "evidence": r.evidence,
            "at": r.at.isoformat(),
        }
        for r in rows
    ]
    if json:
        print_json(docs)
        return
    for d in docs:
        typer.echo(f"{d['at']}  {d['channel']:<5} {d['status']:<8} {d['purpose']:<9} {d['source']}")


def register(app: typer.Typer) -> None:
    app.add_typer(consent_app, name="consent")
