"""Churn-model quality against its baselines, measured in the same run on the same held-out window.

    .venv/bin/python bench/churn_quality.py [--members 3000] [--skip-cdnow]

1. The demo world (`--members` x 15 months, seed 7, ending 2026-11-30), trained as of its last
   day with a 30-day horizon.
2. CDNOW (Fader & Hardie; from the `lifetimes` wheel on PyPI via bench/datasets.py), imported
   with `import transactions`, trained on purchases as of 1998-06-30 with a 90-day horizon.

Prints, per data set, the model's and each baseline's AUC, PR-AUC, precision@10 %, Brier and
worst calibration-decile gap, the AUC lift over each baseline, and whether the quality bar holds
(higher AUC than BG/NBD and recency, worst decile gap < 0.05). Exits 1 when it does not.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
from datasets import cdnow_to_csv

from signalbox.core import migrate
from signalbox.core.clock import FixedClock
from signalbox.core.db import Database
from signalbox.core.settings import Settings
from signalbox.demo import service as demo
from signalbox.demo.schemas import WorldConfig
from signalbox.ingestion import importers
from signalbox.ingestion.service import Pipeline
from signalbox.scoring import service as scoring
from signalbox.workspaces import service as workspaces

KEYS = ("auc", "pr_auc", "precision_at_10pct", "brier", "worst_decile_gap")


def fresh(folder: Path, name: str) -> tuple[Database, Settings]:
    url = f"sqlite:///{folder / (name + '.db')}"
    migrate.upgrade(url)
    settings = Settings(database_url=url, environment="test")
    return Database(settings), settings


def summary(report: dict[str, Any], seconds: float) -> dict[str, Any]:
    model = {k: report[k] for k in KEYS}
    baselines = {name: {k: b[k] for k in KEYS} for name, b in report["baselines"].items()}
    lift = {name: round(model["auc"] - b["auc"], 4) for name, b in baselines.items()}
    bar = lift["bgnbd"] > 0 and lift["recency"] > 0 and model["worst_decile_gap"] < 0.05
    return {
        "model": model,
        "baselines": baselines,
        "auc_lift": lift,
        "quality_bar": bar,
        "verdict": report["verdict"],
        "train_examples": report["train_window"]["examples"],
        "eval_examples": report["eval_window"]["examples"],
        "seconds": round(seconds, 1),
    }


def demo_world(folder: Path, members: int) -> dict[str, Any]:
    db, settings = fresh(folder, "demo")
    end = date(2026, 11, 30)
    demo.seed(
        db,
        settings,
        "demo",
        WorldConfig(end=end, members=members, months=15, seed=7),
        ground_truth=folder / "truth.csv",
    )
    ws = workspaces.get_workspace(db, "demo")
    started = time.perf_counter()
    _, report = scoring.train_churn_model(db, ws, end, 30, FixedClock(datetime(2026, 12, 1, 12, tzinfo=UTC)))
    return summary(report, time.perf_counter() - started)


def cdnow(folder: Path) -> dict[str, Any]:
    db, settings = fresh(folder, "cdnow")
    path = folder / "cdnow.csv"
    cdnow_to_csv(path)
    workspaces.create_workspace(db, "cdnow")
    ws = workspaces.get_workspace(db, "cdnow")
    clock = FixedClock(datetime(1998, 7, 1, 12, tzinfo=UTC))
    columns = importers.TransactionColumns("customer_id", "date", "amount", "%Y-%m-%d", "purchase")
    importers.import_transactions(Pipeline(db, settings, clock), ws, path, columns)
    started = time.perf_counter()
    _, report = scoring.train_churn_model(db, ws, date(1998, 6, 30), 90, clock, activity_events=["purchase"])
    return summary(report, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=3000)
    parser.add_argument("--skip-cdnow", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sb-quality-"))
    out = {"demo_world": demo_world(folder, args.members)}
    if not args.skip_cdnow:
        out["cdnow"] = cdnow(folder)
    print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    if not all(result["quality_bar"] for result in out.values()):
        print("the quality bar does not hold on every data set (see verdicts)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
