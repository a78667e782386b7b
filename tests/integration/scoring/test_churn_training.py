"""Training and predicting churn on SQLite and PostgreSQL: no data from after the as-of date
ever reaches a model, the time split is what the report says, predictions land on profiles."""

from __future__ import annotations

import gc
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from signalbox.core.collector import BULK_YOUNG_THRESHOLD
from signalbox.core.errors import InvalidInputError, NotFoundError
from signalbox.identity import service as identity
from signalbox.profiles import traits
from signalbox.scoring import churn, features, model_store
from signalbox.scoring import service as scoring
from signalbox.workspaces import service as workspaces
from tests.factories import identify, track
from tests.integration.scoring.test_churn_quality import NOW, fading_world, ingest

AS_OF = date(2025, 9, 30)
HORIZON = 30
METRICS = ("auc", "pr_auc", "precision_at_10pct", "brier", "calibration", "worst_decile_gap", "baselines")


@pytest.fixture
def ws(db, workspace):
    return workspaces.get_workspace(db, workspace.id)


def _split(messages: list[dict], day: date) -> tuple[list[dict], list[dict]]:
    """Messages up to the end of `day` everywhere (UTC-12: a few of the next local day too) and after."""
    edge = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=ZoneInfo("Etc/GMT+12"))
    before = [m for m in messages if datetime.fromisoformat(m["timestamp"]) < edge]
    return before, [m for m in messages if datetime.fromisoformat(m["timestamp"]) >= edge]


def _newcomers(day: date) -> list[dict]:
    start = datetime.combine(day + timedelta(days=3), datetime.min.time(), tzinfo=ZoneInfo("America/New_York"))
    out: list[dict] = []
    for n in range(5):
        user = f"late-{n}"
        out.append({**identify(user, timezone="America/New_York"), "timestamp": start.isoformat()})
        out += [{**track("visit", user), "timestamp": (start + timedelta(days=d)).isoformat()} for d in range(0, 40, 4)]
        out.append({**track("payment_failed", user, amount=10.0), "timestamp": (start + timedelta(days=5)).isoformat()})
    return out


def test_nothing_after_the_as_of_date_changes_the_model_or_its_predictions(db, ws, pipeline, monkeypatch):
    before, after = _split(fading_world(members=140, seed=3, days=330), AS_OF)
    assert after, "the scenario must have a future to ignore"
    ingest(pipeline, ws, before)
    seen: list[date] = []
    compute = traits.compute

    def spy(session, workspace_id, zone, as_of, defs, roots=None, **kwargs):
        seen.append(as_of)
        return compute(session, workspace_id, zone, as_of, defs, roots, **kwargs)

    monkeypatch.setattr(traits, "compute", spy)
    first_id, first = scoring.train_churn_model(db, ws, AS_OF, HORIZON, NOW, activity_events=["visit"])
    assert seen and max(seen) == AS_OF  # every read is as of a date <= as-of; the last labels end on it
    first_run = scoring.predict_churn(db, ws, AS_OF, first_id, NOW)

    ingest(pipeline, ws, after + _newcomers(AS_OF))
    second_id, second = scoring.train_churn_model(db, ws, AS_OF, HORIZON, NOW, activity_events=["visit"])
    assert second_id != first_id
    assert {k: second[k] for k in METRICS} == {k: first[k] for k in METRICS}
    assert second["train_window"] == first["train_window"] and second["eval_window"] == first["eval_window"]
    assert second["model"] == first["model"]
    again = scoring.predict_churn(db, ws, AS_OF, second_id, NOW)
    assert [(r.user_id, r.churn_probability, r.at_risk_score, r.reasons) for r in again.rows] == [
        (r.user_id, r.churn_probability, r.at_risk_score, r.reasons) for r in first_run.rows
    ]
    assert scoring.predict_churn(db, ws, AS_OF, first_id, NOW).rows == first_run.rows


