"""`signalbox demo seed`: fill a workspace with the deterministic demo world."""

from __future__ import annotations

from pathlib import Path

import typer

from signalbox.cli.common import JsonOpt, database, err, handled, lazy_progress, parse_day, print_json, settings
from signalbox.core.clock import SystemClock
from signalbox.core.db import Database
from signalbox.demo import service as demo
from signalbox.demo.schemas import MAX_LOCATIONS, MAX_MONTHS, SeedResult, WorldConfig


@handled
def seed(
    workspace_name: str = typer.Option(
        ...,
        "--workspace",
        "-w",
        help="A new workspace (created, America/New_York), or an empty one that a demo command created.",
    ),
    members: int = typer.Option(12_000, help="Members who ever belong to the chain (at least 1)."),
    locations: int = typer.Option(6, help=f"Gym locations, 1-{MAX_LOCATIONS}, spread over US time zones."),
    months: int = typer.Option(15, help=f"Months of history, 1-{MAX_MONTHS}."),
    seed: int = typer.Option(7, help="Random seed: the same seed and options give the same world."),
    end: str | None = typer.Option(
        None,
        help="Last day of the world, YYYY-MM-DD (default: yesterday in the world's westernmost location).",
    ),
    ground_truth: Path | None = typer.Option(
        None, "--ground-truth", help="Where to write the ground-truth CSV (default: ./WORKSPACE.ground_truth.csv)."
    ),
    with_playbooks: bool = typer.Option(
        False,
        "--with-playbooks",
        help="Then run the shipped playbooks on a simulated clock with members who answer them with planted "
        "effects, and report what was measured beside what was planted.",
    ),
    sim_days: int = typer.Option(14, help="With --with-playbooks: simulated days of new triggers (1-120)."),
    sim_per_day: int = typer.Option(40, help="With --with-playbooks: triggers a day for each planted effect."),
    json: bool = JsonOpt,
) -> None:
    """Generate a multi-location fitness chain and feed it through the ingestion pipeline.

    Members join, visit, book classes, pay (and sometimes fail to), complain and churn; POS and
    booking systems keep messy copies of them. Refuses a workspace that a demo command did not
    create or that already holds events, and SIGNALBOX_ENVIRONMENT=production. The workspace's
    keys are not printed: `signalbox demo -w W --new-keys` issues them.

    Example: signalbox demo seed --workspace demo --members 12000 --months 15 --json
    Example: signalbox demo seed --workspace lift --members 2000 --months 3 --with-playbooks --json
    """
    demo.refuse_production(settings())
    if with_playbooks:
        demo.check_simulation(sim_days, sim_per_day)
    wanted = parse_day(end, "--end")
    last = demo.world_end(wanted, locations, SystemClock())
    if with_playbooks and wanted is None:
        last -= demo.simulation_span(sim_days)  # the simulated days end before today, not after
    config = WorldConfig(
        end=last,
        members=members,
        locations=locations,
        months=months,
        seed=seed,
    )
    db = database()
    result = _seed(db, workspace_name, config, ground_truth)
    doc: dict[str, object] = {
        "workspace": result.workspace,
        "members": result.members,
        "locations": result.locations,
        "events": result.events,
        "start": result.start.isoformat(),
        "end": result.end.isoformat(),
        "seconds": result.seconds,
        "ground_truth": result.ground_truth,
    }
    if with_playbooks:
        with lazy_progress("playbooks on a simulated clock") as report:
            planted = demo.run_playbooks(
                db,
                settings(),
                result.workspace,
                result.end,
                days=sim_days,
                per_day=sim_per_day,
                seed=seed,
                ground_truth=Path(result.ground_truth),
                progress=report,
            )
        doc["planted"] = [p.to_dict() for p in planted]
    if json:
        print_json(doc)
    else:
        typer.echo(" ".join(f"{k}={v}" for k, v in doc.items()))
    if result.rejected:
        err.print(f"warning: {result.rejected} messages were not stored; see `signalbox dlq list`")


def seed_if_empty(db: Database, workspace_name: str, members: int) -> None:
    """A first `signalbox demo` fills the workspace with a 15-month world and scores it."""
    clock = SystemClock()
    config = WorldConfig(end=demo.world_end(None, 6, clock), members=members, locations=6, months=15, seed=7)
    with lazy_progress("seeding") as report:
        done = demo.seed_if_empty(db, settings(), workspace_name, config, clock, progress=report)
    if done is None:
        return
    result, run = done
    err.print(
        f"seeded {result.events} events for {members} members ({result.start} to {result.end}); "
        f"scored {run.profiles} customers: {run.bands['High']} High, {run.bands['Medium']} Medium, "
        f"{run.bands['Low']} Low",
        soft_wrap=True,
    )


def seed_lift_if_empty(db: Database, workspace_name: str, public_base_url: str | None = None) -> None:
    """`signalbox demo`'s second workspace: the shipped playbooks against planted effects."""
    with lazy_progress("playbooks against planted effects") as report:
        results = demo.seed_lift_if_empty(
            db, settings(), workspace_name, SystemClock(), progress=report, public_base_url=public_base_url
        )
    for r in results or []:
        interval = f"[{r.ci95[0]:+.3f}, {r.ci95[1]:+.3f}]" if r.ci95 else "[no holdout]"
        err.print(
            f"{workspace_name}: {r.planted.playbook}: planted lift {r.planted.lift:+.2f}, measured "
            f"{(r.lift or 0):+.3f} {interval} (95 %, {r.enrolled} enrolled, {r.held_out} held out)",
            soft_wrap=True,
        )


def _seed(db: Database, workspace_name: str, config: WorldConfig, ground_truth: Path | None) -> SeedResult:
    with lazy_progress("seeding") as report:
        return demo.seed(
            db, settings(), workspace_name, config, progress=report, ground_truth=ground_truth, clock=SystemClock()
        )


def register(group: typer.Typer) -> None:
    group.command("seed")(seed)
