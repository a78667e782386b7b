"""The transparent at-risk score: five components, each with points and a reason code.

Pure NumPy over columns of traits, so a million profiles score in one pass; the reasons a
person reads ("no visit for 21 days") are rendered only for the rows being stored.

| component          | points | rule (default knobs)                                              |
|--------------------|--------|-------------------------------------------------------------------|
| recency            | 0-30   | last activity <=14 d: 0, 15-30 d: 15, >30 d: 30                   |
| frequency_change   | 0-25   | last 30 d vs personal 90-day baseline: 40 points per 100 % drop   |
| payment_friction   | 0-25   | failed in last 30 d: 15 + 5 per extra failure, halved if recovered|
| engagement_decay   | 0-15   | email/SMS response rate last 30 d vs the 30 d before              |
| support_sentiment  | 0-5    | escalated ticket or <=2-star review: 5; NPS <= 6: 3               |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from signalbox.scoring.schemas import BAND_NAMES, Component, ScoringKnobs

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

MAX_POINTS = {
    "recency": 30,
    "frequency_change": 25,
    "payment_friction": 25,
    "engagement_decay": 15,
    "support_sentiment": 5,
}
# Reason codes per component, indexed by the code arrays below.
REASONS = {
    "recency": ("active_recently", "inactive_15_30d", "inactive_over_30d"),
    "frequency_change": ("frequency_steady", "frequency_down", "no_baseline"),
    "payment_friction": ("no_payment_issues", "payment_failed_30d", "payment_failed_recovered"),
    "engagement_decay": ("engagement_steady", "engagement_down", "no_messages"),
    "support_sentiment": ("no_negative_signal", "negative_nps", "escalated_or_negative_review"),
}
MIN_BASELINE_PER_30D = 1.0  # fewer than 3 visits in the 90-day baseline: no rhythm to compare
MIN_PRIOR_MESSAGES = 2


@dataclass(frozen=True)
class ScoreInputs:
    """Columns the score reads; NaN where a trait has no value."""

    days_since_activity: FloatArray
    activity_30d: FloatArray
    activity_prior_90d: FloatArray
    payment_failures_30d: FloatArray
    last_payment_failed_at: FloatArray
    last_payment_succeeded_at: FloatArray
    messages_sent_30d: FloatArray
    messages_engaged_30d: FloatArray
    messages_sent_prior_30d: FloatArray
    messages_engaged_prior_30d: FloatArray
    min_nps_90d: FloatArray
    escalated_tickets_90d: FloatArray
    negative_reviews_90d: FloatArray


@dataclass(frozen=True)
class Scores:
    points: dict[str, IntArray]
    codes: dict[str, IntArray]
    total: IntArray
    band: NDArray[np.int64]  # index into BAND_NAMES

    def band_names(self) -> list[str]:
        return [BAND_NAMES[int(b)] for b in self.band]


def score(x: ScoreInputs, knobs: ScoringKnobs) -> Scores:
    points: dict[str, IntArray] = {}
    codes: dict[str, IntArray] = {}
    points["recency"], codes["recency"] = _recency(x.days_since_activity, knobs.recency_sensitivity)
    points["frequency_change"], codes["frequency_change"] = _frequency(x.activity_30d, x.activity_prior_90d)
    points["payment_friction"], codes["payment_friction"] = _payment(x, knobs.payment_weight)
    points["engagement_decay"], codes["engagement_decay"] = _engagement(x, knobs.engagement_decay_multiplier)
    points["support_sentiment"], codes["support_sentiment"] = _sentiment(x)
    total = np.clip(sum(points.values()), 0, 100).astype(np.int64)
    band = np.where(total >= knobs.high_threshold, 2, np.where(total >= knobs.medium_threshold, 1, 0))
    return Scores(points, codes, total, band.astype(np.int64))


def _recency(days: FloatArray, sensitivity: float) -> tuple[IntArray, IntArray]:
    soon, late = 14.0 / sensitivity, 30.0 / sensitivity
    never = np.isnan(days)
    code = np.where(never | (days > late), 2, np.where(days > soon, 1, 0))
    return np.array([0, 15, 30])[code].astype(np.int64), code.astype(np.int64)


def _frequency(recent: FloatArray, prior_90: FloatArray) -> tuple[IntArray, IntArray]:
    baseline = prior_90 / 3.0
    has_baseline = baseline >= MIN_BASELINE_PER_30D
    with np.errstate(divide="ignore", invalid="ignore"):
        drop = np.where(has_baseline, np.clip(1.0 - recent / baseline, 0.0, 1.0), 0.0)
    pts = np.minimum(25, np.round(40.0 * drop)).astype(np.int64)
    code = np.where(~has_baseline, 2, np.where(pts > 0, 1, 0))
    return pts, code.astype(np.int64)


def _payment(x: ScoreInputs, weight: float) -> tuple[IntArray, IntArray]:
    failures = np.nan_to_num(x.payment_failures_30d)
    base = np.where(failures > 0, np.minimum(25.0, 15.0 + 5.0 * (failures - 1)), 0.0)
    with np.errstate(invalid="ignore"):
        recovered = (failures > 0) & (x.last_payment_succeeded_at > x.last_payment_failed_at)
    base = np.where(recovered, base / 2.0, base)
    pts = np.minimum(25, np.round(base * weight)).astype(np.int64)
    code = np.where(failures == 0, 0, np.where(recovered, 2, 1))
    return pts, code.astype(np.int64)


def _engagement(x: ScoreInputs, multiplier: float) -> tuple[IntArray, IntArray]:
    sent_now, sent_before = np.nan_to_num(x.messages_sent_30d), np.nan_to_num(x.messages_sent_prior_30d)
    measurable = (sent_now > 0) & (sent_before >= MIN_PRIOR_MESSAGES)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_now = np.minimum(1.0, np.nan_to_num(x.messages_engaged_30d) / sent_now)
        rate_before = np.minimum(1.0, np.nan_to_num(x.messages_engaged_prior_30d) / sent_before)
        drop = np.where(measurable & (rate_before > 0), np.clip(1.0 - rate_now / rate_before, 0.0, 1.0), 0.0)
    pts = np.minimum(15, np.round(15.0 * drop * multiplier)).astype(np.int64)
    code = np.where(~measurable, 2, np.where(pts > 0, 1, 0))
    return pts, code.astype(np.int64)


def _sentiment(x: ScoreInputs) -> tuple[IntArray, IntArray]:
    severe = (np.nan_to_num(x.escalated_tickets_90d) > 0) | (np.nan_to_num(x.negative_reviews_90d) > 0)
    with np.errstate(invalid="ignore"):
        detractor = x.min_nps_90d <= 6
    code = np.where(severe, 2, np.where(detractor, 1, 0))
    return np.array([0, 3, 5])[code].astype(np.int64), code.astype(np.int64)


def components(x: ScoreInputs, s: Scores, i: int) -> list[Component]:
    """Profile `i`'s components with the sentence a manager reads."""
    out = []
    for name, max_points in MAX_POINTS.items():
        code = int(s.codes[name][i])
        out.append(Component(name, int(s.points[name][i]), max_points, REASONS[name][code], _detail(name, code, x, i)))
    return out