def test_too_few_dormant_at_the_training_cuts_are_calibrated_at_half_the_horizon(db, ws, pipeline, monkeypatch):
    """The dormant calibrate on the latest training cuts when those hold enough of them, else on
    the latest cuts whose outcomes over half the horizon are known by the held-out cut (their
    labels never reach past it), else on the training cuts again (own probability)."""
    ingest(pipeline, ws, fading_world(members=140, seed=3, days=330))
    fit = scoring.fit_shipped_model(db, ws, AS_OF, HORIZON, activity_events=["visit"])
    split, start = fit.split, scoring._history_start(fit.held_out)
    snaps = scoring._training_snapshots(db, ws, split, fit.knobs, lambda *_: None, 1)
    monkeypatch.setattr(scoring, "_enough_dormant", lambda labelled: True)
    cuts = scoring._dormant_cuts(db, ws, split, fit.knobs, snaps, start, 14)
    assert cuts.horizon_days == HORIZON and [s for s, _, _ in cuts.snaps] == [s for s, _, _ in snaps[-4:]]
    # Too few at the training cuts, enough at the later ones.
    training = {id(s) for s, _, _ in snaps}
    monkeypatch.setattr(scoring, "_enough_dormant", lambda labelled: all(id(s) not in training for s, _, _ in labelled))
    cuts = scoring._dormant_cuts(db, ws, split, fit.knobs, snaps, start, 14)
    half = HORIZON // 2
    assert cuts.horizon_days == half
    dates = [s.table.as_of for s, _, _ in cuts.snaps]
    assert dates == [split.eval_cut - timedelta(days=half + 14 * k) for k in (3, 2, 1, 0)]
    assert all(d + timedelta(days=half) <= split.eval_cut for d in dates)
    monkeypatch.setattr(scoring, "_enough_dormant", lambda labelled: False)
    cuts = scoring._dormant_cuts(db, ws, split, fit.knobs, snaps, start, 14)
    assert cuts.horizon_days == HORIZON and len(cuts.snaps) == 4


def test_time_split_is_what_the_report_says(db, ws, pipeline):
    ingest(pipeline, ws, fading_world(members=140, seed=3, days=330))
    model_id, report = scoring.train_churn_model(
        db, ws, AS_OF, HORIZON, NOW, activity_events=["visit"], cut_every_days=30
    )
    train, held = report["train_window"], report["eval_window"]
    first, last = date.fromisoformat(train["first_cut"]), date.fromisoformat(train["last_cut"])
    assert held == {**held, "cut": "2025-08-31", "end": AS_OF.isoformat()}
    assert last + timedelta(days=HORIZON) <= date.fromisoformat(held["cut"])
    assert (last - first).days == 30 * (train["cuts"] - 1) and train["cuts"] >= 3
    assert first >= date(2025, 1, 1) + timedelta(days=30)  # a month of history behind the first cut
    assert train["positives"] > 0 and held["positives"] > 0 and held["examples"] > 50
    assert set(report["baselines"]) == {"recency", "rfm_logistic", "bgnbd", "pareto_nbd"}
    assert set(report["beats_baselines"]) == {"recency", "rfm_logistic", "bgnbd", "pareto_nbd"}
    assert isinstance(report["verdict"], str) and report["model_id"] == model_id
    assert [m.id for m in scoring.churn_models(db, ws)] == [model_id]

    with pytest.raises(InvalidInputError, match=r"too little history for a time split: .* need activity since"):
        scoring.train_churn_model(db, ws, date(2025, 4, 1), 60, NOW)
    with pytest.raises(InvalidInputError, match="future"):
        scoring.train_churn_model(db, ws, date(2026, 2, 1), HORIZON, NOW)
    with pytest.raises(InvalidInputError, match="no nothing_like_this events"):
        scoring.train_churn_model(db, ws, AS_OF, HORIZON, NOW, activity_events=["nothing_like_this"])


def test_predict_stores_probability_model_and_time_on_profiles(db, ws, pipeline, monkeypatch):
    ingest(pipeline, ws, fading_world(members=140, seed=3, days=330))
    ingest(pipeline, ws, [{**identify("never-came", timezone="America/New_York"), "timestamp": "2025-05-01T12:00:00Z"}])
    with pytest.raises(NotFoundError, match="no churn model yet"):
        scoring.predict_churn(db, ws, AS_OF, None, NOW)
    model_id, _ = scoring.train_churn_model(db, ws, AS_OF, HORIZON, NOW, activity_events=["visit"])
    with pytest.raises(NotFoundError, match=f"no churn model {model_id + 1}"):
        scoring.predict_churn(db, ws, AS_OF, model_id + 1, NOW)
    # Both runs store with the collector paced for bulk work (core.collector), and restore it.
    store, paced = scoring._store, []
    monkeypatch.setattr(scoring, "_store", lambda *a, **k: (paced.append(gc.get_threshold()[0]), store(*a, **k))[1])
    young = gc.get_threshold()[0]
    scoring.compute_scores(db, ws, AS_OF, NOW)
    run = scoring.predict_churn(db, ws, AS_OF, None, NOW)
    assert paced == [max(young, BULK_YOUNG_THRESHOLD)] * 2 and gc.get_threshold()[0] == young
    assert run.model_id == model_id and run.as_of == AS_OF and len(run.rows) > 50
    probs = [r.churn_probability for r in run.rows]
    assert probs == sorted(probs, reverse=True) and all(0.0 <= p <= 1.0 for p in probs)
    top = run.rows[0]
    signals = identity.profile_document(db, ws.id, top.user_id).signals
    assert signals is not None
    assert signals.churn_probability == pytest.approx(top.churn_probability)
    assert signals.churn_model_id == model_id and signals.predicted_at == NOW.now()
    assert top.reasons and all(part for part in top.reasons.split("; "))
    nobody = identity.profile_document(db, ws.id, "never-came").signals
    assert nobody is None or nobody.churn_probability is None


