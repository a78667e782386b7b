"""Pareto/NBD: its fit recovers simulated parameters, and its per-customer predictions (P(no
purchase in t), expected purchases) match what simulated customers then do."""

from __future__ import annotations

import numpy as np
import pytest

from signalbox.scoring import pareto_nbd
from signalbox.scoring.pareto_nbd import ParetoNbdParams

TRUE = ParetoNbdParams(r=0.6, alpha=10.0, s=0.7, beta=12.0)  # weeks, near CDNOW's published fit


def _simulate(n: int, T: float, t: float, seed: int) -> tuple[np.ndarray, ...]:
    """(x, t_x, purchases in (T, T + t]) of customers who all first bought at 0."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE.r, 1.0 / TRUE.alpha, n)
    death = rng.exponential(1.0 / rng.gamma(TRUE.s, 1.0 / TRUE.beta, n))
    x, t_x, later = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        gaps = rng.exponential(1.0 / lam[i], 200)
        times = np.cumsum(gaps)
        times = times[times < min(death[i], T + t)]
        past = times[times <= T]
        x[i], t_x[i] = len(past), (past[-1] if len(past) else 0.0)
        later[i] = ((times > T) & (times <= T + t)).sum()
    return x, t_x, later


def test_fit_recovers_the_simulated_parameters():
    x, t_x, _ = _simulate(8000, 39.0, 0.0, seed=1)
    fitted = pareto_nbd.fit(x, t_x, np.full(len(x), 39.0))
    assert fitted.r == pytest.approx(TRUE.r, rel=0.15) and fitted.s == pytest.approx(TRUE.s, rel=0.3)
    assert fitted.alpha == pytest.approx(TRUE.alpha, rel=0.3) and fitted.n_customers == 8000


def test_predictions_match_what_simulated_customers_do():
    T, t = 39.0, 13.0
    x, t_x, later = _simulate(20000, T, t, seed=2)
    T_ = np.full(len(x), T)
    quiet = pareto_nbd.p_no_purchase(TRUE, t, x, t_x, T_)
    expected = pareto_nbd.expected_purchases(TRUE, t, x, t_x, T_)
    assert quiet.mean() == pytest.approx((later == 0).mean(), abs=0.01)
    assert expected.mean() == pytest.approx(later.mean(), rel=0.05)
    for chunk in np.array_split(np.argsort(quiet), 5):  # calibrated within quintiles too
        assert quiet[chunk].mean() == pytest.approx((later[chunk] == 0).mean(), abs=0.03)
    alive = pareto_nbd.p_alive(TRUE, x, t_x, T_)
    assert ((alive > 0) & (alive <= 1)).all() and (quiet >= 1 - alive - 1e-12).all()


def test_customers_without_history_get_nan_and_t_x_equal_t_is_alive():
    x, t_x, T = np.array([np.nan, 3.0, 0.0]), np.array([np.nan, 20.0, 0.0]), np.array([np.nan, 20.0, 0.0])
    alive = pareto_nbd.p_alive(TRUE, x, t_x, T)
    assert np.isnan(alive[0]) and alive[1] == pytest.approx(1.0) and alive[2] == pytest.approx(1.0)
    assert np.isnan(pareto_nbd.p_no_purchase(TRUE, 10.0, x, t_x, T)[0])
    assert np.isnan(pareto_nbd.expected_purchases(TRUE, 10.0, x, t_x, T)[0])
    with pytest.raises(ValueError, match="repeat purchase"):
        pareto_nbd.fit(np.zeros(3), np.zeros(3), np.ones(3))
