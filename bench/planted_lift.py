"""Does `playbooks report` find an effect we planted? Worlds whose members answer the shipped
playbooks with stated effects (signalbox.demo.outcomes): one larger world, then many smaller
ones with other seeds. For each planted effect: the measured lift, its 95 % interval, whether
the interval covers the planted value, and how often it does across worlds; a planted lift of
zero must not come out significant.

    .venv/bin/python bench/planted_lift.py [--worlds 10] [--members 300] [--days 10] [--per-day 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from signalbox.core import migrate
from signalbox.core.db import Database
from signalbox.core.settings import Settings
from signalbox.demo import outcomes
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.workspaces import service as workspaces

ROOT = Path(__file__).resolve().parents[1] / "playbooks"
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def _files(folder: Path) -> list[tuple[str, str]]:
    return [(str(p), p.read_text()) for p in sorted(folder.glob("*.yaml"))]


def world(folder: Path, seed: int, members: int, days: int, per_day: int) -> list[dict[str, object]]:
    url = f"sqlite:///{folder}/planted-{seed}.db"
    migrate.upgrade(url)
    settings = Settings(database_url=url, environment="test")
    db = Database(settings)
    ws = workspaces.create_workspace(db, f"planted-{seed}")
    journeys.apply(db, ws.id, "template", _files(ROOT / "templates"), START)
    journeys.apply(db, ws.id, "playbook", _files(ROOT), START)
    zones = ["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"]
    people = [
        {
            "type": "identify",
            "messageId": f"sim-member-{i}",
            "userId": f"sim-{i}",
            "traits": {"email": f"sim{i}@example.com", "timezone": zones[i % 4], "email_subscribe": "opted_in"},
        }
        for i in range(members)
    ]
    Pipeline(db, settings).ingest(ws, BatchInput(people))
    results = outcomes.simulate(db, settings, ws, start=START, days=days, per_day=per_day, seed=seed)
    db.dispose()
    return [r.to_dict() for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worlds", type=int, default=10, help="smaller worlds, seeds 101, 102, ...")
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--per-day", type=int, default=30)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        default = world(folder, 7, args.members * 2, args.days * 2, args.per_day)
        print(f"default world: {orjson.dumps(default).decode()}", file=sys.stderr)
        smaller = []
        for i in range(args.worlds):
            smaller.append(world(folder, 101 + i, args.members, args.days, args.per_day))
            print(f"world {i + 1}/{args.worlds}: {orjson.dumps(smaller[-1]).decode()}", file=sys.stderr)
    summary: dict[str, object] = {"default_world": default, "worlds": args.worlds}
    for index, effect in enumerate(default):
        name = str(effect["playbook"])
        runs = [w[index] for w in smaller]
        summary[name] = {
            "planted_lift": effect["planted_lift"],
            "covered": sum(1 for r in runs if r["covered"]),
            "significant": sum(1 for r in runs if r["significant"]),
            "median_measured_lift": statistics.median(float(str(r["measured_lift"])) for r in runs),
            "median_enrolled": statistics.median(int(str(r["enrolled"])) for r in runs),
            "median_held_out": statistics.median(int(str(r["held_out"])) for r in runs),
        }
    summary["seconds"] = round(time.perf_counter() - started, 1)
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
