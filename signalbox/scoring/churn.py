"""The predictive churn model: time split, candidates, choosing one, and the report that judges it.

Training data are (profile, cut date) pairs. A cut looks at the world as of that local date
(features) and at the `horizon` days after it (label: no activity event). Cuts go back from
``as_of - 2 * horizon`` every `cut_every` days; the last window, cut at ``as_of - horizon``
with labels up to ``as_of``, is held out. Nothing here reads the database: the service feeds
it feature matrices and labels, so every function is deterministic and testable on arrays.

BG/NBD and Pareto/NBD (the customer-base models) are fitted on the history up to one date and
their P(alive), expected activity and P(no activity in the horizon) are features of every cut.

Several candidates compete (`CANDIDATES`, simplest first): Pareto/NBD alone, BG/NBD alone,
recency, RFM with tenure, a logistic blend of the customer-base models with recency and
frequency, a gradient-boosted model on every feature, and a stack of the boosted model with
Pareto/NBD. Each is a *scorer* fitted on all training cuts but the latest, then a *calibrator*
(logistic regression on the scorer's logits: Platt scaling, or the stack's weights) fitted on
the latest cuts, because the churn rate drifts from cut to cut and the latest known outcomes
are the closest to the future's: the latest `CALIBRATION_CUTS` pooled for the candidates
without a fitted scorer, the latest alone for the learned ones (the only cut their scorer
never saw).

Which candidate ships is decided on an inner time split of the training cuts only: the last
training cut is the validation cut, and candidates are fitted on the cuts whose outcomes were
known by its date. The simplest candidate whose validation AUC is not significantly below the
best one's (DeLong) ships, refitted on all training cuts; the held-out window is never seen by
that choice. People silent for longer than the training population's `POPULATION_DAYS` get
Pareto/NBD's probability, recalibrated with the length of their silence on the latest cuts'
silent people when there are enough (`fit_dormant_calibrator`). Once the held-out window has
judged the shipped model, its calibrators are fitted again a horizon later, on the latest cuts
whose outcomes are known by the as-of date (`Forward`): predictions from that date on use them,
earlier ones the model as judged. Baselines are judged on the
held-out window beside the shipped model: ``recency`` (logistic regression on log days since
activity), ``rfm_logistic`` (recency, frequency, monetary value), and BG/NBD's and Pareto/NBD's
own probabilities of no activity in the horizon (see `features`).
"""

from __future__ import annotations

import dataclasses
import math
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from signalbox.core.errors import InvalidInputError
from signalbox.scoring import features, metrics

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

