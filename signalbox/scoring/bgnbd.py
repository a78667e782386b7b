"""The BG/NBD model of Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way".

Each customer buys at a Poisson rate ``lambda ~ Gamma(r, alpha)`` while alive and, right after
every *repeat* purchase, drops out for good with probability ``p ~ Beta(a, b)``. A customer is
summarised by three numbers in one time unit (days, weeks…):

* ``x``   - frequency: the number of repeat purchases (purchases after the first one);
* ``t_x`` - recency: time from the first purchase to the last one (0 when ``x == 0``);
* ``T``   - age: time from the first purchase to the end of the observation (the as-of date).

Everything here is numpy/scipy, vectorised over arrays, and computed in log space where the
paper's closed forms would overflow for large ``x``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

FloatArray = NDArray[np.float64]

_LOG_BOUND = 25.0  # log-parameters are kept in [-25, 25] while optimising
_MICROS_PER_DAY = 86_400_000_000


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    """Fitted (or hand-set) BG/NBD parameters; ``alpha`` is in the time unit of the data."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = math.nan  # total (unpenalised) log-likelihood at these parameters
    n_customers: int = 0
    converged: bool = True

    def __post_init__(self) -> None:
        for name in ("r", "alpha", "a", "b"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"BG/NBD parameter {name} must be a finite positive number, got {value!r}")

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.r, self.alpha, self.a, self.b)


class Summary(NamedTuple):
    """Per-customer ``(x, t_x, T)``; NaN in all three for a customer with no purchase by as-of."""

    x: FloatArray
    t_x: FloatArray
    T: FloatArray


# --------------------------------------------------------------------------- inputs


def _as_float(values: ArrayLike, name: str) -> FloatArray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric") from exc
    return arr


def _inputs(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike, *, allow_nan: bool
) -> tuple[FloatArray, FloatArray, FloatArray]:
    xa, ta, Ta = np.broadcast_arrays(_as_float(x, "x"), _as_float(t_x, "t_x"), _as_float(T, "T"))
    missing = np.isnan(xa) | np.isnan(ta) | np.isnan(Ta)
    if missing.any() and not allow_nan:
        raise ValueError(
            "x, t_x and T must not contain NaN (drop customers with no purchase on or before as-of, "
            "which summarize() reports as NaN)"
        )
    ok = ~missing
    xo, to, To = xa[ok], ta[ok], Ta[ok]
    if not (np.isfinite(xo).all() and np.isfinite(to).all() and np.isfinite(To).all()):
        raise ValueError("x, t_x and T must be finite")
    if (xo < 0).any():
        raise ValueError("frequency x must be >= 0")
    if (to < 0).any():
        raise ValueError("recency t_x must be >= 0")
    if (to > To * (1 + 1e-9) + 1e-12).any():
        raise ValueError("recency t_x must not exceed age T")
    return xa, ta, Ta


# --------------------------------------------------------------------------- likelihood


def _loglik_and_grad(
    params: tuple[float, float, float, float],
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
    *,
    with_grad: bool,
) -> tuple[FloatArray, FloatArray | None]:
    """Per-customer log-likelihood (paper eq. 6) and, optionally, d ll / d params (4 x n)."""
    r, alpha, a, b = params
    has = x > 0
    xs = np.where(has, x, 1.0)  # keeps b + x - 1 > 0 in the branch that is masked out anyway
    a1 = gammaln(r + x) - gammaln(r) + r * math.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    log_aT = np.log(alpha + T)
    log_atx = np.log(alpha + t_x)
    a3 = -(r + x) * log_aT
    a4 = np.where(has, math.log(a) - np.log(b + xs - 1.0) - (r + x) * log_atx, -np.inf)
    a34 = np.logaddexp(a3, a4)
    ll = np.asarray(a1 + a2 + a34, dtype=np.float64)
    if not with_grad:
        return ll, None
    w4 = np.exp(a4 - a34)  # weight of the "dropped out right after the last purchase" term
    w3 = 1.0 - w4
    d_r = digamma(r + x) - digamma(r) + math.log(alpha) - w3 * log_aT - w4 * log_atx
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + t_x))
    psi_abx = digamma(a + b + x)
    psi_ab = digamma(a + b)
    d_a = psi_ab - psi_abx + w4 / a
    d_b = digamma(b + x) - digamma(b) + psi_ab - psi_abx - np.where(has, w4 / (b + xs - 1.0), 0.0)
    grad = np.asarray(np.vstack([d_r, d_alpha, d_a, d_b]), dtype=np.float64)
    return ll, grad


