"""Seed a workspace with the demo world, through the real ingestion pipeline.

Nothing is written to a table directly: every message goes through ``Pipeline.ingest`` like
any import, so identity stitching, profiles and counters are exactly what production would
build. Message ids are deterministic, so seeding the same world twice stores nothing twice.
"""

from __future__ import annotations

import contextlib
import csv
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import astuple
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from signalbox.core.clock import Clock
from signalbox.core.db import Database
from signalbox.core.errors import ConflictError, NotFoundError
from signalbox.core.settings import Settings
from signalbox.demo.schemas import GROUND_TRUTH_COLUMNS, GroundTruthRow, SeedResult, WorldConfig
from signalbox.demo.world import World, build_world
from signalbox.identity import service as identity
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.scoring import service as scoring
from signalbox.scoring.schemas import ScoreRun
from signalbox.workspaces import service as workspaces
from signalbox.workspaces.schemas import WorkspaceInfo

# Measured on SQLite, 12k members x 15 months (~0.9M messages): 5,000 per batch took 143 s of
# CPU, 20,000 took 95 s, 50,000 no less. A larger batch updates each profile once for more of
# its events; the batch is one transaction, so this also bounds how long the write lock is held.
CHUNK = 20_000
WORKSPACE_TIMEZONE = "America/New_York"
# The demo sends `timestamp` without `sentAt`, so clock-skew correction leaves it alone; the
# batch is "received" just after its last message happened, as a live feed would have been.
RECEIVED_LAG = timedelta(seconds=5)

Progress = Callable[[int, int], None]  # (messages done, messages in the world)


def default_ground_truth_path(workspace_name: str) -> Path:
    return Path(f"{workspace_name}.ground_truth.csv")


def get_or_create_workspace(db: Database, name: str) -> WorkspaceInfo:
    try:
        return workspaces.get_workspace(db, name)
    except NotFoundError:
        pass
    with contextlib.suppress(ConflictError):  # created meanwhile by another process: use that one
        workspaces.create_workspace(db, name, timezone=WORKSPACE_TIMEZONE)
    return workspaces.get_workspace(db, name)


def write_ground_truth(path: Path, rows: Iterable[GroundTruthRow]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(GROUND_TRUTH_COLUMNS)
        for row in rows:
            writer.writerow(["true" if v is True else "false" if v is False else v for v in astuple(row)])


def _chunks(messages: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    while chunk := list(islice(messages, size)):
        yield chunk


def seed(
    db: Database,
    settings: Settings,
    workspace_name: str,
    config: WorldConfig,
    progress: Progress | None = None,
    *,
    ground_truth: Path | None = None,
    clock: Clock | None = None,
    chunk_size: int = CHUNK,
) -> SeedResult:
    started = time.perf_counter()
    workspace = get_or_create_workspace(db, workspace_name)
    world = build_world(config)
    path = (ground_truth or default_ground_truth_path(workspace_name)).resolve()
    write_ground_truth(path, world.ground_truth)
    accepted, duplicates, rejected = _ingest(Pipeline(db, settings, clock), workspace, world, chunk_size, progress)
    return SeedResult(
        workspace=workspace.name,
        members=config.members,
        locations=len(world.locations),
        messages=len(world),
        events=accepted,
        duplicates=duplicates,
        rejected=rejected,
        start=world.start,
        end=world.end,
        seconds=round(time.perf_counter() - started, 2),
        ground_truth=str(path),
    )


def seed_if_empty(
    db: Database,
    settings: Settings,
    workspace_name: str,
    config: WorldConfig,
    clock: Clock,
    progress: Progress | None = None,
) -> tuple[SeedResult, ScoreRun] | None:
    """Fill an empty workspace with the world and score it, so a first demo has people to look
    at; a workspace that already holds anyone is left as it is (None)."""
    workspace = get_or_create_workspace(db, workspace_name)
    if identity.list_profile_documents(db, workspace.id, limit=1):
        return None
    result = seed(db, settings, workspace_name, config, progress, clock=clock)
    return result, scoring.compute_scores(db, workspace, None, clock)


def _ingest(
    pipeline: Pipeline, workspace: WorkspaceInfo, world: World, chunk_size: int, progress: Progress | None
) -> tuple[int, int, int]:
    accepted = duplicates = rejected = done = 0
    total = len(world)
    if progress:
        progress(0, total)
    for chunk in _chunks(world.messages(), chunk_size):
        received_at = datetime.fromisoformat(chunk[-1]["timestamp"]) + RECEIVED_LAG
        result = pipeline.ingest(workspace, BatchInput(chunk, source="demo", received_at=received_at))
        accepted += result.accepted
        duplicates += result.duplicates
        rejected += len(result.rejected) + result.dead_lettered
        done += len(chunk)
        if progress:
            progress(done, total)
    return accepted, duplicates, rejected
