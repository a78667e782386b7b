"""Identity resolution on the demo world against its ground truth: pairwise precision and recall
of the merges.

    .venv/bin/python bench/identity_quality.py [--members 3000] [--months 15] [--seed 7] [--keep DIR]

`signalbox demo seed` writes a ground-truth row per source record (the member's own userId, a
POS record, a booking-system customer, a web lead) with the real person behind it
(`person_id`). Every record reaches the pipeline under one identifier of its own: the member's
`userId`, or the record's `anonymousId` (`pos-<POS id>`, `booking-<booking id>`, the lead's
anonymous id), while the email and phone it carries are typed the way that system types them
(case, formatting, and a share of typos). After seeding, each record's identifier is looked up
in the identifiers table and followed to the root of its profile tree.

A pair of records is *predicted* together when they sit in the same profile and *truly*
together when they share a `person_id`. Precision = correct pairs / predicted pairs (1.000
means no two people were merged); recall = correct pairs / true pairs. Recall is reported twice:
over every record, and over the records the ground truth marks `stitchable` (their email or
phone matches the member's; a typo'd email with no phone cannot be stitched by any rule-based
resolver, and a lead who never joined is a person of their own).

The read is bare SQL on the seeded SQLite file (the measurement does not go through the code it
measures). Exits 1 when precision is below 1.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from signalbox.core import migrate
from signalbox.core.db import Database
from signalbox.core.settings import Settings
from signalbox.demo import service as demo
from signalbox.demo.schemas import WorldConfig
from signalbox.workspaces import service as workspaces


def record_key(row: dict[str, str]) -> tuple[str, str]:
    """The identifier a ground-truth record reaches the pipeline under (see demo/world.py)."""
    source, source_id = row["source"], row["source_id"]
    if source == "member":
        return "user_id", source_id
    if source == "pos":
        return "anonymous_id", f"pos-{source_id}"
    if source == "booking":
        return "anonymous_id", f"booking-{source_id}"
    if source == "lead":
        return "anonymous_id", source_id
    raise ValueError(f"unknown ground-truth source {source!r}")


def pairs(sizes: Counter[Any]) -> int:
    return sum(n * (n - 1) // 2 for n in sizes.values())


def pairwise(records: list[tuple[str, str]]) -> dict[str, Any]:
    """records: (person_id, profile root). Precision and recall over unordered record pairs."""
    predicted = pairs(Counter(root for _, root in records))
    true = pairs(Counter(person for person, _ in records))
    correct = pairs(Counter(records))
    by_root: dict[str, set[str]] = {}
    by_person: dict[str, set[str]] = {}
    for person, root in records:
        by_root.setdefault(root, set()).add(person)
        by_person.setdefault(person, set()).add(root)
    return {
        "records": len(records),
        "people": len(by_person),
        "profiles": len(by_root),
        "true_pairs": true,
        "predicted_pairs": predicted,
        "correct_pairs": correct,
        "precision": round(correct / predicted, 4) if predicted else None,
        "recall": round(correct / true, 4) if true else None,
        "profiles_holding_several_people": sum(1 for people in by_root.values() if len(people) > 1),
        "people_split_over_several_profiles": sum(1 for roots in by_person.values() if len(roots) > 1),
    }


def roots_of(path: Path, workspace_id: str) -> dict[tuple[str, str], str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT i.type, i.value, p.canonical_id FROM identifiers i "
            "JOIN profiles p ON p.workspace_id = i.workspace_id AND p.id = i.profile_id "
            "WHERE i.workspace_id = ? AND i.type IN ('user_id', 'anonymous_id')",
            (workspace_id,),
        ).fetchall()
    finally:
        conn.close()
    return {(kind, value): root for kind, value, root in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=3000)
    parser.add_argument("--months", type=int, default=15)
    parser.add_argument("--locations", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 11, 30))
    parser.add_argument("--keep", type=Path, default=None, help="folder for the database and ground truth")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="sb-identity-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        run(args, folder)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


def run(args: argparse.Namespace, folder: Path) -> None:
    path, truth_path = folder / "identity.db", folder / "truth.csv"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    settings = Settings(database_url=url, environment="test")
    db = Database(settings)
    config = WorldConfig(
        end=args.end, members=args.members, months=args.months, locations=args.locations, seed=args.seed
    )
    started = time.perf_counter()
    seeded = demo.seed(db, settings, "demo", config, ground_truth=truth_path)
    seed_s = time.perf_counter() - started
    workspace_id = workspaces.get_workspace(db, "demo").id
    db.dispose()

    with truth_path.open(encoding="utf-8", newline="") as fh:
        truth = list(csv.DictReader(fh))
    roots = roots_of(path, workspace_id)
    everything: list[tuple[str, str]] = []
    stitchable: list[tuple[str, str]] = []
    missing: Counter[str] = Counter()
    seen: set[tuple[str, str]] = set()
    for row in truth:
        key = record_key(row)
        if key in seen:  # one identifier, one record: a duplicate row would count its pairs twice
            continue
        seen.add(key)
        root = roots.get(key)
        if root is None:
            missing[row["source"]] += 1
            continue
        everything.append((row["person_id"], root))
        if row["stitchable"] == "true":
            stitchable.append((row["person_id"], root))

    report = {
        "world": {"members": args.members, "months": args.months, "locations": args.locations, "seed": args.seed},
        "events": seeded.events,
        "seed_s": round(seed_s, 1),
        "records_by_source": dict(Counter(row["source"] for row in truth)),
        "records_without_identifier": dict(missing),
        "all_records": pairwise(everything),
        "stitchable_records": pairwise(stitchable),
    }
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    if missing or report["all_records"]["precision"] not in (None, 1.0):
        print("identity quality: a false merge, or a record whose identifier was never stored", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