MIN_TRAIN_CUTS = 3
MAX_HORIZON_DAYS = 365
WARMUP_DAYS = 30  # a cut needs a month of history behind it
DEFAULT_CUT_EVERY_DAYS = 14
DEFAULT_MAX_CUTS = 52
MIN_CLASS_EXAMPLES = 5
POPULATION_DAYS = 90  # the model learns from people active this many days before a cut (service)
RANDOM_STATE = 20_051  # any fixed value: the same data give the same model
BASELINES: tuple[str, ...] = ("recency", "rfm_logistic", "bgnbd", "pareto_nbd")
# Simplest first: on equal inner AUC the simpler candidate ships (fewer ways to be wrong later).
CANDIDATES: tuple[str, ...] = ("pareto_nbd", "bgnbd", "recency", "rfm_tenure", "blend", "boosted", "stack")
CANDIDATE_DESCRIPTIONS = {
    "pareto_nbd": "Pareto/NBD's P(no activity in the horizon), recalibrated",
    "bgnbd": "BG/NBD's P(no activity in the horizon), recalibrated",
    "recency": "logistic regression on log days since the last activity",
    "rfm_tenure": "logistic regression on recency, frequency, monetary value and tenure",
    # Models stored before rfm_tenure replaced it still load and predict.
    "rfm_logistic": "logistic regression on recency, frequency and monetary value",
    "blend": "logistic regression on both customer-base models' logits, recency and frequency",
    "boosted": "gradient boosting on every feature, recalibrated",
    "stack": "logistic regression on the boosted model's and Pareto/NBD's logits",
}
# One native thread: the booster's OpenMP threads spin-wait, and on a busy or small machine two
# of them ran 20x slower than one. Our data sets are small enough for a single core.
NATIVE_THREADS = 1
# Calibrators of the candidates without a fitted scorer (FEATURE_ONLY) pool this many latest
# training cuts, each weighted equally: one cut's outcomes are one noisy draw of a drifting
# churn rate (CDNOW, 90 days: 0.58 at 1997-07-02 against 0.70 two cuts before), so a calibrator
# fitted on it alone carries that cut's noise into every probability. On the CDNOW grid pooling
# four cuts lowered the active customers' worst decile gap at three of five cells, its mean from
# 0.082 to 0.075 (docs/BENCHMARKS.md). A calibrator extrapolating a trend over the cuts to the
# prediction date did worse at two cells (0.110, 0.088): CDNOW's drift is partly seasonal
# (Christmas), and a line through a few months of it extrapolates badly.
CALIBRATION_CUTS = 4
# Candidates whose logits are features, so no cut is in-sample for them; the learned ones keep
# the latest cut alone, the only one their scorer never saw.
FEATURE_ONLY = ("pareto_nbd", "bgnbd", "recency", "rfm_tenure", "rfm_logistic")
# The dormant (silent > POPULATION_DAYS) get Pareto/NBD recalibrated on the dormant of the last
# CALIBRATION_CUTS training cuts, when those hold enough of both outcomes; otherwise its own.
MIN_DORMANT_CLASS = 200
# The dormant calibrator's covariates: Pareto/NBD's logit and the log of the days of silence
# (`_dormant_x`). Platt-scaled on its logit alone, Pareto/NBD still overstates the churn of the
# longer silent in the very rows it was fitted on (CDNOW 1997-09-30 + 90 days, the four cuts:
# observed minus calibrated +0.004 / -0.002 / -0.006 at 90-120 / 120-150 / 150+ days silent;
# 1998-03-31 + 90: +0.010 / +0.008 / -0.016 at 90-120 / 120-150 / 150-200), and the people it is
# applied to have been silent longer than those it was fitted on. With the silence beside the
# logit the worst decile over all CDNOW customers went 0.039 -> 0.025 at 1997-09-30 + 90 days,
# 0.062 -> 0.065 at 1997-12-31 + 180 (docs/BENCHMARKS.md).
DORMANT_FEATURES = ("pnbd_p_no_activity", "recency_days")
_EPS = 1e-6  # probabilities are clipped to [eps, 1 - eps] before taking logits


@dataclass(frozen=True)
class TimeSplit:
    train_cuts: tuple[date, ...]  # oldest first; each cut + horizon <= eval_cut
    eval_cut: date
    end: date  # the as-of date: the evaluation labels end here

    @property
    def horizon_days(self) -> int:
        return (self.end - self.eval_cut).days

    def inner(self) -> tuple[tuple[int, ...], int]:
        """(indices of the inner training cuts, index of the validation cut): the validation
        cut is the last training cut; inner training uses the cuts whose outcomes were known by
        its date (cut + horizon <= it), or every earlier cut when fewer than two qualify."""
        validation = len(self.train_cuts) - 1
        known = self.train_cuts[validation] - timedelta(days=self.horizon_days)
        inner = tuple(k for k, cut in enumerate(self.train_cuts[:validation]) if cut <= known)
        return (inner if len(inner) >= 2 else tuple(range(validation))), validation


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


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(np.nan_to_num(p, nan=0.5), _EPS, 1.0 - _EPS)
    return np.asarray(np.log(q) - np.log1p(-q), dtype=np.float64)


def _blend_x(X: FloatArray) -> FloatArray:
    return np.column_stack(
        [
            _logit(features.column(X, "pnbd_p_no_activity")),
            _logit(features.column(X, "bgnbd_p_no_activity")),
            _logit(features.column(X, "pnbd_p_alive")),
            np.log1p(np.nan_to_num(features.column(X, "recency_days"), nan=0.0)),
            np.log1p(np.nan_to_num(features.column(X, "activity_total"), nan=0.0)),
        ]
    )


@dataclass
class Scorers:
    """What the candidates' calibrators read: each candidate's raw probability."""

    used: tuple[int, ...]  # columns the booster sees: those with any value in training
    booster: Any | None
    blend: Any | None

    def raw(self, X: FloatArray, candidate: str) -> list[FloatArray]:
        """The logits (or covariates) a candidate's calibrator takes."""
        if candidate in _COVARIATES:
            return list(np.nan_to_num(_COVARIATES[candidate](X), nan=0.0).T)
        pnbd = _logit(features.column(X, "pnbd_p_no_activity"))
        if candidate == "blend":
            assert self.blend is not None
            return [_logit(self.blend.predict_proba(_blend_x(X))[:, 1])]
        assert self.booster is not None
        boosted = _logit(self.booster.predict_proba(X[:, list(self.used)])[:, 1])
        return [boosted] if candidate == "boosted" else [boosted, pnbd]


