"""Seed a workspace with the demo world, through the real ingestion pipeline.

Nothing is written to a table directly: every message goes through ``Pipeline.ingest`` like
any import, so identity stitching, profiles and counters are exactly what production would
build. Message ids are deterministic, so two processes seeding the same world at once store
each message once.

Demo commands touch only workspaces they created (marked in the workspace's settings), never
a workspace that already holds events when seeding, and never run in production.
"""

from __future__ import annotations

import csv
import math
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import astuple, dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from itertools import islice
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from signalbox.accounts import service as accounts
from signalbox.core.clock import Clock, FixedClock, SystemClock
from signalbox.core.db import Database
from signalbox.core.errors import ConflictError, InvalidInputError, NotFoundError
from signalbox.core.settings import Settings
from signalbox.demo import outcomes
from signalbox.demo.catalog import LOCATIONS
from signalbox.demo.schemas import GROUND_TRUTH_COLUMNS, GroundTruthRow, SeedResult, WorldConfig
from signalbox.demo.world import World, build_world
from signalbox.events import service as events
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.scoring import service as scoring
from signalbox.scoring.schemas import ScoreRun
from signalbox.workspaces import service as workspaces
from signalbox.workspaces.schemas import CreatedWorkspace, WorkspaceInfo

# Measured on SQLite, 12k members x 15 months (~0.9M messages): 5,000 per batch took 143 s of
# CPU, 20,000 took 95 s, 50,000 no less. A larger batch updates each profile once for more of
# its events; the batch is one transaction, so this also bounds how long the write lock is held.
CHUNK = 20_000
WORKSPACE_TIMEZONE = "America/New_York"
# The demo sends `timestamp` without `sentAt`, so clock-skew correction leaves it alone; the
# batch is "received" just after its last message happened, as a live feed would have been.
RECEIVED_LAG = timedelta(seconds=5)
# The workspace settings section that marks a workspace as the demo's own (see open_workspace).
DEMO_SETTING = "demo"

Progress = Callable[[int, int], None]  # (messages done, messages in the world)


def default_ground_truth_path(workspace_name: str) -> Path:
    return Path(f"{workspace_name}.ground_truth.csv")


@dataclass(frozen=True)
class DemoWorkspace:
    workspace: WorkspaceInfo
    keys: CreatedWorkspace | None  # the plain keys, only when just created or re-keyed on request


def refuse_production(settings: Settings) -> None:
    if settings.environment == "production":
        raise ConflictError(
            "demo commands do not run with SIGNALBOX_ENVIRONMENT=production: they fill a workspace with invented people"
        )


def is_demo_workspace(db: Database, workspace_id: str) -> bool:
    return bool(workspaces.get_setting(db, workspace_id, DEMO_SETTING))


def open_workspace(
    db: Database, settings: Settings, name: str, clock: Clock, *, new_keys: bool = False
) -> DemoWorkspace:
    """The demo workspace `name`, created and marked as the demo's when missing.

    A workspace the demo did not create is refused whatever it holds: the demo's generated
    people must never mix with a business's real ones. Keys change only when asked."""
    refuse_production(settings)
    try:
        found = workspaces.get_workspace(db, name)
    except NotFoundError:
        mark = {DEMO_SETTING: {"created_at": clock.now().isoformat()}}
        try:
            created = workspaces.create_workspace(db, name, timezone=WORKSPACE_TIMEZONE, clock=clock, settings=mark)
        except ConflictError:  # created meanwhile by another process: judge that one below
            found = workspaces.get_workspace(db, name)
        else:
            return DemoWorkspace(workspaces.get_workspace(db, created.id), created)
    if not is_demo_workspace(db, found.id):
        raise ConflictError(
            f"workspace {found.name!r} was not created by `signalbox demo`, and demo commands only touch their own "
            "workspaces: choose another --workspace"
        )
    return DemoWorkspace(found, workspaces.rotate_keys(db, found.id) if new_keys else None)


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str  # shown once, when issued
    role: str
    locations: tuple[str, ...] | None


