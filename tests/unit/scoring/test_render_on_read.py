"""Stored component documents are compact and rendered on read: every profile's reasons
must come out exactly as the score computed them."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from signalbox.profiles import components
from signalbox.scoring import predictions
from signalbox.scoring import score as scoring
from signalbox.scoring.schemas import BAND_NAMES, ScoringKnobs


def _inputs(n: int, seed: int) -> scoring.ScoreInputs:
    rng = np.random.default_rng(seed)

    # Counts are never missing (a person with no such event has 0); a days-since and the
    # lowest NPS are when there was nothing to measure.
    def counts(high: int, missing: float = 0.0) -> np.ndarray:
        values = rng.integers(0, high, n).astype(np.float64)
        values[rng.random(n) < missing] = np.nan
        return values

    def moments() -> np.ndarray:
        values = 1.79e9 + rng.uniform(0, 86400 * 30, n)
        values[rng.random(n) < 0.5] = np.nan
        return values

    return scoring.ScoreInputs(
        days_since_activity=counts(60, 0.1),
        activity_30d=counts(12),
        activity_prior_90d=counts(40),
        payment_failures_30d=counts(4),
        last_payment_failed_at=moments(),
        last_payment_succeeded_at=moments(),
        messages_sent_30d=counts(6),
        messages_engaged_30d=counts(6),
        messages_sent_prior_30d=counts(6),
        messages_engaged_prior_30d=counts(6),
        min_nps_90d=counts(11, 0.7),
        escalated_tickets_90d=np.where(rng.random(n) < 0.1, 1.0, 0.0),
        negative_reviews_90d=np.where(rng.random(n) < 0.1, 1.0, 0.0),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rendered_components_equal_the_computed_ones_for_every_row(seed):
    x = _inputs(3000, seed)
    s = scoring.score(x, ScoringKnobs())
    rows = np.flatnonzero(np.random.default_rng(seed).random(3000) < 0.9)
    stored = scoring.documents(x, s, rows)
    assert len(stored) == len(rows)
    for text, i in zip(stored, rows.tolist(), strict=True):
        # What a reader gets back: the database's JSON, decoded, then rendered.
        rendered = components.render(orjson.loads(text))
        assert rendered == [c.to_dict() for c in scoring.components(x, s, i)]
    # every reason code and both branches of the sentences are exercised
    codes = {(name, int(s.codes[name][i])) for name in components.COMPONENTS for i in rows.tolist()}
    assert len(codes) == sum(len(r) for r in components.REASONS.values())


def test_older_full_documents_and_none_pass_through():
    old = [{"component": "recency", "points": 30, "max": 30, "reason": "inactive_over_30d", "detail": "x"}]
    assert components.render(old) == old
    assert components.render(None) is None
    assert scoring.documents(_inputs(3, 0), scoring.score(_inputs(3, 0), ScoringKnobs()), np.zeros(0, np.int64)) == []


def test_stored_document_is_compact():
    x = _inputs(10, 4)
    s = scoring.score(x, ScoringKnobs())
    text = scoring.documents(x, s, np.arange(10))[0]
    assert len(text) < 200
    assert orjson.loads(text)["v"] == components.FORMAT


def test_prediction_rows_are_built_on_read_in_risk_order():
    x = _inputs(50, 5)
    s = scoring.score(x, ScoringKnobs())
    probability = np.random.default_rng(5).random(50)
    probability[3] = probability[4]  # a tie: user id decides
    pids = [f"p{i:02d}" for i in range(50)]
    users = [None if i % 7 == 0 else f"u{49 - i:02d}" for i in range(50)]
    predicted = np.arange(1, 50)
    rows = predictions.PredictionRows(pids, users, probability, x, s, predicted)
    eager = sorted(
        (
            predictions.PredictionRow(
                users[i],
                pids[i],
                float(probability[i]),
                int(s.total[i]),
                BAND_NAMES[int(s.band[i])],
                predictions.reasons(x, s, i),
            )
            for i in predicted.tolist()
        ),
        key=lambda r: (-r.churn_probability, r.user_id or "", r.profile_id),
    )
    assert len(rows) == 49 and list(rows) == eager and rows == eager
    assert rows[0] == eager[0] and rows[-1] == eager[-1] and rows[2:5] == eager[2:5]
    assert rows.probabilities.tolist() == [r.churn_probability for r in eager]
