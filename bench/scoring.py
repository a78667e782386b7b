"""Scoring benchmark: the transparent at-risk score and the churn model for every profile of a
workspace, end to end from the database, beside a bare pass over the same data.

    .venv/bin/python bench/scoring.py [--profiles 1000000] [--events-per-profile 6] [--rounds 1]

Set-up (not measured): a fresh SQLite database with one workspace of `--profiles` people,
written straight into the `profiles` and `events` tables with stdlib `sqlite3` (one identify per
person carrying a US time zone, then visits, classes, purchases with amounts, e-mails and the odd
failed payment over the last year, with a share of people going quiet), and a churn model
trained with the real `train_churn_model` on a 20,000-person workspace from the same generator,
stored for the big workspace (training is not what this benchmark times).

Measured, each the whole job a user runs (`signalbox scores compute`, `signalbox model predict`):
- `scoring.service.compute_scores`: traits read from the events table, the five components and
  bands computed, traits, score, band and component documents stored on every profile;
- `scoring.service.predict_churn`: the same traits, the feature matrix with BG/NBD, the
  calibrated model's probability, stored on every profile. The reasons of each customer are
  rendered when the run's rows are read; the CSV `model predict` then writes (every row, its
  reasons included) is timed apart as `csv_s`, after the rounds.

The reference, in the same run: stdlib `sqlite3` reading the same track events (profile,
event, time, amount) into NumPy, one count per profile with `bincount`, and one UPDATE
executemany writing a number on each of the same profiles. Round 1's `compute_scores` is a
workspace's first scoring (every score is new, so the change log gets a row per person);
later rounds are the daily re-run (windows recomputed, only moved scores logged). Figures are medians over
`--rounds` rounds; each ratio is service seconds / that round's reference seconds (the mean
of the reference run just before and just after the two calls), and the median is reported.
"""

from __future__ import annotations

import argparse
import csv
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from signalbox.core import migrate
from signalbox.core.clock import FixedClock
from signalbox.core.db import Database
from signalbox.core.settings import Settings
from signalbox.scoring import model_store, predictions
from signalbox.scoring import service as scoring
from signalbox.workspaces import service as workspaces

AS_OF = date(2026, 11, 30)
CLOCK = FixedClock(datetime(2026, 12, 1, 12, tzinfo=UTC))
ZONES = ["America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles"]
# (event, share of a person's events, carries an amount)
MIX = [
    ("visit", 0.50, False),
    ("class_attended", 0.18, False),
    ("purchase", 0.08, True),
    ("email_sent", 0.12, False),
    ("email_opened", 0.05, False),
    ("payment_succeeded", 0.06, True),
    ("payment_failed", 0.01, False),
]
CHUNK = 50_000
TRAIN_PROFILES = 20_000
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def _stamps(seconds: np.ndarray) -> list[str]:
    """Epoch seconds as SQLAlchemy's SQLite DATETIME text, vectorised."""
    text = np.datetime_as_string((seconds * 1e6).astype("datetime64[us]"), unit="us")
    return np.char.replace(text, "T", " ").tolist()


