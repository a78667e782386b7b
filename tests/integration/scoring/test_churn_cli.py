"""`signalbox model train | predict | list` end to end, on SQLite and PostgreSQL: the JSON and
CSV shapes of interfaces.md, predictions on profiles, one-line errors, and a store that only
has purchase transactions."""

from __future__ import annotations

import csv
from datetime import datetime

import orjson

from signalbox.identity import service as identity
from signalbox.workspaces import service as workspaces
from tests.factories import jrun
from tests.integration.scoring.test_churn_quality import fading_world

TRAIN_KEYS = {
    "model_id",
    "auc",
    "pr_auc",
    "precision_at_10pct",
    "brier",
    "calibration",
    "worst_decile_gap",
    "baselines",
    "beats_baselines",
    "verdict",
    "train_window",
    "eval_window",
    "horizon_days",
    "activity_events",
    "as_of",
    "shipped",
    "inner_split",
}
CANDIDATES = {"pareto_nbd", "bgnbd", "recency", "rfm_tenure", "blend", "boosted", "stack"}


def test_train_predict_list_and_refusals(cli, db, tmp_path):
    jrun(cli, "workspace", "create", "churn-cli")
    history = tmp_path / "history.jsonl"
    messages = fading_world(members=140, seed=3, days=330)
    history.write_bytes(b"\n".join(orjson.dumps(m) for m in messages))
    assert jrun(cli, "import", "events", str(history), "-w", "churn-cli")["accepted"] == len(messages)

    report = jrun(
        cli, "model", "train", "-w", "churn-cli", "--as-of", "2025-09-30", "--horizon-days", "30",
        "--activity-event", "visit",
    )  # fmt: skip
    assert set(report) >= TRAIN_KEYS
    assert set(report["baselines"]) == {"recency", "rfm_logistic", "bgnbd", "pareto_nbd"}
    for metrics in (report, *report["baselines"].values()):
        assert {"auc", "pr_auc", "precision_at_10pct", "brier", "calibration", "worst_decile_gap"} <= set(metrics)
        assert [set(d) for d in metrics["calibration"]] == [{"predicted", "observed", "n"}] * 10
    assert report["activity_events"] == ["visit"] and report["horizon_days"] == 30
    assert set(report["train_window"]) >= {"first_cut", "last_cut", "examples", "positives"}
    assert set(report["eval_window"]) == {"cut", "end", "examples", "positives"}
    # Which candidate shipped and why, from figures on the inner split (before the held-out cut).
    inner, shipped = report["inner_split"], report["shipped"]
    assert set(inner["candidates"]) == CANDIDATES and shipped["candidate"] in CANDIDATES
    assert all(set(m) == {"auc", "brier", "worst_decile_gap", "n"} for m in inner["candidates"].values())
    assert inner["validation_cut"] == report["train_window"]["last_cut"] < report["eval_window"]["cut"]
    assert set(inner["textbook_own_probability"]) == {"pareto_nbd", "bgnbd"}
    assert "inner validation cut" in shipped["why"] and shipped["description"]

    out = tmp_path / "churn.csv"
    run = jrun(cli, "model", "predict", "-w", "churn-cli", "--as-of", "2025-09-30", "--output", str(out))
    assert run == {
        "model_id": report["model_id"],
        "as_of": "2025-09-30",
        "profiles": run["profiles"],
        "output": str(out),
    }
    with out.open(newline="") as fh:
        lines = fh.read().splitlines()
    assert lines[0] == "user_id,churn_probability,at_risk_score,at_risk_band,reasons"
    rows = list(csv.DictReader(lines))
    assert len(rows) == run["profiles"] > 50
    assert all(r["at_risk_band"] in ("Low", "Medium", "High") for r in rows)
    assert any("; " in r["reasons"] for r in rows)

    ws = workspaces.get_workspace(db, "churn-cli")
    doc = identity.profile_document(db, ws.id, rows[0]["user_id"])
    assert doc.signals is not None and doc.signals.churn_model_id == report["model_id"]
    assert round(doc.signals.churn_probability or -1, 4) == float(rows[0]["churn_probability"])
    assert doc.signals.predicted_at is not None
    shown = jrun(cli, "profile", "show", "-w", "churn-cli", "-u", rows[0]["user_id"])
    assert shown["churn_model_id"] == report["model_id"] and shown["churn_probability"] is not None
    assert datetime.fromisoformat(shown["predicted_at"]).tzinfo is not None

    listed = jrun(cli, "model", "list", "-w", "churn-cli")
    assert [m["model_id"] for m in listed] == [report["model_id"]] and listed[0]["auc"] == report["auc"]

    jrun(cli, "workspace", "create", "churn-empty")
    for args, message in [
        (("model", "predict", "-w", "churn-cli", "--model-id", "999", "-o", str(out)), "no churn model 999"),
        (("model", "predict", "-w", "churn-cli", "--as-of", "2999-01-01", "-o", str(out)), "future"),
        (("model", "predict", "-w", "churn-cli", "-o", str(tmp_path / "nope" / "x.csv")), "does not exist"),
        (("model", "predict", "-w", "churn-empty", "-o", str(out)), "no churn model yet"),
        (("model", "train", "-w", "churn-cli", "--as-of", "2999-01-01"), "future"),
        (("model", "train", "-w", "churn-cli", "--as-of", "2025-03-01"), "too little history for a time split"),
        (("model", "train", "-w", "churn-empty", "--as-of", "2025-09-30"), "too little history for a time split"),
        (("model", "train", "-w", "churn-cli", "--horizon-days", "0"), "horizon-days"),
        (("model", "predict", "-w", "churn-cli", "--model-id", "latest", "-o", str(out)), "not a model number"),
    ]:
        result = cli(*args, ok=False)
        text = " ".join(result.stderr.split())  # rich wraps at the runner's 80 columns
        assert result.exit_code != 0 and message in text, (args, text)
        assert "Traceback" not in text and text.count("error:") == 1, (args, text)


