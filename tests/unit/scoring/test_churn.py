"""The churn model's pure parts: the time split, BG/NBD's probability of no activity, fitting
(deterministic, calibrated, stored and loaded), the verdict and the reasons column."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression

from signalbox.core.errors import InvalidInputError
from signalbox.scoring import bgnbd, churn, features, metrics, predictions
from signalbox.scoring import score as scoring
from signalbox.scoring.bgnbd import BgNbdParams
from signalbox.scoring.pareto_nbd import ParetoNbdParams
from signalbox.scoring.schemas import ScoringKnobs

PARAMS = BgNbdParams(r=0.8, alpha=12.0, a=0.7, b=3.0)  # days: about one visit every 15 days


# --------------------------------------------------------------------------- time split


@pytest.mark.parametrize(("horizon", "every"), [(30, 14), (90, 30), (7, 7), (45, 14)])
def test_cuts_and_their_labels_end_before_the_held_out_window(horizon, every):
    as_of = date(2026, 3, 31)
    split = churn.time_split(as_of, horizon, date(2024, 11, 5), cut_every_days=every)
    assert split.end == as_of and split.eval_cut == as_of - timedelta(days=horizon)
    assert split.horizon_days == horizon
    assert len(split.train_cuts) >= churn.MIN_TRAIN_CUTS
    assert all(cut + timedelta(days=horizon) <= split.eval_cut for cut in split.train_cuts)
    assert split.train_cuts[-1] == split.eval_cut - timedelta(days=horizon)
    gaps = {(b - a).days for a, b in zip(split.train_cuts, split.train_cuts[1:], strict=False)}
    assert gaps == {every}
    assert split.train_cuts[0] >= date(2024, 11, 5) + timedelta(days=churn.WARMUP_DAYS)


def test_max_cuts_keeps_the_newest():
    split = churn.time_split(date(2026, 3, 31), 30, date(2020, 1, 1), cut_every_days=14, max_cuts=5)
    assert len(split.train_cuts) == 5 and split.train_cuts[-1] == date(2026, 1, 30)


def test_too_little_history_says_how_much_is_needed():
    as_of = date(2026, 3, 31)
    # 30-day horizon, cuts 14 days apart: as_of - 60 - 28 - 30 = 2025-12-03
    with pytest.raises(InvalidInputError, match=r"need activity since 2025-12-03 or earlier.*starts 2026-01-10"):
        churn.time_split(as_of, 30, date(2026, 1, 10))
    assert len(churn.time_split(as_of, 30, date(2025, 12, 3)).train_cuts) == 3
    with pytest.raises(InvalidInputError, match="no visit events before 2026-03-01"):
        churn.time_split(as_of, 30, None, activity_events=("visit",))
    with pytest.raises(InvalidInputError, match="horizon-days"):
        churn.time_split(as_of, 0, date(2020, 1, 1))
    with pytest.raises(InvalidInputError, match="max-cuts"):
        churn.time_split(as_of, 30, date(2020, 1, 1), max_cuts=2)


# --------------------------------------------------------------------------- BG/NBD


def test_no_activity_probability_closed_forms():
    t = 30
    s = bgnbd.Summary(np.array([0.0, 0.0, 5.0]), np.array([0.0, 0.0, 80.0]), np.array([0.0, 50.0, 100.0]))
    got = features.p_no_activity(PARAMS, s, t)
    r, alpha = PARAMS.r, PARAMS.alpha
    assert got[0] == pytest.approx((alpha / (alpha + t)) ** r)  # NBD zero class for a newcomer
    assert got[1] == pytest.approx(((alpha + 50) / (alpha + 50 + t)) ** r)  # x = 0: alive for sure
    alive = bgnbd.p_alive(PARAMS, 5.0, 80.0, 100.0)[()]
    quiet = ((alpha + 100) / (alpha + 100 + t)) ** (r + 5)
    assert got[2] == pytest.approx(1 - alive + alive * quiet)
    longer = features.p_no_activity(PARAMS, s, 90)
    assert (longer <= got).all() and (got <= 1).all()


def _simulate(params: BgNbdParams, n: int, end: float, rng: np.random.Generator) -> list[np.ndarray]:
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    out = []
    for i in range(n):
        times, now = [0.0], 0.0  # everyone's first transaction is at day 0
        while True:
            if rng.random() < p[i] and len(times) > 1:
                break
            now += rng.exponential(1.0 / lam[i])
            if now > end:
                break
            times.append(now)
        out.append(np.array(times))
    return out


def test_no_activity_probability_matches_simulated_customers():
    rng = np.random.default_rng(11)
    T, t = 120.0, 30.0
    histories = _simulate(PARAMS, 6000, T + t, rng)
    past = [h[h <= T] for h in histories]
    x = np.array([len(h) - 1 for h in past], dtype=float)
    t_x = np.array([h[-1] for h in past])
    predicted = features.p_no_activity(PARAMS, bgnbd.Summary(x, t_x, np.full(len(x), T)), int(t))
    observed = np.array([not ((h > T) & (h <= T + t)).any() for h in histories], dtype=float)
    assert predicted.mean() == pytest.approx(observed.mean(), abs=0.02)
    for chunk in np.array_split(np.argsort(predicted), 5):  # calibrated within quintiles too
        assert predicted[chunk].mean() == pytest.approx(observed[chunk].mean(), abs=0.05)


# --------------------------------------------------------------------------- fitting


def _examples(n_cuts: int = 6, per_cut: int = 300, seed: int = 0) -> churn.Examples:
    rng = np.random.default_rng(seed)
    width = len(features.FEATURE_NAMES)
    parts = []
    for _ in range(n_cuts):
        X = rng.random((per_cut, width))
        X[:, features.FEATURE_NAMES.index("min_nps_90d")] = np.nan  # nobody answered a survey
        ratio = X[:, features.FEATURE_NAMES.index("frequency_ratio")]
        X[:, features.FEATURE_NAMES.index("recency_days")] *= 60
        logit = 10 * (0.4 - ratio) + 0.5 * X[:, 0]
        parts.append((X, rng.random(per_cut) < 1 / (1 + np.exp(-logit))))
    return churn.Examples.stack(parts)


BASE = features.BaseModels(PARAMS, ParetoNbdParams(r=0.8, alpha=12.0, s=0.6, beta=40.0))


def _split(n_cuts: int = 6, horizon: int = 30) -> churn.TimeSplit:
    cuts = tuple(date(2026, 1, 1) + timedelta(days=14 * k) for k in range(n_cuts))
    eval_cut = cuts[-1] + timedelta(days=horizon)
    return churn.TimeSplit(cuts, eval_cut, eval_cut + timedelta(days=horizon))


def test_inner_split_validates_on_the_last_training_cut_with_earlier_outcomes_only():
    split = _split(6, 30)
    inner, validation = split.inner()
    assert validation == 5
    # Cuts 14 days apart, outcomes known 30 days after a cut: by day 70 (the validation cut)
    # those of days 0, 14 and 28 are; day 42's and 56's are not.
    assert all(split.train_cuts[k] + timedelta(days=30) <= split.train_cuts[validation] for k in inner)
    assert inner == (0, 1, 2)
    assert _split(3, 90).inner() == ((0, 1), 2)  # too few with known outcomes: every earlier cut


def test_train_is_deterministic_calibrated_and_survives_storage():
    train, held = _examples(), _examples(n_cuts=1, seed=9)
    model = churn.train(train, _split(), BASE, train, BASE)
    again = churn.train(train, _split(), BASE, train, BASE)
    p = model.predict(held.X)
    assert np.array_equal(p, again.predict(held.X))
    assert ((p >= 0) & (p <= 1)).all()
    # The signal is in frequency_ratio, which only the boosted candidates read.
    assert model.candidate in ("boosted", "stack"), model.selection
    assert "min_nps_90d" not in model.used_features
    m = churn.evaluate(held.y, p)
    assert m.auc > 0.8 and abs(float(p.mean()) - m.base_rate) < 0.06
    sel = model.selection
    assert set(sel["candidates"]) == set(churn.CANDIDATES) and sel["shipped"] == model.candidate
    assert all(set(f) == {"auc", "brier", "worst_decile_gap", "n"} for f in sel["candidates"].values())
    assert sel["candidates"][model.candidate]["auc"] == max(f["auc"] for f in sel["candidates"].values())
    assert sel["validation_cut"] == _split().train_cuts[-1].isoformat()
    loaded = churn.load(churn.dump(model))
    assert np.array_equal(loaded.predict(held.X), p)
    assert loaded.base.bgnbd.as_tuple() == PARAMS.as_tuple()
    assert loaded.base.pareto_nbd.as_tuple() == BASE.pareto_nbd.as_tuple()
    with pytest.raises(InvalidInputError, match="other features"):
        model.predict(held.X[:, :5])


def test_choose_ships_the_simplest_candidate_not_significantly_below_the_best():
    rng = np.random.default_rng(3)
    y = rng.random(2000) < 0.4
    signal = y + rng.normal(size=y.size)
    strong, weak = signal + 0.3 * rng.normal(size=y.size), signal + 1.5 * rng.normal(size=y.size)
    squash = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    preds = {name: squash(weak) for name in churn.CANDIDATES}
    figures = {name: metrics.evaluate(y, p) for name, p in preds.items()}
    assert churn.choose(figures, y, preds)[0] == "pareto_nbd"  # all equal: the simplest
    preds["boosted"] = squash(strong)  # clearly better: it has earned its place
    figures["boosted"] = metrics.evaluate(y, preds["boosted"])
    best, why = churn.choose(figures, y, preds)
    assert best == "boosted" and why.startswith("highest AUC on the inner validation cut (boosted")
    assert "significantly below it" in why
    # A lead inside the noise: the simpler candidate ships, and the reason gives the p-value.
    preds["stack"] = squash(strong + 0.02 * rng.normal(size=y.size))
    figures["stack"] = metrics.evaluate(y, preds["stack"])
    preds["bgnbd"] = squash(strong + 0.05 * rng.normal(size=y.size))
    figures["bgnbd"] = metrics.evaluate(y, preds["bgnbd"])
    best, why = churn.choose(figures, y, preds)
    assert best == "bgnbd" and "the simplest candidate not significantly below the best" in why
    assert "DeLong p = " in why


def test_long_silent_people_get_the_textbook_probability():
    train, held = _examples(), _examples(n_cuts=1, seed=9)
    model = churn.train(train, _split(), BASE, train, BASE)
    X = held.X.copy()
    recency = features.FEATURE_NAMES.index("recency_days")
    X[:5, recency] = churn.POPULATION_DAYS + 30
    p = model.predict(X)
    assert np.array_equal(p[:5], features.column(X, "pnbd_p_no_activity")[:5])
    assert np.array_equal(p[5:], model.predict(held.X)[5:])


def _dormant(rates: tuple[float, ...], per_cut: int = 2000, seed: int = 4) -> churn.Examples:
    """Dormant rows whose Pareto/NBD probability ranks them but overstates churn: the observed
    rate is `rate` times the textbook odds' share, whatever the length of the silence."""
    rng = np.random.default_rng(seed)
    width, column = len(features.FEATURE_NAMES), features.FEATURE_NAMES.index("pnbd_p_no_activity")
    recency = features.FEATURE_NAMES.index("recency_days")
    parts = []
    for rate in rates:
        X = np.full((per_cut, width), np.nan)
        X[:, column] = rng.uniform(0.5, 0.99, per_cut)
        X[:, recency] = churn.POPULATION_DAYS + rng.integers(1, 200, per_cut)
        parts.append((X, rng.random(per_cut) < rate * X[:, column]))
    return churn.Examples.stack(parts)


