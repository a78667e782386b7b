"""`signalbox locations list`: the location ids the dashboard's scoping and pickers use."""

from __future__ import annotations

import typer

from signalbox.cli.common import JsonOpt, WorkspaceOpt, database, handled, print_json, workspace
from signalbox.overview import locations as overview

locations_app = typer.Typer(help="The workspace's locations, as people's home_location traits name them.")


@locations_app.command("list")
@handled
def locations_list(workspace_name: str = WorkspaceOpt, json: bool = JsonOpt) -> None:
    """List each location id with its name (the most common `location_name` trait of the people
    who call it home) and how many people do. These are the ids `users create --locations` takes.

    Example: signalbox locations list -w northside --json
    """
    db = database()
    ws = workspace(db, workspace_name)
    found = overview.list_locations(db, ws.id)
    if json:
        print_json({"workspace": ws.name, "locations": [loc.to_dict() for loc in found]})
        return
    if not found:
        typer.echo("no locations yet: people carry them as the home_location trait")
    for loc in found:
        typer.echo(f"{loc.id}\t{loc.name or '-'}\t{loc.members} members")


def register(app: typer.Typer) -> None:
    app.add_typer(locations_app, name="locations")
