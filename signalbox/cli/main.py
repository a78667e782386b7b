"""`signalbox`: one console script, sub-commands grouped by noun."""

from __future__ import annotations

import typer

from signalbox.cli import (
    changes,
    connect,
    consent,
    data,
    email,
    journeys,
    locations,
    model,
    ops,
    playbooks,
    segments,
    signals,
    users,
)

app = typer.Typer(
    name="signalbox",
    help="signalbox: ingest customer events, tie them to the right person, decide what to do next.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ops.register(app)
data.register(app)
signals.register(app)
model.register(app)
changes.register(app)
playbooks.register(app)
consent.register(app)
journeys.register(app)
segments.register(app)
connect.register(app)
email.register(app)
users.register(app)
locations.register(app)


if __name__ == "__main__":
    app()
