"""BG/NBD: reproduce Fader, Hardie & Lee (2005) on CDNOW, recover simulated parameters, and
check the closed forms (P(alive), conditional expectation) and the as-of summary."""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import check_grad
from scipy.special import hyp2f1

from bench import datasets
from bench.datasets import DatasetUnavailableError, cdnow_published_summary, cdnow_transactions
from signalbox.scoring import bgnbd
from signalbox.scoring.bgnbd import BgNbdParams

PAPER = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
PAPER_LL = -9582.4
CALIBRATION_END = np.datetime64("1997-09-30")  # 39 weeks after 1997-01-01


# --------------------------------------------------------------------------- CDNOW


@pytest.fixture(scope="module")
def wheel() -> Path:
    """The cached lifetimes wheel carrying CDNOW (downloaded with pip on first use)."""
    try:
        return datasets.lifetimes_wheel()
    except DatasetUnavailableError as exc:
        pytest.skip(f"CDNOW could not be downloaded from PyPI (package {datasets.LIFETIMES_REQUIREMENT}): {exc}")


@pytest.fixture(scope="module")
def cdnow(wheel: Path) -> bgnbd.Summary:
    """The 2,357-customer CDNOW cohort, calibration period, in weeks."""
    rows = cdnow_transactions(wheel.parent, sample=True)
    by_customer: dict[str, list[date]] = defaultdict(list)
    for customer_id, day, _amount in rows:  # file order = the paper's customer order
        by_customer[customer_id].append(day)
    purchases = [np.array(days, dtype="datetime64[D]") for days in by_customer.values()]
    return bgnbd.summarize(purchases, CALIBRATION_END, unit_days=7.0)


def test_cdnow_summary_matches_the_published_one(wheel: Path, cdnow: bgnbd.Summary) -> None:
    published = np.array(cdnow_published_summary(wheel.parent), dtype=np.float64)
    assert len(cdnow.x) == len(published) == 2357
    np.testing.assert_array_equal(cdnow.x, published[:, 1])
    np.testing.assert_allclose(cdnow.t_x, published[:, 2], atol=0.0051)  # published rounds to 2 decimals
    np.testing.assert_allclose(cdnow.T, published[:, 3], atol=0.0051)


def test_cdnow_csv_export(wheel: Path, tmp_path: Path) -> None:
    path = tmp_path / "cdnow.csv"
    assert datasets.cdnow_to_csv(path, wheel.parent) == 69_659
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["customer_id", "date", "amount"]
    assert rows[0] == {"customer_id": "00001", "date": "1997-01-01", "amount": "11.77"}
    assert len({row["customer_id"] for row in rows}) == 23_570
    assert min(row["date"] for row in rows) == "1997-01-01" and max(row["date"] for row in rows) == "1998-06-30"
    assert len(cdnow_transactions(wheel.parent, sample=True)) == 6_919


def test_download_failure_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    with pytest.raises(DatasetUnavailableError, match="could not run"):
        cdnow_transactions(tmp_path / "cache")


def test_cdnow_fit_reproduces_the_paper(cdnow: bgnbd.Summary) -> None:
    fitted = bgnbd.fit(cdnow.x, cdnow.t_x, cdnow.T)
    assert fitted.converged
    assert fitted.n_customers == 2357
    for name in ("r", "alpha", "a", "b"):
        got, want = getattr(fitted, name), getattr(PAPER, name)
        assert got == pytest.approx(want, rel=0.02, abs=0.01), name
    assert fitted.log_likelihood == pytest.approx(PAPER_LL, abs=0.5)
    # The paper's worked example: x=2, t_x=30.43, T=38.86 expects 1.226 purchases in 39 weeks.
    assert float(bgnbd.expected_purchases(fitted, 39.0, 2, 30.43, 38.86)) == pytest.approx(1.226, abs=0.002)


# --------------------------------------------------------------------------- simulation


