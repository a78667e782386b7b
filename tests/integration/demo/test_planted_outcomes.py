"""The demo's answering world: members respond to the shipped playbooks with planted effects,
and the report measures them. Coverage of the 95 % interval over many worlds is a benchmark
(bench/planted_lift.py); here each arm's rate must sit within four standard errors of what
was planted, which a correct simulation and report fail about once in 15,000 runs."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

from signalbox.demo import outcomes
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import report as reports
from signalbox.journeys import service as journeys
from signalbox.workspaces import service as workspaces
from tests.factories import identify

ROOT = Path(__file__).resolve().parents[3] / "playbooks"


def _files(folder: Path) -> list[tuple[str, str]]:
    return [(str(p), p.read_text()) for p in sorted(folder.glob("*.yaml"))]


def test_the_report_measures_what_the_world_was_planted_with(db, settings, workspace):
    ws = workspaces.get_workspace(db, workspace.id)
    start = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    journeys.apply(db, ws.id, "template", _files(ROOT / "templates"), start)
    journeys.apply(db, ws.id, "playbook", _files(ROOT), start)
    members = [
        identify(f"sim-{i}", email=f"sim{i}@example.com", timezone="America/Denver", email_subscribe="opted_in")
        for i in range(300)
    ]
    Pipeline(db, settings).ingest(ws, BatchInput(members))
    results = outcomes.simulate(db, settings, ws, start=start, days=6, per_day=30, seed=3)
    for result in results:
        doc = reports.report(db, ws.id, result.planted.playbook)
        assert result.enrolled >= 100, result.to_dict()  # card-expiring skips repeats (cooldown)
        for arm, expected in (("treated", result.planted.base + result.planted.lift), ("holdout", result.planted.base)):
            n, rate = doc["arms"][arm]["enrolled"], doc["arms"][arm]["rate"]
            se = math.sqrt(expected * (1 - expected) / n)
            assert abs(rate - expected) <= 4 * se, (result.planted.playbook, arm, rate, expected, n)
        assert result.ci95 is not None and result.ci95[0] < result.ci95[1]
    recovery = next(r for r in results if r.planted.playbook == "failed-payment-recovery")
    assert recovery.planted.lift > 0 and recovery.held_out > 0
