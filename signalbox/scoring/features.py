"""Features of the predictive churn model, computed from one as-of date's trait table.

Everything here is a column over the profiles of a `TraitTable` (which never reads anything at
or after the end of its as-of day), so a feature row as of a date only knows that date's past.
BG/NBD and Pareto/NBD columns come from the activity history summarised in days: ``x`` = activity events
after the first one, ``t_x`` = local days from the first to the last, ``T`` = local days from
the first to the as-of date. (``x`` counts events, not distinct days: two visits on one day
are two repeat transactions. For visits and purchases that is rare and harmless.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from signalbox.profiles.traits import TraitTable
from signalbox.scoring import bgnbd, pareto_nbd
from signalbox.scoring import score as scoring
from signalbox.scoring.bgnbd import BgNbdParams
from signalbox.scoring.pareto_nbd import ParetoNbdParams

FloatArray = NDArray[np.float64]

FEATURE_NAMES: tuple[str, ...] = (
    "recency_days",
    "frequency_30d",
    "baseline_30d",
    "frequency_ratio",
    "tenure_days",
    "activity_total",
    "total_spend",
    "payment_failures_30d",
    "payment_recovered",
    "engagement_rate_30d",
    "engagement_rate_prior_30d",
    "min_nps_90d",
    "escalated_tickets_90d",
    "negative_reviews_90d",
    *(f"points_{name}" for name in scoring.MAX_POINTS),
    "at_risk_score",
    "bgnbd_p_alive",
    "bgnbd_expected_activity",
    "bgnbd_p_no_activity",
    "pnbd_p_alive",
    "pnbd_expected_activity",
    "pnbd_p_no_activity",
)


@dataclass(frozen=True)
class BaseModels:
    """The customer-base models' parameters, fitted on one date's history, that the feature
    matrix needs (stored with the churn model so predictions use the trained values)."""

    bgnbd: BgNbdParams
    pareto_nbd: ParetoNbdParams


@dataclass(frozen=True)
class Snapshot:
    """One as-of date seen the way the transparent score sees it."""

    table: TraitTable
    inputs: scoring.ScoreInputs
    scores: scoring.Scores


def activity_summary(snap: Snapshot) -> bgnbd.Summary:
    """BG/NBD ``(x, t_x, T)`` in days per profile; NaN for profiles with no activity yet."""
    age = snap.table.days_since("first_activity_at")
    recency = snap.inputs.days_since_activity
    x = snap.table.values["activity_total"] - 1.0
    never = np.isnan(age) | np.isnan(recency) | (x < 0)
    t_x = np.clip(age - recency, 0.0, None)
    nan = np.full(len(age), np.nan)
    return bgnbd.Summary(np.where(never, nan, x), np.where(never, nan, t_x), np.where(never, nan, age))


def fit_bgnbd(snap: Snapshot) -> BgNbdParams:
    """BG/NBD parameters from every profile with activity as of the snapshot's date."""
    s = activity_summary(snap)
    seen = ~np.isnan(s.x)
    return bgnbd.fit(s.x[seen], s.t_x[seen], s.T[seen])


def fit_base_models(snap: Snapshot) -> BaseModels:
    """BG/NBD and Pareto/NBD from every profile with activity as of the snapshot's date."""
    s = activity_summary(snap)
    seen = ~np.isnan(s.x)
    return BaseModels(fit_bgnbd(snap), pareto_nbd.fit(s.x[seen], s.t_x[seen], s.T[seen]))


def p_no_activity(params: BgNbdParams, s: bgnbd.Summary, horizon_days: int) -> FloatArray:
    """P(no activity in the next `horizon_days` days | x, t_x, T) under BG/NBD.

    A customer only drops out right after a transaction, so "nothing in (T, T+t]" is either
    "already dead at T" or "alive at T and no Poisson event in t". Given alive, the rate's
    posterior is Gamma(r + x, alpha + T), whose Laplace transform gives
    P(no event in t | alive) = ((alpha + T) / (alpha + T + t)) ** (r + x).
    """
    alive = bgnbd.p_alive(params, s.x, s.t_x, s.T)
    with np.errstate(invalid="ignore"):
        quiet = np.exp((params.r + s.x) * (np.log(params.alpha + s.T) - np.log(params.alpha + s.T + horizon_days)))
    return np.asarray((1.0 - alive) + alive * quiet, dtype=np.float64)


def matrix(snap: Snapshot, base: BaseModels, horizon_days: int) -> FloatArray:
    """The feature matrix (profiles x FEATURE_NAMES); NaN where a feature has no value, which
    the gradient-boosting model handles natively."""
    v, x, s = snap.table.values, snap.inputs, snap.scores
    baseline = v["activity_prior_90d"] / 3.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(baseline > 0, v["activity_30d"] / baseline, np.nan)
        rate_now = _rate(x.messages_engaged_30d, x.messages_sent_30d)
        rate_before = _rate(x.messages_engaged_prior_30d, x.messages_sent_prior_30d)
        recovered = (x.payment_failures_30d > 0) & (x.last_payment_succeeded_at > x.last_payment_failed_at)
    summary = activity_summary(snap)
    params = base.bgnbd
    pn_alive, pn_expected, pn_quiet = pareto_nbd.predictions(
        base.pareto_nbd, float(horizon_days), summary.x, summary.t_x, summary.T
    )
    columns: list[FloatArray] = [
        x.days_since_activity,
        v["activity_30d"],
        baseline,
        ratio,
        summary.T,
        v["activity_total"],
        v["total_spend"],
        x.payment_failures_30d,
        recovered.astype(np.float64),
        rate_now,
        rate_before,
        x.min_nps_90d,
        x.escalated_tickets_90d,
        x.negative_reviews_90d,
        *(s.points[name].astype(np.float64) for name in scoring.MAX_POINTS),
        s.total.astype(np.float64),
        bgnbd.p_alive(params, summary.x, summary.t_x, summary.T),
        bgnbd.expected_purchases(params, float(horizon_days), summary.x, summary.t_x, summary.T),
        p_no_activity(params, summary, horizon_days),
        pn_alive,
        pn_expected,
        pn_quiet,
    ]
    out = np.column_stack(columns).astype(np.float64) if len(snap.table) else np.zeros((0, len(FEATURE_NAMES)))
    assert out.shape[1] == len(FEATURE_NAMES)
    return out


def _rate(engaged: FloatArray, sent: FloatArray) -> FloatArray:
    """Response rate, NaN when nothing was sent."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(sent > 0, np.minimum(1.0, engaged / sent), np.nan), dtype=np.float64)


def column(features: FloatArray, name: str) -> FloatArray:
    return np.asarray(features[:, FEATURE_NAMES.index(name)], dtype=np.float64)