def simulate(
    rng: np.random.Generator, params: BgNbdParams, T: np.ndarray, horizon: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """BG/NBD customers first buying at 0: (x, t_x, alive at T, purchases in (T, T+horizon])."""
    n = T.size
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    later = np.zeros(n)
    clock = np.zeros(n)
    dropped_at = np.full(n, np.inf)
    running = np.ones(n, dtype=bool)
    while running.any():
        idx = np.flatnonzero(running)
        clock[idx] += rng.exponential(1.0 / lam[idx])
        past_end = clock[idx] > T[idx] + horizon
        running[idx[past_end]] = False
        buyers = idx[~past_end]
        in_calibration = clock[buyers] <= T[buyers]
        x[buyers[in_calibration]] += 1
        t_x[buyers[in_calibration]] = clock[buyers[in_calibration]]
        later[buyers[~in_calibration]] += 1
        drop = buyers[rng.random(buyers.size) < p[buyers]]
        dropped_at[drop] = clock[drop]
        running[drop] = False
    return x, t_x, dropped_at > T, later


TRUE = BgNbdParams(r=0.9, alpha=6.0, a=1.6, b=3.5)


def test_fit_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(20240601)
    T = rng.uniform(52.0, 104.0, 20_000)
    x, t_x, _alive, _later = simulate(rng, TRUE, T)
    fitted = bgnbd.fit(x, t_x, T)
    assert fitted.converged
    for name in ("r", "alpha", "a", "b"):
        assert getattr(fitted, name) == pytest.approx(getattr(TRUE, name), rel=0.10), name
    assert fitted.log_likelihood >= float(bgnbd.log_likelihood(TRUE, x, t_x, T).sum())
    # Same answer in days instead of weeks: only alpha scales.
    in_days = bgnbd.fit(x, t_x * 7, T * 7)
    assert in_days.alpha == pytest.approx(fitted.alpha * 7, rel=1e-3)
    assert in_days.r == pytest.approx(fitted.r, rel=1e-3)
    assert in_days.a == pytest.approx(fitted.a, rel=1e-3)
    assert in_days.b == pytest.approx(fitted.b, rel=1e-3)


def test_p_alive_and_expected_purchases_match_simulation() -> None:
    rng = np.random.default_rng(7)
    T = rng.uniform(20.0, 60.0, 40_000)
    horizon = 26.0
    x, t_x, alive, later = simulate(rng, TRUE, T, horizon)
    prob = bgnbd.p_alive(TRUE, x, t_x, T)
    assert prob.mean() == pytest.approx(alive.mean(), abs=0.005)
    repeaters = x > 0
    assert prob[repeaters].mean() == pytest.approx(alive[repeaters].mean(), abs=0.005)
    expected = bgnbd.expected_purchases(TRUE, horizon, x, t_x, T)
    assert expected.sum() == pytest.approx(later.sum(), rel=0.03)
    heavy = x >= 5
    assert expected[heavy].sum() == pytest.approx(later[heavy].sum(), rel=0.05)


def test_penalizer_shrinks_parameters() -> None:
    rng = np.random.default_rng(3)
    T = rng.uniform(52.0, 104.0, 3_000)
    x, t_x, _alive, _later = simulate(rng, TRUE, T)
    plain = bgnbd.fit(x, t_x, T)
    shrunk = bgnbd.fit(x, t_x, T, penalizer=0.1)
    assert sum(v**2 for v in shrunk.as_tuple()) < sum(v**2 for v in plain.as_tuple())
    assert shrunk.log_likelihood < plain.log_likelihood


def test_analytic_gradient_matches_finite_differences() -> None:
    x = np.array([0.0, 1.0, 2.0, 7.0, 40.0])
    t_x = np.array([0.0, 3.0, 10.0, 30.0, 38.0])
    T = np.array([5.0, 20.0, 39.0, 39.0, 39.0])
    for i in range(x.size):

        def value(p: np.ndarray, i: int = i) -> float:
            ll, _ = bgnbd._loglik_and_grad(tuple(p), x[i : i + 1], t_x[i : i + 1], T[i : i + 1], with_grad=False)
            return float(ll[0])

        def grad(p: np.ndarray, i: int = i) -> np.ndarray:
            _, g = bgnbd._loglik_and_grad(tuple(p), x[i : i + 1], t_x[i : i + 1], T[i : i + 1], with_grad=True)
            assert g is not None
            return g[:, 0]

        point = np.array([0.5, 4.0, 0.8, 2.4])
        assert check_grad(value, grad, point, epsilon=1e-7) < 1e-4


# --------------------------------------------------------------------------- closed forms


def test_p_alive_is_one_without_repeat_purchases() -> None:
    # BG/NBD only lets a customer drop out right after a repeat purchase, so x = 0 means alive.
    prob = bgnbd.p_alive(PAPER, np.zeros(3), np.zeros(3), np.array([1.0, 39.0, 500.0]))
    np.testing.assert_array_equal(prob, 1.0)


def test_p_alive_formula_and_direction() -> None:
    x, t_x, T = 2.0, 30.43, 38.86
    r, alpha, a, b = PAPER.as_tuple()
    by_hand = 1.0 / (1.0 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))
    assert float(bgnbd.p_alive(PAPER, x, t_x, T)) == pytest.approx(by_hand, rel=1e-12)
    # Longer silence since the last purchase: less likely alive.
    assert np.all(np.diff(bgnbd.p_alive(PAPER, 5, np.array([38.0, 30.0, 20.0, 5.0]), 39.0)) < 0)
    # Last purchase right at the end: the only way to be dead is to have dropped just now.
    assert float(bgnbd.p_alive(PAPER, 5, 39.0, 39.0)) == pytest.approx(1 / (1 + PAPER.a / (PAPER.b + 4)))


