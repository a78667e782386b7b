"""The Pareto/NBD model (Schmittlein, Morrison & Colombo 1987), fitted the way Fader & Hardie's
note "A Note on Deriving the Pareto/NBD Model and Related Expressions" (2005) writes it, for the
churn-quality benchmark's baseline. Used only by bench/; checked against the published CDNOW
parameters (r 0.55, alpha 10.58, s 0.61, beta 11.67, LL -9595.0 on the 2,357-customer sample in
weeks) by `python bench/pareto_nbd.py`.

While alive a customer buys at a Poisson rate ``lambda ~ Gamma(r, alpha)``; the lifetime is
exponential with rate ``mu ~ Gamma(s, beta)``. A customer is ``(x, t_x, T)`` as in BG/NBD.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1

FloatArray = NDArray[np.float64]
PUBLISHED_CDNOW = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67, "log_likelihood": -9595.0}


@dataclass(frozen=True)
class ParetoNbdParams:
    r: float
    alpha: float
    s: float
    beta: float
    log_likelihood: float = math.nan


def _log_a0_terms(
    p: tuple[float, float, float, float], x: FloatArray, t_x: FloatArray, T: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """log of the two terms whose difference is A0 (the note's eq. 19/20, by which of alpha and
    beta is larger, so the hypergeometric argument stays in [0, 1))."""
    r, alpha, s, beta = p
    big, small_shape = (alpha, s + 1.0) if alpha >= beta else (beta, r + x)
    diff = abs(alpha - beta)
    a = r + s + x
    with np.errstate(divide="ignore"):
        first = np.log(hyp2f1(a, small_shape, a + 1.0, diff / (big + t_x))) - a * np.log(big + t_x)
        second = np.log(hyp2f1(a, small_shape, a + 1.0, diff / (big + T))) - a * np.log(big + T)
    return first, second


def _pieces(
    p: tuple[float, float, float, float], x: FloatArray, t_x: FloatArray, T: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """(log of the alive-at-T term, log of (s/(r+s+x)) * A0)."""
    r, alpha, s, beta = p
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    first, second = _log_a0_terms(p, x, t_x, T)
    # log(e^first - e^second), first >= second; -inf when they are equal (t_x == T).
    with np.errstate(divide="ignore", invalid="ignore"):
        log_a0 = first + np.log(-np.expm1(second - first))
    return alive, np.log(s / (r + s + x)) + log_a0


def log_likelihood(p: tuple[float, float, float, float], x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    r, alpha, s, beta = p
    alive, dead = _pieces(p, x, t_x, T)
    head = gammaln(r + x) - gammaln(r) + r * math.log(alpha) + s * math.log(beta)
    return np.asarray(head + np.logaddexp(alive, dead), dtype=np.float64)


def fit(x: FloatArray, t_x: FloatArray, T: FloatArray) -> ParetoNbdParams:
    """Maximum likelihood over log-parameters (Nelder-Mead: four parameters, smooth surface),
    on the distinct (x, t_x, T) rows weighted by how many customers share them."""
    rows, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    ux, ut, uT, w = rows[:, 0], rows[:, 1], rows[:, 2], counts.astype(np.float64)

    def objective(logp: FloatArray) -> float:
        p = tuple(float(v) for v in np.exp(logp))
        value = -float((w * log_likelihood(p, ux, ut, uT)).sum()) / float(w.sum())  # type: ignore[arg-type]
        return value if math.isfinite(value) else 1e300

    rate = float((w * ux).sum() / (w * uT).sum())
    start = np.log([1.0, 1.0 / max(rate, 1e-9), 1.0, float(np.mean(uT))])
    options = {"maxiter": 20_000, "xatol": 1e-8, "fatol": 1e-12}
    result: Any = minimize(objective, start, method="Nelder-Mead", options=options)
    r, alpha, s, beta = (float(v) for v in np.exp(result.x))
    ll = float((w * log_likelihood((r, alpha, s, beta), ux, ut, uT)).sum())
    return ParetoNbdParams(r, alpha, s, beta, ll)


def p_alive(params: ParetoNbdParams, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    p = (params.r, params.alpha, params.s, params.beta)
    alive, dead = _pieces(p, x, t_x, T)
    return np.asarray(1.0 / (1.0 + np.exp(dead - alive)), dtype=np.float64)


_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)


def p_no_purchase(params: ParetoNbdParams, x: FloatArray, t_x: FloatArray, T: FloatArray, t: float) -> FloatArray:
    """P(no purchase in (T, T + t] | x, t_x, T).

    Dead at T: no purchase. Alive at T: given the history, lambda ~ Gamma(r + x, alpha + T) and
    mu ~ Gamma(s, beta + T), independent, and with exponential clocks "no purchase in t" is
    "neither clock rings in t" or "death rings first at u < t":
        E[e^{-(lambda+mu) t}] + int_0^t E[mu e^{-mu u}] E[e^{-lambda u}] du,
    both expectations in closed form; the integral by 64-point Gauss-Legendre."""
    a, b = params.alpha + T, params.beta + T
    shape = params.r + x
    survive = np.exp(shape * np.log(a / (a + t)) + params.s * np.log(b / (b + t)))
    u = (_NODES + 1.0) * t / 2.0  # nodes mapped to [0, t]
    a2, b2, shape2 = a[:, None], b[:, None], shape[:, None]
    integrand = (params.s / b2) * (b2 / (b2 + u)) ** (params.s + 1.0) * (a2 / (a2 + u)) ** shape2
    death_first = (integrand * _WEIGHTS).sum(axis=1) * t / 2.0
    alive = p_alive(params, x, t_x, T)
    return np.asarray(np.clip(1.0 - alive + alive * (survive + death_first), 0.0, 1.0), dtype=np.float64)


def check_against_published(cache_dir: str | None = None) -> tuple[ParetoNbdParams, bool]:
    """Fit the CDNOW 1/10 sample's calibration summary (weeks, calibration ends 1997-09-30);
    True when every estimate rounds to the published value (2 decimals, LL to 1)."""
    from datasets import cdnow_published_summary

    rows = np.array([row[1:] for row in cdnow_published_summary(cache_dir)], dtype=np.float64)
    fitted = fit(rows[:, 0], rows[:, 1], rows[:, 2])
    ok = all(abs(getattr(fitted, k) - PUBLISHED_CDNOW[k]) <= 0.005 for k in ("r", "alpha", "s", "beta"))
    return fitted, ok and abs(fitted.log_likelihood - PUBLISHED_CDNOW["log_likelihood"]) <= 0.05


if __name__ == "__main__":
    fitted, ok = check_against_published()
    print(fitted, "matches" if ok else "does NOT match", PUBLISHED_CDNOW)
    sys.exit(0 if ok else 1)
