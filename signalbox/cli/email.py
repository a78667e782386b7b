"""E-mail: `email suppress` records a hard bounce or a complaint the mail provider reported."""

from __future__ import annotations

import typer

from signalbox.cli.common import JsonOpt, WorkspaceOpt, database, handled, print_json, workspace
from signalbox.connectors import smtp as smtp_connector
from signalbox.core.clock import SystemClock

email_app = typer.Typer(help="E-mail: suppress addresses that bounced or complained.", no_args_is_help=True)


@email_app.command("suppress")
@handled
def email_suppress(
    workspace_name: str = WorkspaceOpt,
    address: str = typer.Option(..., "--address", help="The e-mail address the provider reported."),
    reason: str = typer.Option(..., "--reason", help="bounce (a hard bounce) or complaint (marked as spam)."),
    json: bool = JsonOpt,
) -> None:
    """Stop all e-mail (marketing and transactional) to the person with this address: a consent
    revocation (purpose all) with source email_bounce / email_complaint and the address as
    evidence. A later grant (the person subscribes again) lifts it.

    Example: signalbox email suppress -w northside --address maria@example.com --reason bounce
    """
    db = database()
    ws = workspace(db, workspace_name)
    profiles = smtp_connector.suppress(db, ws.id, address, reason, SystemClock().now())
    doc = {"workspace": ws.name, "address": address.strip().lower(), "reason": reason, "profiles": profiles}
    if json:
        print_json(doc)
    else:
        typer.echo(f"suppressed {doc['address']} ({reason}): e-mail consent revoked for {', '.join(profiles)}")


def register(app: typer.Typer) -> None:
    app.add_typer(email_app, name="email")