def populate(path: Path, workspace_id: str, n: int, events_per_profile: float, seed: int, prefix: str = "p") -> int:
    """Profiles and events straight into the tables (set-up). Returns the number of events."""
    rng = np.random.default_rng(seed)
    end = datetime.combine(AS_OF + timedelta(days=1), datetime.min.time(), tzinfo=UTC).timestamp()
    names = [m[0] for m in MIX]
    shares = np.array([m[1] for m in MIX])
    has_amount = np.array([m[2] for m in MIX])
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")  # set-up only: a crash just means re-running the bench
    conn.execute("PRAGMA cache_size=-262144")
    profile_sql = (
        "INSERT INTO profiles (id, workspace_id, canonical_id, merged_into_id, user_id, traits, event_counts, "
        "traits_at, first_seen, last_seen, created_at, updated_at) VALUES (?,?,?,NULL,?,?,?,NULL,?,?,?,?)"
    )
    event_sql = (
        "INSERT INTO events (workspace_id, message_id, profile_id, type, event, user_id, anonymous_id, properties, "
        "traits, context, timestamp, original_timestamp, sent_at, received_at) "
        "VALUES (?,?,?,?,?,?,NULL,?,?,'{}',?,NULL,NULL,?)"
    )
    counts_doc = orjson.dumps({"total": 0, "by_type": {}, "by_event": {}}).decode()
    stored = 0
    for lo in range(0, n, CHUNK):
        m = min(CHUNK, n - lo)
        ids = [f"{prefix}{lo + i:08d}" for i in range(m)]
        users = [f"member-{lo + i}" for i in range(m)]
        zone = rng.integers(0, len(ZONES), m)
        first = end - rng.uniform(20, 365, m) * 86400
        # 35 % go quiet at some point after joining: what a churn model is for.
        quits = rng.random(m) < 0.35
        last_possible = np.where(quits, first + rng.uniform(0.1, 1.0, m) * (end - first), end)
        rate = rng.gamma(2.0, events_per_profile / 2.0, m) / (365 * 86400 / 2)
        k = np.maximum(1, rng.poisson(rate * (last_possible - first)))
        owner = np.repeat(np.arange(m), k)
        ts = first[owner] + rng.random(owner.size) * (last_possible - first)[owner]
        kind = rng.choice(len(MIX), owner.size, p=shares)
        amount = np.round(rng.uniform(5, 120, owner.size), 2)
        first_seen = np.minimum.reduceat(ts, np.r_[0, np.cumsum(k)[:-1]])
        last_seen = np.maximum.reduceat(ts, np.r_[0, np.cumsum(k)[:-1]])
        ts_text, first_text, last_text = _stamps(ts), _stamps(first_seen - 60), _stamps(last_seen)
        props = [
            orjson.dumps({"amount": float(a)}).decode() if has_amount[c] else "{}"
            for c, a in zip(kind.tolist(), amount.tolist(), strict=True)
        ]
        conn.execute("BEGIN")
        conn.executemany(
            profile_sql,
            [
                (pid, workspace_id, pid, uid, orjson.dumps({"timezone": ZONES[z]}).decode(), counts_doc,
                 f, last, f, last)
                for pid, uid, z, f, last in zip(ids, users, zone.tolist(), first_text, last_text, strict=True)
            ],
        )  # fmt: skip
        conn.executemany(
            event_sql,
            [
                (workspace_id, f"id-{lo + i}", ids[i], "identify", None, users[i], "{}",
                 orjson.dumps({"timezone": ZONES[z], "plan": "gold"}).decode(), first_text[i], first_text[i])
                for i, z in enumerate(zone.tolist())
            ],
        )  # fmt: skip
        conn.executemany(
            event_sql,
            [
                (workspace_id, f"ev-{lo}-{j}", ids[o], "track", names[c], users[o], p, "{}", t, t)
                for j, (o, c, p, t) in enumerate(zip(owner.tolist(), kind.tolist(), props, ts_text, strict=True))
            ],
        )  # fmt: skip
        conn.execute("COMMIT")
        stored += m + owner.size
        print(f"  set-up: {lo + m:,} profiles, {stored:,} events", file=sys.stderr, flush=True)
    conn.execute("ANALYZE")
    conn.close()
    return stored


def reference(path: Path, workspace_id: str) -> float:
    """The bare pass: every track event read into NumPy, counted per profile, one number
    written back on each of those profiles in one transaction."""
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")
    rows = conn.execute(
        "SELECT profile_id, event, timestamp, json_extract(properties, '$.amount') FROM events "
        "WHERE workspace_id = ? AND type = 'track'",
        (workspace_id,),
    ).fetchall()
    pids, events, stamps, amounts = zip(*rows, strict=True)
    index: dict[str, int] = {}
    who = np.fromiter((index.setdefault(p, len(index)) for p in pids), dtype=np.int64, count=len(pids))
    ts = np.array(stamps, dtype="datetime64[us]").astype(np.float64) / 1e6
    spend = np.array([a or 0.0 for a in amounts], dtype=np.float64)
    count = np.bincount(who, minlength=len(index))
    total = np.bincount(who, weights=spend, minlength=len(index))
    last = np.full(len(index), -np.inf)
    np.maximum.at(last, who, ts)
    assert len(set(events)) > 1 and total.sum() > 0 and np.isfinite(last).all()
    conn.execute("BEGIN")
    conn.executemany(
        # A column the measured calls rewrite without logging anything: writing the score here
        # would make every round look like everyone's first score (a change row each).
        "UPDATE profiles SET churn_probability = ? WHERE workspace_id = ? AND id = ?",
        [(int(c), workspace_id, p) for p, c in zip(index, count.tolist(), strict=True)],
    )
    conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - started


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def train_model(db: Database, path: Path, big_workspace_id: str, events_per_profile: float, seed: int) -> int:
    """Set-up: a model trained the real way on a small workspace, stored for the big one."""
    small = workspaces.create_workspace(db, "train")
    populate(path, small.id, TRAIN_PROFILES, events_per_profile, seed + 1, prefix="t")
    info_small = workspaces.get_workspace(db, small.id)
    model_id, _ = scoring.train_churn_model(db, info_small, AS_OF, 30, CLOCK, max_cuts=6)
    info, blob = model_store.get(db, small.id, model_id)
    return model_store.save(
        db,
        big_workspace_id,
        created_at=info.created_at,
        as_of=info.as_of,
        horizon_days=info.horizon_days,
        activity_events=info.activity_events,
        feature_names=info.feature_names,
        knobs=info.knobs,
        report=info.report,
        estimator=blob,
    )


