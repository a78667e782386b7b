"""Compute traits and the at-risk score for a workspace, store them on profiles, backtest them."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from signalbox.changes import service as changes
from signalbox.changes.schemas import PROFILE_KINDS, Window
from signalbox.core import collector
from signalbox.core.clock import Clock
from signalbox.core.db import Database
from signalbox.core.errors import InvalidInputError
from signalbox.profiles import service as profiles
from signalbox.profiles import traits
from signalbox.profiles.traits import TraitDef, TraitTable
from signalbox.scoring import churn, features, model_store, predictions
from signalbox.scoring import score as scoring
from signalbox.scoring.schemas import (
    BAND_NAMES,
    BacktestReport,
    BandOutcome,
    ScoreRun,
    ScoringKnobs,
)
from signalbox.workspaces import service as workspaces
from signalbox.workspaces.schemas import WorkspaceInfo

SETTINGS_KEY = "scoring"
ACTIVE_WITHIN_DAYS = churn.POPULATION_DAYS  # the backtest's population: people seen in the 90 days before as-of
_STORE_CHUNK = 50_000
# Change-log consumers: each command keeps its own position.
TRAITS_CONSUMER = "traits"
SCORES_CONSUMER = "scores"


def get_knobs(db: Database, workspace: WorkspaceInfo) -> ScoringKnobs:
    return ScoringKnobs.model_validate(workspaces.get_setting(db, workspace.id, SETTINGS_KEY))


def set_knobs(db: Database, workspace: WorkspaceInfo, changes: dict[str, Any]) -> ScoringKnobs:
    current = get_knobs(db, workspace).model_dump()
    try:
        knobs = ScoringKnobs.model_validate({**current, **{k: v for k, v in changes.items() if v is not None}})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise InvalidInputError(f"{where}: {first['msg']}") from None
    workspaces.put_setting(db, workspace.id, SETTINGS_KEY, knobs.model_dump(mode="json"))
    return knobs


def resolve_as_of(workspace: WorkspaceInfo, as_of: date | None, clock: Clock) -> date:
    """The as-of date: given, or today in the workspace's time zone. Never in the future."""
    today = clock.now().astimezone(ZoneInfo(workspace.timezone)).date()
    if as_of is None:
        return today
    if as_of > today:
        raise InvalidInputError(f"--as-of {as_of.isoformat()} is in the future (today is {today.isoformat()})")
    return as_of


def trait_table(db: Database, workspace: WorkspaceInfo, as_of: date, knobs: ScoringKnobs) -> TraitTable:
    """Traits of every profile."""
    with db.session() as session:
        return traits.compute(
            session, workspace.id, workspace.timezone, as_of, traits.default_traits(knobs.activity_events)
        )


def _pending_table(
    db: Database, workspace: WorkspaceInfo, as_of: date, knobs: ScoringKnobs, consumer: str, only_stale: bool
) -> tuple[TraitTable, Window]:
    """Traits of everyone, or (`only_stale`) of the people the change log names since
    `consumer` last read it, and the window read. A consumer whose unread changes were
    trimmed away gets everyone: a full pass is the only way not to miss anybody."""
    defs = traits.default_traits(knobs.activity_events)
    with db.session() as session:
        win = changes.window(session, workspace.id, consumer)
        roots: list[str] | None = None
        if only_stale and win.complete:
            named = changes.profiles_in(session, workspace.id, win, PROFILE_KINDS)
            roots = profiles.current_roots(session, workspace.id, named)
        return traits.compute(session, workspace.id, workspace.timezone, as_of, defs, roots), win


def _advance(db: Database, workspace: WorkspaceInfo, win: Window, clock: Clock) -> None:
    # Only once every result is stored: a crash before this line reads the same changes again.
    with db.transaction() as session:
        changes.advance(session, workspace.id, win.consumer, win.upto, clock.now())


