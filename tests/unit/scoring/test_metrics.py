"""Model-report metrics on small hand-computed examples."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from signalbox.scoring import metrics
from signalbox.scoring.metrics import CalibrationBin, evaluate


def test_small_example_by_hand() -> None:
    y = [0, 0, 1, 1]
    p = [0.1, 0.4, 0.35, 0.8]
    m = evaluate(y, p)
    # AUC: of the 4 (positive, negative) pairs only (0.35, 0.4) is ordered wrongly.
    assert m.auc == pytest.approx(0.75)
    # Average precision: positives at ranks 1 and 3 -> (1/1 + 2/3) / 2.
    assert m.pr_auc == pytest.approx((1 + 2 / 3) / 2)
    # Top 10 % of 4 rounds up to 1 customer: 0.8, a churner.
    assert m.precision_at_10pct == 1.0
    assert m.brier == pytest.approx((0.1**2 + 0.4**2 + 0.65**2 + 0.2**2) / 4)
    assert m.base_rate == 0.5
    assert m.n == 4
    # 4 customers in 10 deciles: one each in the 4 lowest, sorted by predicted probability.
    assert m.calibration[:4] == (
        CalibrationBin(0.1, 0.0, 1),
        CalibrationBin(0.35, 1.0, 1),
        CalibrationBin(0.4, 0.0, 1),
        CalibrationBin(0.8, 1.0, 1),
    )
    assert m.calibration[4:] == (CalibrationBin(None, None, 0),) * 6
    assert m.worst_decile_gap == pytest.approx(0.65)  # the 0.35 decile that churned


def test_deciles_of_twenty() -> None:
    # Deciles of 2: (0.05, 0.05) ... (0.95, 0.95) in pairs; churners chosen per decile.
    p = np.repeat(np.arange(0.05, 1.0, 0.1), 2)
    y = np.array([0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1])
    m = evaluate(y, p)
    assert [b.n for b in m.calibration] == [2] * 10
    np.testing.assert_allclose([b.predicted for b in m.calibration], np.arange(0.05, 1.0, 0.1))
    assert [b.observed for b in m.calibration] == [0, 0, 0.5, 0, 0.5, 0.5, 1, 0.5, 1, 1]
    # Gaps 0.05 0.15 0.25 0.35 0.05 0.05 0.35 0.25 0.15 0.05 -> worst 0.35.
    assert m.worst_decile_gap == pytest.approx(0.35)
    # Top 10 % = 2 customers, both at 0.95 and both churned.
    assert m.precision_at_10pct == 1.0
    assert m.base_rate == pytest.approx(10 / 20)


def test_precision_at_10pct_breaks_ties_by_position() -> None:
    # 20 customers -> top 2. Three tie at 0.9: the first two in input order are taken.
    p = [0.9, 0.1, 0.9, 0.9] + [0.2] * 16
    assert evaluate([1, 1, 0, 1] + [0] * 16, p).precision_at_10pct == 0.5
    assert evaluate([1, 1, 1, 0] + [0] * 16, p).precision_at_10pct == 1.0
    # 30 customers -> top 3 (0.1 * 30 is not rounded up to 4).
    q = np.linspace(0.01, 0.99, 30)
    y = np.zeros(30, dtype=int)
    y[-3:] = 1
    assert evaluate(y, q).precision_at_10pct == 1.0
    y[-4] = 1
    y[-1] = 0
    assert evaluate(y, q).precision_at_10pct == pytest.approx(2 / 3)


def test_perfect_and_reversed_ranking() -> None:
    y = np.array([0] * 50 + [1] * 50)
    perfect = evaluate(y, np.linspace(0.0, 1.0, 100))
    assert perfect.auc == 1.0
    assert perfect.pr_auc == 1.0
    assert perfect.precision_at_10pct == 1.0
    reversed_ = evaluate(y, np.linspace(1.0, 0.0, 100))
    assert reversed_.auc == 0.0
    assert reversed_.precision_at_10pct == 0.0
    exact = evaluate(y, y.astype(float))
    assert exact.brier == 0.0
    assert exact.worst_decile_gap == 0.0


def test_all_ties_give_chance_auc() -> None:
    m = evaluate([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])
    assert m.auc == 0.5
    assert m.pr_auc == 0.5
    assert m.brier == 0.25


def test_calibration_deciles_sum_to_n() -> None:
    rng = np.random.default_rng(5)
    for n in (3, 10, 11, 99, 1234):
        p = rng.random(n)
        y = (rng.random(n) < p).astype(int)
        y[0], y[1] = 0, 1  # both classes
        m = evaluate(y, p)
        assert len(m.calibration) == 10
        assert sum(b.n for b in m.calibration) == n == m.n
        sizes = [b.n for b in m.calibration]
        assert max(sizes) - min(sizes) <= 1
        filled = [b for b in m.calibration if b.n]
        assert [b.predicted for b in filled] == sorted(b.predicted for b in filled)
        weighted = sum(b.observed * b.n for b in filled)
        assert weighted == pytest.approx(y.sum())


def test_to_dict_is_the_report_json_shape() -> None:
    d = evaluate([True, False, True, False, False], [0.9, 0.2, 0.6, 0.4, 0.1]).to_dict()
    assert list(d) == [
        "auc", "pr_auc", "precision_at_10pct", "brier", "calibration", "worst_decile_gap", "base_rate", "n",
    ]  # fmt: skip
    assert len(d["calibration"]) == 10
    assert d["calibration"][0] == {"predicted": 0.1, "observed": 0.0, "n": 1}
    assert d["calibration"][9] == {"predicted": None, "observed": None, "n": 0}
    assert d["n"] == 5 and d["base_rate"] == 0.4 and d["auc"] == 1.0
    assert json.loads(json.dumps(d)) == d
    assert all(type(d[k]) is float for k in ("auc", "pr_auc", "precision_at_10pct", "brier", "worst_decile_gap"))


def test_single_class_raises_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"single class: all 3 examples are negative \(0\)"):
        evaluate([0, 0, 0], [0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match=r"single class: all 2 examples are positive \(1\)"):
        evaluate([1, 1], [0.1, 0.5])


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1], [0.5], "same length"),
        ([], [], "zero examples"),
        ([0, 2], [0.1, 0.2], "0/1"),
        ([0, 1], [0.1, 1.2], r"\[0, 1\]"),
        ([0, 1], [0.1, float("nan")], "finite"),
    ],
)
def test_bad_input_raises(y: list[float], p: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(y, p)


# --------------------------------------------------------------------------- DeLong's test


def _delong_brute_force(y, a, b):
    """DeLong's variance straight from the definition: O(m n) placement values."""
    out = []
    for s in (a, b):
        pos, neg = s[y == 1], s[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        out.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    (auc_a, v10_a, v01_a), (auc_b, v10_b, v01_b) = out
    m, n = len(v10_a), len(v01_a)
    var = np.var(v10_a - v10_b, ddof=1) / m + np.var(v01_a - v01_b, ddof=1) / n
    z = (auc_a - auc_b) / np.sqrt(var)
    return auc_a, auc_b, np.sqrt(var), math.erfc(abs(z) / math.sqrt(2))


def test_delong_matches_the_quadratic_definition_with_ties():
    rng = np.random.default_rng(5)
    y = (rng.random(400) < 0.3).astype(float)
    a = np.round(y * 0.8 + rng.normal(size=400), 1)  # rounded: many ties
    b = np.round(y * 0.4 + rng.normal(size=400), 1)
    got = metrics.delong(y, a, b)
    auc_a, auc_b, se, p = _delong_brute_force(y, a, b)
    assert got.auc_a == pytest.approx(auc_a) and got.auc_a == pytest.approx(roc_auc_score(y, a))
    assert got.auc_b == pytest.approx(auc_b) and got.difference == pytest.approx(auc_a - auc_b)
    assert got.std_error == pytest.approx(se) and got.p_value == pytest.approx(p)
    assert got.p_value < 0.05  # a clearly stronger signal is told apart


def test_delong_sees_no_difference_between_one_ranking_and_itself():
    y = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    s = np.array([0.1, 0.9, 0.3, 0.4, 0.8, 0.2, 0.5, 0.7])
    same = metrics.delong(y, s, s * 10 - 3)  # monotone transform: same ranking
    assert same.difference == 0 and same.p_value == 1.0
    with pytest.raises(ValueError, match="both classes"):
        metrics.delong(np.zeros(8), s, s)
