"""Evaluation of a probability-of-churn model, shared by every model report.

``evaluate(y_true, p)`` gives ranking quality (ROC AUC, PR AUC = average precision, precision
in the top 10 %), probability quality (Brier score) and calibration per decile. Deciles are
equal-count groups of customers sorted by predicted probability (lowest first): with n
customers, decile k holds the ``np.array_split`` share of the sorted order, so sizes differ by
at most one and a decile is empty only when n < 10. Ties in the predicted probability are
broken by input position (earlier first), so every number is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

N_DECILES = 10
TOP_FRACTION = 0.10


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    """One decile: mean predicted probability, observed positive rate, size (None when empty)."""

    predicted: float | None
    observed: float | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"predicted": self.predicted, "observed": self.observed, "n": self.n}


@dataclass(frozen=True, slots=True)
class Metrics:
    auc: float
    pr_auc: float
    precision_at_10pct: float
    brier: float
    calibration: tuple[CalibrationBin, ...]  # 10 deciles, lowest predicted probability first
    worst_decile_gap: float
    base_rate: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "auc": self.auc,
            "pr_auc": self.pr_auc,
            "precision_at_10pct": self.precision_at_10pct,
            "brier": self.brier,
            "calibration": [b.to_dict() for b in self.calibration],
            "worst_decile_gap": self.worst_decile_gap,
            "base_rate": self.base_rate,
            "n": self.n,
        }


def _validate(y_true: ArrayLike, p: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    y = np.asarray(y_true)
    s = np.asarray(p, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError("y_true and p must be one-dimensional")
    if y.shape != s.shape:
        raise ValueError(f"y_true and p must have the same length, got {y.shape[0]} and {s.shape[0]}")
    if y.size == 0:
        raise ValueError("cannot evaluate a model on zero examples")
    try:
        yf = y.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError("y_true must hold 0/1 (or False/True) labels") from exc
    if not np.isin(yf, (0.0, 1.0)).all():
        raise ValueError("y_true must hold 0/1 (or False/True) labels")
    if not np.isfinite(s).all():
        raise ValueError("predicted probabilities must be finite (no NaN or inf)")
    if (s < 0).any() or (s > 1).any():
        raise ValueError("predicted probabilities must lie in [0, 1]")
    positives = int(yf.sum())
    if positives in (0, yf.size):
        only = "positive (1)" if positives else "negative (0)"
        raise ValueError(
            f"y_true has a single class: all {yf.size} examples are {only}; AUC, PR AUC and "
            "calibration need both churned and retained examples (widen the evaluation window)"
        )
    return yf, s


def precision_at_fraction(y: NDArray[np.float64], s: NDArray[np.float64], fraction: float = TOP_FRACTION) -> float:
    """Share of positives among the ``ceil(fraction * n)`` (at least 1) highest scores; ties
    are broken by input position, earlier first."""
    k = max(1, math.ceil(fraction * y.size - 1e-9))
    order = np.argsort(-s, kind="stable")
    return float(y[order[:k]].mean())


def calibration_deciles(y: NDArray[np.float64], s: NDArray[np.float64]) -> tuple[CalibrationBin, ...]:
    order = np.argsort(s, kind="stable")
    bins: list[CalibrationBin] = []
    for chunk in np.array_split(order, N_DECILES):
        if chunk.size == 0:
            bins.append(CalibrationBin(predicted=None, observed=None, n=0))
        else:
            bins.append(
                CalibrationBin(predicted=float(s[chunk].mean()), observed=float(y[chunk].mean()), n=int(chunk.size))
            )
    return tuple(bins)


def evaluate(y_true: ArrayLike, p: ArrayLike) -> Metrics:
    """All report metrics for labels ``y_true`` (1 = churned) and probabilities ``p``.

    Raises ValueError for mismatched or empty inputs, labels other than 0/1, probabilities
    outside [0, 1], and when ``y_true`` has a single class.
    """
    y, s = _validate(y_true, p)
    calibration = calibration_deciles(y, s)
    gaps = [abs(b.predicted - b.observed) for b in calibration if b.predicted is not None and b.observed is not None]
    return Metrics(
        auc=float(roc_auc_score(y, s)),
        pr_auc=float(average_precision_score(y, s)),
        precision_at_10pct=precision_at_fraction(y, s),
        brier=float(brier_score_loss(y, s)),
        calibration=calibration,
        worst_decile_gap=float(max(gaps)),
        base_rate=float(y.mean()),
        n=int(y.size),
    )


# --------------------------------------------------------------------------- DeLong's test


@dataclass(frozen=True, slots=True)
class DeLong:
    """DeLong, DeLong & Clarke-Pearson (1988): two AUCs on the same people compared with the
    covariance of their structural components; ``p_value`` is two-sided for "equal AUCs"."""

    auc_a: float
    auc_b: float
    difference: float  # auc_a - auc_b
    std_error: float
    z: float
    p_value: float


FloatPair = tuple[NDArray[np.float64], NDArray[np.float64]]


def _midranks(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Ranks 1..n with ties given their average rank, in O(n log n)."""
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    # Every run of equal values gets the mean of the positions it spans.
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], ordered.size]
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(x.size)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def _structural(y: NDArray[np.float64], s: NDArray[np.float64]) -> tuple[float, FloatPair]:
    """(AUC, (V10 over positives, V01 over negatives)) by Sun & Xu's (2014) mid-rank form."""
    pos, neg = s[y == 1], s[y == 0]
    m, n = pos.size, neg.size
    tx, ty, tz = _midranks(pos), _midranks(neg), _midranks(np.concatenate([pos, neg]))
    auc = float((tz[:m].sum() - m * (m + 1) / 2.0) / (m * n))
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    return auc, (v10, v01)


def delong(y_true: ArrayLike, p_a: ArrayLike, p_b: ArrayLike) -> DeLong:
    """Is model a's AUC different from model b's on the same labelled people? O(n log n).

    Scores only need to rank (days since last activity, a points total): any real numbers."""
    y = np.asarray(y_true, dtype=np.float64)
    a, b = np.asarray(p_a, dtype=np.float64), np.asarray(p_b, dtype=np.float64)
    if not (y.ndim == a.ndim == b.ndim == 1 and y.size == a.size == b.size):
        raise ValueError("y_true and both scores must be one-dimensional and of the same length")
    if not (np.isin(y, (0.0, 1.0)).all() and 0 < y.sum() < y.size):
        raise ValueError("y_true must hold 0/1 labels of both classes")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("scores must be finite")
    auc_a, (v10_a, v01_a) = _structural(y, a)
    auc_b, (v10_b, v01_b) = _structural(y, b)
    m, n = v10_a.size, v01_a.size
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    contrast = np.array([1.0, -1.0])
    variance = float(contrast @ (s10 / m + s01 / n) @ contrast)
    diff = auc_a - auc_b
    if variance <= 0:
        # Identical rankings (or degenerate data): no evidence of a difference.
        return DeLong(auc_a, auc_b, diff, 0.0, 0.0, 1.0)
    se = math.sqrt(variance)
    z = diff / se
    return DeLong(auc_a, auc_b, diff, se, z, float(math.erfc(abs(z) / math.sqrt(2.0))))