# The demo's dashboard users: an owner who sees every club, and the front desk of one.
DEMO_USERS = (
    ("owner@demo.example", "owner", None),
    ("frontdesk@demo.example", "staff", ("loc-01",)),
)


def issue_logins(db: Database, workspace_id: str, clock: Clock, *, reissue: bool = False) -> list[DemoLogin]:
    """The demo users with fresh random passwords: created when missing, re-issued on request
    (`--new-keys`), else left alone (nothing to show: passwords are stored hashed only)."""
    refused = not is_demo_workspace(db, workspace_id)
    if refused:
        raise ConflictError("demo users are only made in a workspace the demo created")
    issued: list[DemoLogin] = []
    existing = {u.email for u in accounts.list_users(db, workspace_id)}
    for email, role, locations in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        if email not in existing:
            accounts.create_user(
                db, workspace_id, email=email, password=password, role=role, locations=locations, clock=clock
            )
        elif reissue:
            accounts.set_password(db, workspace_id, email, password)
        else:
            continue
        issued.append(DemoLogin(email, password, role, locations))
    return issued


def holds_events(db: Database, workspace_id: str) -> bool:
    with db.session() as session:
        return events.holds_events(session, workspace_id)


def world_today(now: datetime, locations: int) -> date:
    """The world's local date: the earliest among its locations' zones. The world's last day
    runs to each location's local midnight, so a world that ends the day before this date has
    no event in any location's future (UTC's date is already tomorrow on a US evening)."""
    return min(now.astimezone(ZoneInfo(loc.timezone)).date() for loc in LOCATIONS[: max(locations, 1)])


def world_end(requested: date | None, locations: int, clock: Clock) -> date:
    """The world's last day: yesterday in the world's local date unless given; never later."""
    yesterday = world_today(clock.now(), locations) - timedelta(days=1)
    if requested is None:
        return yesterday
    if requested > yesterday:
        raise InvalidInputError(
            f"--end {requested.isoformat()} would put events in the future: use {yesterday.isoformat()} or earlier"
        )
    return requested


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
    """Fill an empty demo workspace (created when missing) with the world.

    A demo workspace that already holds events is refused: a second world, or the same world
    seeded after live events arrived, would mix people the ground truth does not describe."""
    clock = clock or SystemClock()
    workspace = open_workspace(db, settings, workspace_name, clock).workspace
    if holds_events(db, workspace.id):
        raise ConflictError(
            f"demo workspace {workspace.name!r} already holds events; `demo seed` fills only an empty one: "
            "choose another --workspace"
        )
    return _fill(db, settings, workspace, config, progress, ground_truth, clock, chunk_size)


def seed_if_empty(
    db: Database,
    settings: Settings,
    workspace_name: str,
    config: WorldConfig,
    clock: Clock,
    progress: Progress | None = None,
) -> tuple[SeedResult, ScoreRun] | None:
    """Fill an empty demo workspace with the world and score it, so a first demo has people to
    look at; one that already holds events is left as it is (None)."""
    workspace = open_workspace(db, settings, workspace_name, clock).workspace
    if holds_events(db, workspace.id):
        return None
    result = _fill(db, settings, workspace, config, progress, None, clock, CHUNK)
    # Before scoring: the at-risk playbook enrols people as they enter the High band, and the
    # first scoring is that moment for the whole world.
    apply_shipped_playbooks(db, workspace, clock)
    return result, scoring.compute_scores(db, workspace, None, clock)


def shipped_playbooks_dir() -> Path | None:
    """`playbooks/` of a source checkout (what `make demo` runs), or None when not present."""
    found = Path(__file__).resolve().parents[2] / "playbooks"
    return found if (found / "templates").is_dir() else None