def _fit_scorers(ex: Examples, candidates: Sequence[str]) -> Scorers:
    used = tuple(int(k) for k in np.flatnonzero(~np.isnan(ex.X).all(axis=0)))
    y, w = ex.y.astype(np.int64), cut_weights(ex)
    booster_ = blend = None
    with threadpool_limits(limits=NATIVE_THREADS):
        if {"boosted", "stack"} & set(candidates):
            booster_ = booster(len(ex)).fit(ex.X[:, list(used)], y, sample_weight=w)
        if "blend" in candidates:
            blend = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
            blend.fit(_blend_x(ex.X), y, logisticregression__sample_weight=w)
    return Scorers(used, booster_, blend)


@dataclass(frozen=True)
class CutRate:
    """One labelled cut's population and churn rate: how the rate drifted, for the report."""

    cut: date
    examples: int
    churn_rate: float

    def to_dict(self) -> dict[str, Any]:
        return {"cut": self.cut.isoformat(), "examples": self.examples, "churn_rate": _r(self.churn_rate)}


def cut_rates(ex: Examples, cuts: Sequence[date]) -> list[CutRate]:
    """Each cut's examples and observed churn rate (`ex.cut` indexes `cuts`)."""
    out = []
    for k, day in enumerate(cuts):
        y = ex.y[ex.cut == k]
        out.append(CutRate(day, len(y), float(y.mean()) if len(y) else math.nan))
    return out


@dataclass(frozen=True)
class Forward:
    """The calibration a model's predictions use from its as-of date on.

    The shipped model is calibrated on the latest training cuts, whose outcomes had to end by
    the held-out cut: a whole horizon before the as-of date. Predicting for the as-of date with
    it would carry a calibration two horizons old, while the outcomes of the cuts up to the
    held-out cut are known by then. So after the held-out window has judged the model, the same
    calibration is fitted again on the latest cuts ending there (and the customer-base models on
    every history up to the as-of date). Predictions as of an earlier date keep the model as
    judged: this one has read outcomes up to the as-of date. On CDNOW (train and predict on the
    same day, 90 days) the worst decile gap over all customers went 0.123 -> 0.046 at
    1997-09-30 and 0.114 -> 0.053 at 1998-03-31 (docs/BENCHMARKS.md)."""

    as_of: date
    base: features.BaseModels
    calibrator: Any
    dormant_calibrator: Any
    rates: tuple[CutRate, ...]  # the cuts it was fitted on, oldest first
    calibrated_on: int  # how many of them the calibrator read (the latest ones); 0: own probability
    dormant_refit: bool  # False: the dormant keep the judged model's calibration

    def to_dict(self) -> dict[str, Any]:
        used = self.rates[len(self.rates) - self.calibrated_on :] if self.calibrated_on else ()
        return {
            "from": self.as_of.isoformat(),
            "calibration": "recalibrated on the cuts below" if self.calibrated_on else "own probability",
            "cuts": [r.cut.isoformat() for r in used],
            "examples": sum(r.examples for r in used),
            "churn_rate_by_cut": [r.to_dict() for r in self.rates],
            "dormant": "recalibrated on these cuts' dormant" if self.dormant_refit else "as judged",
            **base_doc(self.base),
        }