def test_the_dormant_get_pareto_nbd_recalibrated_on_the_latest_cuts():
    # Only the latest CALIBRATION_CUTS cuts count: an old cut with another churn rate does not.
    dormant = _dormant((0.2, 0.85, 0.85, 0.85, 0.85))
    calibrator = churn.fit_dormant_calibrator(dormant)
    assert calibrator is not None and float(calibrator.coef_[0, 0]) > 0
    train, held = _examples(), _examples(n_cuts=1, seed=9)
    model = churn.train(train, _split(), BASE, train, BASE, dormant)
    assert model.dormant_calibrator is not None
    assert "dormant get Pareto/NBD recalibrated" in model.selection["calibration"]
    fresh = _dormant((0.85,), seed=5)
    X = np.vstack([held.X] * 7)[: len(fresh)]  # 2,100 rows of the held-out features
    X[:, features.FEATURE_NAMES.index("recency_days")] = churn.POPULATION_DAYS + 30
    X[:, features.FEATURE_NAMES.index("pnbd_p_no_activity")] = features.column(fresh.X, "pnbd_p_no_activity")
    p, own = model.predict(X), features.column(X, "pnbd_p_no_activity")
    assert abs(float(p.mean()) - fresh.y.mean()) < 0.02 < abs(float(own.mean()) - fresh.y.mean())
    assert metrics.evaluate(fresh.y, p).auc == pytest.approx(metrics.evaluate(fresh.y, own).auc)
    # Calibrated at a shorter horizon (too few dormant at the training cuts), the report says so.
    shorter = churn.train(train, _split(), BASE, train, BASE, dormant, dormant_horizon_days=15)
    assert "cuts whose 15-day outcomes are known" in shorter.selection["calibration"]
    assert "15-day" not in churn.train(train, _split(), BASE, train, BASE, dormant, 30).selection["calibration"]


