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

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from signalbox.profiles import components as parts
from signalbox.scoring.schemas import BAND_NAMES, Component, ScoringKnobs

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

MAX_POINTS, REASONS = parts.MAX_POINTS, parts.REASONS
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
    """Profile `i`'s components with the sentence a manager reads (the same sentences a
    stored profile renders on read: `profiles.components`)."""
    inputs = {name: float(getattr(x, name)[i]) for name in parts.INPUTS}
    out = []
    for name in parts.COMPONENTS:
        doc = parts.component(name, int(s.points[name][i]), int(s.codes[name][i]), inputs)
        out.append(Component(name, doc["points"], doc["max"], doc["reason"], doc["detail"]))
    return out


def documents(x: ScoreInputs, s: Scores, rows: NDArray[np.int64]) -> list[str]:
    """The stored components document of each of `rows` (JSON text, rendered on read)."""
    inputs = {name: getattr(x, name) for name in parts.INPUTS}
    return parts.encode(s.points, s.codes, inputs, rows)
