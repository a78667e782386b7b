"""A prediction run's customers, riskiest first, and the CSV a user gets.

A million customers' reason sentences cost more than predicting them, and most runs only store
the probabilities. So the run keeps columns and builds a row, reasons included, only when the
row is read (the CSV writer reads them all, a screen reads a page).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import overload

import numpy as np
from numpy.typing import NDArray

from signalbox.scoring import score as scoring
from signalbox.scoring.schemas import BAND_NAMES

MAX_REASONS = 3
PREDICTION_HEADER: tuple[str, ...] = ("user_id", "churn_probability", "at_risk_score", "at_risk_band", "reasons")


@dataclass(frozen=True)
class PredictionRow:
    user_id: str | None
    profile_id: str
    churn_probability: float
    at_risk_score: int
    at_risk_band: str
    reasons: str


class PredictionRows(Sequence[PredictionRow]):
    """The predicted customers, highest probability first (then user id, then profile id);
    each row is built when it is read."""

    def __init__(
        self,
        profile_ids: Sequence[str],
        user_ids: Sequence[str | None],
        probability: NDArray[np.float64],
        inputs: scoring.ScoreInputs,
        shown: scoring.Scores,
        rows: NDArray[np.int64],
    ) -> None:
        self._profile_ids, self._user_ids = profile_ids, user_ids
        self._probability, self._inputs, self._shown = probability, inputs, shown
        # One C sort over the three keys (a Python key per row cost seconds at a million).
        picked = rows.tolist()
        users = np.array([user_ids[i] or "" for i in picked], dtype=str)
        pids = np.array([profile_ids[i] for i in picked], dtype=str)
        order = np.lexsort((pids, users, -probability[rows])) if picked else np.zeros(0, np.int64)
        self._order: list[int] = rows[order].tolist()

    @property
    def probabilities(self) -> NDArray[np.float64]:
        """The probabilities in row order, without building any row."""
        return self._probability[np.asarray(self._order, dtype=np.int64)]

    def __len__(self) -> int:
        return len(self._order)

    @overload
    def __getitem__(self, k: int) -> PredictionRow: ...

    @overload
    def __getitem__(self, k: slice) -> list[PredictionRow]: ...

    def __getitem__(self, k: int | slice) -> PredictionRow | list[PredictionRow]:
        if isinstance(k, slice):
            return [self._row(i) for i in self._order[k]]
        return self._row(self._order[k])

    def __iter__(self) -> Iterator[PredictionRow]:
        return (self._row(i) for i in self._order)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # mutable-looking sequence semantics, like a list

    def _row(self, i: int) -> PredictionRow:
        s = self._shown
        return PredictionRow(
            self._user_ids[i],
            self._profile_ids[i],
            float(self._probability[i]),
            int(s.total[i]),
            BAND_NAMES[int(s.band[i])],
            reasons(self._inputs, s, i),
        )


@dataclass(frozen=True)
class Prediction:
    model_id: int
    as_of: date
    predicted_at: datetime
    rows: Sequence[PredictionRow]  # highest churn probability first


def reasons(x: scoring.ScoreInputs, s: scoring.Scores, i: int) -> str:
    """The score's non-zero reasons, most points first (ties in component order)."""
    parts = [c for c in scoring.components(x, s, i) if c.points > 0]
    parts.sort(key=lambda c: -c.points)
    return "; ".join(c.detail for c in parts[:MAX_REASONS])


def prediction_record(row: PredictionRow) -> tuple[str, str, str, str, str]:
    return (row.user_id or "", f"{row.churn_probability:.4f}", str(row.at_risk_score), row.at_risk_band, row.reasons)
