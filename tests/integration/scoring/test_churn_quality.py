"""The churn model on a synthetic world where people fade before they leave: members visit at
their own rhythm; those who leave slow down over a few weeks first (the signal a recency rule
sees too late), some hit a failed payment on the way out, and loyal members take holidays (the
noise that fools recency). The shipped model must not rank worse than any baseline on the
held-out window, and must report its calibration."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from signalbox.core.clock import FixedClock
from signalbox.ingestion.service import BatchInput
from signalbox.scoring import service as scoring
from signalbox.workspaces import service as workspaces
from tests.factories import identify, track

START = date(2025, 1, 1)
AS_OF = date(2025, 12, 31)
NOW = FixedClock(datetime(2026, 1, 20, 12, tzinfo=UTC))
ZONES = ("America/New_York", "America/Los_Angeles")


def fading_world(members: int = 400, seed: int = 7, start: date = START, days: int = 365) -> list[dict]:
    """Identify + visit (+ payment_failed) messages of `members` people over `days` days."""
    rng = np.random.default_rng(seed)
    messages: list[dict] = []
    for n in range(members):
        user, zone = f"w-{n:04d}", ZONES[n % 2]
        joined = int(rng.integers(0, 120))
        weekly = float(np.clip(rng.gamma(3.0, 0.8), 0.5, 6.0))
        multiplier = np.ones(days + 120)
        leaves = rng.random() < 0.5
        stop = days + 120
        if leaves:
            stop = int(rng.integers(joined + 60, days + 90))
            fade = int(rng.integers(45, 120))
            ramp = np.linspace(1.0, 0.1, fade)
            lo = max(stop - fade, joined)
            multiplier[lo:stop] = ramp[fade - (stop - lo) :]
            multiplier[stop:] = 0.0
        for _ in range(int(rng.integers(0, 3))):  # holidays of loyal and leaving members alike
            away = int(rng.integers(joined, days))
            multiplier[away : away + int(rng.integers(10, 35))] = 0.0
        tz = ZoneInfo(zone)
        first = datetime.combine(start + timedelta(days=joined), datetime.min.time(), tzinfo=tz)
        messages.append({**identify(user, timezone=zone, plan="standard"), "timestamp": first.isoformat()})
        visit = rng.random(days) < (weekly / 7.0) * multiplier[:days]
        for d in np.flatnonzero(visit[joined:]) + joined:
            at = datetime.combine(start + timedelta(days=int(d)), datetime.min.time(), tzinfo=tz)
            at += timedelta(hours=int(rng.integers(6, 21)), minutes=int(rng.integers(0, 60)))
            messages.append({**track("visit", user), "timestamp": at.isoformat()})
        failing = (leaves and rng.random() < 0.4) or (not leaves and rng.random() < 0.05)
        if failing:
            day = stop - int(rng.integers(3, 25)) if leaves else int(rng.integers(joined, days))
            if joined <= day < days:
                at = datetime.combine(start + timedelta(days=day), datetime.min.time(), tzinfo=tz) + timedelta(hours=3)
                messages.append({**track("payment_failed", user, amount=49.0), "timestamp": at.isoformat()})
    return messages


def ingest(pipeline, ws, messages: list[dict], size: int = 2000) -> None:
    for i in range(0, len(messages), size):
        result = pipeline.ingest(ws, BatchInput(messages[i : i + size], source="test"))
        assert not result.rejected, result.rejected[:3]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_shipped_model_is_never_below_the_best_baseline_on_a_fixed_world(db, workspace, pipeline):
    """On a small deterministic world (fixed seed) the shipped model's held-out AUC is at least
    every baseline's, the textbook models included: the candidate chosen on the inner split
    must not rank worse than what it could have shipped. It reports its calibration too."""
    ws = workspaces.get_workspace(db, workspace.id)
    ingest(pipeline, ws, fading_world(members=600))
    _, report = scoring.train_churn_model(db, ws, AS_OF, 30, NOW, activity_events=["visit"])
    assert set(report["baselines"]) == {"recency", "rfm_logistic", "bgnbd", "pareto_nbd"}
    best = max(report["baselines"], key=lambda name: report["baselines"][name]["auc"])
    assert report["auc"] >= report["baselines"][best]["auc"], (best, report["verdict"], report["shipped"])
    assert report["auc"] > report["baselines"]["recency"]["auc"], report["verdict"]
    assert len(report["calibration"]) == 10 and report["worst_decile_gap"] is not None
    assert 0 <= report["worst_decile_gap"] < 0.25
    assert report["eval_window"] == {
        "cut": "2025-12-01",
        "end": "2025-12-31",
        "examples": report["eval_window"]["examples"],
        "positives": report["eval_window"]["positives"],
    }
    assert report["eval_window"]["examples"] > 150 and report["eval_window"]["positives"] > 20
