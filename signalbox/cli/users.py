"""Dashboard users: `users create`, `users list`, `users disable`, `users set-password`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from signalbox.accounts import service as accounts
from signalbox.accounts.schemas import ROLES, UserInfo
from signalbox.cli.common import JsonOpt, WorkspaceOpt, database, err, fail, handled, print_json, workspace
from signalbox.core.clock import SystemClock

users_app = typer.Typer(help="People who sign in to the dashboard.", no_args_is_help=True)


@users_app.command("create")
@handled
def users_create(
    workspace_name: str = WorkspaceOpt,
    email: str = typer.Option(..., "--email", help="Their e-mail, the sign-in name (stored lower-cased)."),
    role: str = typer.Option(..., "--role", help=f"One of {', '.join(ROLES)}."),
    locations: str | None = typer.Option(
        None, "--locations", help="Comma-separated location ids they may see, e.g. loc-01,loc-02; omit for every one."
    ),
    password_file: Path | None = typer.Option(
        None,
        "--password-file",
        help="Read the password from this file (its first line). Without it, from stdin; never an argument, "
        "so it stays out of the shell history and the process list.",
    ),
    json: bool = JsonOpt,
) -> None:
    """Create a dashboard user with a password of at least 12 characters.

    Example: signalbox users create -w northside --email ana@example.com --role manager
    --locations loc-01,loc-02 --password-file ./ana.pw --json
    """
    password = _read_password(password_file)
    db = database()
    ws = workspace(db, workspace_name)
    wanted = None if locations is None else locations.split(",")
    created = accounts.create_user(
        db, ws.id, email=email, password=password, role=role, locations=wanted, clock=SystemClock()
    )
    if json:
        print_json({"workspace": ws.name, "user": created.to_dict()})
    else:
        typer.echo(_line(created))


@users_app.command("list")
@handled
def users_list(workspace_name: str = WorkspaceOpt, json: bool = JsonOpt) -> None:
    """List the workspace's dashboard users (never their passwords).

    Example: signalbox users list -w northside --json
    """
    db = database()
    ws = workspace(db, workspace_name)
    found = accounts.list_users(db, ws.id)
    if json:
        print_json({"workspace": ws.name, "users": [u.to_dict() for u in found]})
        return
    for user in found:
        typer.echo(_line(user))
    if not found:
        err.print("no dashboard user yet: add one with `signalbox users create`", highlight=False)


@users_app.command("disable")
@handled
def users_disable(
    workspace_name: str = WorkspaceOpt,
    email: str = typer.Option(..., "--email", help="The user's e-mail."),
    json: bool = JsonOpt,
) -> None:
    """Refuse the user's sign-ins from now on and end their open sessions at once.

    Example: signalbox users disable -w northside --email ana@example.com --json
    """
    db = database()
    ws = workspace(db, workspace_name)
    done = accounts.disable_user(db, ws.id, email, SystemClock())
    if json:
        print_json({"workspace": ws.name, "user": done.user.to_dict(), "sessions_ended": done.sessions_ended})
    else:
        typer.echo(_line(done.user))
        err.print(f"{done.sessions_ended} open session(s) ended", highlight=False)


@users_app.command("set-password")
@handled
def users_set_password(
    workspace_name: str = WorkspaceOpt,
    email: str = typer.Option(..., "--email", help="The user's e-mail."),
    password_file: Path | None = typer.Option(
        None, "--password-file", help="Read the new password from this file (its first line); else from stdin."
    ),
    json: bool = JsonOpt,
) -> None:
    """Give a user a new password (at least 12 characters); their open sessions end at once.

    Example: signalbox users set-password -w northside --email ana@example.com --password-file ./ana.pw
    """
    password = _read_password(password_file)
    db = database()
    ws = workspace(db, workspace_name)
    user = accounts.set_password(db, ws.id, email, password)
    if json:
        print_json({"workspace": ws.name, "user": user.to_dict()})
    else:
        typer.echo(_line(user))
        err.print("password changed; their open sessions ended", highlight=False)


def _read_password(path: Path | None) -> str:
    if path is not None:
        lines = path.read_text(encoding="utf-8").splitlines()
        password = lines[0] if lines else ""
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        fail("no password given: pipe it on stdin or name a file with --password-file")
    return accounts.check_password(password)


def _line(user: UserInfo) -> str:
    where = "all locations" if user.locations is None else ",".join(user.locations)
    state = "active" if user.active else f"disabled {user.disabled_at.isoformat() if user.disabled_at else ''}"
    return f"{user.email}\t{user.role}\t{where}\t{state}"


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
