"""Operating commands: db, workspace, serve, demo."""

from __future__ import annotations

import threading

import typer

from signalbox.cli import demo as demo_cli
from signalbox.cli.common import JsonOpt, database, err, fail, handled, print_json, settings
from signalbox.connectors import smtp as smtp_connector
from signalbox.core import migrate, wakeup
from signalbox.core.clock import SystemClock
from signalbox.demo import service as demo_service
from signalbox.workspaces import service as workspaces

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
workspace_app = typer.Typer(help="Workspaces (tenants) and their keys.", no_args_is_help=True)


@db_app.command("upgrade")
@handled
def db_upgrade(json: bool = JsonOpt) -> None:
    """Migrate SIGNALBOX_DATABASE_URL to the newest schema (idempotent).

    Example: SIGNALBOX_DATABASE_URL=sqlite:///./signalbox.db signalbox db upgrade
    """
    revision = migrate.upgrade(settings().database_url)
    if json:
        print_json({"revision": revision})
    else:
        err.print(f"database is at revision {revision}")


@workspace_app.command("create")
@handled
def workspace_create(
    name: str = typer.Argument(..., help="Unique name, e.g. northside-fitness."),
    default_region: str = typer.Option("US", help="ISO 3166 region for national phone numbers."),
    timezone: str = typer.Option("America/New_York", help="IANA time zone of the business."),
    json: bool = JsonOpt,
) -> None:
    """Create a workspace; prints its keys once (they are stored hashed).

    Example: signalbox workspace create northside --json
    """
    created = workspaces.create_workspace(database(), name, default_region=default_region, timezone=timezone)
    doc = {"id": created.id, "name": created.name, "write_key": created.write_key, "admin_key": created.admin_key}
    if json:
        print_json(doc)
    else:
        for key, value in doc.items():
            typer.echo(f"{key}: {value}")
        err.print("Keep the keys now: they cannot be shown again.")


@workspace_app.command("list")
@handled
def workspace_list(json: bool = JsonOpt) -> None:
    """List workspaces (never their keys).  Example: signalbox workspace list --json"""
    found = workspaces.list_workspaces(database())
    docs = [{"id": w.id, "name": w.name, "default_region": w.default_region, "timezone": w.timezone} for w in found]
    if json:
        print_json(docs)
    else:
        for d in docs:
            typer.echo(f"{d['name']}\t{d['id']}\t{d['default_region']}\t{d['timezone']}")


@handled
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    no_worker: bool = typer.Option(
        False, "--no-worker", help="Do not run the embedded worker (run `signalbox worker` separately)."
    ),
) -> None:
    """Run the HTTP server (ingestion, admin API, /healthz, /metrics) and, unless --no-worker,
    an embedded worker, so one process runs everything on SQLite.

    Example: signalbox serve --host 0.0.0.0 --port 8000
    """
    from signalbox.api.app import create_app, server
    from signalbox.journeys.worker import Worker

    db = database()
    stop = threading.Event()
    embedded: threading.Thread | None = None
    if not no_worker:
        from signalbox.connectors import twilio

        clock = SystemClock()
        runner = Worker(
            db,
            settings(),
            clock,
            email=smtp_connector.email_sender(db, settings(), clock),
            sms=twilio.sms_sender(db, settings(), clock),
        )
        embedded = threading.Thread(target=runner.run, args=(stop,), name="signalbox-worker", daemon=True)
        embedded.start()
    try:
        server(create_app(settings(), db), settings(), host, port).run()
    finally:
        # uvicorn has drained its requests; the worker finishes its tick, then stops.
        stop.set()
        wakeup.notify()
        if embedded is not None:
            embedded.join(timeout=30)


@handled
def demo(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000, min=1, max=65535),
    workspace_name: str = typer.Option(
        "demo", "--workspace", help="Demo workspace name: created when missing; any other workspace is refused."
    ),
    members: int = typer.Option(
        2000, min=0, help="Members of the world seeded into an empty demo workspace (0: leave it empty)."
    ),
    new_keys: bool = typer.Option(
        False, "--new-keys", help="Issue and print new keys for an existing demo workspace (the old ones stop working)."
    ),
) -> None:
    """Migrate, create the demo workspace (printing its keys once), fill it with a world and its
    scores the first time, and serve. A later run reuses it and keeps its keys unless --new-keys.

    Refuses a workspace that a demo command did not create, and SIGNALBOX_ENVIRONMENT=production.

    Example: signalbox demo    (and `signalbox demo seed -w demo-big` for a bigger world)
    """
    if ctx.invoked_subcommand is not None:
        return
    demo_service.refuse_production(settings())
    migrate.upgrade(settings().database_url)
    db = database()
    opened = demo_service.open_workspace(db, settings(), workspace_name, SystemClock(), new_keys=new_keys)
    base = f"http://{host}:{port}"
    if members:
        demo_cli.seed_if_empty(db, workspace_name, members)
        # The simulated messages' links then lead to this server's /l/ (0.0.0.0 is no address).
        reachable = base.replace("//0.0.0.0:", "//127.0.0.1:").replace("//[::]:", "//127.0.0.1:")
        demo_cli.seed_lift_if_empty(db, f"{workspace_name}-lift", reachable)
    typer.echo(f"signalbox is at {base}/  (dashboard sign-in; start page: {base}/start, API docs: {base}/docs)")
    typer.echo(f"workspace: {opened.workspace.name}")
    keys = opened.keys
    if keys is None:
        typer.echo("keys: unchanged (shown only when issued; `signalbox demo --new-keys` issues new ones)")
        write_key = "$WRITE_KEY"
    else:
        typer.echo(f"write key: {keys.write_key}")
        typer.echo(f"admin key: {keys.admin_key}")
        write_key = keys.write_key
    typer.echo(f'try: curl -u {write_key}: {base}/v1/track -d \'{{"userId":"u1","event":"visit"}}\'')
    names = [opened.workspace.name] + ([f"{workspace_name}-lift"] if members else [])
    for name in names:
        ws = workspaces.get_workspace(db, name)
        logins = demo_service.issue_logins(db, ws.id, SystemClock(), reissue=new_keys)
        if not logins:
            typer.echo(f"dashboard sign-in for {name}: unchanged (`signalbox demo --new-keys` issues new passwords)")
        for login in logins:
            where = "every location" if login.locations is None else ", ".join(login.locations)
            typer.echo(
                f"dashboard sign-in: {base}/login?workspace={name}  {login.email} / {login.password}"
                f"  ({login.role}, {where})"
            )
    serve(host=host, port=port, no_worker=False)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.add_typer(workspace_app, name="workspace")
    app.command("serve")(serve)
    demo_app = typer.Typer(help="The demo: serve a demo workspace, or seed one with a generated world.")
    demo_app.callback(invoke_without_command=True)(demo)
    demo_cli.register(demo_app)
    app.add_typer(demo_app, name="demo")


__all__ = ["fail", "register"]
