"""The predictive churn model: train (time split, baselines, versioned), predict, list."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from signalbox.cli.common import JsonOpt, WorkspaceOpt, database, err, fail, handled, parse_day, print_json, workspace
from signalbox.core.clock import SystemClock
from signalbox.scoring import churn, predictions
from signalbox.scoring import service as scoring
from signalbox.scoring.service import Progress as ProgressFn

model_app = typer.Typer(help="The predictive churn model (calibrated probability).", no_args_is_help=True)


@contextmanager
def _progress() -> Iterator[ProgressFn]:
    """Long steps shown on stderr; stdout stays one JSON document."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err, transient=True
    ) as bar:
        task = bar.add_task("starting", total=1)

        def report(step: str, done: int, total: int) -> None:
            bar.update(task, description=step, completed=done, total=total)

        yield report


@model_app.command("train")
@handled
def model_train(
    workspace_name: str = WorkspaceOpt,
    as_of: str | None = typer.Option(
        None, "--as-of", help="Local date YYYY-MM-DD; nothing after it is read (default: today)."
    ),
    horizon_days: int = typer.Option(30, help="Churned = no activity in this many days after a cut (1-365)."),
    activity_event: list[str] = typer.Option(
        None, "--activity-event", help="Events that count as activity (default: the score's settings)."
    ),
    cut_every_days: int = typer.Option(churn.DEFAULT_CUT_EVERY_DAYS, help="Days between training cuts."),
    max_cuts: int = typer.Option(churn.DEFAULT_MAX_CUTS, help="At most this many training cuts (the newest)."),
    json: bool = JsonOpt,
) -> None:
    """Learn churn from this workspace's history (time split), compare with baselines, store a version.

    Example: signalbox model train -w northside --as-of 2026-03-01 --horizon-days 30 --json
    """
    db = database()
    ws = workspace(db, workspace_name)
    with _progress() as progress:
        _, report = scoring.train_churn_model(
            db,
            ws,
            parse_day(as_of),
            horizon_days,
            SystemClock(),
            activity_events=activity_event or None,
            cut_every_days=cut_every_days,
            max_cuts=max_cuts,
            progress=progress,
        )
    if json:
        print_json(report)
        return
    typer.echo(f"model {report['model_id']} as of {report['as_of']}, horizon {report['horizon_days']} days")
    train, held = report["train_window"], report["eval_window"]
    typer.echo(
        f"  trained on {train['examples']} examples ({train['positives']} churned), cuts {train['first_cut']}"
        f"..{train['last_cut']}; evaluated on {held['examples']} ({held['positives']} churned) from {held['cut']}"
    )
    rows: list[tuple[str, dict[str, Any]]] = [("model", report), *report["baselines"].items()]
    typer.echo(f"  {'':<13} {'AUC':>6} {'PR-AUC':>7} {'P@10%':>6} {'Brier':>6} {'worst gap':>9}")
    for name, m in rows:
        typer.echo(
            f"  {name:<13} {m['auc']:>6} {m['pr_auc']:>7} {m['precision_at_10pct']:>6} {m['brier']:>6} "
            f"{m['worst_decile_gap']:>9}"
        )
    typer.echo(f"  verdict: {report['verdict']}")
    inner = report["inner_split"]
    typer.echo(
        f"  candidates on the inner split (validation cut {inner['validation_cut']}, {inner['validation_examples']} "
        f"examples; never the held-out window):"
    )
    typer.echo(f"  {'':<13} {'AUC':>6} {'Brier':>6} {'worst gap':>9}")
    for name, m in inner["candidates"].items():
        mark = "  <- shipped" if name == report["shipped"]["candidate"] else ""
        typer.echo(f"  {name:<13} {m['auc']:>6} {m['brier']:>6} {m['worst_decile_gap']:>9}{mark}")
    shipped = report["shipped"]
    typer.echo(f"  shipped: {shipped['candidate']} ({shipped['description']}): {shipped['why']}")
    forward = report["model"]["forward_calibration"]
    if forward is None:
        typer.echo("  predictions use the model as judged: the latest known outcomes are too few to recalibrate on")
        return
    rates = ", ".join(f"{r['cut']} {r['churn_rate']}" for r in forward["churn_rate_by_cut"])
    how = (
        f"recalibrated on the cuts {forward['cuts'][0]}..{forward['cuts'][-1]} ({forward['examples']} examples, "
        "outcomes known by then)"
        if forward["cuts"]
        else "the textbook model's own probability, its parameters refitted on the history up to then"
    )
    typer.echo(f"  predictions as of {forward['from']} or later: {how}; churn rate by cut: {rates}")


@model_app.command("predict")
@handled
def model_predict(
    workspace_name: str = WorkspaceOpt,
    output: Path = typer.Option(..., "--output", "-o", help="CSV file to write."),
    as_of: str | None = typer.Option(None, "--as-of", help="Local date YYYY-MM-DD (default: today)."),
    model_id: str | None = typer.Option(None, "--model-id", help="Model version (default: the newest)."),
    json: bool = JsonOpt,
) -> None:
    """Churn probability of every customer, stored on profiles and written to a CSV, riskiest first.

    Example: signalbox model predict -w northside --output churn.csv --json
    """
    if model_id is not None and not model_id.strip().isdigit():
        fail(f"--model-id {model_id!r} is not a model number (see `signalbox model list`)")
    if not output.parent.is_dir():
        fail(f"--output {output}: folder {output.parent} does not exist")
    db = database()
    ws = workspace(db, workspace_name)
    with _progress() as progress:
        number = int(model_id) if model_id is not None else None
        run = scoring.predict_churn(db, ws, parse_day(as_of), number, SystemClock(), progress=progress)
    with output.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(predictions.PREDICTION_HEADER)
        writer.writerows(predictions.prediction_record(row) for row in run.rows)
    doc = {"model_id": run.model_id, "as_of": run.as_of.isoformat(), "profiles": len(run.rows), "output": str(output)}
    print_json(doc) if json else typer.echo(" ".join(f"{k}={v}" for k, v in doc.items()))


@model_app.command("list")
@handled
def model_list(workspace_name: str = WorkspaceOpt, json: bool = JsonOpt) -> None:
    """Stored churn model versions, newest first.  Example: signalbox model list -w northside --json"""
    db = database()
    docs = [
        {
            "model_id": m.id,
            "created_at": m.created_at.isoformat(),
            "as_of": m.as_of.isoformat(),
            "horizon_days": m.horizon_days,
            "activity_events": list(m.activity_events),
            "auc": m.report.get("auc"),
            "baselines_auc": {k: v.get("auc") for k, v in m.report.get("baselines", {}).items()},
            "beats_baselines": m.report.get("beats_baselines"),
            "verdict": m.report.get("verdict"),
        }
        for m in scoring.churn_models(db, workspace(db, workspace_name))
    ]
    if json:
        print_json(docs)
        return
    for d in docs:
        typer.echo(f"{d['model_id']}\t{d['as_of']}\t{d['horizon_days']}d\tauc={d['auc']}\t{d['verdict']}")


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