def score_inputs(table: TraitTable) -> scoring.ScoreInputs:
    v = table.values
    return scoring.ScoreInputs(
        days_since_activity=table.days_since("last_activity_at"),
        activity_30d=v["activity_30d"],
        activity_prior_90d=v["activity_prior_90d"],
        payment_failures_30d=v["payment_failures_30d"],
        last_payment_failed_at=v["last_payment_failed_at"],
        last_payment_succeeded_at=v["last_payment_succeeded_at"],
        messages_sent_30d=v["messages_sent_30d"],
        messages_engaged_30d=v["messages_engaged_30d"],
        messages_sent_prior_30d=v["messages_sent_prior_30d"],
        messages_engaged_prior_30d=v["messages_engaged_prior_30d"],
        min_nps_90d=v["min_nps_90d"],
        escalated_tickets_90d=v["escalated_tickets_90d"],
        negative_reviews_90d=v["negative_reviews_90d"],
    )


def scorable(table: TraitTable) -> NDArray[np.bool_]:
    """Customers: they showed up at least once and have not cancelled since."""
    last, cancelled = table.values["last_activity_at"], table.values["cancelled_at"]
    with np.errstate(invalid="ignore"):
        return np.asarray(~np.isnan(last) & ~(cancelled >= last), dtype=np.bool_)


def compute_traits(
    db: Database, workspace: WorkspaceInfo, as_of: date | None, clock: Clock, *, only_stale: bool = False
) -> tuple[date, int, float]:
    """Recompute traits (everyone's, or only of people changed since the last run) and store
    them. Returns (as_of, profiles, seconds)."""
    started = time.perf_counter()
    day = resolve_as_of(workspace, as_of, clock)
    table, win = _pending_table(db, workspace, day, get_knobs(db, workspace), TRAITS_CONSUMER, only_stale)
    now = clock.now()
    columns: dict[str, list[Any]] = {"computed_traits": table.documents(), "traits_computed_at": [now] * len(table)}
    _store(db, workspace, table.profile_ids, columns, now)
    _advance(db, workspace, win, clock)
    return day, len(table), time.perf_counter() - started


# A run holds a row per profile (traits, components, documents) until it is stored: the
# collector paced for bulk work took 14 % off `compute_scores` and 18 % off `predict_churn`
# for 200,000 profiles (bench/scoring.py, docs/BENCHMARKS.md).
@collector.bulk_work()
def compute_scores(
    db: Database, workspace: WorkspaceInfo, as_of: date | None, clock: Clock, *, only_stale: bool = False
) -> ScoreRun:
    """Traits, components and bands for every profile, stored on the profile. Former
    customers (cancelled, never active) keep their traits and lose any stale score.

    `only_stale` refreshes just the people the change log names since the previous run (full
    or stale) read it: running this often (a minute's cron, later the worker) keeps scores
    current as events arrive at a fraction of the cost."""
    started = time.perf_counter()
    day = resolve_as_of(workspace, as_of, clock)
    knobs = get_knobs(db, workspace)
    table, win = _pending_table(db, workspace, day, knobs, SCORES_CONSUMER, only_stale)
    x = score_inputs(table)
    s = scoring.score(x, knobs)
    ok = scorable(table)
    now = clock.now()
    scored = np.flatnonzero(ok)
    columns: dict[str, list[Any]] = {"computed_traits": table.documents(), "traits_computed_at": [now] * len(table)}
    # Former customers get None in every score column: a stale score must not outlive them.
    for name, values in (
        ("at_risk_score", s.total[scored].tolist()),
        ("at_risk_band", [BAND_NAMES[b] for b in s.band[scored].tolist()]),
        ("at_risk_components", scoring.documents(x, s, scored)),
        ("score_as_of", [day] * len(scored)),
        ("scored_at", [now] * len(scored)),
    ):
        columns[name] = _spread(len(table), scored, values)
    _store(db, workspace, table.profile_ids, columns, now)
    _advance(db, workspace, win, clock)
    counts = np.bincount(s.band[scored], minlength=len(BAND_NAMES)).tolist()
    bands = {name: int(counts[k]) for k, name in enumerate(BAND_NAMES)}
    return ScoreRun(day, len(scored), bands, len(table) - len(scored), time.perf_counter() - started)