def _silent(days: NDArray[np.int64], seed: int) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Dormant rows whose Pareto/NBD probability overstates churn the more, the longer they
    have been silent (as on CDNOW): the observed log-odds are the textbook's minus
    0.8 log(days / 90)."""
    rng = np.random.default_rng(seed)
    X = np.full((len(days), len(features.FEATURE_NAMES)), np.nan)
    X[:, features.FEATURE_NAMES.index("pnbd_p_no_activity")] = p = rng.uniform(0.5, 0.99, len(days))
    X[:, features.FEATURE_NAMES.index("recency_days")] = days
    odds = p / (1.0 - p) * (days / churn.POPULATION_DAYS) ** -0.8
    return X, rng.random(len(days)) < odds / (1.0 + odds)


def test_the_dormant_calibrator_follows_the_length_of_the_silence():
    # Calibrated on cuts whose dormant are young in their silence (91-180 days), it is applied
    # to people silent far longer (181-360), whose churn the textbook overstates more: the
    # silence covariate carries the trend over; the textbook's logit alone would not.
    rng = np.random.default_rng(3)
    dormant = churn.Examples.stack([_silent(rng.integers(91, 181, 3000), seed) for seed in range(4)])
    calibrator = churn.fit_dormant_calibrator(dormant)
    assert calibrator is not None and calibrator.n_features_in_ == len(churn.DORMANT_FEATURES)
    assert float(calibrator.coef_[0, 1]) < 0  # the longer silent churn less than the textbook says
    X, y = _silent(rng.integers(181, 361, 6000), seed=9)
    p = calibrator.predict_proba(churn._dormant_x(X))[:, 1]
    logit_only = LogisticRegression(C=100.0).fit(churn._dormant_x(dormant.X)[:, :1], dormant.y)
    q = logit_only.predict_proba(churn._dormant_x(X)[:, :1])[:, 1]
    # Off by ~0.03 with it (the slope is estimated on a narrower range than it is applied to),
    # by ~0.10 without.
    assert abs(float(p.mean()) - y.mean()) < 0.04 and abs(float(q.mean()) - y.mean()) > 0.08


def test_a_model_pickled_with_a_logit_only_dormant_calibrator_still_predicts():
    train, held = _examples(), _examples(n_cuts=1, seed=9)
    model = churn.train(train, _split(), BASE, train, BASE, _dormant((0.85,) * 4))
    dormant = _dormant((0.85,), seed=5)
    model.dormant_calibrator = LogisticRegression(C=100.0).fit(churn._dormant_x(dormant.X)[:, :1], dormant.y)
    X = np.vstack([held.X] * 7)[: len(dormant)]
    X[:, features.FEATURE_NAMES.index("recency_days")] = churn.POPULATION_DAYS + 30
    X[:, features.FEATURE_NAMES.index("pnbd_p_no_activity")] = features.column(dormant.X, "pnbd_p_no_activity")
    p = churn.load(churn.dump(model)).predict(X)
    expected = model.dormant_calibrator.predict_proba(churn._dormant_x(X)[:, :1])[:, 1]
    assert np.allclose(p, expected)


def test_too_few_or_reversed_dormant_keep_the_textbook_probability():
    assert churn.fit_dormant_calibrator(_dormant((0.85,), per_cut=150)) is None
    assert churn.fit_dormant_calibrator(churn.Examples.stack([])) is None
    reversed_ = _dormant((0.85,) * 4)
    column = features.FEATURE_NAMES.index("pnbd_p_no_activity")
    reversed_.X[:, column] = 1.49 - reversed_.X[:, column]
    assert churn.fit_dormant_calibrator(reversed_) is None


def test_feature_only_candidates_calibrate_on_the_latest_cuts_learned_ones_on_the_latest():
    train = _examples(n_cuts=6)
    # The latest cut alone churns far less than the three before it.
    last = train.cut == 5
    train.y[last] = train.y[last] & (np.arange(int(last.sum())) % 4 == 0)
    fitted = churn.fit_candidates(train, BASE)
    latest_rate = float(train.y[last].mean())
    pooled_rate = float(train.y[train.cut >= 6 - churn.CALIBRATION_CUTS].mean())
    on_latest = train.X[last]
    for name in churn.CANDIDATES:
        mean = float(fitted[name].predict(on_latest).mean())
        if name in churn.FEATURE_ONLY:
            assert mean > (latest_rate + pooled_rate) / 2 - 0.05, name
        else:
            assert abs(mean - latest_rate) < 0.02, name


def _drifted(rate_scale: float, seed: int) -> churn.Examples:
    """Four cuts like `_examples`, each churned row kept with probability `rate_scale`."""
    ex = _examples(n_cuts=4, seed=seed)
    keep = np.random.default_rng(seed).random(len(ex)) < rate_scale
    return churn.Examples(ex.X, ex.y & keep, ex.cut)


FORWARD_CUTS = tuple(date(2026, 4, 1) + timedelta(days=14 * k) for k in range(4))


@pytest.mark.parametrize("candidate", ["rfm_tenure", "boosted", "pareto_nbd"])
def test_predictions_from_the_as_of_date_follow_the_latest_known_outcomes(candidate):
    train = _examples()
    model = churn.fit_candidates(train, BASE, [candidate])[candidate]
    forward_ex = _drifted(0.4, seed=21)  # since the training cuts the churn rate fell
    as_of = date(2026, 6, 1)
    later_base = features.BaseModels(PARAMS, ParetoNbdParams(r=0.9, alpha=10.0, s=0.5, beta=30.0))
    forward = churn.fit_forward(model, forward_ex, FORWARD_CUTS, churn.Examples.stack([]), as_of, later_base)
    assert forward is not None
    model.forward = forward
    # Before the as-of date: the model as judged; from it on: recalibrated, with the later base.
    assert model.for_date(as_of - timedelta(days=1)) is model
    now = model.for_date(as_of)
    assert now.forward is None and now.base is later_base and now.calibrator is forward.calibrator
    assert model.for_date(as_of + timedelta(days=40)).calibrator is forward.calibrator
    used = (
        churn._select(forward_ex, range(4))
        if candidate in churn.FEATURE_ONLY
        else churn._select(forward_ex, [int(forward_ex.cut.max())])
    )
    observed = float(used.y.mean())
    assert abs(float(now.predict(used.X).mean()) - observed) < 0.01
    assert abs(float(model.predict(used.X).mean()) - observed) > 0.05
    doc = forward.to_dict()
    assert doc["from"] == as_of.isoformat() and doc["examples"] == len(used)
    assert doc["calibration"] == "recalibrated on the cuts below" and doc["dormant"] == "as judged"
    assert doc["pareto_nbd"]["beta"] == 30.0 and doc["bgnbd"]["r"] == PARAMS.r
    assert doc["cuts"] == [c.isoformat() for c in FORWARD_CUTS[-forward.calibrated_on :]]
    assert [r["cut"] for r in doc["churn_rate_by_cut"]] == [c.isoformat() for c in FORWARD_CUTS]
    rates = [float(forward_ex.y[forward_ex.cut == k].mean()) for k in range(4)]
    assert [r["churn_rate"] for r in doc["churn_rate_by_cut"]] == [round(r, 4) for r in rates]
    loaded = churn.load(churn.dump(model))
    assert np.array_equal(loaded.for_date(as_of).predict(used.X), now.predict(used.X))


def test_the_dormant_are_recalibrated_on_the_forward_cuts_when_they_hold_enough():
    train = _examples()
    model = churn.fit_candidates(train, BASE, ["rfm_tenure"])["rfm_tenure"]
    judged_dormant = churn.fit_dormant_calibrator(_dormant((0.85,) * 4))
    model.dormant_calibrator = judged_dormant
    day = date(2026, 6, 1)
    forward = churn.fit_forward(model, _drifted(0.4, 3), FORWARD_CUTS, _dormant((0.6,) * 4, seed=8), day, BASE)
    assert forward is not None and forward.to_dict()["dormant"] == "recalibrated on these cuts' dormant"
    assert forward.dormant_calibrator is not judged_dormant
    few = churn.fit_forward(model, _drifted(0.4, 3), FORWARD_CUTS, _dormant((0.6,), per_cut=100), day, BASE)
    assert few is not None and few.dormant_calibrator is judged_dormant and few.to_dict()["dormant"] == "as judged"


def test_a_textbook_model_on_its_own_probability_stays_so_and_too_few_outcomes_keep_the_judged_model():
    train = _examples()
    nobody, day = churn.Examples.stack([]), date(2026, 6, 1)
    own = churn.fit_candidates(train, BASE, ["pareto_nbd"], own=True)["pareto_nbd"]
    none_churned = churn.Examples(train.X, np.zeros(len(train), dtype=np.bool_), train.cut)
    for outcomes in (_drifted(0.4, 2), none_churned):  # nothing to fit: the outcomes do not matter
        forward = churn.fit_forward(own, outcomes, FORWARD_CUTS, nobody, day, BASE)
        assert forward is not None and isinstance(forward.calibrator, churn.OwnProbability)
        doc = forward.to_dict()
        assert doc["calibration"] == "own probability" and doc["cuts"] == [] and doc["examples"] == 0
        assert doc["dormant"] == "as judged" and len(doc["churn_rate_by_cut"]) == 4
    model = churn.fit_candidates(train, BASE, ["rfm_tenure"])["rfm_tenure"]
    assert churn.fit_forward(model, none_churned, FORWARD_CUTS, nobody, day, BASE) is None
    # A model stored before Forward existed has no such attribute: the dataclass default stands.
    del model.__dict__["forward"]
    assert model.for_date(date(2030, 1, 1)) is model


def _aging(tenure: float, n: int, seed: int) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Customers `tenure` days old whose churn depends on their purchase rate and recency, not
    their age: their totals grow with the tenure, their rate does not."""
    rng = np.random.default_rng(seed)
    X = np.full((n, len(features.FEATURE_NAMES)), np.nan)
    rate = rng.gamma(2.0, 0.02, n)  # purchases a day
    count = 1 + rng.poisson(rate * tenure)
    recency = rng.exponential(1.0 / np.maximum(rate, 1e-3)).clip(0, 90)
    for name, values in (
        ("recency_days", recency),
        ("activity_total", count.astype(np.float64)),
        ("total_spend", 20.0 * count),
        ("tenure_days", np.full(n, tenure)),
    ):
        X[:, features.FEATURE_NAMES.index(name)] = values
    logit = -1.0 - 0.9 * np.log(rate * 30) + 0.02 * recency
    return X, rng.random(n) < 1 / (1 + np.exp(-logit))


