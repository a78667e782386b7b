"""Churn-model quality against its baselines, measured in the same run on the same held-out people.

    .venv/bin/python bench/churn_quality.py [--members 12000] [--skip-demo] [--skip-cdnow] [--cell CUT:H]

1. The demo world (`--members` x 15 months, seed 7, ending 2026-11-30). For horizons of 30, 60
   and 90 days: `train_churn_model` as of the last day (its held-out window is the last `h`
   days), then `predict_churn` as of the held-out cut with that model; on the members active in
   the 90 days before the cut, churn = no activity event in the horizon, the model against
   recency alone (days since the last activity) and the transparent at-risk score: AUC with
   DeLong's test (model vs each), and the model's Brier against the base rate's.
2. CDNOW (Fader & Hardie; from the `lifetimes` wheel on PyPI via bench/datasets.py), imported
   with `import transactions`, at each quarter end from 1997-09-30 to 1998-03-31 (the
   prediction date, "cut") and horizons of 90 and 180 days, wherever the horizon fits in the
   data (it ends 1998-06-30, so 1998-03-31 + 180 days is left out). For each pair:
   - the shipped model: `train_churn_model` as of cut + horizon (its held-out window is exactly
     the cut), then `predict_churn` as of the cut with that model: the probability a user gets;
   - BG/NBD and Pareto/NBD (signalbox/scoring, the latter first checked against the published
     CDNOW parameters by bench/pareto_nbd.py) fitted on every customer's purchases up to the
     cut, in weeks, each giving P(no purchase in the horizon | x, t_x, T) in closed form;
   - the user's path: `train_churn_model` as of the cut itself (what a user gets by training on
     the day they predict), then `predict_churn` as of the cut with it, where it can be trained
     (a 180-day split needs over a year of history: not on CDNOW's 1997 cuts);
   - all scored on the same people, two populations: customers with a purchase in the 90 days
     up to the cut (the model's training population) and every customer acquired by the cut
     (all 23,570), labelled "churned" when they bought nothing in the horizon.
   Where the model loses, the output says so; that does not fail the script.

Metrics: AUC, PR-AUC, precision at the top 10 %, Brier, worst calibration-decile gap.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pareto_nbd
from datasets import cdnow_to_csv, cdnow_transactions
from scipy.optimize import brentq

from signalbox.core import migrate
from signalbox.core.clock import FixedClock
from signalbox.core.db import Database
from signalbox.core.errors import InvalidInputError
from signalbox.core.settings import Settings
from signalbox.demo import service as demo
from signalbox.demo.schemas import WorldConfig
from signalbox.ingestion import importers
from signalbox.ingestion.service import Pipeline
from signalbox.scoring import bgnbd, features, metrics
from signalbox.scoring import pareto_nbd as pnbd
from signalbox.scoring import score as scoring_score
from signalbox.scoring import service as scoring
from signalbox.workspaces import service as workspaces

KEYS = ("auc", "pr_auc", "precision_at_10pct", "brier", "worst_decile_gap")
CDNOW_END = date(1998, 6, 30)
CUTS = (date(1997, 9, 30), date(1997, 12, 31), date(1998, 3, 31))
HORIZONS = (90, 180)
POPULATION_DAYS = 90  # scoring.service.ACTIVE_WITHIN_DAYS: the model's evaluation population


def fresh(folder: Path, name: str) -> tuple[Database, Settings]:
    url = f"sqlite:///{folder / (name + '.db')}"
    migrate.upgrade(url)
    settings = Settings(database_url=url, environment="test")
    return Database(settings), settings


DEMO_HORIZONS = (30, 60, 90)


def demo_world(folder: Path, members: int) -> dict[str, Any]:
    """For each horizon: train as of the world's last day (held-out window = the last `h` days),
    then from outside, on the members active in the 90 days before the held-out cut, churn =
    no activity event in the horizon: the model's probability (`predict_churn` as of the cut)
    against recency alone (days since the last activity) and the transparent at-risk score, by
    AUC with DeLong's test, and the model's Brier against the base rate's."""
    db, settings = fresh(folder, "demo")
    end = date(2026, 11, 30)
    clock = FixedClock(datetime(2026, 12, 1, 12, tzinfo=UTC))
    started = time.perf_counter()
    demo.seed(
        db,
        settings,
        "demo",
        WorldConfig(end=end, members=members, months=15, seed=7),
        ground_truth=folder / "truth.csv",
    )
    out: dict[str, Any] = {"members": members, "seed_s": round(time.perf_counter() - started, 1), "horizons": []}
    ws = workspaces.get_workspace(db, "demo")
    knobs = scoring.get_knobs(db, ws)
    for horizon in DEMO_HORIZONS:
        started = time.perf_counter()
        model_id, report = scoring.train_churn_model(db, ws, end, horizon, clock)
        train_s = time.perf_counter() - started
        cut = end - timedelta(days=horizon)
        prediction = scoring.predict_churn(db, ws, cut, model_id, clock)
        model_p = {row.profile_id: row.churn_probability for row in prediction.rows}
        table = scoring.trait_table(db, ws, cut, knobs)
        inputs = scoring.score_inputs(table)
        total = scoring_score.score(inputs, knobs).total.astype(np.float64)
        with np.errstate(invalid="ignore"):
            active = scoring.scorable(table) & (inputs.days_since_activity <= POPULATION_DAYS)
        churned = scoring.churned_after(db, ws, table, end, horizon, knobs)
        rows = [i for i, pid in enumerate(table.profile_ids) if active[i] and pid in model_p]
        y = churned[rows].astype(np.int64)
        p = np.array([model_p[table.profile_ids[i]] for i in rows])
        recency, score = inputs.days_since_activity[rows], total[rows]
        m = metrics.evaluate(y, p)
        rate = float(y.mean())
        out["horizons"].append(
            {
                "horizon_days": horizon,
                "cut": cut.isoformat(),
                "people": len(rows),
                "churn_rate": round(rate, 4),
                "auc": {
                    "model": round(m.auc, 4),
                    "recency": round(metrics.delong(y, recency, recency).auc_a, 4),
                    "at_risk_score": round(metrics.delong(y, score, score).auc_a, 4),
                },
                "delong_model_vs": {
                    name: _delong_doc(metrics.delong(y, p, other))
                    for name, other in (("recency", recency), ("at_risk_score", score))
                },
                "brier": {"model": round(m.brier, 4), "base_rate": round(rate * (1 - rate), 4)},
                "worst_decile_gap": round(m.worst_decile_gap, 4),
                "shipped": report["shipped"]["candidate"],
                "why": report["shipped"]["why"],
                "report_auc": report["auc"],
                "train_s": round(train_s, 1),
            }
        )
        print(f"demo world +{horizon}d: {out['horizons'][-1]}", file=sys.stderr, flush=True)
    return out


