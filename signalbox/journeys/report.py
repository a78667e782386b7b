"""What a playbook did, against its holdout: conversion per arm, lift with a 95 % interval,
and the revenue of the goal events.

The interval is Newcombe's hybrid score interval for a difference of two proportions (method
10 of Newcombe 1998), built from each arm's Wilson interval. Holdouts are small (10 % by
default) and conversion rates are often near 0 or 1, where the textbook Wald interval is too
narrow and can leave [0, 1]; Newcombe's keeps close to its nominal coverage there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from signalbox.core.db import Database
from signalbox.core.errors import NotFoundError
from signalbox.events import service as events
from signalbox.journeys.models import Decision, Enrollment, Playbook

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Arm:
    enrolled: int
    converted: int
    revenue: float

    @property
    def rate(self) -> float | None:
        return self.converted / self.enrolled if self.enrolled else None

    def to_dict(self) -> dict[str, Any]:
        rate = self.rate
        per = self.revenue / self.enrolled if self.enrolled else None
        return {
            "enrolled": self.enrolled,
            "converted": self.converted,
            "rate": None if rate is None else round(rate, 4),
            "revenue": round(self.revenue, 2),
            "revenue_per_enrolled": None if per is None else round(per, 2),
        }


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """95 % interval for p1 - p2 (Newcombe's method 10)."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return lower, upper


def report(db: Database, workspace_id: str, key: str) -> dict[str, Any]:
    with db.session() as session:
        if (
            session.scalar(select(Playbook.id).where(Playbook.workspace_id == workspace_id, Playbook.key == key))
            is None
        ):
            raise NotFoundError(f"no playbook {key!r} in this workspace (see `signalbox playbooks list`)")
        rows = session.execute(
            select(Enrollment.id, Enrollment.holdout, Enrollment.exit_reason).where(
                Enrollment.workspace_id == workspace_id, Enrollment.playbook_key == key
            )
        ).all()
        amounts = goal_amounts(session, workspace_id, key)
    return summarize(key, [(e, bool(h), r) for e, h, r in rows], amounts)


def goal_amounts(session: Session, workspace_id: str, key: str) -> dict[str, float]:
    """The revenue of each enrolment's goal event, by enrolment id."""
    goals = session.execute(
        select(Decision.enrollment_id, Decision.detail).where(
            Decision.workspace_id == workspace_id,
            Decision.playbook_key == key,
            Decision.outcome == "exited",
            Decision.reason == "goal_met",
        )
    ).all()
    message_ids = {e: (d or {}).get("message_id") for e, d in goals}
    found = events.by_message_ids(session, workspace_id, [m for m in message_ids.values() if m])
    return {
        enrollment: _amount(found[mid][1].properties) if mid in found else 0.0
        for enrollment, mid in message_ids.items()
        if enrollment and mid
    }


def arms_of(rows: Iterable[tuple[str, bool, str | None]], amounts: dict[str, float]) -> tuple[Arm, Arm]:
    """(treated, holdout): enrolled, converted (goal met) and the goals' revenue of each arm."""
    arms: dict[bool, list[int | float]] = {False: [0, 0, 0.0], True: [0, 0, 0.0]}
    for enrollment_id, holdout, exit_reason in rows:
        arm = arms[bool(holdout)]
        arm[0] += 1
        if exit_reason == "goal_met":
            arm[1] += 1
            arm[2] += amounts.get(enrollment_id, 0.0)
    treated, held = (Arm(int(a[0]), int(a[1]), float(a[2])) for a in (arms[False], arms[True]))
    return treated, held


def summarize(key: str, rows: Iterable[tuple[str, bool, str | None]], amounts: dict[str, float]) -> dict[str, Any]:
    """The report of these enrolments ((id, holdout, exit_reason) each): every enrolment of
    the playbook, or a subset of them (a dashboard viewer's locations), with the same statistics."""
    treated, held = arms_of(rows, amounts)
    lift: dict[str, Any] = {"absolute": None, "ci95": None, "interval": "newcombe-wilson"}
    if treated.enrolled and held.enrolled:
        low, high = newcombe(treated.converted, treated.enrolled, held.converted, held.enrolled)
        assert treated.rate is not None and held.rate is not None
        lift.update(absolute=round(treated.rate - held.rate, 4), ci95=[round(low, 4), round(high, 4)])
    incremental = None
    if treated.enrolled and held.enrolled:
        incremental = round((treated.revenue / treated.enrolled - held.revenue / held.enrolled) * treated.enrolled, 2)
    return {
        "playbook": key,
        "arms": {"treated": treated.to_dict(), "holdout": held.to_dict()},
        "lift": lift,
        "revenue": {
            "treated": round(treated.revenue, 2),
            "holdout": round(held.revenue, 2),
            "incremental": incremental,
        },
    }


def _amount(properties: dict[str, Any]) -> float:
    for key in ("amount", "revenue", "value"):
        value = properties.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return 0.0
