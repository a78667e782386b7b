"""Scoring benchmark: the transparent at-risk score for many profiles from summarised inputs.

    .venv/bin/python bench/scoring.py [--profiles 1000000] [--seed 7]

Then the churn model's part of `model predict`: the feature matrix (with BG/NBD) for every
profile and the calibrated gradient-boosting probability (target < 120 s).

Traits are synthesised as columns (what `profiles.traits.compute` hands the score: last
activity moments in six time zones, window counts, payment and engagement counts), so the
figures are the cost of the score itself: local-day recency, the five components, the bands,
and rendering the components a profile stores. Each figure is printed beside the time NumPy
takes to sum the same columns once (the floor any columnar pass pays), as a ratio.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import date

import numpy as np
import orjson

from signalbox.profiles.traits import TraitTable, day_start, local_days_before
from signalbox.scoring import churn, features
from signalbox.scoring import score as scoring
from signalbox.scoring.bgnbd import BgNbdParams
from signalbox.scoring.schemas import BAND_NAMES, ScoringKnobs

ZONES = ["America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles"]


def synthetic(n: int, as_of: date, seed: int) -> tuple[scoring.ScoreInputs, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    zones = [ZONES[i] for i in rng.integers(0, len(ZONES), n)]
    end = day_start(as_of, "UTC").timestamp() + 86400
    last_activity = end - rng.exponential(12 * 86400, n)
    rate = rng.gamma(2.0, 3.0, n)
    sent = rng.poisson(6, n).astype(float)
    failures = (rng.random(n) < 0.04) * rng.integers(1, 4, n)
    failed_at = np.where(failures > 0, end - rng.uniform(0, 30 * 86400, n), np.nan)
    inputs = scoring.ScoreInputs(
        days_since_activity=np.zeros(n),
        activity_30d=rng.poisson(rate * rng.uniform(0.2, 1.2, n)).astype(float),
        activity_prior_90d=rng.poisson(rate * 3).astype(float),
        payment_failures_30d=failures.astype(float),
        last_payment_failed_at=failed_at,
        last_payment_succeeded_at=np.where(rng.random(n) < 0.5, failed_at + 86400, np.nan),
        messages_sent_30d=sent,
        messages_engaged_30d=rng.binomial(sent.astype(int), 0.3).astype(float),
        messages_sent_prior_30d=rng.poisson(6, n).astype(float),
        messages_engaged_prior_30d=rng.poisson(2, n).astype(float),
        min_nps_90d=np.where(rng.random(n) < 0.1, rng.integers(0, 11, n), np.nan).astype(float),
        escalated_tickets_90d=(rng.random(n) < 0.01).astype(float),
        negative_reviews_90d=(rng.random(n) < 0.005).astype(float),
    )
    return inputs, last_activity, zones


def timed(fn):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    as_of = date(2026, 11, 30)
    x, last_activity, zones = synthetic(args.profiles, as_of, args.seed)
    columns = [v for v in vars(x).values() if isinstance(v, np.ndarray)]

    _, floor = timed(lambda: [float(np.nansum(c)) for c in columns])
    days, t_days = timed(lambda: local_days_before(last_activity, as_of, zones))
    x = scoring.ScoreInputs(**{**vars(x), "days_since_activity": days})
    s, t_score = timed(lambda: scoring.score(x, ScoringKnobs()))

    sample = min(len(s.total), 100_000)
    s_sample = scoring.Scores(
        {k: v[:sample] for k, v in s.points.items()},
        {k: v[:sample] for k, v in s.codes.items()},
        s.total[:sample],
        s.band[:sample],
    )
    _, t_render_sample = timed(
        lambda: sum(len(orjson.dumps([c.to_dict() for c in scoring.components(x, s_sample, i)])) for i in range(sample))
    )
    t_render = t_render_sample * len(s.total) / sample
    bands = {name: int((s.band == code).sum()) for code, name in enumerate(BAND_NAMES)}
    model_figures = model_prediction(x, s, last_activity, zones, as_of, args.seed)
    report = {
        "profiles": args.profiles,
        "numpy_column_pass_s": round(floor, 3),
        "local_days_s": round(t_days, 3),
        "score_s": round(t_score, 3),
        "score_ratio_to_column_pass": round(t_score / floor, 1),
        "render_components_s_estimated": round(t_render, 1),
        "transparent_score_total_s": round(t_days + t_score + t_render, 1),
        "bands": bands,
        **model_figures,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    if report["transparent_score_total_s"] > 60 or report["model_total_s"] > 120:
        print("over a target (60 s score, 120 s prediction)", file=sys.stderr)
        sys.exit(1)


def model_prediction(
    x: scoring.ScoreInputs, s: scoring.Scores, last_activity: np.ndarray, zones: list[str], as_of: date, seed: int
) -> dict[str, float]:
    """Features (incl. BG/NBD) for every profile and the calibrated model's probability.
    The model is trained here on 50k synthetic examples whose churn depends on the features;
    what is timed is what `model predict` does per profile."""
    rng = np.random.default_rng(seed + 1)
    n = len(s.total)
    end = day_start(as_of, "UTC").timestamp() + 86400
    tenure_days = rng.uniform(30, 900, n)
    table = TraitTable(as_of, np.full(n, end), [f"p{i}" for i in range(n)], [None] * n, zones)
    table.values.update(
        activity_30d=x.activity_30d,
        activity_prior_90d=x.activity_prior_90d,
        activity_total=x.activity_prior_90d * tenure_days / 90.0 + x.activity_30d + 1.0,
        total_spend=rng.uniform(0, 2000, n),
        first_activity_at=end - tenure_days * 86400.0,
        last_activity_at=last_activity,
    )
    snap = features.Snapshot(table, x, s)
    params = BgNbdParams(r=0.8, alpha=4.0, a=0.6, b=2.4)
    X, t_features = timed(lambda: features.matrix(snap, params, 30))
    logit = 0.08 * np.nan_to_num(x.days_since_activity) - 0.3 * x.activity_30d + 0.05 * s.total - 2.0
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    train_rows = rng.choice(n, 50_000, replace=False)
    cuts = np.repeat(np.arange(5), 10_000)
    train = churn.Examples(X[train_rows], y[train_rows], cuts)
    model, t_fit = timed(lambda: churn.fit(train, params))
    p, t_predict = timed(lambda: model.predict(X))
    return {
        "model_features_s": round(t_features, 2),
        "model_fit_50k_s": round(t_fit, 2),
        "model_predict_s": round(t_predict, 2),
        "model_total_s": round(t_features + t_predict, 2),
        "mean_probability": round(float(p.mean()), 4),
    }


if __name__ == "__main__":
    main()
