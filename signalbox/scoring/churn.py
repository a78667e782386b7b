"""The predictive churn model: time split, fitting, baselines and the report that judges it.

Training data are (profile, cut date) pairs. A cut looks at the world as of that local date
(features) and at the `horizon` days after it (label: no activity event). Cuts go back from
``as_of - 2 * horizon`` every `cut_every` days; the last window, cut at ``as_of - horizon``
with labels up to ``as_of``, is held out. Nothing here reads the database: the service feeds
it feature matrices and labels, so every function is deterministic and testable on arrays.

BG/NBD is fitted once, at the last training cut, on everyone with activity by then; its
P(alive) and expected activity are features of every cut (so early cuts see parameters from a
later training date, never from the held-out window).

The model is scikit-learn's HistGradientBoostingClassifier inside CalibratedClassifierCV,
whose folds are contiguous blocks of cuts (train on some periods, calibrate on others) and
never the evaluation window. Every cut weighs the same in fitting and calibration, however many
customers it holds (see `cut_weights`). Three baselines are judged on the same evaluation window:
``recency`` (logistic regression on log days since activity), ``rfm_logistic`` (logistic
regression on recency, frequency and monetary value) and ``bgnbd`` (BG/NBD's own probability
of no activity in the horizon, from the posterior: see `features.p_no_activity`).
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from signalbox.core.errors import InvalidInputError
from signalbox.scoring import features, metrics
from signalbox.scoring import score as scoring
from signalbox.scoring.bgnbd import BgNbdParams

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

MIN_TRAIN_CUTS = 3
MAX_HORIZON_DAYS = 365
WARMUP_DAYS = 30  # a cut needs a month of history behind it
DEFAULT_CUT_EVERY_DAYS = 14
DEFAULT_MAX_CUTS = 52
MIN_CLASS_EXAMPLES = 5
CALIBRATION_FOLDS = 3
ISOTONIC_MIN_EXAMPLES = 5000  # below this, isotonic calibration overfits; use Platt scaling
RANDOM_STATE = 20_051  # any fixed value: the same data give the same model
BASELINES: tuple[str, ...] = ("recency", "rfm_logistic", "bgnbd")
# One native thread: the booster's OpenMP threads spin-wait, and on a busy or small machine two
# of them ran 20x slower than one. Our data sets are small enough for a single core.
NATIVE_THREADS = 1
MAX_REASONS = 3


@dataclass(frozen=True)
class TimeSplit:
    train_cuts: tuple[date, ...]  # oldest first; each cut + horizon <= eval_cut
    eval_cut: date
    end: date  # the as-of date: the evaluation labels end here

    @property
    def horizon_days(self) -> int:
        return (self.end - self.eval_cut).days


def check_options(horizon_days: int, cut_every_days: int, max_cuts: int) -> None:
    if not 1 <= horizon_days <= MAX_HORIZON_DAYS:
        raise InvalidInputError(f"--horizon-days must be between 1 and {MAX_HORIZON_DAYS}")
    if cut_every_days < 1:
        raise InvalidInputError("--cut-every-days must be at least 1")
    if max_cuts < MIN_TRAIN_CUTS:
        raise InvalidInputError(f"--max-cuts must be at least {MIN_TRAIN_CUTS}")


def time_split(
    as_of: date,
    horizon_days: int,
    history_start: date | None,
    *,
    cut_every_days: int = DEFAULT_CUT_EVERY_DAYS,
    max_cuts: int = DEFAULT_MAX_CUTS,
    activity_events: Sequence[str] = (),
) -> TimeSplit:
    """The training cuts and the held-out window, or a one-line error saying how much history
    a split needs."""
    check_options(horizon_days, cut_every_days, max_cuts)
    eval_cut = as_of - timedelta(days=horizon_days)
    last_train = eval_cut - timedelta(days=horizon_days)
    needed = last_train - timedelta(days=(MIN_TRAIN_CUTS - 1) * cut_every_days + WARMUP_DAYS)
    if history_start is None:
        events = ", ".join(activity_events) or "activity"
        raise InvalidInputError(
            f"too little history for a time split: no {events} events before {eval_cut.isoformat()}; "
            f"a {horizon_days}-day horizon needs activity since {needed.isoformat()} or earlier"
        )
    earliest = history_start + timedelta(days=WARMUP_DAYS)
    cuts: list[date] = []
    cut = last_train
    while cut >= earliest and len(cuts) < max_cuts:
        cuts.append(cut)
        cut -= timedelta(days=cut_every_days)
    if len(cuts) < MIN_TRAIN_CUTS:
        raise InvalidInputError(
            f"too little history for a time split: {MIN_TRAIN_CUTS} training cuts {cut_every_days} days apart, "
            f"each with {horizon_days} days of outcome, then a {horizon_days}-day evaluation window ending "
            f"{as_of.isoformat()}, need activity since {needed.isoformat()} or earlier; this workspace's starts "
            f"{history_start.isoformat()} (use a shorter --horizon-days or --cut-every-days, or a later --as-of)"
        )
    return TimeSplit(tuple(reversed(cuts)), eval_cut, as_of)


@dataclass
class Examples:
    """Stacked feature rows of one or more cuts with their labels (1 = churned)."""

    X: FloatArray
    y: BoolArray
    cut: NDArray[np.int64]  # index of the row's cut, oldest first

    @classmethod
    def stack(cls, parts: Sequence[tuple[FloatArray, BoolArray]]) -> Examples:
        width = len(features.FEATURE_NAMES)
        xs = [x for x, _ in parts] or [np.zeros((0, width))]
        ys = [y for _, y in parts] or [np.zeros(0, dtype=np.bool_)]
        cuts = [np.full(len(y), k, dtype=np.int64) for k, (_, y) in enumerate(parts)]
        cut = np.concatenate(cuts) if cuts else np.zeros(0, dtype=np.int64)
        return cls(np.vstack(xs), np.concatenate(ys).astype(np.bool_), cut)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def positives(self) -> int:
        return int(self.y.sum())


@dataclass
class FittedChurnModel:
    """What is stored (pickled) for a model version: the calibrated classifier and the BG/NBD
    parameters its features need."""

    classifier: Any
    bgnbd: BgNbdParams
    feature_names: tuple[str, ...]
    used: tuple[int, ...]  # columns the classifier sees: those with any value in training
    calibration_method: str

    def predict(self, X: FloatArray) -> FloatArray:
        if X.shape[1] != len(self.feature_names):
            raise InvalidInputError("this model was trained on other features: train a new one")
        if not len(X):
            return np.zeros(0)
        with threadpool_limits(limits=NATIVE_THREADS):
            return np.asarray(self.classifier.predict_proba(X[:, list(self.used)])[:, 1], dtype=np.float64)

    @property
    def used_features(self) -> list[str]:
        return [self.feature_names[k] for k in self.used]


def dump(model: FittedChurnModel) -> bytes:
    return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)


def load(blob: bytes) -> FittedChurnModel:
    # Safe only because the bytes come from our own churn_models table, written by `dump`
    # from objects this code trained; never call this on anything a user uploaded.
    model = pickle.loads(blob)  # noqa: S301
    if not isinstance(model, FittedChurnModel):
        raise InvalidInputError("stored churn model is not readable by this version: train a new one")
    return model


def _require_classes(ex: Examples, where: str, minimum: int) -> None:
    positives, negatives = ex.positives, len(ex) - ex.positives
    if positives < minimum or negatives < minimum:
        raise InvalidInputError(
            f"too little history to {where}: {len(ex)} examples, {positives} churned and {negatives} stayed; "
            f"need at least {minimum} of each (use a longer history, another --horizon-days or --activity-event)"
        )


def _folds(ex: Examples) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Contiguous blocks of cuts: calibrate on periods the fold's booster did not see. Falls
    back to stratified folds (in row order, no shuffling) when a block lacks a class."""
    cuts = np.unique(ex.cut)
    blocks = np.array_split(cuts, min(CALIBRATION_FOLDS, len(cuts)))
    folds: list[tuple[NDArray[np.int64], NDArray[np.int64]]] = []
    for block in blocks:
        held = np.isin(ex.cut, block)
        train, test = np.flatnonzero(~held), np.flatnonzero(held)
        if len(np.unique(ex.y[train])) < 2 or len(np.unique(ex.y[test])) < 2:
            folds = []
            break
        folds.append((train, test))
    if len(folds) >= 2:
        return folds
    smallest = min(ex.positives, len(ex) - ex.positives)
    splitter = StratifiedKFold(n_splits=max(2, min(CALIBRATION_FOLDS, smallest)))
    return [(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)) for a, b in splitter.split(ex.X, ex.y)]


