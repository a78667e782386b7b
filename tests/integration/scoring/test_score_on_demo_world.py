"""The transparent score on the demo world: people in the High band churn (no activity in the
next 30 days) at least twice as often as people in the Low band, on SQLite and PostgreSQL.

One month's High band holds a few dozen people, so the rates are pooled over monthly
backtests across the world's last eight months (summer dip and January surge included)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from signalbox.core.clock import FixedClock
from signalbox.demo import service as demo
from signalbox.demo.schemas import WorldConfig
from signalbox.scoring import service as scoring
from signalbox.workspaces import service as workspaces

END = date(2026, 10, 31)


def test_high_band_churns_at_least_twice_as_often_as_low(db, settings, tmp_path):
    demo.seed(
        db,
        settings,
        "demo-bands",
        WorldConfig(end=END, members=2500, months=12, seed=11),
        ground_truth=tmp_path / "t.csv",
    )
    ws = workspaces.get_workspace(db, "demo-bands")
    clock = FixedClock(datetime(2026, 11, 2, 12, tzinfo=UTC))
    totals = {band: [0, 0] for band in ("Low", "Medium", "High")}
    for months_back in range(1, 9):
        report = scoring.backtest(db, ws, END - timedelta(days=30 * months_back), 30, clock)
        for band, outcome in report.bands.items():
            totals[band][0] += outcome.profiles
            totals[band][1] += outcome.churned
    rate = {band: churned / profiles for band, (profiles, churned) in totals.items()}
    assert totals["High"][0] >= 100 and totals["Low"][0] >= 1000, totals
    assert rate["High"] >= 2 * rate["Low"], (rate, totals)
    assert rate["Medium"] > rate["Low"], (rate, totals)