def test_rfm_with_tenure_stays_calibrated_as_the_customer_base_ages():
    # Calibrated on cuts of customers 90-160 days old, applied to customers a year old: RFM alone
    # reads their larger totals as loyalty and under-predicts churn; with the tenure it does not.
    train = churn.Examples.stack([_aging(90.0 + 14 * k, 3000, seed=k) for k in range(6)])
    X, y = _aging(365.0, 6000, seed=99)
    fitted = churn.fit_candidates(train, BASE, ["rfm_tenure", "rfm_logistic"])
    with_tenure, rfm_only = fitted["rfm_tenure"].predict(X), fitted["rfm_logistic"].predict(X)
    # Off by ~0.04 with it (log totals beside log tenure only approximate a rate), ~0.12 without.
    assert abs(float(with_tenure.mean()) - y.mean()) < 0.05 and float(y.mean()) - float(rfm_only.mean()) > 0.1
    assert fitted["rfm_tenure"].used_features == ["recency_days", "activity_total", "total_spend", "tenure_days"]
    # A model stored when the candidate was RFM alone still loads and predicts on three covariates.
    old = churn.load(churn.dump(fitted["rfm_logistic"]))
    assert old.used_features == ["recency_days", "activity_total", "total_spend"]
    assert np.array_equal(old.predict(X), rfm_only)