def _detail(name: str, code: int, x: ScoreInputs, i: int) -> str:
    return _DETAILS[name](code, x, i)


def _recency_detail(code: int, x: ScoreInputs, i: int) -> str:
    days = x.days_since_activity[i]
    return "no activity recorded" if np.isnan(days) else f"last activity {int(days)} days ago"


def _frequency_detail(code: int, x: ScoreInputs, i: int) -> str:
    if code == 2:
        return "not enough history for a personal baseline"
    return f"{int(x.activity_30d[i])} visits in the last 30 days vs a usual {x.activity_prior_90d[i] / 3.0:.1f}"


def _payment_detail(code: int, x: ScoreInputs, i: int) -> str:
    if code == 0:
        return "no failed payment in the last 30 days"
    failures = int(np.nan_to_num(x.payment_failures_30d[i]))
    suffix = ", since recovered" if code == 2 else ""
    return f"{failures} failed payment{'s' if failures != 1 else ''} in the last 30 days{suffix}"


def _engagement_detail(code: int, x: ScoreInputs, i: int) -> str:
    if code == 2:
        return "too few messages to compare"
    now = _rate(x.messages_engaged_30d[i], x.messages_sent_30d[i])
    before = _rate(x.messages_engaged_prior_30d[i], x.messages_sent_prior_30d[i])
    return f"responded to {now:.0%} of messages in the last 30 days vs {before:.0%} before"


def _sentiment_detail(code: int, x: ScoreInputs, i: int) -> str:
    if code == 2:
        return "escalated support ticket or a review of 2 stars or fewer in the last 90 days"
    if code == 1:
        return f"NPS of {int(x.min_nps_90d[i])} in the last 90 days"
    return "no negative feedback in the last 90 days"


_DETAILS: dict[str, Callable[[int, ScoreInputs, int], str]] = {
    "recency": _recency_detail,
    "frequency_change": _frequency_detail,
    "payment_friction": _payment_detail,
    "engagement_decay": _engagement_detail,
    "support_sentiment": _sentiment_detail,
}


def _rate(engaged: float, sent: float) -> float:
    return 0.0 if not sent or np.isnan(sent) else min(1.0, float(np.nan_to_num(engaged)) / float(sent))