def cut_weights(ex: Examples) -> FloatArray:
    """Sample weights that give every cut the same total weight, summing to the row count.

    Stacked cuts are one sample of each period, but their sizes follow the active population:
    a cohort that churns off (CDNOW: one 1997 acquisition wave) fills the early cuts with many
    new, quickly lapsing customers and the late ones with few. Unweighted, the booster and its
    calibrator learn mostly the early regime and their probabilities drift off on the held-out
    window; weighting periods equally learns "a period like these" instead (CDNOW as of
    1998-06-30: worst decile gap 0.071 -> 0.049; demo world: AUC 0.749 -> 0.759). Deterministic:
    the weights depend only on the cut sizes."""
    if not len(ex):
        return np.zeros(0)
    _, index, counts = np.unique(ex.cut, return_inverse=True, return_counts=True)
    weights = 1.0 / counts[index].astype(np.float64)
    return np.asarray(weights * (len(ex) / weights.sum()), dtype=np.float64)


def booster(n_examples: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        learning_rate=0.05,
        max_iter=250,
        max_leaf_nodes=15,
        min_samples_leaf=max(5, min(50, n_examples // 100)),
        l2_regularization=1.0,
        early_stopping=False,
        random_state=RANDOM_STATE,
    )


def fit(train: Examples, params: BgNbdParams) -> FittedChurnModel:
    _require_classes(train, "train a churn model", MIN_CLASS_EXAMPLES)
    method = "isotonic" if len(train) >= ISOTONIC_MIN_EXAMPLES else "sigmoid"
    # A feature nobody has (no NPS surveys, no messages) carries nothing, and the booster's
    # binning refuses an all-missing column: leave such columns out of this model.
    used = tuple(int(k) for k in np.flatnonzero(~np.isnan(train.X).all(axis=0)))
    classifier = CalibratedClassifierCV(booster(len(train)), method=method, cv=_folds(train))
    with threadpool_limits(limits=NATIVE_THREADS):
        classifier.fit(train.X[:, list(used)], train.y.astype(np.int64), sample_weight=cut_weights(train))
    # The folds' row indices served fitting only; storing them would bloat every model version.
    classifier.set_params(cv=CALIBRATION_FOLDS)
    return FittedChurnModel(classifier, params, features.FEATURE_NAMES, used, method)


# --------------------------------------------------------------------------- baselines


def _recency_x(X: FloatArray) -> FloatArray:
    return np.log1p(features.column(X, "recency_days")).reshape(-1, 1)


def _rfm_x(X: FloatArray) -> FloatArray:
    recency = np.log1p(features.column(X, "recency_days"))
    frequency = np.log1p(features.column(X, "activity_total"))
    monetary = np.log1p(np.clip(np.nan_to_num(features.column(X, "total_spend")), 0.0, None))
    return np.column_stack([recency, frequency, monetary])


@dataclass
class Baselines:
    recency: Any
    rfm: Any

    @classmethod
    def fit(cls, train: Examples) -> Baselines:
        y = train.y.astype(np.int64)
        with threadpool_limits(limits=NATIVE_THREADS):
            recency = LogisticRegression(max_iter=1000).fit(_recency_x(train.X), y)
            rfm = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(_rfm_x(train.X), y)
        return cls(recency, rfm)

    def predict(self, X: FloatArray) -> dict[str, FloatArray]:
        return {
            "recency": np.asarray(self.recency.predict_proba(_recency_x(X))[:, 1], dtype=np.float64),
            "rfm_logistic": np.asarray(self.rfm.predict_proba(_rfm_x(X))[:, 1], dtype=np.float64),
            "bgnbd": np.clip(features.column(X, "bgnbd_p_no_activity"), 0.0, 1.0),
        }


# --------------------------------------------------------------------------- report


def _r(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 4)


def metrics_doc(m: metrics.Metrics) -> dict[str, Any]:
    return {
        "auc": _r(m.auc),
        "pr_auc": _r(m.pr_auc),
        "precision_at_10pct": _r(m.precision_at_10pct),
        "brier": _r(m.brier),
        "calibration": [{"predicted": _r(b.predicted), "observed": _r(b.observed), "n": b.n} for b in m.calibration],
        "worst_decile_gap": _r(m.worst_decile_gap),
        "base_rate": _r(m.base_rate),
        "n": m.n,
    }


def evaluate(y: BoolArray, p: FloatArray) -> metrics.Metrics:
    try:
        return metrics.evaluate(y.astype(np.int64), p)
    except ValueError as exc:
        raise InvalidInputError(f"cannot evaluate on the held-out window: {exc}") from None


def verdict(auc: float, baseline_aucs: dict[str, float]) -> str:
    against = ", ".join(f"{name} {value:.3f}" for name, value in baseline_aucs.items())
    losers = [name for name, value in baseline_aucs.items() if not auc > value]
    if not losers:
        return f"the model beats every baseline on AUC ({auc:.3f} vs {against})"
    return (
        f"the model does NOT beat {', '.join(losers)} on AUC ({auc:.3f} vs {against}): rank with "
        f"{'that baseline' if len(losers) == 1 else 'those baselines'} instead, or train on more history"
    )


@dataclass
class TrainingRun:
    """Everything `build_report` needs about one training run."""

    split: TimeSplit
    activity_events: tuple[str, ...]
    train: Examples
    eval: Examples
    model: FittedChurnModel
    baselines: Baselines


def build_report(run: TrainingRun) -> dict[str, Any]:
    """The model's metrics beside the baselines', on the same held-out window."""
    model_metrics = evaluate(run.eval.y, run.model.predict(run.eval.X))
    base_probs = run.baselines.predict(run.eval.X)
    base_metrics = {name: evaluate(run.eval.y, base_probs[name]) for name in BASELINES}
    base_auc = {name: m.auc for name, m in base_metrics.items()}
    split, params = run.split, run.model.bgnbd
    return {
        "as_of": split.end.isoformat(),
        "horizon_days": split.horizon_days,
        "activity_events": list(run.activity_events),
        **metrics_doc(model_metrics),
        "baselines": {name: metrics_doc(m) for name, m in base_metrics.items()},
        "beats_baselines": {name: bool(model_metrics.auc > value) for name, value in base_auc.items()},
        "verdict": verdict(model_metrics.auc, base_auc),
        "train_window": {
            "first_cut": split.train_cuts[0].isoformat(),
            "last_cut": split.train_cuts[-1].isoformat(),
            "cuts": len(split.train_cuts),
            "examples": len(run.train),
            "positives": run.train.positives,
        },
        "eval_window": {
            "cut": split.eval_cut.isoformat(),
            "end": split.end.isoformat(),
            "examples": len(run.eval),
            "positives": run.eval.positives,
        },
        "model": {
            "estimator": "HistGradientBoostingClassifier",
            "calibration": run.model.calibration_method,
            "features": run.model.used_features,
            "bgnbd": {"r": _r(params.r), "alpha": _r(params.alpha), "a": _r(params.a), "b": _r(params.b)},
        },
    }


# --------------------------------------------------------------------------- predictions


@dataclass(frozen=True)
class PredictionRow:
    user_id: str | None
    profile_id: str
    churn_probability: float
    at_risk_score: int
    at_risk_band: str
    reasons: str


@dataclass(frozen=True)
class Prediction:
    model_id: int
    as_of: date
    predicted_at: datetime
    rows: list[PredictionRow]  # highest churn probability first


def reasons(x: scoring.ScoreInputs, s: scoring.Scores, i: int) -> str:
    """The score's non-zero reasons, most points first (ties in component order)."""
    parts = [c for c in scoring.components(x, s, i) if c.points > 0]
    parts.sort(key=lambda c: -c.points)
    return "; ".join(c.detail for c in parts[:MAX_REASONS])


PREDICTION_HEADER: tuple[str, ...] = ("user_id", "churn_probability", "at_risk_score", "at_risk_band", "reasons")


def prediction_record(row: PredictionRow) -> tuple[str, str, str, str, str]:
    return (row.user_id or "", f"{row.churn_probability:.4f}", str(row.at_risk_score), row.at_risk_band, row.reasons)
