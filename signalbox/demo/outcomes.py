"""Playbooks against a world that answers back: members respond to what they receive with
effects stated here (the ground truth), so what `playbooks report` measures can be checked
against a known answer.

The simulation runs the real worker (triggers, engine, sandbox channels) on a simulated
clock, hour by hour. Each day some members hit a trigger (a failed payment, a card about to
expire). When the engine enrols one, the member's response is drawn once: the goal event
happens within `window_days` with probability `base`, plus `lift` for the treated arm (not held
out), at a uniform moment in the window. The window ends before the playbook's last step, so
every goal lands while the enrolment is still open. The planted effect is intention-to-treat:
the treated arm's added chance of the goal, the same quantity the report's lift estimates.
A lift of zero is planted too, and must come out as no significant lift.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from signalbox.core.clock import FixedClock
from signalbox.core.db import Database
from signalbox.core.settings import Settings
from signalbox.identity import service as identity
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import report as reports
from signalbox.journeys.models import Enrollment
from signalbox.journeys.worker import Worker
from signalbox.workspaces.schemas import WorkspaceInfo


@dataclass(frozen=True)
class Planted:
    playbook: str
    trigger: str
    goal: str
    base: float  # the goal's chance within the window without the playbook
    lift: float  # the chance the playbook adds (absolute), for the treated arm
    window_days: float


PLANTED = (
    # Failed-payment recovery runs 3-4 days (e-mail, a day, 10:00 local, two days, last touch).
    Planted("failed-payment-recovery", "payment_failed", "payment_succeeded", 0.40, 0.15, 2.5),
    # Card-expiring runs 20 days; its messages are planted to change nothing.
    Planted("card-expiring", "card_expiring", "payment_method_updated", 0.30, 0.0, 8.0),
)


@dataclass
class PlantedResult:
    planted: Planted
    enrolled: int
    held_out: int
    lift: float | None
    ci95: tuple[float, float] | None

    @property
    def covered(self) -> bool:
        return self.ci95 is not None and self.ci95[0] <= self.planted.lift <= self.ci95[1]

    @property
    def significant(self) -> bool:
        return self.ci95 is not None and (self.ci95[0] > 0 or self.ci95[1] < 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "playbook": self.planted.playbook,
            "planted_lift": self.planted.lift,
            "base_rate": self.planted.base,
            "window_days": self.planted.window_days,
            "enrolled": self.enrolled,
            "held_out": self.held_out,
            "measured_lift": self.lift,
            "ci95": list(self.ci95) if self.ci95 else None,
            "covered": self.covered,
            "significant": self.significant,
        }


def simulate(
    db: Database,
    settings: Settings,
    workspace: WorkspaceInfo,
    *,
    start: datetime,
    days: int,
    per_day: int,
    seed: int,
    planted: tuple[Planted, ...] = PLANTED,
    progress: Callable[[int], None] | None = None,
) -> list[PlantedResult]:
    """Run the shipped playbooks (already applied) for `days` simulated days from `start`, with
    `per_day` triggers a day for each planted effect, then as long again for every journey to
    end; return each planted effect beside what the report measured."""
    rng = random.Random(seed)
    clock = FixedClock(start)
    pipeline = Pipeline(db, settings, clock)
    worker = Worker(db, settings, clock, stale_every_seconds=1e9)
    people = _members(db, workspace)
    if not people:
        raise ValueError("the workspace has no members with an e-mail address to simulate")
    by_playbook = {p.playbook: p for p in planted}
    pending: list[tuple[datetime, dict[str, Any]]] = []
    seen: set[str] = set()
    serial = 0
    end = start + timedelta(days=days)
    last = end + timedelta(days=max(p.window_days for p in planted) + 6)
    hour = 0
    while (now := start + timedelta(hours=hour)) <= last:
        clock.set(now)
        batch = [m for at, m in pending if at <= now]
        pending = [(at, m) for at, m in pending if at > now]
        if now < end and now.hour == 14:  # mid-morning in the Americas
            for effect in planted:
                for _ in range(per_day):
                    serial += 1
                    batch.append(_trigger(effect, rng.choice(people), serial, now))
        if batch:
            pipeline.ingest(
                workspace, BatchInput([{**m, "timestamp": m.get("timestamp") or now.isoformat()} for m in batch])
            )
        worker.drain()
        for enrolment in _enrolled_at(db, workspace.id, list(by_playbook), now):
            if enrolment.id in seen:
                continue
            seen.add(enrolment.id)
            effect = by_playbook[enrolment.playbook_key]
            chance = effect.base + (0.0 if enrolment.holdout else effect.lift)
            if rng.random() < chance and enrolment.user_id:
                moment = enrolment.created_at + timedelta(days=rng.uniform(0.05, effect.window_days))
                pending.append((moment, _goal(effect, enrolment.user_id, enrolment.entry_key, moment)))
        if progress:
            progress(1)
        hour += 1
    return [_measure(db, workspace, effect) for effect in planted]


def _enrolled_at(db: Database, workspace_id: str, playbooks: list[str], now: datetime) -> list[Any]:
    """Enrolments made at this simulated moment (the engine stamps them with the clock's now),
    in a stable order, so the same seed draws the same answers."""
    with db.session() as session:
        rows = session.execute(
            select(
                Enrollment.id,
                Enrollment.playbook_key,
                Enrollment.holdout,
                Enrollment.user_id,
                Enrollment.entry_key,
                Enrollment.created_at,
            )
            .where(
                Enrollment.workspace_id == workspace_id,
                Enrollment.playbook_key.in_(playbooks),
                Enrollment.created_at >= now,
            )
            .order_by(Enrollment.playbook_key, Enrollment.entry_key, Enrollment.user_id)
        ).all()
    return list(rows)


def _members(db: Database, workspace: WorkspaceInfo) -> list[str]:
    docs = identity.list_profile_documents(db, workspace.id, limit=100_000)
    found = [d.user_id for d in docs if d.user_id and any(i.type == "email" for i in d.identifiers)]
    return sorted(found)


def _trigger(effect: Planted, user_id: str, serial: int, now: datetime) -> dict[str, Any]:
    props: dict[str, Any] = {}
    if effect.trigger == "payment_failed":
        nxt = (now + timedelta(days=3)).isoformat()
        props = {"invoice_id": f"in_sim_{serial}", "amount": 49.0, "currency": "usd", "attempt_count": 1}
        # The shape of Stripe's hosted invoice page (templates link only Stripe's own pages).
        props["hosted_invoice_url"] = f"https://invoice.stripe.com/i/acct_demo/in_sim_{serial}"
        props["next_payment_attempt"] = nxt
    return {
        "type": "track",
        "messageId": f"sim-trigger-{serial}",
        "userId": user_id,
        "event": effect.trigger,
        "properties": props,
    }


def _goal(effect: Planted, user_id: str, entry_key: str, moment: datetime) -> dict[str, Any]:
    props: dict[str, Any] = {"amount": 49.0} if effect.goal == "payment_succeeded" else {}
    if entry_key and effect.goal == "payment_succeeded":
        props["invoice_id"] = entry_key  # the recovery's goal matches the invoice
    return {
        "type": "track",
        "messageId": f"sim-goal-{effect.playbook}-{user_id}-{entry_key}-{moment.timestamp():.0f}",
        "userId": user_id,
        "event": effect.goal,
        "properties": props,
        "timestamp": moment.isoformat(),
    }


def _measure(db: Database, workspace: WorkspaceInfo, effect: Planted) -> PlantedResult:
    doc = reports.report(db, workspace.id, effect.playbook)
    arms, lift = doc["arms"], doc["lift"]
    ci = lift.get("ci95")
    return PlantedResult(
        effect,
        arms["treated"]["enrolled"] + arms["holdout"]["enrolled"],
        arms["holdout"]["enrolled"],
        lift.get("absolute"),
        (float(ci[0]), float(ci[1])) if ci else None,
    )