@dataclass
class FittedChurnModel:
    """What is stored (pickled) for a model version: the shipped candidate's scorers and
    calibrator, the customer-base parameters its features need, and how it was chosen."""

    candidate: str
    scorers: Scorers
    calibrator: Any
    base: features.BaseModels
    feature_names: tuple[str, ...]
    calibration_cut: int  # index (in the training cuts) of the latest cut the calibrator was fitted on
    selection: dict[str, Any]  # the inner split's figures and the reason this candidate shipped
    dormant_calibrator: Any = None  # Pareto/NBD's logit -> P for the dormant; None: its own
    forward: Forward | None = None  # the calibration predictions use from the as-of date on

    def for_date(self, day: date) -> FittedChurnModel:
        """The model a prediction as of `day` uses: recalibrated on the latest known outcomes
        (`Forward`) from the model's as-of date on, the model as judged before it."""
        # Models pickled before Forward existed read the dataclass default (None).
        forward = self.forward
        if forward is None or day < forward.as_of:
            return self
        return dataclasses.replace(
            self,
            base=forward.base,
            calibrator=forward.calibrator,
            dormant_calibrator=forward.dormant_calibrator,
            forward=None,
        )

    def predict(self, X: FloatArray) -> FloatArray:
        if X.shape[1] != len(self.feature_names):
            raise InvalidInputError("this model was trained on other features: train a new one")
        if not len(X):
            return np.zeros(0)
        with threadpool_limits(limits=NATIVE_THREADS):
            z = np.column_stack(self.scorers.raw(X, self.candidate))
            p = np.asarray(self.calibrator.predict_proba(z)[:, 1], dtype=np.float64)
        # The candidates learn from people active in the POPULATION_DAYS before each cut; for
        # anyone quiet for longer (never in training) the textbook model's own probability
        # stands: Pareto/NBD extrapolates to long silences by its structure, a learned model
        # does not (CDNOW 1997-09-30 + 180 days, all 23,570 customers: AUC 0.740 without this
        # against Pareto/NBD's 0.764).
        with np.errstate(invalid="ignore"):
            dormant = features.column(X, "recency_days") > POPULATION_DAYS
        textbook = features.column(X, "pnbd_p_no_activity")
        use = dormant & ~np.isnan(textbook)
        # Models pickled before the dormant calibrator existed lack the attribute.
        recalibrate = getattr(self, "dormant_calibrator", None)
        if recalibrate is not None and use.any():
            # Calibrators pickled before DORMANT_FEATURES read Pareto/NBD's logit alone.
            wide = getattr(recalibrate, "n_features_in_", 1) == len(DORMANT_FEATURES)
            z = _dormant_x(X) if wide else _logit(textbook).reshape(-1, 1)
            with threadpool_limits(limits=NATIVE_THREADS):
                recalibrated = recalibrate.predict_proba(z)[:, 1]
            textbook = np.where(use, recalibrated, textbook)
        return np.asarray(np.where(use, np.clip(textbook, 0.0, 1.0), p), dtype=np.float64)

    @property
    def used_features(self) -> list[str]:
        if self.candidate in ("boosted", "stack"):
            return [self.feature_names[k] for k in self.scorers.used]
        if self.candidate == "blend":
            return ["pnbd_p_no_activity", "bgnbd_p_no_activity", "pnbd_p_alive", "recency_days", "activity_total"]
        if self.candidate == "recency":
            return ["recency_days"]
        if self.candidate == "rfm_tenure":
            return ["recency_days", "activity_total", "total_spend", "tenure_days"]
        if self.candidate == "rfm_logistic":
            return ["recency_days", "activity_total", "total_spend"]
        return ["pnbd_p_no_activity" if self.candidate == "pareto_nbd" else "bgnbd_p_no_activity"]


def dump(model: FittedChurnModel) -> bytes:
    return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)


def load(blob: bytes) -> FittedChurnModel:
    # Safe only because the bytes come from our own churn_models table, written by `dump`
    # from objects this code trained; never call this on anything a user uploaded.
    model = pickle.loads(blob)  # noqa: S301
    if not isinstance(model, FittedChurnModel) or not hasattr(model, "candidate"):
        raise InvalidInputError("stored churn model is not readable by this version: train a new one")
    return model


def _require_classes(ex: Examples, where: str, minimum: int) -> None:
    positives, negatives = ex.positives, len(ex) - ex.positives
    if positives < minimum or negatives < minimum:
        raise InvalidInputError(
            f"too little history to {where}: {len(ex)} examples, {positives} churned and {negatives} stayed; "
            f"need at least {minimum} of each (use a longer history, another --horizon-days or --activity-event)"
        )


def cut_weights(ex: Examples) -> FloatArray:
    """Sample weights that give every cut the same total weight, summing to the row count.

    Stacked cuts are one sample of each period, but their sizes follow the active population:
    a cohort that churns off (CDNOW: one 1997 acquisition wave) fills the early cuts with many
    new, quickly lapsing customers and the late ones with few. Unweighted, the scorers learn
    mostly the early regime; weighting periods equally learns "a period like these" instead.
    Deterministic: the weights depend only on the cut sizes."""
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