def test_cut_weights_give_every_cut_the_same_total():
    ex = churn.Examples.stack(
        [(np.zeros((n, len(features.FEATURE_NAMES))), np.zeros(n, dtype=np.bool_)) for n in (30, 10, 60)]
    )
    w = churn.cut_weights(ex)
    totals = [float(w[ex.cut == k].sum()) for k in range(3)]
    assert totals == pytest.approx([100 / 3] * 3) and float(w.sum()) == pytest.approx(len(ex))
    assert churn.cut_weights(churn.Examples.stack([])).shape == (0,)


def test_fit_refuses_a_single_class():
    ex = _examples(n_cuts=3, per_cut=50)
    ex.y[:] = False
    with pytest.raises(InvalidInputError, match="0 churned"):
        churn.train(ex, _split(3), BASE, ex, BASE)


def test_baselines_and_the_verdict():
    train, held = _examples(), _examples(n_cuts=1, seed=9)
    probs = churn.Baselines.fit(train).predict(held.X)
    assert set(probs) == set(churn.BASELINES)
    assert np.array_equal(probs["bgnbd"], features.column(held.X, "bgnbd_p_no_activity"))
    assert np.array_equal(probs["pareto_nbd"], features.column(held.X, "pnbd_p_no_activity"))
    assert all(((v >= 0) & (v <= 1)).all() for v in probs.values())
    assert churn.verdict(0.8, {"recency": 0.7, "bgnbd": 0.75}).startswith("the model beats every baseline")
    lost = churn.verdict(0.7, {"recency": 0.72, "rfm_logistic": 0.6, "bgnbd": 0.7})
    assert "does NOT beat recency, bgnbd" in lost and "0.700 vs recency 0.720" in lost
    # Shipping a baseline itself ties with it: not a loss, and the verdict says what shipped.
    tie = churn.verdict(0.7, {"recency": 0.6, "pareto_nbd": 0.7}, "pareto_nbd")
    assert tie.startswith("the model beats every baseline") and "ships pareto_nbd itself" in tie


