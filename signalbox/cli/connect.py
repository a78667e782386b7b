"""Connections to other systems: `connect stripe` (webhook signing secrets)."""

from __future__ import annotations

import sys

import typer

from signalbox.cli.common import JsonOpt, WorkspaceOpt, database, err, fail, handled, print_json, settings, workspace
from signalbox.connectors import service as connectors
from signalbox.core.clock import SystemClock

connect_app = typer.Typer(help="Connect other systems (Stripe webhooks).", no_args_is_help=True)


@connect_app.command("stripe")
@handled
def connect_stripe(
    workspace_name: str = WorkspaceOpt,
    signing_secret: str | None = typer.Option(
        None,
        "--signing-secret",
        help="Accept this webhook signing secret (whsec_…); `-` reads it from stdin, out of the shell history.",
    ),
    remove_signing_secret: str | None = typer.Option(
        None,
        "--remove-signing-secret",
        help="Stop accepting a secret, given as itself or by its fingerprint (sha256:…).",
    ),
    json: bool = JsonOpt,
) -> None:
    """Accept Stripe webhooks at POST /webhooks/stripe/{workspace}, signed with the secrets
    added here. Several secrets are accepted at once, so a rolled secret works without a gap:
    add the new one, then remove the old one. Secrets are stored encrypted with
    SIGNALBOX_SECRET_KEY and only ever shown by fingerprint. With neither option, lists them.

    Example: signalbox connect stripe -w northside --signing-secret whsec_… --json
    """
    db = database()
    ws = workspace(db, workspace_name)
    cfg = settings()
    added = removed = None
    if signing_secret is not None:
        from_stdin = signing_secret == "-"  # noqa: S105 (not a password: the stdin marker)
        secret = sys.stdin.readline().strip() if from_stdin else signing_secret
        if not secret:
            fail("--signing-secret is empty")
        if connectors.add_signing_secret(db, cfg, ws.id, secret, SystemClock().now()):
            added = connectors.fingerprint_of(secret)
        else:
            err.print("that signing secret was already accepted", highlight=False)
    if remove_signing_secret is not None:
        removed = connectors.remove_signing_secret(db, ws.id, remove_signing_secret)
    found = connectors.list_signing_secrets(db, cfg, ws.id)
    if removed and not found:
        err.print("warning: no signing secret is left; every Stripe webhook will be refused", highlight=False)
    doc = {
        "workspace": ws.name,
        "webhook_path": f"/webhooks/stripe/{ws.name}",
        "signing_secrets": [s.to_dict() for s in found],
        "added": added,
        "removed": removed,
    }
    if json:
        print_json(doc)
        return
    for s in found:
        note = "" if s.usable else "  UNREADABLE with this SIGNALBOX_SECRET_KEY: add it again"
        typer.echo(f"{s.fingerprint}  added {s.created_at.isoformat()}{note}")
    if not found:
        err.print("no Stripe signing secret connected", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(connect_app, name="connect")