def _select(ex: Examples, cuts: Sequence[int]) -> Examples:
    """The rows of the given cuts, renumbered oldest first."""
    keep = np.isin(ex.cut, np.asarray(cuts, dtype=np.int64))
    renumber = np.searchsorted(np.asarray(sorted(cuts), dtype=np.int64), ex.cut[keep])
    return Examples(ex.X[keep], ex.y[keep], renumber.astype(np.int64))


class OwnProbability:
    """The "calibrator" of a textbook candidate shipped with its own probability: the model's
    P(no activity) as it is (the logit back through the logistic function)."""

    def predict_proba(self, z: FloatArray) -> FloatArray:
        p = 1.0 / (1.0 + np.exp(-z[:, 0]))
        return np.column_stack([1.0 - p, p])


TEXTBOOK = ("pareto_nbd", "bgnbd")  # candidates that are probabilities on their own


def _calibrator(z: FloatArray, part: Examples) -> Any:
    return LogisticRegression(C=100.0, max_iter=1000).fit(z, part.y.astype(np.int64), sample_weight=cut_weights(part))


def fit_candidates(
    train: Examples, base: features.BaseModels, candidates: Sequence[str] = CANDIDATES, *, own: bool = False
) -> dict[str, FittedChurnModel]:
    """Every candidate with scorers fitted on all cuts of `train` but the latest and its
    calibrator on the latest cuts (the closest to the future, so probabilities follow the
    drift): the CALIBRATION_CUTS latest for a FEATURE_ONLY candidate, the latest alone for a
    learned one (see CALIBRATION_CUTS)."""
    last = int(train.cut.max()) if len(train) else 0
    if last < 1:
        raise InvalidInputError("too little history to train a churn model: it needs at least two training cuts")
    scoring_part, latest = _select(train, range(last)), _select(train, [last])
    pooled = _select(train, range(max(0, last + 1 - CALIBRATION_CUTS), last + 1))
    _require_classes(scoring_part, "train a churn model", MIN_CLASS_EXAMPLES)
    _require_classes(latest, f"calibrate a churn model on its latest training cut ({len(latest)} rows)", 2)
    scorers = _fit_scorers(scoring_part, candidates)
    out: dict[str, FittedChurnModel] = {}
    with threadpool_limits(limits=NATIVE_THREADS):
        for name in candidates:
            part = pooled if name in FEATURE_ONLY else latest
            calibrator: Any = (
                OwnProbability()
                if own and name in TEXTBOOK
                else _calibrator(np.column_stack(scorers.raw(part.X, name)), part)
            )
            out[name] = FittedChurnModel(name, scorers, calibrator, base, features.FEATURE_NAMES, last, {})
    return out


def _dormant_x(X: FloatArray) -> FloatArray:
    """The dormant calibrator's covariates (DORMANT_FEATURES): Pareto/NBD's logit, log days silent."""
    silent = np.log1p(np.clip(np.nan_to_num(features.column(X, "recency_days"), nan=0.0), 0.0, None))
    return np.column_stack([_logit(features.column(X, "pnbd_p_no_activity")), silent])


def fit_dormant_calibrator(dormant: Examples) -> Any | None:
    """A logistic calibration of Pareto/NBD's P(no activity) on the dormant rows of the latest
    CALIBRATION_CUTS training cuts, with the log of the days of silence beside its logit
    (DORMANT_FEATURES), or None (its own probability) with too few of either outcome.

    Pareto/NBD's own probability for the long silent drifts from their outcomes as one cohort
    ages (CDNOW, 1997-09-30 + 90 days: 0.929 predicted, 0.889 observed among 19,343); the
    latest cuts' outcomes show by how much, and by how much more the longer the silence."""
    if not len(dormant):
        return None
    last = int(dormant.cut.max())
    part = _select(dormant, range(max(0, last + 1 - CALIBRATION_CUTS), last + 1))
    known = ~np.isnan(features.column(part.X, "pnbd_p_no_activity")) & ~np.isnan(
        features.column(part.X, "recency_days")
    )
    part = Examples(part.X[known], part.y[known], part.cut[known])
    z = _dormant_x(part.X)
    if min(part.positives, len(part) - part.positives) < MIN_DORMANT_CLASS:
        return None
    # Unweighted: the dormant pile up cut after cut, and an early cut's handful must not weigh
    # as much as a late cut's thousands.
    with threadpool_limits(limits=NATIVE_THREADS):
        fitted = LogisticRegression(C=100.0, max_iter=1000).fit(z, part.y.astype(np.int64))
    # A slope <= 0 on Pareto/NBD's logit reverses its ranking: no calibration but a fit to noise
    # (CDNOW at 1997-04-03: 306 dormant, all a few weeks into their silence, gave a slope of -3.2
    # with the logit alone).
    return fitted if float(fitted.coef_[0, 0]) > 0 else None