def _probabilities(prediction: predictions.Prediction) -> np.ndarray:
    rows = prediction.rows
    if isinstance(rows, predictions.PredictionRows):
        return rows.probabilities
    return np.array([r.churn_probability for r in rows])


def write_csv(prediction: predictions.Prediction, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(predictions.PREDICTION_HEADER)
        writer.writerows(predictions.prediction_record(row) for row in prediction.rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--events-per-profile", type=float, default=6.0, help="mean events a person a year")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of each measured call (medians)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--folder", type=Path, default=None, help="keep the database here (default: a temp dir)")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="sb-scoring-"))
    try:
        run(args, folder)
    finally:
        if args.folder is None:  # a million profiles take ~4.5 GB: never leave them in /tmp
            shutil.rmtree(folder, ignore_errors=True)


def run(args: argparse.Namespace, folder: Path) -> None:
    path = folder / "scoring.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    db = Database(Settings(database_url=url, environment="test"))
    ws = workspaces.create_workspace(db, "bench")

    t0 = time.perf_counter()
    events = populate(path, ws.id, args.profiles, args.events_per_profile, args.seed)
    setup_s = time.perf_counter() - t0
    model_id, train_s = timed(lambda: train_model(db, path, ws.id, args.events_per_profile, args.seed))
    info = workspaces.get_workspace(db, ws.id)

    rounds: list[dict[str, float]] = []
    for k in range(args.rounds):
        ref_s = reference(path, ws.id)
        run, score_s = timed(lambda: scoring.compute_scores(db, info, AS_OF, CLOCK))
        prediction, predict_s = timed(lambda: scoring.predict_churn(db, info, AS_OF, model_id, CLOCK))
        ref_after_s = reference(path, ws.id)
        rounds.append(
            {
                "reference_s": statistics.median([ref_s, ref_after_s]),
                "compute_scores_s": score_s,
                "predict_churn_s": predict_s,
            }
        )
        print(
            f"round {k + 1}: reference {ref_s:.1f} s / {ref_after_s:.1f} s, compute_scores {score_s:.1f} s "
            f"({run.profiles} scored), predict_churn {predict_s:.1f} s ({len(prediction.rows)} predicted)",
            file=sys.stderr,
            flush=True,
        )
    # What `model predict` does after the call: every row's reasons rendered into the CSV.
    _, csv_s = timed(lambda: write_csv(prediction, folder / "churn.csv"))
    ref = statistics.median(r["reference_s"] for r in rounds)
    score_med = statistics.median(r["compute_scores_s"] for r in rounds)
    predict_med = statistics.median(r["predict_churn_s"] for r in rounds)
    report = {
        "profiles": args.profiles,
        "events": events,
        "setup_s": round(setup_s, 1),
        "model_training_setup_s": round(train_s, 1),
        "rounds": args.rounds,
        "reference_s": round(ref, 2),
        "compute_scores_s": round(score_med, 1),
        "compute_scores_ratio": round(statistics.median(r["compute_scores_s"] / r["reference_s"] for r in rounds), 1),
        "predict_churn_s": round(predict_med, 1),
        "predict_churn_ratio": round(statistics.median(r["predict_churn_s"] / r["reference_s"] for r in rounds), 1),
        "scored": run.profiles,
        "not_scored": run.unscored,
        "bands": run.bands,
        "predicted": len(prediction.rows),
        "mean_probability": round(float(np.mean(_probabilities(prediction))), 4),
        "csv_s": round(csv_s, 1),
        "per_round": [{k: round(v, 2) for k, v in r.items()} for r in rounds],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "database_mb": round(path.stat().st_size / 2**20),
    }
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