def test_reasons_list_nonzero_details_most_points_first():
    def col(*values: float) -> np.ndarray:
        return np.array(values, dtype=float)

    nan = np.nan
    x = scoring.ScoreInputs(
        days_since_activity=col(40, 3),
        activity_30d=col(1, 8),
        activity_prior_90d=col(12, 24),
        payment_failures_30d=col(1, 0),
        last_payment_failed_at=col(1.0, nan),
        last_payment_succeeded_at=col(nan, nan),
        messages_sent_30d=col(0, 0),
        messages_engaged_30d=col(0, 0),
        messages_sent_prior_30d=col(0, 0),
        messages_engaged_prior_30d=col(0, 0),
        min_nps_90d=col(nan, nan),
        escalated_tickets_90d=col(0, 0),
        negative_reviews_90d=col(0, 0),
    )
    s = scoring.score(x, ScoringKnobs())
    assert predictions.reasons(x, s, 0) == (
        "last activity 40 days ago; 1 visits in the last 30 days vs a usual 4.0; 1 failed payment in the last 30 days"
    )
    assert predictions.reasons(x, s, 1) == ""
    row = predictions.PredictionRow("m-1", "p-1", 0.123456, 70, "High", "a; b")
    assert predictions.prediction_record(row) == ("m-1", "0.1235", "70", "High", "a; b")
    assert predictions.PREDICTION_HEADER == ("user_id", "churn_probability", "at_risk_score", "at_risk_band", "reasons")