def fit_forward(
    model: FittedChurnModel,
    forward: Examples,
    cuts: Sequence[date],
    dormant: Examples,
    as_of: date,
    base: features.BaseModels,
) -> Forward | None:
    """`model`'s calibration fitted again on `forward`, the labelled cuts (oldest first, `cuts`)
    ending a horizon before `as_of`, their features from `base`, the customer-base models of `as_of`:
    the latest CALIBRATION_CUTS for a FEATURE_ONLY candidate, the latest alone for a learned one
    (its scorer never saw it), as the shipped calibrator was (`fit_candidates`); the dormant as
    `fit_dormant_calibrator` does, else the shipped model's dormant calibrator (fitted on the
    judged model's Pareto/NBD: a few months' less history, the nearest there is). A textbook
    model shipped with its own probability keeps it, with the later customer-base models. None
    (the model as judged) when the cuts hold too few of either outcome to calibrate on."""
    if not len(forward):
        return None
    last = int(forward.cut.max())
    part = (
        _select(forward, range(max(0, last + 1 - CALIBRATION_CUTS), last + 1))
        if model.candidate in FEATURE_ONLY
        else _select(forward, [last])
    )
    own = isinstance(model.calibrator, OwnProbability)
    if not own and min(part.positives, len(part) - part.positives) < MIN_CLASS_EXAMPLES:
        return None
    calibrator = model.calibrator
    if not own:
        with threadpool_limits(limits=NATIVE_THREADS):
            calibrator = _calibrator(np.column_stack(model.scorers.raw(part.X, model.candidate)), part)
    dormant_calibrator = fit_dormant_calibrator(dormant) if len(dormant) else None
    return Forward(
        as_of,
        base,
        calibrator,
        dormant_calibrator if dormant_calibrator is not None else model.dormant_calibrator,
        tuple(cut_rates(forward, cuts)),
        0 if own else int(part.cut.max()) + 1,
        dormant_calibrator is not None,
    )


def inner_figures(m: metrics.Metrics) -> dict[str, Any]:
    return {"auc": _r(m.auc), "brier": _r(m.brier), "worst_decile_gap": _r(m.worst_decile_gap), "n": m.n}


SIGNIFICANCE = 0.05


def choose(figures: dict[str, metrics.Metrics], y: BoolArray, predictions: dict[str, FloatArray]) -> tuple[str, str]:
    """(candidate, why): the simplest candidate whose inner AUC is not significantly below the
    best one's (DeLong, two-sided p >= 0.05 on the validation cut). A more flexible candidate
    has to earn its place: a lead inside the noise of one validation cut tends not to survive
    the next window, and the simpler one then ranks as well for less risk."""
    best = max(CANDIDATES, key=lambda name: (figures[name].auc, -CANDIDATES.index(name)))
    labels = y.astype(np.int64)
    p_values = {
        name: 1.0 if name == best else metrics.delong(labels, predictions[name], predictions[best]).p_value
        for name in CANDIDATES
    }
    shipped = next(name for name in CANDIDATES if p_values[name] >= SIGNIFICANCE)
    ranked = ", ".join(f"{n} {figures[n].auc:.4f}" for n in sorted(CANDIDATES, key=lambda n: -figures[n].auc))
    if shipped == best:
        why = f"highest AUC on the inner validation cut ({ranked})"
        if CANDIDATES.index(best) > 0:
            why += f"; every simpler candidate is significantly below it (DeLong p < {SIGNIFICANCE})"
    else:
        why = (
            f"the simplest candidate not significantly below the best on the inner validation cut "
            f"({best} {figures[best].auc:.4f}, {shipped} {figures[shipped].auc:.4f}, DeLong p = "
            f"{p_values[shipped]:.3f}; all: {ranked})"
        )
    return shipped, why + "; refitted on all training cuts"


