"""Signal commands: traits, scores (compute, backtest, settings)."""

from __future__ import annotations

from typing import Any

import typer

from signalbox.cli.common import JsonOpt, WorkspaceOpt, database, err, handled, parse_day, print_json, workspace
from signalbox.core.clock import SystemClock
from signalbox.scoring import service as scoring
from signalbox.scoring.schemas import BAND_NAMES, BAND_POLICIES

traits_app = typer.Typer(help="Computed traits (windows over the event log).", no_args_is_help=True)
scores_app = typer.Typer(help="The transparent at-risk score.", no_args_is_help=True)

AsOfOpt = typer.Option(None, "--as-of", help="Local date YYYY-MM-DD (default: today in the workspace's zone).")
StaleOpt = typer.Option(
    False, "--stale", help="Only people the change log names since the previous run (full or stale) read it."
)


@traits_app.command("compute")
@handled
def traits_compute(
    workspace_name: str = WorkspaceOpt, as_of: str | None = AsOfOpt, stale: bool = StaleOpt, json: bool = JsonOpt
) -> None:
    """Recompute traits as of a local date (everyone's, or with --stale only people changed since
    the previous run) and store them on the profile.

    Example: signalbox traits compute -w northside --as-of 2026-03-01 --json
    Keep current as events arrive: signalbox traits compute -w northside --stale (e.g. each minute)
    """
    db = database()
    with err.status("computing traits"):
        day, count, seconds = scoring.compute_traits(
            db, workspace(db, workspace_name), parse_day(as_of), SystemClock(), only_stale=stale
        )
    doc = {"as_of": day.isoformat(), "profiles": count, "seconds": round(seconds, 2)}
    print_json(doc) if json else typer.echo(" ".join(f"{k}={v}" for k, v in doc.items()))


@scores_app.command("compute")
@handled
def scores_compute(
    workspace_name: str = WorkspaceOpt, as_of: str | None = AsOfOpt, stale: bool = StaleOpt, json: bool = JsonOpt
) -> None:
    """Score every customer 0-100 with five reasoned components; store it on the profile.

    Example: signalbox scores compute -w northside --json
    Keep current as events arrive: signalbox scores compute -w northside --stale (e.g. each minute)
    """
    db = database()
    with err.status("scoring profiles"):
        run = scoring.compute_scores(
            db, workspace(db, workspace_name), parse_day(as_of), SystemClock(), only_stale=stale
        )
    doc = {
        "as_of": run.as_of.isoformat(),
        "profiles": run.profiles,
        "unscored": run.unscored,
        "bands": run.bands,
        "seconds": round(run.seconds, 2),
    }
    if json:
        print_json(doc)
        return
    typer.echo(f"as of {doc['as_of']}: {run.profiles} customers scored ({run.unscored} profiles not customers)")
    for name in BAND_NAMES:
        typer.echo(f"  {name:<6} {run.bands[name]:>7}   next: {BAND_POLICIES[name].next_action}")


@scores_app.command("backtest")
@handled
def scores_backtest(
    workspace_name: str = WorkspaceOpt,
    as_of: str = typer.Option(..., "--as-of", help="Past local date to score as of."),
    horizon_days: int = typer.Option(30, min=1, max=365, help="Days after as-of to look for activity."),
    json: bool = JsonOpt,
) -> None:
    """Score as of a past date and measure precision and recall per band against what happened.

    Example: signalbox scores backtest -w northside --as-of 2026-01-31 --horizon-days 30 --json
    """
    db = database()
    day = parse_day(as_of)
    assert day is not None
    with err.status("backtesting"):
        report = scoring.backtest(db, workspace(db, workspace_name), day, horizon_days, SystemClock())
    bands: dict[str, Any] = {
        name: {
            "profiles": b.profiles,
            "churned": b.churned,
            "precision": _round(b.precision),
            "recall": _round(b.recall),
        }
        for name, b in report.bands.items()
    }
    doc = {
        "as_of": report.as_of.isoformat(),
        "horizon_days": report.horizon_days,
        "population": report.population,
        "churned": report.churned,
        "bands": bands,
    }
    if json:
        print_json(doc)
        return
    typer.echo(f"as of {doc['as_of']}, next {horizon_days} days: {report.churned} of {report.population} churned")
    for name, b in bands.items():
        typer.echo(
            f"  {name:<6} profiles={b['profiles']} churned={b['churned']} "
            f"precision={b['precision']} recall={b['recall']}"
        )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@scores_app.command("settings")
@handled
def scores_settings(
    workspace_name: str = WorkspaceOpt,
    recency_sensitivity: float | None = typer.Option(None, help="0.25-4; higher flags absence sooner."),
    payment_weight: float | None = typer.Option(None, help="0-2; multiplies payment-friction points."),
    engagement_decay_multiplier: float | None = typer.Option(None, help="0-3; multiplies engagement points."),
    medium_threshold: int | None = typer.Option(None, help="Lowest total in the Medium band."),
    high_threshold: int | None = typer.Option(None, help="Lowest total in the High band."),
    activity_event: list[str] = typer.Option(None, "--activity-event", help="Events that count as activity."),
    json: bool = JsonOpt,
) -> None:
    """Show the score's knobs, or change the ones given.

    Example: signalbox scores settings -w northside --payment-weight 1.5 --json
    """
    db = database()
    ws = workspace(db, workspace_name)
    changes: dict[str, Any] = {
        "recency_sensitivity": recency_sensitivity,
        "payment_weight": payment_weight,
        "engagement_decay_multiplier": engagement_decay_multiplier,
        "medium_threshold": medium_threshold,
        "high_threshold": high_threshold,
        "activity_events": tuple(activity_event) if activity_event else None,
    }
    knobs = scoring.set_knobs(db, ws, changes) if any(v is not None for v in changes.values()) else None
    doc = (knobs or scoring.get_knobs(db, ws)).model_dump(mode="json")
    if json:
        print_json(doc)
    else:
        for key, value in doc.items():
            typer.echo(f"{key}: {value}")


def register(app: typer.Typer) -> None:
    app.add_typer(traits_app, name="traits")
    app.add_typer(scores_app, name="scores")