def apply_shipped_playbooks(db: Database, workspace: WorkspaceInfo, clock: Clock) -> list[str]:
    folder = shipped_playbooks_dir()
    if folder is None:
        return []
    now = clock.now()

    def files(where: Path) -> list[tuple[str, str]]:
        return [(str(p), p.read_text(encoding="utf-8")) for p in sorted(where.glob("*.yaml"))]

    journeys.apply(db, workspace.id, "template", files(folder / "templates"), now)
    return [a.key for a in journeys.apply(db, workspace.id, "playbook", files(folder), now)]


def _fill(
    db: Database,
    settings: Settings,
    workspace: WorkspaceInfo,
    config: WorldConfig,
    progress: Progress | None,
    ground_truth: Path | None,
    clock: Clock,
    chunk_size: int,
) -> SeedResult:
    started = time.perf_counter()
    world = build_world(config)
    path = (ground_truth or default_ground_truth_path(workspace.name)).resolve()
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


def simulation_span(days: int) -> timedelta:
    """Simulated days after the world ends: the triggers' days, then every journey's end."""
    return timedelta(days=days + math.ceil(max(p.window_days for p in outcomes.PLANTED)) + 7)


def seed_lift_if_empty(
    db: Database,
    settings: Settings,
    workspace_name: str,
    clock: Clock,
    progress: Progress | None = None,
    public_base_url: str | None = None,
) -> list[outcomes.PlantedResult] | None:
    """`make demo`'s second workspace: a small world whose members answer the shipped
    playbooks with planted effects, simulated to end before today. None when it exists.
    With `public_base_url` (the demo server's own address) the messages' links are tracked
    links that work against that server."""
    workspace = open_workspace(db, settings, workspace_name, clock).workspace
    if holds_events(db, workspace.id):
        return None
    if public_base_url is not None:
        workspaces.set_public_base_url(db, workspace.id, public_base_url)
    days, per_day = 6, 40
    end = world_end(None, 6, clock) - simulation_span(days)
    config = WorldConfig(end=end, members=400, locations=6, months=2, seed=11)
    truth = default_ground_truth_path(workspace_name)
    result = _fill(db, settings, workspace, config, None, truth, clock, CHUNK)
    return run_playbooks(
        db,
        settings,
        workspace_name,
        result.end,
        days=days,
        per_day=per_day,
        seed=11,
        ground_truth=truth,
        progress=progress,
    )


def check_simulation(days: int, per_day: int) -> None:
    if not 1 <= days <= 120:
        raise InvalidInputError(f"--sim-days must be between 1 and 120, not {days}")
    if not 1 <= per_day <= 10_000:
        raise InvalidInputError(f"--sim-per-day must be between 1 and 10000, not {per_day}")


def run_playbooks(
    db: Database,
    settings: Settings,
    workspace_name: str,
    after: date,
    *,
    days: int,
    per_day: int,
    seed: int,
    ground_truth: Path,
    progress: Progress | None = None,
) -> list[outcomes.PlantedResult]:
    """The shipped playbooks run through the real engine on a simulated clock from the day
    after the world ends, with members who answer with the planted effects; the effects and
    what the report measured go beside the ground truth (`*.planted.json`)."""
    check_simulation(days, per_day)
    workspace = workspaces.get_workspace(db, workspace_name)
    start = datetime.combine(after + timedelta(days=1), time_of_day(0), tzinfo=UTC)
    if apply_shipped_playbooks(db, workspace, FixedClock(start)) == []:
        raise InvalidInputError("no playbooks/ folder beside this checkout: --with-playbooks needs the shipped ones")

    hours = int((days + max(p.window_days for p in outcomes.PLANTED) + 6) * 24) + 1
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, hours)

    results = outcomes.simulate(
        db, settings, workspace, start=start, days=days, per_day=per_day, seed=seed, progress=tick
    )
    path = ground_truth.with_name(ground_truth.name + ".planted.json")
    path.write_text(orjson.dumps([r.to_dict() for r in results], option=orjson.OPT_INDENT_2).decode())
    return results