def test_a_store_with_only_purchase_transactions(cli, db, tmp_path):
    jrun(cli, "workspace", "create", "churn-shop")
    sales = tmp_path / "sales.csv"
    with sales.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["customer_id", "date", "amount"])
        for n, m in enumerate(fading_world(members=140, seed=5, days=330)):
            if m.get("event") == "visit":
                writer.writerow([m["userId"], m["timestamp"][:10], f"{10 + n % 37}.50"])
    imported = jrun(
        cli, "import", "transactions", str(sales), "-w", "churn-shop", "--customer-column", "customer_id",
        "--timestamp-column", "date", "--amount-column", "amount", "--timestamp-format", "%Y-%m-%d",
    )  # fmt: skip
    assert imported["accepted"] > 1000
    report = jrun(
        cli, "model", "train", "-w", "churn-shop", "--as-of", "2025-09-30", "--horizon-days", "45",
        "--activity-event", "purchase",
    )  # fmt: skip
    assert report["activity_events"] == ["purchase"] and report["eval_window"]["positives"] > 0
    assert 0.5 < report["auc"] <= 1.0 and "verdict" in report
    human = cli(
        "model", "train", "-w", "churn-shop", "--as-of", "2025-09-30", "--horizon-days", "45",
        "--activity-event", "purchase",
    ).stdout  # fmt: skip
    assert "candidates on the inner split" in human and "<- shipped" in human
    assert f"shipped: {report['shipped']['candidate']} (" in human
    forward = report["model"]["forward_calibration"]
    assert f"predictions as of 2025-09-30 or later: recalibrated on the cuts {forward['cuts'][0]}.." in human
    out = tmp_path / "shop.csv"
    run = jrun(cli, "model", "predict", "-w", "churn-shop", "--as-of", "2025-09-30", "-o", str(out))
    assert run["profiles"] > 50
    first = next(csv.DictReader(out.open(newline="")))
    assert float(first["churn_probability"]) >= 0.0 and first["user_id"].startswith("w-")
