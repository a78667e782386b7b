"""Connections to other systems: `connect stripe` (webhook signing secrets), `connect twilio` (SMS),
`connect smtp` (e-mail)."""

from __future__ import annotations

import sys
from typing import Any

import typer

from signalbox.cli.common import JsonOpt, WorkspaceOpt, database, err, fail, handled, print_json, settings, workspace
from signalbox.connectors import service as connectors
from signalbox.connectors import smtp as smtp_connector
from signalbox.connectors import twilio
from signalbox.core.clock import SystemClock
from signalbox.workspaces import service as workspaces

connect_app = typer.Typer(
    help="Connect other systems (Stripe webhooks, Twilio SMS, SMTP e-mail).", no_args_is_help=True
)


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


@connect_app.command("twilio")
@handled
def connect_twilio(
    workspace_name: str = WorkspaceOpt,
    account_sid: str | None = typer.Option(None, "--account-sid", help="The Twilio Account SID (AC…)."),
    auth_token: str | None = typer.Option(
        None, "--auth-token", help="The account's auth token; `-` reads it from stdin, out of the shell history."
    ),
    from_number: str | None = typer.Option(None, "--from-number", help="The sending number, E.164 (+14155550100)."),
    public_base_url: str | None = typer.Option(
        None,
        "--public-base-url",
        help="The workspace's public base URL (the same setting as `workspace update --public-base-url`); "
        "Twilio's signatures are checked against it.",
    ),
    api_base_url: str | None = typer.Option(
        None, "--api-base-url", help="Point the Twilio client elsewhere (a regional edge, a test server); '' resets."
    ),
    stop_reply: str | None = typer.Option(
        None, "--stop-reply", help="Answer STOP with this text (once per opt-out); '' goes back to no answer."
    ),
    help_text: str | None = typer.Option(None, "--help-text", help="The answer to HELP and INFO."),
    disconnect: bool = typer.Option(False, "--disconnect", help="Remove the connection (SMS go to the sandbox)."),
    json: bool = JsonOpt,
) -> None:
    """Send SMS through Twilio and receive replies, STOP and delivery statuses at
    POST /webhooks/twilio/{workspace}/sms and /status. The auth token is stored encrypted with
    SIGNALBOX_SECRET_KEY and only ever shown by fingerprint. With no option, shows the connection.

    Example: signalbox connect twilio -w northside --account-sid AC… --auth-token - --from-number +14155550100
    --public-base-url https://sb.example.com --json
    """
    db = database()
    ws = workspace(db, workspace_name)
    cfg = settings()
    if disconnect:
        twilio.disconnect(db, ws.id)
    token = auth_token
    if auth_token == "-":  # noqa: S105 (not a password: the stdin marker)
        token = sys.stdin.readline().strip()
        if not token:
            fail("--auth-token is empty")
    warning = None
    if public_base_url is not None:
        _, warning = workspaces.check_public_base_url(public_base_url)
    changed = twilio.connect(
        db,
        cfg,
        ws,
        SystemClock().now(),
        account_sid=account_sid,
        auth_token=token,
        from_number=from_number,
        api_base_url=api_base_url,
        stop_reply=stop_reply,
        help_text=help_text,
    )
    if public_base_url is not None:
        workspaces.set_public_base_url(db, ws.id, public_base_url)
    if warning:
        err.print(f"warning: {warning}", highlight=False)
    found = twilio.config(db, cfg, ws.id)
    base = workspaces.public_base_url(db, ws.id)
    if found is not None and base is None:
        err.print(
            "warning: no public base URL; inbound SMS are refused until --public-base-url is set", highlight=False
        )
    doc = {
        "workspace": ws.name,
        "connected": found is not None,
        "changed": changed or public_base_url is not None or disconnect,
        "public_base_url": base,
        **twilio.webhook_urls(base, ws.name),
        **(found.to_dict() if found is not None else {}),
    }
    if json:
        print_json(doc)
        return
    if found is None:
        err.print("no Twilio connection", highlight=False)
    for key, value in doc.items():
        typer.echo(f"{key}: {value if value is not None else '-'}")