def log_likelihood(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
    """Per-customer log-likelihood of ``(x, t_x, T)`` under ``params``."""
    xa, ta, Ta = _inputs(x, t_x, T, allow_nan=False)
    ll, _ = _loglik_and_grad(params.as_tuple(), xa, ta, Ta, with_grad=False)
    return ll


# --------------------------------------------------------------------------- fitting


def _start_values(x: FloatArray, T: FloatArray, weights: FloatArray) -> FloatArray:
    rate = float((weights * x).sum() / max(float((weights * T).sum()), 1e-12))
    r0 = 1.0
    alpha0 = r0 / max(rate, 1e-9)
    return np.log(np.array([r0, alpha0, 1.0, 1.0], dtype=np.float64))


def fit(
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    penalizer: float = 0.0,
    *,
    initial: BgNbdParams | None = None,
) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters for customers ``(x, t_x, T)``.

    Optimises the mean log-likelihood over log-parameters with L-BFGS-B and an analytic
    gradient (Nelder-Mead polish if that does not converge). ``penalizer`` adds
    ``penalizer * (r² + alpha² + a² + b²)`` to the mean negative log-likelihood (L2 shrinkage,
    as in the ``lifetimes`` package); 0 gives the plain MLE.
    """
    if not (math.isfinite(penalizer) and penalizer >= 0):
        raise ValueError("penalizer must be a finite number >= 0")
    xa, ta, Ta = _inputs(x, t_x, T, allow_nan=False)
    xa, ta, Ta = xa.ravel(), ta.ravel(), Ta.ravel()
    if xa.size == 0:
        raise ValueError("cannot fit BG/NBD on zero customers")
    if not (xa > 0).any():
        raise ValueError(
            "cannot fit BG/NBD: no customer has a repeat purchase (x > 0), so the parameters are not identifiable"
        )
    # Identical customers contribute identical terms: fit on the distinct rows with counts.
    rows, counts = np.unique(np.column_stack([xa, ta, Ta]), axis=0, return_counts=True)
    ux, ut, uT = rows[:, 0], rows[:, 1], rows[:, 2]
    w = counts.astype(np.float64)
    n = float(w.sum())

    def objective(logp: FloatArray) -> tuple[float, FloatArray]:
        p = np.exp(logp)
        ll, grad = _loglik_and_grad((p[0], p[1], p[2], p[3]), ux, ut, uT, with_grad=True)
        assert grad is not None
        value = -float((w * ll).sum()) / n + penalizer * float((p**2).sum())
        g = -(grad @ w) / n * p + penalizer * 2.0 * p**2  # chain rule: d/d log p = p * d/dp
        if not math.isfinite(value):
            return 1e300, np.zeros(4)
        return value, np.asarray(g, dtype=np.float64)

    x0 = np.log(np.array(initial.as_tuple())) if initial is not None else _start_values(ux, uT, w)
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * 4
    result: Any = minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000})
    converged = bool(result.success)
    if not converged:
        polish: Any = minimize(
            lambda v: objective(np.asarray(v, dtype=np.float64))[0],
            result.x,
            method="Nelder-Mead",
            options={"maxiter": 20_000, "xatol": 1e-10, "fatol": 1e-12},
        )
        if float(polish.fun) <= float(result.fun):
            result = polish
        converged = bool(polish.success)
    r, alpha, a, b = (float(v) for v in np.exp(result.x))
    ll_total, _ = _loglik_and_grad((r, alpha, a, b), ux, ut, uT, with_grad=False)
    return BgNbdParams(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        log_likelihood=float((w * ll_total).sum()),
        n_customers=int(n),
        converged=converged,
    )


# --------------------------------------------------------------------------- predictions


def _log_odds_dead(params: BgNbdParams, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """log[ a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x) ] for x > 0; -inf for x == 0."""
    r, alpha, a, b = params.as_tuple()
    has = x > 0
    xs = np.where(has, x, 1.0)
    z = math.log(a) - np.log(b + xs - 1.0) + (r + xs) * np.log1p((T - t_x) / (alpha + t_x))
    z = np.where(has, z, -np.inf)
    return np.asarray(np.where(np.isnan(x) | np.isnan(t_x) | np.isnan(T), np.nan, z), dtype=np.float64)


def p_alive(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
    """P(still active | x, t_x, T). Exactly 1 for x == 0: BG/NBD only drops customers right
    after a repeat purchase. NaN inputs (customers without history) give NaN."""
    xa, ta, Ta = _inputs(x, t_x, T, allow_nan=True)
    with np.errstate(invalid="ignore"):
        out = expit(-_log_odds_dead(params, xa, ta, Ta))
    return np.asarray(out, dtype=np.float64)


def expected_purchases(params: BgNbdParams, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
    """E[number of purchases in (T, T + t] | x, t_x, T] (paper eq. 10).

    The paper's ``((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)`` is rewritten with
    Euler's transformation as ``(1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)``, whose series stays
    well-behaved for large ``x``. Undefined at exactly ``a == 1``.
    """
    r, alpha, a, b = params.as_tuple()
    ta_ = _as_float(t, "t")
    if (ta_ < 0).any():
        raise ValueError("horizon t must be >= 0")
    tt, xa, txa, Ta = np.broadcast_arrays(ta_, *_inputs(x, t_x, T, allow_nan=True))
    with np.errstate(invalid="ignore"):
        z = tt / (alpha + Ta + tt)
        c = a + b + xa - 1.0
        tail = np.exp((a - 1.0) * np.log1p(-z)) * hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
        unconditional_alive = c / (a - 1.0) * (1.0 - tail)
        out = unconditional_alive * expit(-_log_odds_dead(params, xa, txa, Ta))
    return np.asarray(out, dtype=np.float64)


# --------------------------------------------------------------------------- summaries


AsOf = np.datetime64 | datetime | date | str | float | int


def _as_of_days(as_of: AsOf) -> tuple[float, bool]:
    """(as-of in days, is_datetime). Datetimes are days since 1970-01-01 (tz-aware → UTC)."""
    if isinstance(as_of, bool):
        raise TypeError("as_of must be a date, datetime, numpy datetime64, ISO string or number of days")
    if isinstance(as_of, int | float | np.integer | np.floating):
        value = float(as_of)
        if not math.isfinite(value):
            raise ValueError("as_of must be finite")
        return value, False
    if isinstance(as_of, datetime) and as_of.tzinfo is not None:
        as_of = as_of.astimezone(UTC).replace(tzinfo=None)
    stamp = np.array(as_of, dtype="datetime64[us]")
    if np.isnat(stamp):
        raise ValueError("as_of must not be NaT")
    return float(stamp.astype(np.int64)) / _MICROS_PER_DAY, True


def _purchase_days(values: ArrayLike, is_datetime: bool, index: int) -> FloatArray:
    raw = np.asarray(values)
    if raw.size == 0:
        return np.zeros(0, dtype=np.float64)
    if is_datetime:
        if raw.dtype.kind not in "MOU":
            raise TypeError(f"customer {index}: as_of is a date, so purchases must be dates (datetime64)")
        stamps = raw.astype("datetime64[us]").ravel()
        if np.isnat(stamps).any():
            raise ValueError(f"customer {index}: purchase dates must not be NaT")
        return stamps.astype(np.int64) / _MICROS_PER_DAY
    if raw.dtype.kind not in "iuf":
        raise TypeError(f"customer {index}: as_of is a number of days, so purchases must be numbers of days")
    days = raw.astype(np.float64).ravel()
    if not np.isfinite(days).all():
        raise ValueError(f"customer {index}: purchase days must be finite")
    return days


def summarize(purchases: Sequence[ArrayLike], as_of: AsOf, *, unit_days: float = 1.0) -> Summary:
    """Turn per-customer purchase times into BG/NBD ``(x, t_x, T)`` as seen at ``as_of``.

    ``purchases[i]`` holds customer i's purchase times: numpy datetime64 values (or dates) when
    ``as_of`` is a date/datetime/ISO string, or float days when ``as_of`` is a number. Only
    purchases at or before ``as_of`` are used. Purchases on the same day (same ``floor`` of the
    day number; calendar day in UTC for dates) count as one purchase, so ``x`` is the number of
    distinct later purchase days. Results are in units of ``unit_days`` days (7 for weeks);
    customers with no purchase by ``as_of`` get NaN in ``x``, ``t_x`` and ``T``.
    """
    if not (math.isfinite(unit_days) and unit_days > 0):
        raise ValueError("unit_days must be a positive number")
    cutoff, is_datetime = _as_of_days(as_of)
    n = len(purchases)
    day_chunks: list[FloatArray] = []
    owner_chunks: list[NDArray[np.int64]] = []
    for i, values in enumerate(purchases):
        days = _purchase_days(values, is_datetime, i)
        days = days[days <= cutoff]  # nothing after as-of is used beyond this comparison
        day_chunks.append(np.floor(days))
        owner_chunks.append(np.full(days.shape, i, dtype=np.int64))
    x = np.full(n, np.nan)
    t_x = np.full(n, np.nan)
    age = np.full(n, np.nan)
    if n == 0:
        return Summary(x, t_x, age)
    days_all = np.concatenate(day_chunks)
    owners = np.concatenate(owner_chunks)
    if days_all.size:
        pairs = np.unique(np.column_stack([owners.astype(np.float64), days_all]), axis=0)
        who = pairs[:, 0].astype(np.int64)
        first = np.full(n, np.inf)
        last = np.full(n, -np.inf)
        np.minimum.at(first, who, pairs[:, 1])
        np.maximum.at(last, who, pairs[:, 1])
        distinct = np.bincount(who, minlength=n)
        seen = distinct > 0
        x[seen] = distinct[seen] - 1
        t_x[seen] = (last[seen] - first[seen]) / unit_days
        age[seen] = (cutoff - first[seen]) / unit_days
    return Summary(x, t_x, age)