def test_leakage_probe_the_shipped_model_never_sees_the_held_out_window(db, ws, pipeline):
    """Withholding every row after the held-out cut (the date the shipped model predicts for)
    leaves the shipped model, its inner-split choice and its predictions unchanged: the
    candidates are chosen and fitted on the training history only."""
    eval_cut = AS_OF - timedelta(days=HORIZON)
    before, after = _split(fading_world(members=140, seed=3, days=330), eval_cut)
    ingest(pipeline, ws, before)
    blind = scoring.fit_shipped_model(db, ws, AS_OF, HORIZON, activity_events=["visit"])
    assert blind.split.eval_cut == eval_cut and blind.held_out.table.as_of == eval_cut
    blind_p = blind.model.predict(features.matrix(blind.held_out, blind.model.base, HORIZON))

    ingest(pipeline, ws, after)
    model_id, report = scoring.train_churn_model(db, ws, AS_OF, HORIZON, NOW, activity_events=["visit"])
    assert report["eval_window"]["positives"] > 0  # the held-out window is there now, and judged
    seen = scoring.predict_churn(db, ws, eval_cut, model_id, NOW)
    by_user = {row.user_id: row.churn_probability for row in seen.rows}
    scored = blind.held_out.table.user_ids
    assert len(by_user) > 50
    assert {u: by_user[u] for u in scored if u in by_user} == {
        u: float(p) for u, p in zip(scored, blind_p, strict=True) if u in by_user
    }
    assert report["shipped"]["candidate"] == blind.model.candidate
    skip = ("shipped", "why", "calibration")
    assert report["inner_split"] == {k: v for k, v in blind.model.selection.items() if k not in skip}


def test_predictions_as_of_the_training_date_are_calibrated_on_the_latest_known_outcomes(db, ws, pipeline):
    """The model is judged on the held-out window with calibrators fitted a horizon before it;
    predictions as of the as-of date itself use calibrators fitted again on the latest cuts whose
    outcomes are known by then (the held-out cut and the three before it), earlier dates the
    model as judged."""
    ingest(pipeline, ws, fading_world(members=140, seed=3, days=330))
    model_id, report = scoring.train_churn_model(db, ws, AS_OF, HORIZON, NOW, activity_events=["visit"])
    eval_cut = AS_OF - timedelta(days=HORIZON)
    forward = report["model"]["forward_calibration"]
    assert forward["from"] == AS_OF.isoformat()
    cuts = [(eval_cut - timedelta(days=14 * k)).isoformat() for k in (3, 2, 1, 0)]
    assert [r["cut"] for r in forward["churn_rate_by_cut"]] == cuts
    own = report["model"]["calibration"].startswith("own probability")
    assert forward["calibration"] == ("own probability" if own else "recalibrated on the cuts below")
    fitted_on = cuts if report["shipped"]["candidate"] in churn.FEATURE_ONLY else cuts[-1:]
    assert forward["cuts"] == ([] if own else fitted_on)
    assert all(r["examples"] > 0 and 0 < r["churn_rate"] < 1 for r in forward["churn_rate_by_cut"])
    assert len(report["train_window"]["churn_rate_by_cut"]) == report["train_window"]["cuts"]

    _, blob = model_store.get(db, ws.id, model_id)
    judged = churn.load(blob)
    knobs = scoring._knobs_for(scoring.get_knobs(db, ws), ["visit"])
    snap = scoring._snapshot(db, ws, AS_OF, knobs)
    now = judged.for_date(AS_OF)
    expected = now.predict(features.matrix(snap, now.base, HORIZON))
    as_judged = judged.predict(features.matrix(snap, judged.base, HORIZON))
    assert not np.allclose(expected, as_judged)
    today = {r.user_id: r.churn_probability for r in scoring.predict_churn(db, ws, AS_OF, model_id, NOW).rows}
    assert len(today) > 50
    assert today == {u: float(p) for u, p in zip(snap.table.user_ids, expected, strict=True) if u in today}
    # Before the as-of date the model as judged (the held-out figures are its figures).
    assert judged.for_date(eval_cut) is judged