def _delong_doc(d: metrics.DeLong) -> dict[str, float]:
    return {"difference": round(d.difference, 4), "z": round(d.z, 2), "p_value": round(d.p_value, 4)}


def _doc(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    m = metrics.evaluate(y.astype(np.int64), p)
    return {k: round(float(getattr(m, k)), 4) for k in KEYS}


NOISE_DRAWS = 1000
NOISE_SEED = 11


def noise_floor(p: np.ndarray) -> dict[str, float]:
    """The worst decile gap a perfectly calibrated model would show on these people: outcomes
    drawn from the model's own probabilities, deciles as `metrics.calibration_deciles` makes
    them (mean and 95th percentile over the draws). With ~420 people a decile, a churn rate
    near 0.5 is only known to +-0.024, so the worst of ten deciles is off by ~0.04 by chance."""
    chunks = np.array_split(np.argsort(p, kind="stable"), metrics.N_DECILES)
    predicted = np.array([p[c].mean() for c in chunks])
    rng = np.random.default_rng(NOISE_SEED)
    worst = np.empty(NOISE_DRAWS)
    for k in range(NOISE_DRAWS):
        y = rng.random(p.size) < p
        worst[k] = max(abs(predicted[i] - y[c].mean()) for i, c in enumerate(chunks))
    return {"expected": round(float(worst.mean()), 4), "q95": round(float(np.quantile(worst, 0.95)), 4)}


def level_given(y: np.ndarray, p: np.ndarray, groups: list[np.ndarray]) -> float:
    """A diagnostic, not a model figure: the worst decile gap once each group's log-odds are
    shifted by the one constant that makes its mean probability its observed churn rate in the
    evaluated window (the future's churn level, which no model knows). What is left is the
    calibration's shape; the rest of the model's gap is the level it had to guess."""
    z = np.log(np.clip(p, 1e-9, 1 - 1e-9)) - np.log1p(-np.clip(p, 1e-9, 1 - 1e-9))
    q = p.astype(np.float64).copy()
    for group in groups:
        rate = float(y[group].mean()) if group.any() else 0.0
        if 0.0 < rate < 1.0:
            try:
                shift = brentq(lambda s, g=group, r=rate: float((1 / (1 + np.exp(-(z[g] + s)))).mean()) - r, -40, 40)
            except ValueError:  # no shift in range reaches the rate: leave the group as predicted
                continue
            q[group] = 1 / (1 + np.exp(-(z[group] + shift)))
    return round(float(metrics.evaluate(y.astype(np.int64), q).worst_decile_gap), 4)


def cdnow(folder: Path, only: tuple[date, int] | None = None) -> dict[str, Any]:
    fitted_sample, matches = pareto_nbd.check_against_published()
    if not matches:
        raise SystemExit(f"our Pareto/NBD does not reproduce the published CDNOW fit: {fitted_sample}")

    db, settings = fresh(folder, "cdnow")
    path = folder / "cdnow.csv"
    cdnow_to_csv(path)
    workspaces.create_workspace(db, "cdnow")
    ws = workspaces.get_workspace(db, "cdnow")
    clock = FixedClock(datetime(1998, 7, 1, 12, tzinfo=UTC))
    columns = importers.TransactionColumns("customer_id", "date", "amount", "%Y-%m-%d", "purchase")
    importers.import_transactions(Pipeline(db, settings, clock), ws, path, columns)

    bought: dict[str, list[date]] = defaultdict(list)
    for customer, day, _ in cdnow_transactions():
        bought[customer].append(day)
    customers = sorted(bought)
    days = [np.array(sorted(bought[c]), dtype="datetime64[D]") for c in customers]

    out: dict[str, Any] = {
        "pareto_nbd_check": {
            "fitted_on_published_sample": {k: round(getattr(fitted_sample, k), 4) for k in PARETO_KEYS},
            "published": pareto_nbd.PUBLISHED_CDNOW,
        },
        "grid": [],
    }
    for cut in CUTS:
        for horizon in HORIZONS:
            if only is not None and (cut, horizon) != only:
                continue
            if cut + timedelta(days=horizon) > CDNOW_END:
                out["grid"].append({"cut": cut.isoformat(), "horizon_days": horizon, "skipped": "past the data"})
                continue
            out["grid"].append(one_cell(db, ws, clock, cut, horizon, customers, days))
            print(cell_line(out["grid"][-1]), file=sys.stderr, flush=True)
    return out


PARETO_KEYS = ("r", "alpha", "s", "beta", "log_likelihood")


def one_cell(
    db: Database, ws: Any, clock: FixedClock, cut: date, horizon: int, customers: list[str], days: list[np.ndarray]
) -> dict[str, Any]:
    cell: dict[str, Any] = {"cut": cut.isoformat(), "horizon_days": horizon}
    cut_day, end_day = np.datetime64(cut, "D"), np.datetime64(cut + timedelta(days=horizon), "D")
    seen = np.array([d[0] <= cut_day for d in days])
    recent = np.array([bool(((d <= cut_day) & (d > cut_day - POPULATION_DAYS - 1)).any()) for d in days])
    churned = np.array([not ((d > cut_day) & (d <= end_day)).any() for d in days])

    # The probabilistic models: every customer acquired by the cut, in weeks.
    s = bgnbd.summarize([d for d, k in zip(days, seen, strict=True) if k], cut, unit_days=7.0)
    weeks = horizon / 7.0
    started = time.perf_counter()
    bg = bgnbd.fit(s.x, s.t_x, s.T)
    pn = pnbd.fit(s.x, s.t_x, s.T)
    fit_s = time.perf_counter() - started
    index = {c: i for i, c in enumerate(c for c, k in zip(customers, seen, strict=True) if k)}
    p_bg = features.p_no_activity(bg, s, weeks)  # type: ignore[arg-type]  # weeks, a float: fine at runtime
    p_pn = pnbd.p_no_purchase(pn, weeks, s.x, s.t_x, s.T)
    cell["bgnbd_params"] = {"r": round(bg.r, 4), "alpha": round(bg.alpha, 4), "a": round(bg.a, 4), "b": round(bg.b, 4)}
    cell["pareto_nbd_params"] = {k: round(getattr(pn, k), 4) for k in PARETO_KEYS}

    started = time.perf_counter()
    try:
        model_id, report = scoring.train_churn_model(
            db, ws, cut + timedelta(days=horizon), horizon, clock, activity_events=["purchase"]
        )
    except InvalidInputError as exc:
        cell["model"] = f"cannot train: {exc}"
        model_id, report = None, None
    train_s = time.perf_counter() - started
    model_p: dict[str, float] = {}
    if model_id is not None:
        assert report is not None and report["eval_window"]["cut"] == cut.isoformat()
        prediction = scoring.predict_churn(db, ws, cut, model_id, clock)
        model_p = {row.user_id: row.churn_probability for row in prediction.rows if row.user_id}

    # The user's path: train on the cut itself (the day a user runs `model train`), then predict
    # for that same day with it. Its held-out window ends on the cut, so its own calibration is a
    # horizon older than the grid model's; nothing after the cut is read either way.
    started = time.perf_counter()
    user_p: dict[str, float] = {}
    try:
        user_model_id, _ = scoring.train_churn_model(db, ws, cut, horizon, clock, activity_events=["purchase"])
        user_rows = scoring.predict_churn(db, ws, cut, user_model_id, clock).rows
        user_p = {row.user_id: row.churn_probability for row in user_rows if row.user_id}
    except InvalidInputError as exc:
        cell["model_trained_on_the_cut"] = f"cannot train: {exc}"
    user_s = time.perf_counter() - started

    def judged(population: np.ndarray) -> tuple[int, float, dict[str, dict[str, float]]]:
        people = [i for i, c in enumerate(customers) if population[i] and (model_id is None or c in model_p)]
        y = churned[people]
        rows = [index[customers[i]] for i in people]
        scores: dict[str, dict[str, float]] = {}
        if model_id is not None:
            p = np.array([model_p[customers[i]] for i in people])
            scores["model"] = _doc(y, p)
            scores["model"]["perfect_calibration_gap"] = noise_floor(p)  # type: ignore[assignment]
            active = recent[people]
            scores["model"]["worst_gap_with_the_level_given"] = level_given(y, p, [active, ~active])
        if user_p:
            q = np.array([user_p[customers[i]] for i in people])
            scores["model_trained_on_the_cut"] = _doc(y, q)
            scores["model_trained_on_the_cut"]["perfect_calibration_gap"] = noise_floor(q)  # type: ignore[assignment]
        scores["bgnbd"] = _doc(y, p_bg[rows])
        scores["pareto_nbd"] = _doc(y, p_pn[rows])
        return len(people), round(float(y.mean()), 4), scores

    people, rate, scores = judged(recent)
    acquired_people, acquired_rate, acquired = judged(seen)
    cell.update(
        people=people,
        churn_rate=rate,
        metrics=scores,
        acquired={"people": acquired_people, "churn_rate": acquired_rate, "metrics": acquired},
        fit_s=round(fit_s, 1),
        model_train_s=round(train_s, 1),
        model_trained_on_the_cut_s=round(user_s, 1),
    )
    if report is not None:
        # The model's own report: the same held-out window; its BG/NBD baseline is fitted at the
        # last training cut, ours above at the cut itself with every purchase up to it.
        cell["model_report"] = {
            "eval_examples": report["eval_window"]["examples"],
            "auc": report["auc"],
            "baselines_auc": {k: v["auc"] for k, v in report["baselines"].items()},
            "train_examples": report["train_window"]["examples"],
            "train_cuts": report["train_window"]["cuts"],
            "shipped": report["shipped"],
            "inner_split": report["inner_split"],
        }
        for doc, m in ((cell, scores), (cell["acquired"], acquired)):
            best = max(("bgnbd", "pareto_nbd"), key=lambda k: m[k]["auc"])
            doc["model_auc_lift_over_best_probabilistic"] = round(m["model"]["auc"] - m[best]["auc"], 4)
        cell["model_loses_on"] = [
            f"{name} {key}"
            for name in ("bgnbd", "pareto_nbd")
            for key in KEYS
            if (scores["model"][key] < scores[name][key]) == (key in ("auc", "pr_auc", "precision_at_10pct"))
            and scores["model"][key] != scores[name][key]
        ]
    return cell


def cell_line(cell: dict[str, Any]) -> str:
    def parts(m: dict[str, Any]) -> str:
        floor = m.get("model", {}).get("perfect_calibration_gap")
        noise = f" (a perfectly calibrated model: {floor['expected']:.3f}, q95 {floor['q95']:.3f})" if floor else ""
        return ", ".join(f"{k} AUC {v['auc']:.3f} gap {v['worst_decile_gap']:.3f}" for k, v in m.items()) + noise

    shipped = cell.get("model_report", {}).get("shipped", {}).get("candidate")
    return (
        f"CDNOW cut {cell['cut']} +{cell['horizon_days']}d shipped {shipped}: active ({cell['people']}) "
        f"{parts(cell['metrics'])}; acquired ({cell['acquired']['people']}) {parts(cell['acquired']['metrics'])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=12000)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-cdnow", action="store_true")
    parser.add_argument("--cell", help="one CDNOW cell only, CUT:HORIZON (e.g. 1997-09-30:90)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sb-quality-"))
    out: dict[str, Any] = {}
    try:
        if not args.skip_demo:
            out["demo_world"] = demo_world(folder, args.members)
        if not args.skip_cdnow:
            only = None
            if args.cell:
                cut, horizon = args.cell.split(":")
                only = (date.fromisoformat(cut), int(horizon))
            out["cdnow"] = cdnow(folder, only)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