def test_large_frequencies_are_stable() -> None:
    x = np.array([200.0, 2_000.0, 20_000.0, 2_000.0])
    t_x = np.array([38.9, 38.99, 38.999, 1.0])  # silence short relative to the buying rate
    T = np.full(4, 39.0)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        prob = bgnbd.p_alive(PAPER, x, t_x, T)
        ll = bgnbd.log_likelihood(PAPER, x, t_x, T)
        expected = bgnbd.expected_purchases(PAPER, 0.1, x, t_x, T)
    assert np.isfinite(prob).all() and np.isfinite(ll).all() and np.isfinite(expected).all()
    assert prob[:3].min() > 0.9 and prob[3] < 1e-100
    # A very frequent buyer who is alive keeps buying at about (r + x) / (alpha + T).
    rate = (PAPER.r + x[:3]) / (PAPER.alpha + T[:3])
    np.testing.assert_allclose(expected[:3] / (0.1 * prob[:3] * rate), 1.0, rtol=0.01)


def test_expected_purchases_matches_the_paper_formula() -> None:
    # Eq. 10 with the original hypergeometric term, for moderate x where it is accurate.
    r, alpha, a, b = PAPER.as_tuple()
    for x, t_x, T, t in [(0.0, 0.0, 39.0, 39.0), (1.0, 5.0, 30.0, 10.0), (6.0, 35.0, 39.0, 52.0)]:
        z = t / (alpha + T + t)
        numerator = (
            (a + b + x - 1)
            / (a - 1)
            * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z))
        )
        dead_odds = a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x) if x > 0 else 0.0
        assert float(bgnbd.expected_purchases(PAPER, t, x, t_x, T)) == pytest.approx(
            numerator / (1 + dead_odds), rel=1e-9
        )


def test_expected_purchases_increases_with_horizon() -> None:
    horizons = np.array([0.0, 1.0, 4.0, 13.0, 26.0, 52.0, 104.0, 520.0])
    for x, t_x in [(0, 0.0), (1, 10.0), (4, 35.0), (4, 5.0), (50, 38.0)]:
        values = bgnbd.expected_purchases(PAPER, horizons, x, t_x, 39.0)
        assert values[0] == 0.0
        assert np.all(np.diff(values) > 0), (x, t_x, values)
    # Instantaneous rate: P(alive) * (r + x) / (alpha + T).
    for x, t_x in [(0, 0.0), (3, 20.0), (500, 38.0)]:
        slope = float(bgnbd.expected_purchases(PAPER, 1e-6, x, t_x, 39.0)) / 1e-6
        rate = float(bgnbd.p_alive(PAPER, x, t_x, 39.0)) * (PAPER.r + x) / (PAPER.alpha + 39.0)
        assert slope == pytest.approx(rate, rel=1e-4)


def test_vectorised_and_broadcast() -> None:
    x = np.array([[0, 1], [2, 3]], dtype=float)
    prob = bgnbd.p_alive(PAPER, x, x * 5, 39.0)
    assert prob.shape == (2, 2)
    assert bgnbd.expected_purchases(PAPER, np.array([[10.0], [20.0]]), x, x * 5, 39.0).shape == (2, 2)
    assert float(prob[1, 1]) == pytest.approx(float(bgnbd.p_alive(PAPER, 3, 15, 39)))