@connect_app.command("smtp")
@handled
def connect_smtp(
    workspace_name: str = WorkspaceOpt,
    host: str | None = typer.Option(None, "--host", help="SMTP server, e.g. smtp.example.com."),
    port: int = typer.Option(587, "--port", help="SMTP port (587 with --starttls is usual)."),
    starttls: bool = typer.Option(False, "--starttls", help="Upgrade the connection with STARTTLS before AUTH."),
    username: str | None = typer.Option(None, "--username", help="AUTH user name."),
    password: str | None = typer.Option(
        None, "--password", help="AUTH password; `-` reads it from stdin, out of the shell history."
    ),
    from_value: str | None = typer.Option(
        None, "--from", help="Sender, `news@example.com` or `Name <news@example.com>`; its domain is DKIM's d=."
    ),
    dkim_key: str | None = typer.Option(None, "--dkim-key", help="RSA private key file, PEM (PKCS#1 or PKCS#8)."),
    dkim_selector: str | None = typer.Option(None, "--dkim-selector", help="DKIM selector, e.g. s2026."),
    public_base_url: str | None = typer.Option(
        None,
        "--public-base-url",
        help="https:// base where /u/{token} (one-click unsubscribe) answers; the workspace's one public URL.",
    ),
    json: bool = JsonOpt,
) -> None:
    """Send this workspace's e-mail through an SMTP server (instead of the sandbox). Marketing
    e-mail carries one-click unsubscribe links to the public base URL; with a DKIM key every
    message is signed. The password and key are stored encrypted with SIGNALBOX_SECRET_KEY and
    shown only by fingerprint. With no --host, shows the connection.

    Example: signalbox connect smtp -w northside --host smtp.example.com --port 587 --starttls
    --username apikey --password - --from news@example.com --public-base-url https://crm.example.com
    """
    db = database()
    ws = workspace(db, workspace_name)
    cfg = settings()
    if public_base_url is not None:
        url, warning = smtp_connector.check_public_base_url(public_base_url)
        if warning:
            err.print(f"warning: {warning}", highlight=False)
    if host is not None:
        if from_value is None:
            fail("--from is required with --host (e.g. --from news@example.com)")
        secret = sys.stdin.readline().strip() if password == "-" else password  # noqa: S105 (the stdin marker)
        if password is not None and not secret:
            fail("--password is empty")
        if public_base_url is None and workspaces.public_base_url(db, ws.id) is None:
            fail("give --public-base-url https://… : marketing e-mail needs it for its one-click unsubscribe link")
        key = smtp_connector.read_dkim_key(dkim_key) if dkim_key is not None else None
        smtp_connector.connect(
            db,
            cfg,
            ws.id,
            host=host,
            port=port,
            starttls=starttls,
            username=username,
            password=secret,
            from_value=from_value or "",
            dkim_key=key,
            dkim_selector=dkim_selector,
            now=SystemClock().now(),
        )
    elif any(v is not None for v in (username, password, from_value, dkim_key, dkim_selector)):
        fail("--host is required to connect (the other options describe that server)")
    if public_base_url is not None:
        workspaces.set_public_base_url(db, ws.id, url)
    doc = smtp_connector.describe(db, cfg, ws.id)
    if json:
        print_json({"workspace": ws.name, "smtp": doc})
    else:
        _show_smtp(doc)


def _show_smtp(doc: dict[str, Any] | None) -> None:
    if doc is None:
        err.print("no SMTP server connected: e-mail goes to the sandbox (`signalbox outbox list`)", highlight=False)
        return
    typer.echo(f"{doc['from']} via {doc['host']}:{doc['port']}{' starttls' if doc['starttls'] else ''}")
    typer.echo(f"unsubscribe links: {doc['public_base_url']}/u/…")
    if doc["dkim"]:
        typer.echo(f"DKIM: publish TXT {doc['dkim']['dns_name']} \"{doc['dkim']['dns_txt']}\"")
    if not doc["usable"]:
        err.print("warning: the stored secrets are unreadable with this SIGNALBOX_SECRET_KEY: connect again")


def register(app: typer.Typer) -> None:
    app.add_typer(connect_app, name="connect")