def _spread(n: int, rows: NDArray[np.int64], values: list[Any]) -> list[Any]:
    """A column of `n` values: `values` at `rows`, None everywhere else."""
    column = np.full(n, None, dtype=object)
    column[rows] = values
    return list(column.tolist())


def _store(
    db: Database, workspace: WorkspaceInfo, pids: Sequence[str], columns: dict[str, list[Any]], now: datetime
) -> None:
    # A transaction per chunk: SQLite's one writer lock is held a second or so at a time, so
    # ingestion keeps flowing while a million profiles are stored.
    for start in range(0, len(pids), _STORE_CHUNK):
        end = start + _STORE_CHUNK
        with db.transaction() as session:
            chunk = {name: values[start:end] for name, values in columns.items()}
            profiles.store_signal_columns(session, workspace.id, pids[start:end], chunk, now)


def backtest(db: Database, workspace: WorkspaceInfo, as_of: date, horizon_days: int, clock: Clock) -> BacktestReport:
    """Score as of a past date, then look at what happened next: a person 'churned' when no
    activity event came in the following `horizon_days` local days. The population is the
    customers active in the 90 days before `as_of`."""
    if horizon_days < 1:
        raise InvalidInputError("--horizon-days must be at least 1")
    day = resolve_as_of(workspace, as_of, clock)
    end = day + timedelta(days=horizon_days)
    if end > resolve_as_of(workspace, None, clock):
        raise InvalidInputError(
            f"--as-of {day.isoformat()} plus {horizon_days} days reaches past today: nothing to compare with yet"
        )
    knobs = get_knobs(db, workspace)
    table = trait_table(db, workspace, day, knobs)
    x = score_inputs(table)
    s = scoring.score(x, knobs)
    with np.errstate(invalid="ignore"):
        population = scorable(table) & (x.days_since_activity <= ACTIVE_WITHIN_DAYS)
    churned = churned_after(db, workspace, table, end, horizon_days, knobs)
    total_churned = int((churned & population).sum())
    bands: dict[str, BandOutcome] = {}
    for code, name in enumerate(BAND_NAMES):
        members = population & (s.band == code)
        n, hits = int(members.sum()), int((members & churned).sum())
        bands[name] = BandOutcome(n, hits, hits / n if n else None, hits / total_churned if total_churned else None)
    return BacktestReport(day, horizon_days, int(population.sum()), total_churned, bands)


def churned_after(
    db: Database, workspace: WorkspaceInfo, table: TraitTable, end: date, horizon_days: int, knobs: ScoringKnobs
) -> NDArray[np.bool_]:
    """For each profile of `table`: no activity in the `horizon_days` local days up to `end`."""
    window = TraitDef("activity_next", "count", tuple(knobs.activity_events), horizon_days)
    with db.session() as session:
        future = traits.compute(session, workspace.id, workspace.timezone, end, [window])
    seen = dict(zip(future.profile_ids, future.values["activity_next"], strict=True))
    return np.array([seen.get(pid, 0.0) == 0 for pid in table.profile_ids], dtype=np.bool_)


# --------------------------------------------------------------------------- churn model

Progress = Callable[[str, int, int], None]  # (step, done, total)


def _no_progress(step: str, done: int, total: int) -> None:
    return None


def _knobs_for(knobs: ScoringKnobs, activity_events: Sequence[str] | None) -> ScoringKnobs:
    if not activity_events:
        return knobs
    try:
        return ScoringKnobs.model_validate({**knobs.model_dump(), "activity_events": tuple(activity_events)})
    except ValidationError as exc:
        raise InvalidInputError(f"--activity-event: {exc.errors()[0]['msg']}") from None