def train(
    ex: Examples,
    split: TimeSplit,
    inner_base: features.BaseModels,
    inner_ex: Examples,
    base: features.BaseModels,
    dormant: Examples | None = None,
    dormant_horizon_days: int | None = None,
) -> FittedChurnModel:
    """Choose a candidate on the inner split, then refit it on every training cut.

    `inner_ex` holds the same cuts as `ex` with features from `inner_base`, the customer-base
    models fitted at the validation cut (so nothing the validation outcomes reveal leaks into the
    choice); `ex` has features from `base`, fitted at the held-out cut's date. `dormant` holds the
    training cuts' dormant rows (features from `base`), for `fit_dormant_calibrator`, labelled
    over `dormant_horizon_days` (default: the model's horizon). None holds a row of the held-out
    window: this function cannot see it."""
    _require_classes(ex, "train a churn model", MIN_CLASS_EXAMPLES)
    inner_cuts, validation = split.inner()
    fitted = fit_candidates(_select(inner_ex, inner_cuts), inner_base)
    valid = _select(inner_ex, [validation])
    predictions = {name: m.predict(valid.X) for name, m in fitted.items()}
    try:
        figures = {name: metrics.evaluate(valid.y.astype(np.int64), p) for name, p in predictions.items()}
    except ValueError as exc:
        raise InvalidInputError(f"cannot judge the candidates on the inner validation cut: {exc}") from None
    best, why = choose(figures, valid.y, predictions)
    # A textbook candidate may ship with its own probability instead of the recalibrated one:
    # whichever was closer to the validation cut's outcomes decile by decile (recalibrating on
    # the latest cut helps when the churn rate holds, and hurts when it drifts).
    inner_own = fit_candidates(_select(inner_ex, inner_cuts), inner_base, TEXTBOOK, own=True)
    own_figures = {
        name: metrics.evaluate(valid.y.astype(np.int64), m.predict(valid.X)) for name, m in inner_own.items()
    }
    own = best in TEXTBOOK and own_figures[best].worst_decile_gap < figures[best].worst_decile_gap
    if best in TEXTBOOK:
        why += (
            f"; shipped with {'its own probability' if own else 'probabilities recalibrated on the latest cuts'} "
            f"(inner worst decile gap {min(own_figures[best].worst_decile_gap, figures[best].worst_decile_gap):.3f} "
            f"vs {max(own_figures[best].worst_decile_gap, figures[best].worst_decile_gap):.3f})"
        )
    model = fit_candidates(ex, base, [best], own=own)[best]
    model.dormant_calibrator = None if dormant is None else fit_dormant_calibrator(dormant)
    pooled = best in FEATURE_ONLY and not own
    calibration = (
        "own probability"
        if own
        else f"logistic on logits, fitted on the latest {CALIBRATION_CUTS} training cuts"
        if pooled
        else "logistic on logits, fitted on the latest training cut"
    )
    if model.dormant_calibrator is None:
        calibration += "; the dormant get Pareto/NBD's own probability"
    elif dormant_horizon_days not in (None, split.horizon_days):
        calibration += (
            "; the dormant get Pareto/NBD recalibrated, with their days of silence, on the dormant of the latest "
            f"cuts whose {dormant_horizon_days}-day outcomes are known (too few dormant at the training cuts)"
        )
    else:
        calibration += (
            "; the dormant get Pareto/NBD recalibrated, with their days of silence, on the latest training cuts'"
            " dormant"
        )
    model.selection = {
        "validation_cut": split.train_cuts[validation].isoformat(),
        "inner_train_cuts": [split.train_cuts[k].isoformat() for k in (inner_cuts[0], inner_cuts[-1])],
        "validation_examples": len(valid),
        "validation_positives": valid.positives,
        "candidates": {name: inner_figures(figures[name]) for name in CANDIDATES},
        "textbook_own_probability": {name: inner_figures(own_figures[name]) for name in TEXTBOOK},
        "calibration": calibration,
        "shipped": best,
        "why": why,
    }
    return model


# --------------------------------------------------------------------------- baselines


def _recency_x(X: FloatArray) -> FloatArray:
    return np.log1p(features.column(X, "recency_days")).reshape(-1, 1)


def _rfm_x(X: FloatArray) -> FloatArray:
    recency = np.log1p(features.column(X, "recency_days"))
    frequency = np.log1p(features.column(X, "activity_total"))
    monetary = np.log1p(np.clip(np.nan_to_num(features.column(X, "total_spend")), 0.0, None))
    return np.column_stack([recency, frequency, monetary])


