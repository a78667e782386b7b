"""Data commands: import, profile, events, dlq, identity."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from signalbox import documents
from signalbox.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    database,
    handled,
    lazy_progress,
    parse_when,
    print_json,
    settings,
    workspace,
)
from signalbox.connectors import service as connectors
from signalbox.core.clock import SystemClock
from signalbox.core.errors import InvalidInputError
from signalbox.identity import service as identity
from signalbox.ingestion import importers
from signalbox.ingestion import service as ingestion
from signalbox.ingestion.service import Pipeline
from signalbox.scoring.schemas import BAND_NAMES

import_app = typer.Typer(help="Import files through the ingestion pipeline.", no_args_is_help=True)
profile_app = typer.Typer(help="Read profiles.", no_args_is_help=True)
events_app = typer.Typer(help="Read stored events.", no_args_is_help=True)
dlq_app = typer.Typer(help="The dead-letter queue: messages that did not land.", no_args_is_help=True)
identity_app = typer.Typer(help="Merge log, merge reviews, unmerge.", no_args_is_help=True)

UserIdOpt = typer.Option(..., "--user-id", "-u", help="The business's customer id.")
RejectsOpt = typer.Option(None, "--rejects", help="Reject file (default: PATH.rejects.jsonl).")


def _report(result: importers.ImportResult, json: bool) -> None:
    doc = {
        "lines": result.lines,
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
        "dead_lettered": result.dead_lettered,
        "skipped": result.skipped,
        "reject_file": result.reject_file,
    }
    if json:
        print_json(doc)
    else:
        typer.echo(" ".join(f"{k}={v}" for k, v in doc.items() if v is not None))


@contextmanager
def _import_progress(total: int) -> Iterator[Callable[[int], None]]:
    with lazy_progress("importing") as report:
        done = 0

        def advance(lines: int) -> None:
            nonlocal done
            done += lines
            report(done, total)

        yield advance


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise typer.BadParameter(f"{path} is not a readable file", param_hint="PATH")


@import_app.command("events")
@handled
def import_events(
    path: Path = typer.Argument(..., help="JSON Lines file, one Segment message per line."),
    workspace_name: str = WorkspaceOpt,
    rejects: Path | None = RejectsOpt,
    json: bool = JsonOpt,
) -> None:
    """Import Segment messages; re-running stores nothing twice.

    Example: signalbox import events events.jsonl --workspace northside
    """
    _check_file(path)
    db = database()
    ws = workspace(db, workspace_name)
    pipeline = Pipeline(db, settings(), SystemClock())
    with _import_progress(importers.count_lines(path)) as advance:
        result = importers.import_events(pipeline, ws, path, reject_path=rejects, progress=advance)
    _report(result, json)


@import_app.command("transactions")
@handled
def import_transactions(
    path: Path = typer.Argument(..., help="CSV export from a POS or billing system."),
    workspace_name: str = WorkspaceOpt,
    file_format: str = typer.Option(
        "columns",
        "--format",
        help="columns (name them with the options below) or stripe-invoices (a Stripe invoice export).",
    ),
    customer_column: str | None = typer.Option(None, help="Column holding the customer id (becomes userId)."),
    timestamp_column: str | None = typer.Option(None, help="Column holding the purchase time."),
    amount_column: str | None = typer.Option(None, help="Column holding the amount."),
    timestamp_format: str | None = typer.Option(
        None, help="strptime format, e.g. '%m/%d/%Y %H:%M'; default ISO 8601. No offset: workspace time zone."
    ),
    event: str = typer.Option("purchase", help="Event name for each row."),
    rejects: Path | None = RejectsOpt,
    json: bool = JsonOpt,
) -> None:
    """Import purchases from a CSV; other columns become event properties. With --format
    stripe-invoices, a Stripe invoice export becomes payment_succeeded / payment_failed history
    on the customers it names (by Stripe customer id, else e-mail).

    Example: signalbox import transactions sales.csv -w northside --customer-column member
    --timestamp-column sold_at --amount-column total
    Example: signalbox import transactions invoices.csv -w northside --format stripe-invoices
    """
    _check_file(path)
    if file_format not in ("columns", "stripe-invoices"):
        raise InvalidInputError(f"--format {file_format!r} is not one of columns, stripe-invoices")
    db = database()
    ws = workspace(db, workspace_name)
    if file_format == "stripe-invoices":
        named = [
            n
            for n, v in (
                ("--customer-column", customer_column),
                ("--timestamp-column", timestamp_column),
                ("--amount-column", amount_column),
            )
            if v
        ]
        if named:
            raise InvalidInputError(f"{', '.join(named)}: a Stripe invoice export names its own columns")
        pipeline = Pipeline(db, settings(), SystemClock())
        with _import_progress(max(importers.count_lines(path) - 1, 0)) as advance:
            result = connectors.import_invoices(db, pipeline, ws, path, reject_path=rejects, progress=advance)
        _report(result, json)
        return
    lacking = [
        n
        for n, v in (
            ("--customer-column", customer_column),
            ("--timestamp-column", timestamp_column),
            ("--amount-column", amount_column),
        )
        if not v
    ]
    if lacking or customer_column is None or timestamp_column is None or amount_column is None:
        raise InvalidInputError(f"{', '.join(lacking)}: name the columns, or use --format stripe-invoices")
    columns = importers.TransactionColumns(
        customer_column, timestamp_column, amount_column, timestamp_format, event.strip() or "purchase"
    )
    pipeline = Pipeline(db, settings(), SystemClock())
    with _import_progress(max(importers.count_lines(path) - 1, 0)) as advance:
        result = importers.import_transactions(pipeline, ws, path, columns, reject_path=rejects, progress=advance)
    _report(result, json)


@profile_app.command("show")
@handled
def profile_show(user_id: str = UserIdOpt, workspace_name: str = WorkspaceOpt, json: bool = JsonOpt) -> None:
    """One person: traits, identifiers, consent, first/last seen, event counts.

    Example: signalbox profile show -w northside -u member-1042 --json
    """
    db = database()
    doc = documents.profile_doc(identity.profile_document(db, workspace(db, workspace_name).id, user_id))
    if json:
        print_json(doc)
        return
    for key, value in doc.items():
        typer.echo(f"{key}: {value}")


@profile_app.command("list")
@handled
def profile_list(
    workspace_name: str = WorkspaceOpt,
    limit: int = typer.Option(50, min=1, max=100_000),
    band: str | None = typer.Option(None, help="Only this at-risk band (Low, Medium, High), highest score first."),
    json: bool = JsonOpt,
) -> None:
    """Profiles, newest activity first, or one band's call list.

    Example: signalbox profile list -w northside --band High --limit 20 --json
    """
    if band is not None and band not in BAND_NAMES:
        raise typer.BadParameter(f"use one of {', '.join(BAND_NAMES)}", param_hint="--band")
    db = database()
    ws_id = workspace(db, workspace_name).id
    found = (
        identity.list_band_documents(db, ws_id, band, limit=limit)
        if band
        else identity.list_profile_documents(db, ws_id, limit=limit)
    )
    docs = [documents.profile_doc(p) for p in found]
    if json:
        print_json(docs)
        return
    for d in docs:
        score = f"{d['at_risk_band']} {d['at_risk_score']}" if d["at_risk_band"] else "-"
        typer.echo(f"{d['user_id'] or '-'}\t{score}\t{d['last_seen']}\t{d['event_counts'].get('total', 0)} events")


@events_app.command("list")
@handled
def events_list(
    user_id: str = UserIdOpt,
    workspace_name: str = WorkspaceOpt,
    limit: int = typer.Option(10_000, min=1, max=1_000_000),
    since: str | None = typer.Option(None, help="ISO 8601 with offset."),
    until: str | None = typer.Option(None, help="ISO 8601 with offset."),
    json: bool = JsonOpt,
) -> None:
    """Every stored message of a person, including those sent before they identified.

    Example: signalbox events list -w northside -u member-1042 --json
    """
    db = database()
    found = identity.profile_events(
        db,
        workspace(db, workspace_name).id,
        user_id,
        since=parse_when(since, "--since"),
        until=parse_when(until, "--until"),
        limit=limit,
    )
    docs = [documents.event_doc(e) for e in found]
    if json:
        print_json(docs)
        return
    for d in docs:
        typer.echo(f"{d['timestamp']}\t{d['type']}\t{d['event'] or ''}\t{d['message_id']}")


@dlq_app.command("list")
@handled
def dlq_list(
    workspace_name: str = WorkspaceOpt,
    status: str = typer.Option("pending", help="pending, replayed or all."),
    kind: str | None = typer.Option(None, help="rejected (bad input) or failed (our side)."),
    limit: int = typer.Option(100, min=1, max=100_000),
    json: bool = JsonOpt,
) -> None:
    """Messages that did not land, with the step and reason.  Example: signalbox dlq list -w northside"""
    if status not in ("pending", "replayed", "all"):
        raise typer.BadParameter("use pending, replayed or all", param_hint="--status")
    if kind not in (None, "rejected", "failed"):
        raise typer.BadParameter("use rejected or failed", param_hint="--kind")
    db = database()
    found = ingestion.list_dead_letters(
        db, workspace(db, workspace_name).id, status=None if status == "all" else status, kind=kind, limit=limit
    )
    docs = [documents.dead_letter_doc(d) for d in found]
    if json:
        print_json(docs)
        return
    for d in docs:
        typer.echo(f"{d['id']}\t{d['kind']}\t{d['step']}\t{d['status']}\t{d['reason']}")


@dlq_app.command("replay")
@handled
def dlq_replay(
    workspace_name: str = WorkspaceOpt,
    ids: list[int] = typer.Option(None, "--id", help="Replay only these ids (repeatable)."),
    kind: str | None = typer.Option(None, help="Only rejected or only failed."),
    json: bool = JsonOpt,
) -> None:
    """Run pending dead letters through the pipeline again.  Example: signalbox dlq replay -w northside"""
    db = database()
    ws = workspace(db, workspace_name)
    result = ingestion.replay_dead_letters(Pipeline(db, settings(), SystemClock()), ws, ids=ids or None, kind=kind)
    doc = {
        "replayed": result.replayed,
        "still_failing": result.still_failing,
        "items": [documents.dead_letter_doc(d) for d in result.items],
    }
    if json:
        print_json(doc)
    else:
        typer.echo(f"replayed={result.replayed} still_failing={result.still_failing}")


@identity_app.command("reviews")
@handled
def identity_reviews(
    workspace_name: str = WorkspaceOpt,
    status: str = typer.Option("pending", help="pending, accepted, rejected or all."),
    json: bool = JsonOpt,
) -> None:
    """Pairs that look like one person but need a human.  Example: signalbox identity reviews -w northside"""
    db = database()
    found = identity.reviews(db, workspace(db, workspace_name).id, status=None if status == "all" else status)
    docs = [documents.review_doc(r) for r in found]
    if json:
        print_json(docs)
        return
    for d in docs:
        typer.echo(f"{d['id']}\t{d['status']}\t{d['user_id_a']} <-> {d['user_id_b']}\t{d['reason']}")


def _decide(workspace_name: str, review_id: int, accept: bool, json: bool) -> None:
    db = database()
    found = identity.decide_review(db, workspace(db, workspace_name).id, review_id, accept, SystemClock().now())
    if json:
        print_json(documents.review_doc(found))
    else:
        typer.echo(f"review {found.id}: {found.status}")


@identity_app.command("accept")
@handled
def identity_accept(
    review_id: int = typer.Argument(...), workspace_name: str = WorkspaceOpt, json: bool = JsonOpt
) -> None:
    """Merge the pair of a review.  Example: signalbox identity accept 12 -w northside"""
    _decide(workspace_name, review_id, True, json)


@identity_app.command("reject")
@handled
def identity_reject(
    review_id: int = typer.Argument(...), workspace_name: str = WorkspaceOpt, json: bool = JsonOpt
) -> None:
    """Keep the pair apart for good.  Example: signalbox identity reject 12 -w northside"""
    _decide(workspace_name, review_id, False, json)


@identity_app.command("merges")
@handled
def identity_merges(
    workspace_name: str = WorkspaceOpt, limit: int = typer.Option(100, min=1), json: bool = JsonOpt
) -> None:
    """The append-only merge log, newest first.  Example: signalbox identity merges -w northside"""
    db = database()
    docs = [documents.merge_doc(m) for m in identity.merge_log(db, workspace(db, workspace_name).id, limit)]
    if json:
        print_json(docs)
        return
    for d in docs:
        typer.echo(f"{d['id']}\t{d['action']}\t{d['source_profile_id']} -> {d['target_profile_id']}\t{d['reason']}")


@identity_app.command("unmerge")
@handled
def identity_unmerge(
    merge_id: int = typer.Argument(..., help="Id of a merge in `signalbox identity merges`."),
    workspace_name: str = WorkspaceOpt,
    json: bool = JsonOpt,
) -> None:
    """Undo one merge; the pair is never merged automatically again.

    Example: signalbox identity unmerge 7 -w northside
    """
    db = database()
    entry = identity.unmerge(db, workspace(db, workspace_name).id, merge_id, SystemClock().now())
    if json:
        print_json(documents.merge_doc(entry))
    else:
        typer.echo(f"merge {merge_id} undone (log entry {entry.id})")


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
    app.add_typer(profile_app, name="profile")
    app.add_typer(events_app, name="events")
    app.add_typer(dlq_app, name="dlq")
    app.add_typer(identity_app, name="identity")