def test_customers_without_history_give_nan() -> None:
    s = bgnbd.summarize([np.array([1.0, 5.0]), np.array([]), np.array([30.0])], 10.0)
    prob = bgnbd.p_alive(PAPER, s.x, s.t_x, s.T)
    expected = bgnbd.expected_purchases(PAPER, 7.0, s.x, s.t_x, s.T)
    assert np.isfinite(prob[0]) and np.isfinite(expected[0])
    assert np.isnan(prob[1:]).all() and np.isnan(expected[1:]).all()


def test_fit_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="no customer has a repeat purchase"):
        bgnbd.fit([0, 0], [0, 0], [10, 20])
    with pytest.raises(ValueError, match="NaN"):
        bgnbd.fit([1, np.nan], [1, np.nan], [10, np.nan])
    with pytest.raises(ValueError, match="must not exceed"):
        bgnbd.fit([1, 2], [11, 3], [10, 20])
    with pytest.raises(ValueError, match=">= 0"):
        bgnbd.fit([-1, 2], [0, 3], [10, 20])
    with pytest.raises(ValueError, match="positive"):
        BgNbdParams(r=0.0, alpha=1.0, a=1.0, b=1.0)


# --------------------------------------------------------------------------- summarize


def test_summarize_dates() -> None:
    purchases = [
        np.array(["2024-01-01", "2024-01-01", "2024-01-15", "2024-02-01"], dtype="datetime64[D]"),
        np.array(["2024-01-20T08:00", "2024-01-20T20:00"], dtype="datetime64[m]"),  # same day: one purchase
        np.array([], dtype="datetime64[D]"),  # never bought
        np.array(["2024-03-01"], dtype="datetime64[D]"),  # first purchase after as-of
        [date(2024, 1, 10), date(2024, 1, 31)],  # plain dates work too; as-of day is included
    ]
    s = bgnbd.summarize(purchases, date(2024, 1, 31))
    np.testing.assert_array_equal(s.x[[0, 1, 4]], [1, 0, 1])
    np.testing.assert_array_equal(s.t_x[[0, 1, 4]], [14, 0, 21])
    np.testing.assert_array_equal(s.T[[0, 1, 4]], [30, 11, 21])
    assert np.isnan(s.x[[2, 3]]).all() and np.isnan(s.T[[2, 3]]).all()
    weeks = bgnbd.summarize(purchases, "2024-01-31", unit_days=7)
    assert weeks.T[0] == pytest.approx(30 / 7)
    aware = bgnbd.summarize(purchases, datetime(2024, 1, 31, 23, 0, tzinfo=UTC))
    assert aware.T[0] == pytest.approx(30 + 23 / 24)


def test_summarize_float_days() -> None:
    s = bgnbd.summarize([np.array([3.2, 3.9, 10.5, 40.0]), np.array([0.0])], 20.0)
    np.testing.assert_array_equal(s.x, [1, 0])  # 3.2 and 3.9 fall on day 3
    np.testing.assert_array_equal(s.t_x, [7, 0])
    np.testing.assert_array_equal(s.T, [17, 20])
    with pytest.raises(TypeError, match="dates"):
        bgnbd.summarize([np.array([1.0])], "2024-01-01")
    with pytest.raises(TypeError, match="days"):
        bgnbd.summarize([np.array(["2024-01-01"], dtype="datetime64[D]")], 5.0)


def test_summarize_never_reads_past_as_of() -> None:
    rng = np.random.default_rng(11)
    as_of = np.datetime64("2024-06-30")
    base = [np.sort(np.datetime64("2024-01-01") + rng.integers(0, 182, size=rng.integers(0, 12))) for _ in range(300)]
    reference = bgnbd.summarize(base, as_of)
    # Whatever happens after as-of (more purchases, out of order, far future) changes nothing.
    future = [
        np.concatenate([as_of + rng.integers(1, 400, size=rng.integers(0, 5)), days, [as_of + np.timedelta64(1, "D")]])
        for days in base
    ]
    changed = bgnbd.summarize([rng.permutation(days) for days in future], as_of)
    for got, want in zip(changed, reference, strict=True):
        np.testing.assert_array_equal(got, want)
    # A purchase one microsecond after as-of (a datetime) is already the future.
    s = bgnbd.summarize([np.array(["2024-06-01", "2024-06-30T00:00:00.000001"], dtype="datetime64[us]")], as_of)
    assert s.x[0] == 0 and s.T[0] == 29