def _rfm_tenure_x(X: FloatArray) -> FloatArray:
    """RFM and the log of the tenure: the rfm_tenure candidate's covariates.

    Frequency and monetary value are totals, which grow with a customer's age: without the
    tenure beside them, a customer base that ages between the calibration cuts and the
    prediction date reads as more loyal than it is (CDNOW, one 1997 acquisition wave, trained
    and predicting on 1998-03-31 for 90 days: with RFM alone the active customers' churn was
    under-predicted by 0.05 on average, worst decile gap 0.085; with the tenure 0.049,
    docs/BENCHMARKS.md).
    The textbook RFM baseline stays without it."""
    tenure = np.log1p(np.clip(np.nan_to_num(features.column(X, "tenure_days"), nan=0.0), 0.0, None))
    return np.column_stack([_rfm_x(X), tenure])


# What the calibrator of each candidate without a fitted scorer (FEATURE_ONLY) reads.
_COVARIATES: dict[str, Callable[[FloatArray], FloatArray]] = {
    "pareto_nbd": lambda X: _logit(features.column(X, "pnbd_p_no_activity")).reshape(-1, 1),
    "bgnbd": lambda X: _logit(features.column(X, "bgnbd_p_no_activity")).reshape(-1, 1),
    "recency": _recency_x,
    "rfm_tenure": _rfm_tenure_x,
    "rfm_logistic": _rfm_x,
}


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
            "pareto_nbd": np.clip(features.column(X, "pnbd_p_no_activity"), 0.0, 1.0),
        }


# --------------------------------------------------------------------------- report


def _r(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 4)


def base_doc(base: features.BaseModels) -> dict[str, Any]:
    """The customer-base models' parameters as the report shows them."""
    bg, pn = base.bgnbd, base.pareto_nbd
    return {
        "bgnbd": {"r": _r(bg.r), "alpha": _r(bg.alpha), "a": _r(bg.a), "b": _r(bg.b)},
        "pareto_nbd": {"r": _r(pn.r), "alpha": _r(pn.alpha), "s": _r(pn.s), "beta": _r(pn.beta)},
    }


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


def verdict(auc: float, baseline_aucs: dict[str, float], shipped: str = "boosted") -> str:
    against = ", ".join(f"{name} {value:.3f}" for name, value in baseline_aucs.items())
    # The shipped candidate may be a baseline itself (recalibrated: the same ranking), so an
    # equal AUC against that one baseline is a tie, not a loss.
    losers = [
        name
        for name, value in baseline_aucs.items()
        if not auc > value and not (name == shipped and abs(auc - value) < 1e-9)
    ]
    tie = f"; it ships {shipped} itself (recalibrated)" if shipped in baseline_aucs else ""
    if not losers:
        return f"the model beats every baseline on AUC ({auc:.3f} vs {against}){tie}"
    return (
        f"the model does NOT beat {', '.join(losers)} on AUC ({auc:.3f} vs {against}){tie}: rank with "
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
    split = run.split
    shipped = run.model.candidate
    return {
        "as_of": split.end.isoformat(),
        "horizon_days": split.horizon_days,
        "activity_events": list(run.activity_events),
        **metrics_doc(model_metrics),
        "baselines": {name: metrics_doc(m) for name, m in base_metrics.items()},
        "beats_baselines": {name: bool(model_metrics.auc > value) for name, value in base_auc.items()},
        "verdict": verdict(model_metrics.auc, base_auc, shipped),
        "shipped": {
            "candidate": shipped,
            "description": CANDIDATE_DESCRIPTIONS[shipped],
            "why": run.model.selection["why"],
        },
        "inner_split": {k: v for k, v in run.model.selection.items() if k not in ("shipped", "why", "calibration")},
        "train_window": {
            "first_cut": split.train_cuts[0].isoformat(),
            "last_cut": split.train_cuts[-1].isoformat(),
            "cuts": len(split.train_cuts),
            "examples": len(run.train),
            "positives": run.train.positives,
            "churn_rate_by_cut": [r.to_dict() for r in cut_rates(run.train, split.train_cuts)],
        },
        "eval_window": {
            "cut": split.eval_cut.isoformat(),
            "end": split.end.isoformat(),
            "examples": len(run.eval),
            "positives": run.eval.positives,
        },
        "model": {
            "estimator": shipped,
            "calibration": run.model.selection["calibration"],
            "forward_calibration": None if run.model.forward is None else run.model.forward.to_dict(),
            "features": run.model.used_features,
            **base_doc(run.model.base),
        },
    }