def _snapshot(db: Database, workspace: WorkspaceInfo, day: date, knobs: ScoringKnobs) -> features.Snapshot:
    table = trait_table(db, workspace, day, knobs)
    x = score_inputs(table)
    return features.Snapshot(table, x, scoring.score(x, knobs))


def _population(snap: features.Snapshot) -> NDArray[np.bool_]:
    """The backtest's population: customers active in the 90 days before the cut."""
    with np.errstate(invalid="ignore"):
        return scorable(snap.table) & (snap.inputs.days_since_activity <= ACTIVE_WITHIN_DAYS)


def _history_start(snap: features.Snapshot) -> date | None:
    days = snap.table.days_since("first_activity_at")
    return None if np.isnan(days).all() else snap.table.as_of - timedelta(days=int(np.nanmax(days)))


def _labelled(
    db: Database, workspace: WorkspaceInfo, snap: features.Snapshot, split: churn.TimeSplit, knobs: ScoringKnobs
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(population mask, churned) at one cut: labels from the `horizon` days after it."""
    horizon = split.horizon_days
    end = snap.table.as_of + timedelta(days=horizon)
    assert end <= split.end, "labels never reach past the as-of date"
    return _population(snap), churned_after(db, workspace, snap.table, end, horizon, knobs)


Labelled = tuple[features.Snapshot, NDArray[np.bool_], NDArray[np.bool_]]


def _training_snapshots(
    db: Database,
    workspace: WorkspaceInfo,
    split: churn.TimeSplit,
    knobs: ScoringKnobs,
    progress: Progress,
    steps: int,
) -> list[Labelled]:
    """(snapshot, population, churned) of every training cut; nothing read after the held-out
    window's cut (each cut's labels end by then)."""
    snaps: list[Labelled] = []
    for k, cut in enumerate(split.train_cuts):
        progress(f"training cut {cut.isoformat()}", k, steps)
        snap = _snapshot(db, workspace, cut, knobs)
        snaps.append((snap, *_labelled(db, workspace, snap, split, knobs)))
    return snaps


def _base_models(snap: features.Snapshot) -> features.BaseModels:
    try:
        return features.fit_base_models(snap)
    except ValueError as exc:
        raise InvalidInputError(
            f"too little history to fit BG/NBD and Pareto/NBD at {snap.table.as_of}: {exc}"
        ) from None


@dataclass(frozen=True)
class DormantCuts:
    """The labelled cuts whose dormant calibrate the probability the shipped model gives the
    dormant, and the horizon their labels (and Pareto/NBD's probability) are for."""

    snaps: Sequence[Labelled]
    horizon_days: int


def fit_churn_model(
    split: churn.TimeSplit,
    held_out: features.Snapshot,
    snaps: Sequence[Labelled],
    dormant_cuts: DormantCuts | None = None,
) -> tuple[churn.FittedChurnModel, churn.Examples]:
    """The shipped model and its training examples, from the training cuts and the history up to
    the held-out cut (never its outcomes). The inner split's customer-base models are fitted at
    the validation cut, the shipped model's at the held-out cut: the latest history the
    features may see, the same history a textbook model fitted that day would have.
    `dormant_cuts` default to the latest CALIBRATION_CUTS training cuts."""
    horizon = split.horizon_days
    inner_base = _base_models(snaps[-1][0])
    base = _base_models(held_out)

    def stack(params: features.BaseModels) -> churn.Examples:
        return churn.Examples.stack(
            [(features.matrix(s, params, horizon)[pop], churned[pop]) for s, pop, churned in snaps]
        )

    # The customers silent for longer than the population window, whose outcomes calibrate the
    # probability the shipped model gives the dormant (only the latest cuts are read).
    cuts = dormant_cuts or DormantCuts(snaps[-churn.CALIBRATION_CUTS :], horizon)
    dormant = churn.Examples.stack(
        [
            (features.matrix(s, base, cuts.horizon_days)[quiet], churned[quiet])
            for s, quiet, churned in map(_dormant, cuts.snaps)
        ]
    )
    train = stack(base)
    model = churn.train(train, split, inner_base, stack(inner_base), base, dormant, cuts.horizon_days)
    return model, train


def _dormant(labelled: Labelled) -> Labelled:
    snap, _, churned = labelled
    with np.errstate(invalid="ignore"):
        quiet = scorable(snap.table) & (snap.inputs.days_since_activity > ACTIVE_WITHIN_DAYS)
    return snap, quiet, churned


def _enough_dormant(snaps: Sequence[Labelled]) -> bool:
    """At least churn.MIN_DORMANT_CLASS dormant of each outcome, as fit_dormant_calibrator needs."""
    churned = stayed = 0
    for _, quiet, gone in map(_dormant, snaps):
        churned += int((quiet & gone).sum())
        stayed += int((quiet & ~gone).sum())
    return min(churned, stayed) >= churn.MIN_DORMANT_CLASS


def _dormant_cuts(
    db: Database,
    workspace: WorkspaceInfo,
    split: churn.TimeSplit,
    knobs: ScoringKnobs,
    snaps: Sequence[Labelled],
    history_start: date | None,
    cut_every_days: int,
) -> DormantCuts:
    """The cuts the dormant are calibrated on: the latest CALIBRATION_CUTS training cuts, or,
    when those hold too few dormant, the latest cuts whose outcomes over half the horizon are
    known by the held-out cut.

    A young customer base has few dormant at the training cuts, which end a whole horizon
    before the held-out cut (CDNOW, 180 days as of 1997-09-30: the last training cut,
    1997-04-03, had 306 customers silent for over 90 days; the held-out cut 19,343). Half the
    horizon brings the cuts half a horizon closer, where the history up to the held-out cut
    already holds their outcomes. The calibrator learnt there (Pareto/NBD's logit and the days
    of silence, for half the horizon) is then applied to Pareto/NBD's probability for the
    whole horizon: that assumes its error in log-odds is about the same at both horizons. On
    CDNOW 1997-12-31 + 180 days, where both are possible, the worst decile gap over all
    customers was 0.070 calibrated at 90 days against 0.065 at 180 (docs/BENCHMARKS.md)."""
    recent = snaps[-churn.CALIBRATION_CUTS :]
    horizon = split.horizon_days
    shorter = horizon // 2
    if _enough_dormant(recent) or shorter < 1 or history_start is None:
        return DormantCuts(recent, horizon)
    earliest = history_start + timedelta(days=churn.WARMUP_DAYS)
    cuts = [split.eval_cut - timedelta(days=shorter + k * cut_every_days) for k in range(churn.CALIBRATION_CUTS)]
    labelled: list[Labelled] = []
    for cut in reversed([c for c in cuts if c >= earliest]):
        snap = _snapshot(db, workspace, cut, knobs)
        end = cut + timedelta(days=shorter)
        assert end <= split.eval_cut, "the dormant's labels end by the held-out cut"
        churned = churned_after(db, workspace, snap.table, end, shorter, knobs)
        labelled.append((snap, _population(snap), churned))
    return DormantCuts(labelled, shorter) if _enough_dormant(labelled) else DormantCuts(recent, horizon)


def _forward(
    db: Database,
    workspace: WorkspaceInfo,
    split: churn.TimeSplit,
    knobs: ScoringKnobs,
    held_out: Labelled,
    model: churn.FittedChurnModel,
    cut_every_days: int,
) -> churn.Forward | None:
    """The calibration predictions as of the as-of date use (`churn.Forward`): fitted on the
    latest CALIBRATION_CUTS cuts whose outcomes are known by the as-of date (the held-out cut
    and those before it, `cut_every_days` apart), with the customer-base models fitted on every
    history up to the as-of date. Run after the held-out window has judged the model."""
    horizon = split.horizon_days
    start = _history_start(held_out[0])
    if start is None:
        return None
    earliest = start + timedelta(days=churn.WARMUP_DAYS)
    steps = (split.eval_cut - timedelta(days=k * cut_every_days) for k in range(churn.CALIBRATION_CUTS))
    cuts = sorted(cut for cut in steps if cut >= earliest)
    try:
        base = _base_models(_snapshot(db, workspace, split.end, knobs))
    except InvalidInputError:
        return None  # the model as judged: it has been evaluated, and it stands

    def at(cut: date) -> Labelled:
        if cut == split.eval_cut:
            return held_out  # read already, to judge the model
        snap = _snapshot(db, workspace, cut, knobs)
        return (snap, *_labelled(db, workspace, snap, split, knobs))

    labelled = [at(cut) for cut in cuts]
    matrices = [features.matrix(snap, base, horizon) for snap, _, _ in labelled]

    def rows(pick: Callable[[Labelled], Labelled]) -> churn.Examples:
        picked = (pick(one)[1:] for one in labelled)
        return churn.Examples.stack([(X[mask], gone[mask]) for X, (mask, gone) in zip(matrices, picked, strict=True)])

    return churn.fit_forward(model, rows(lambda one: one), cuts, rows(_dormant), split.end, base)


@dataclass(frozen=True)
class ShippedFit:
    """The model a training run ships and what it was fitted from; all read as of dates up to
    the held-out cut, so the held-out window's events cannot have shaped it."""

    model: churn.FittedChurnModel
    split: churn.TimeSplit
    knobs: ScoringKnobs
    held_out: features.Snapshot  # the world as of the held-out cut: its features, not its outcomes
    train: churn.Examples


def fit_shipped_model(
    db: Database,
    workspace: WorkspaceInfo,
    day: date,
    horizon_days: int,
    *,
    activity_events: Sequence[str] | None = None,
    cut_every_days: int = churn.DEFAULT_CUT_EVERY_DAYS,
    max_cuts: int = churn.DEFAULT_MAX_CUTS,
    progress: Progress = _no_progress,
) -> ShippedFit:
    """The time split for as-of `day` and the model it ships (candidates chosen on the inner
    split), reading nothing after ``day - horizon_days``: the leakage probe's entry point."""
    churn.check_options(horizon_days, cut_every_days, max_cuts)
    knobs = _knobs_for(get_knobs(db, workspace), activity_events)
    eval_cut = day - timedelta(days=horizon_days)
    progress("reading the evaluation window", 0, 1)
    held_out = _snapshot(db, workspace, eval_cut, knobs)
    split = churn.time_split(
        day,
        horizon_days,
        _history_start(held_out),
        cut_every_days=cut_every_days,
        max_cuts=max_cuts,
        activity_events=knobs.activity_events,
    )
    steps = len(split.train_cuts) + 2
    snaps = _training_snapshots(db, workspace, split, knobs, progress, steps)
    dormant_cuts = _dormant_cuts(db, workspace, split, knobs, snaps, _history_start(held_out), cut_every_days)
    progress("fitting the customer-base models and the candidates", len(split.train_cuts), steps)
    model, train = fit_churn_model(split, held_out, snaps, dormant_cuts)
    return ShippedFit(model, split, knobs, held_out, train)


def train_churn_model(
    db: Database,
    workspace: WorkspaceInfo,
    as_of: date | None,
    horizon_days: int,
    clock: Clock,
    *,
    activity_events: Sequence[str] | None = None,
    cut_every_days: int = churn.DEFAULT_CUT_EVERY_DAYS,
    max_cuts: int = churn.DEFAULT_MAX_CUTS,
    progress: Progress = _no_progress,
) -> tuple[int, dict[str, Any]]:
    """Learn P(no activity in the next `horizon_days` days) from the workspace's own history
    with a time split, judge it against the baselines on the held-out last window, and store
    it as a new model version. Every read is as of a date <= `as_of`. Returns (id, report)."""
    started = time.perf_counter()
    day = resolve_as_of(workspace, as_of, clock)
    fitted = fit_shipped_model(
        db,
        workspace,
        day,
        horizon_days,
        activity_events=activity_events,
        cut_every_days=cut_every_days,
        max_cuts=max_cuts,
        progress=progress,
    )
    model, train, split, knobs, held_out = fitted.model, fitted.train, fitted.split, fitted.knobs, fitted.held_out
    steps = len(split.train_cuts) + 3
    baselines = churn.Baselines.fit(train)
    progress("evaluating on the held-out window", len(split.train_cuts) + 1, steps)
    pop, churned = _labelled(db, workspace, held_out, split, knobs)
    held = churn.Examples.stack([(features.matrix(held_out, model.base, horizon_days)[pop], churned[pop])])
    progress("recalibrating on the latest known outcomes", len(split.train_cuts) + 2, steps)
    model.forward = _forward(db, workspace, split, knobs, (held_out, pop, churned), model, cut_every_days)
    run = churn.TrainingRun(split, knobs.activity_events, train, held, model, baselines)
    report = churn.build_report(run)
    model_id = model_store.save(
        db,
        workspace.id,
        created_at=clock.now(),
        as_of=day,
        horizon_days=horizon_days,
        activity_events=knobs.activity_events,
        feature_names=model.feature_names,
        knobs=knobs.model_dump(mode="json"),
        report=report,
        estimator=churn.dump(model),
    )
    progress("done", steps, steps)
    return model_id, {"model_id": model_id, **report, "seconds": round(time.perf_counter() - started, 2)}


@collector.bulk_work()
def predict_churn(
    db: Database,
    workspace: WorkspaceInfo,
    as_of: date | None,
    model_id: int | None,
    clock: Clock,
    *,
    progress: Progress = _no_progress,
) -> predictions.Prediction:
    """Churn probabilities of every customer as of a date with a stored model (the newest by
    default), stored on each profile; former customers lose any stale prediction."""
    info, blob = model_store.get(db, workspace.id, model_id)
    day = resolve_as_of(workspace, as_of, clock)
    # From its as-of date on, the model's calibration refit on the latest known outcomes.
    model = churn.load(blob).for_date(day)
    trained_knobs = ScoringKnobs.model_validate(info.knobs)
    progress("computing features", 0, 3)
    snap = _snapshot(db, workspace, day, trained_knobs)
    # The CSV shows the score operators see today (their knobs), counted on the model's events.
    shown_knobs = _knobs_for(get_knobs(db, workspace), info.activity_events)
    shown = (
        snap
        if shown_knobs == trained_knobs
        else features.Snapshot(snap.table, snap.inputs, scoring.score(snap.inputs, shown_knobs))
    )
    progress("predicting", 1, 3)
    probability = model.predict(features.matrix(snap, model.base, info.horizon_days))
    ok = scorable(snap.table)
    now = clock.now()
    predicted = np.flatnonzero(ok)
    columns: dict[str, list[Any]] = {}
    # Former customers lose any stale prediction.
    for name, values in (
        ("churn_probability", probability[predicted].tolist()),
        ("churn_model_id", [info.id] * len(predicted)),
        ("predicted_at", [now] * len(predicted)),
    ):
        columns[name] = _spread(len(snap.table), predicted, values)
    progress("storing on profiles", 2, 3)
    _store(db, workspace, snap.table.profile_ids, columns, now)
    rows = predictions.PredictionRows(
        snap.table.profile_ids, snap.table.user_ids, probability, snap.inputs, shown.scores, predicted
    )
    progress("done", 3, 3)
    return predictions.Prediction(info.id, day, now, rows)


def churn_models(db: Database, workspace: WorkspaceInfo) -> list[model_store.ChurnModelInfo]:
    return model_store.list_models(db, workspace.id)
