"""Scoring benchmark: the transparent at-risk score for many profiles from summarised inputs.

    .venv/bin/python bench/scoring.py [--profiles 1000000] [--seed 7]

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

from signalbox.profiles.traits import day_start, local_days_before
from signalbox.scoring import score as scoring
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
    report = {
        "profiles": args.profiles,
        "numpy_column_pass_s": round(floor, 3),
        "local_days_s": round(t_days, 3),
        "score_s": round(t_score, 3),
        "score_ratio_to_column_pass": round(t_score / floor, 1),
        "render_components_s_estimated": round(t_render, 1),
        "transparent_score_total_s": round(t_days + t_score + t_render, 1),
        "bands": bands,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    if report["transparent_score_total_s"] > 60:
        print("over the 60 s target", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
