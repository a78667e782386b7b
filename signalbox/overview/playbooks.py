"""The Playbooks pages' read model: each playbook's enrolments, its funnel per step, treated
vs holdout with the report's statistics, and the decisions that held people back.

A viewer scoped to locations gets every number from the enrolments (and decisions) of people
whose `home_location` is one of theirs, so nothing of another location leaks into a rate. The
statistics are the CLI report's own (`journeys.report.summarize`); only its inputs are scoped.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session, aliased

from signalbox.core.db import Database
from signalbox.core.errors import NotFoundError
from signalbox.journeys import report
from signalbox.journeys import service as journeys
from signalbox.journeys.models import Decision, Enrollment
from signalbox.journeys.schemas import PlaybookInfo
from signalbox.profiles.models import Profile
from signalbox.workspaces import service as workspaces

# Outcomes that mean a step did not reach the person (yet): what an operator asks "why not?"
# about. A wait_for's timeout is a path the author chose, not a hold-up.
HELD_BACK_OUTCOMES = frozenset({"delayed", "suppressed", "held_out", "failed", "skipped"})
NOT_HELD_BACK = frozenset({("skipped", "timeout")})
EXAMPLES_PER_REASON = 3


def visible_nodes(workspace_id: str, locations: Sequence[str]) -> Select[Any]:
    """Every profile node (merged ones too) whose person's `home_location` is one of these:
    decisions, enrolments and sends name the node they were made for, the trait lives on
    the root."""
    node, root = aliased(Profile), aliased(Profile)
    home = root.traits["home_location"].as_string()
    return (
        select(node.id)
        .join(root, (root.workspace_id == node.workspace_id) & (root.id == node.canonical_id))
        .where(node.workspace_id == workspace_id, home.in_(list(locations)))
    )


def _in_scope(column: Any, workspace_id: str, locations: tuple[str, ...] | None) -> ColumnElement[bool] | None:
    if locations is None:
        return None
    return column.in_(visible_nodes(workspace_id, locations).scalar_subquery())  # type: ignore[no-any-return]


# ---- the funnel ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepShape:
    id: str
    verb: str
    depth: int  # 0: a top-level step; 1: inside a branch arm or on_timeout; ...
    label: str
    before: tuple[str, ...]  # every step an enrolment went through to be here
    then: str | None = None  # where an enrolment goes when this step is done (None: the end)
    on_timeout: str | None = None  # a wait_for's first timeout step


# A decision with one of these outcomes means the step was done and the enrolment moved on
# (a send held out, suppressed or failed goes on to the next step all the same); `delayed`
# and `exited` leave it where it was.
MOVED_ON = frozenset({"sent", "held_out", "suppressed", "failed", "skipped"})


def shape(definition: dict[str, Any]) -> list[StepShape]:
    """The steps in reading order, each with the steps that must come before it: the earlier
    steps of its own list and, for a nested list, the step holding it and what precedes that.
    An arm's steps are not before the step after the branch: only one arm is taken."""
    out: list[StepShape] = []

    def walk(steps: list[dict[str, Any]], depth: int, outer: tuple[str, ...], after: str | None) -> None:
        done: tuple[str, ...] = ()
        for i, step in enumerate(steps):
            before = (*outer, *done)
            following = steps[i + 1]["id"] if i + 1 < len(steps) else after
            timeout = step.get("on_timeout") or []
            first = timeout[0]["id"] if step["verb"] == "wait_for" and timeout else None
            out.append(StepShape(step["id"], step["verb"], depth, _label(step), before, following, first))
            nested = (*before, step["id"])
            if step["verb"] == "branch":
                for arm in step["branch"]["arms"]:
                    walk(arm["steps"], depth + 1, nested, following)
                walk(step["branch"]["else"], depth + 1, nested, following)
            elif step["verb"] == "wait_for":
                walk(timeout, depth + 1, nested, following)
            done = (*done, step["id"])

    walk(definition["steps"], 0, (), None)
    return out


def _label(step: dict[str, Any]) -> str:
    verb: str = step["verb"]
    body = step.get(verb)
    if verb == "send" and isinstance(body, dict):
        return f"send {body.get('channel')}: {body.get('template')}"
    if verb == "task" and isinstance(body, dict):
        return f"task: {body.get('title')}"
    if verb == "wait_for" and isinstance(body, dict):
        return f"wait for {body.get('event')}"
    if verb == "exit":
        return "exit"
    return verb.replace("_", " ")


@dataclass(frozen=True, slots=True)
class Trace:
    """What is known of one enrolment's way through the steps."""

    status: str  # active | completed | exited
    position: str | None
    decided: frozenset[tuple[str, str]]  # (step, outcome) of this enrolment's decisions


@dataclass(frozen=True, slots=True)
class FunnelStep:
    id: str
    verb: str
    depth: int
    label: str
    reached: int  # enrolments that got to this step
    here: int  # active enrolments waiting at it now
    outcomes: dict[str, int]  # decisions at this step by outcome

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.id,
            "verb": self.verb,
            "depth": self.depth,
            "label": self.label,
            "reached": self.reached,
            "here": self.here,
            "outcomes": dict(self.outcomes),
        }


def funnel(
    steps: list[StepShape], traces: Iterable[Trace], outcomes: dict[str, Counter[str]] | None = None
) -> list[FunnelStep]:
    """How many enrolments reached each step. A wait or a branch leaves no decision, so a step
    counts as reached when the enrolment decided or stands at it, moved on to it from a step
    it decided, or reached any step after it on its path; every enrolment starts at the first
    step, and a completed one went through every top-level step."""
    if not steps:
        return []
    before = {s.id: s.before for s in steps}
    by_id = {s.id: s for s in steps}
    last_top = [s.id for s in steps if s.depth == 0][-1]
    reached: Counter[str] = Counter()
    here: Counter[str] = Counter()
    for trace in traces:
        seen = {steps[0].id}
        for step_id, outcome in trace.decided:
            known = by_id.get(step_id)
            if known is None:  # a step of an older version that this one no longer has
                continue
            seen.add(step_id)
            nxt = known.on_timeout if outcome == "skipped" and known.on_timeout else known.then
            if outcome in MOVED_ON and nxt is not None:
                seen.add(nxt)
        if trace.position in before:
            seen.add(trace.position)
            if trace.status == "active":
                here[trace.position] += 1
        if trace.status == "completed":
            seen.add(last_top)
        for step in list(seen):
            seen.update(before[step])
        reached.update(seen)
    by_step = outcomes or {}
    return [
        FunnelStep(s.id, s.verb, s.depth, s.label, reached[s.id], here[s.id], dict(by_step.get(s.id, Counter())))
        for s in steps
    ]


# ---- held back -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeldDecision:
    user_id: str | None
    step: str | None
    outcome: str
    reason: str
    channel: str | None
    at: datetime
    at_local: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "step": self.step,
            "outcome": self.outcome,
            "reason": self.reason,
            "channel": self.channel,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class HeldBack:
    reason: str
    count: int  # decisions
    people: int  # distinct people
    outcomes: dict[str, int]
    examples: list[HeldDecision] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "count": self.count,
            "people": self.people,
            "outcomes": dict(self.outcomes),
            "examples": [e.to_dict() for e in self.examples],
        }


def held_back(
    counts: dict[tuple[str, str], int], people: dict[str, int], examples: dict[str, list[HeldDecision]]
) -> list[HeldBack]:
    """One group per reason from (reason, outcome) counts, distinct people per reason and the
    newest examples: most frequent first; outcomes that did not hold anyone back are left out."""
    total: Counter[str] = Counter()
    outcomes: dict[str, dict[str, int]] = defaultdict(dict)
    for (reason, outcome), n in counts.items():
        if outcome not in HELD_BACK_OUTCOMES or (outcome, reason) in NOT_HELD_BACK or not n:
            continue
        total[reason] += n
        outcomes[reason][outcome] = outcomes[reason].get(outcome, 0) + n
    order = sorted(total, key=lambda r: (-total[r], r))
    return [HeldBack(r, total[r], people.get(r, 0), outcomes[r], examples.get(r, [])) for r in order]


# ---- lift ------------------------------------------------------------------------------------


def _pts(value: float) -> str:
    points = round(value * 100)
    return f"{points:+d}" if points else "0"


@dataclass(frozen=True, slots=True)
class Lift:
    absolute: float | None
    low: float | None
    high: float | None

    @property
    def significant(self) -> bool:
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    @property
    def statement(self) -> str:
        if self.absolute is None or self.low is None or self.high is None:
            return "no comparison yet (needs enrolments in both the treated group and the holdout)"
        said = f"{_pts(self.absolute)} pts (95% CI {_pts(self.low)} to {_pts(self.high)})"
        return said if self.significant else f"{said}: not significant"

    def bar(self) -> dict[str, float] | None:
        """Where the interval, the estimate and zero sit on a 0-100 % track whose ends are
        ±(the largest magnitude shown, at least 10 pts), so zero is always in the middle."""
        if self.absolute is None or self.low is None or self.high is None:
            return None
        span = max(0.1, abs(self.low), abs(self.high))

        def at(value: float) -> float:
            return round(50 + 50 * value / span, 2)

        return {"low": at(self.low), "high": at(self.high), "estimate": at(self.absolute), "zero": 50.0}

    def to_dict(self) -> dict[str, Any]:
        return {
            "absolute": self.absolute,
            "ci95": None if self.low is None else [self.low, self.high],
            "significant": self.significant,
            "statement": self.statement,
        }

    @classmethod
    def of(cls, summary: dict[str, Any]) -> Lift:
        ci = summary["lift"]["ci95"]
        return cls(summary["lift"]["absolute"], ci[0] if ci else None, ci[1] if ci else None)


# ---- the pages -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlaybookRow:
    key: str
    name: str
    purpose: str
    trigger: str
    status: str
    version: int
    active: int
    enrolled: int
    treated_rate: float | None
    holdout_rate: float | None
    lift: Lift

    def to_dict(self) -> dict[str, Any]:
        return {
            "playbook": self.key,
            "name": self.name,
            "purpose": self.purpose,
            "trigger": self.trigger,
            "status": self.status,
            "version": self.version,
            "enrolled": {"active": self.active, "total": self.enrolled},
            "goal_rate": {"treated": self.treated_rate, "holdout": self.holdout_rate},
            "lift": self.lift.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class PlaybookDetail:
    row: PlaybookRow
    summary: dict[str, Any]  # the report's document, from the viewer's enrolments
    funnel: list[FunnelStep]
    held_back: list[HeldBack]
    scoped: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.row.to_dict(),
            "scoped": self.scoped,
            "arms": self.summary["arms"],
            "revenue": self.summary["revenue"],
            "interval": self.summary["lift"]["interval"],
            "funnel": [s.to_dict() for s in self.funnel],
            "held_back": [h.to_dict() for h in self.held_back],
        }


Enrolled = tuple[str, str, bool, str | None, str, str | None]  # id, playbook, holdout, exit_reason, status, position


def _enrollment_rows(
    session: Session, workspace_id: str, locations: tuple[str, ...] | None, key: str | None = None
) -> list[Enrolled]:
    """(id, playbook, holdout, exit_reason, status, position) of the enrolments the viewer sees."""
    stmt = select(
        Enrollment.id,
        Enrollment.playbook_key,
        Enrollment.holdout,
        Enrollment.exit_reason,
        Enrollment.status,
        Enrollment.position,
    ).where(Enrollment.workspace_id == workspace_id)
    if key is not None:
        stmt = stmt.where(Enrollment.playbook_key == key)
    scope = _in_scope(Enrollment.profile_id, workspace_id, locations)
    if scope is not None:
        stmt = stmt.where(scope)
    return [(r[0], r[1], bool(r[2]), r[3], r[4], r[5]) for r in session.execute(stmt)]


def _row(info: PlaybookInfo, enrolments: list[Enrolled], summary: dict[str, Any]) -> PlaybookRow:
    arms = summary["arms"]
    return PlaybookRow(
        info.playbook,
        info.name,
        info.purpose,
        info.trigger,
        info.status,
        info.version,
        sum(1 for e in enrolments if e[4] == "active"),
        len(enrolments),
        arms["treated"]["rate"],
        arms["holdout"]["rate"],
        Lift.of(summary),
    )


def list_playbooks(db: Database, workspace_id: str, locations: tuple[str, ...] | None) -> list[PlaybookRow]:
    """Every playbook (the same list for everyone), with numbers from the viewer's people."""
    infos = journeys.list_playbooks(db, workspace_id)
    with db.session() as session:
        rows = _enrollment_rows(session, workspace_id, locations)
    by_key: dict[str, list[Enrolled]] = defaultdict(list)
    for r in rows:
        by_key[r[1]].append(r)
    out = []
    for info in sorted(infos, key=lambda i: (i.name.lower(), i.playbook)):
        mine = by_key.get(info.playbook, [])
        # Rates and lift need no revenue: the goal amounts are read on the detail page only.
        summary = report.summarize(info.playbook, [(e[0], e[2], e[3]) for e in mine], {})
        out.append(_row(info, mine, summary))
    return out


def playbook_detail(db: Database, workspace_id: str, key: str, locations: tuple[str, ...] | None) -> PlaybookDetail:
    info = next((p for p in journeys.list_playbooks(db, workspace_id) if p.playbook == key), None)
    if info is None:
        raise NotFoundError(f"no playbook {key!r} in this workspace")
    _, definition = journeys.definition(db, workspace_id, key)
    zone = ZoneInfo(workspaces.get_workspace(db, workspace_id).timezone)
    with db.session() as session:
        enrolments = _enrollment_rows(session, workspace_id, locations, key)
        amounts = report.goal_amounts(session, workspace_id, key)
        decided = _decided_steps(session, workspace_id, key, locations)
        outcomes = _outcomes_by_step(session, workspace_id, key, locations)
        held = _held_back(session, workspace_id, key, locations, zone)
    summary = report.summarize(key, [(e[0], e[2], e[3]) for e in enrolments], amounts)
    traces = [Trace(e[4], e[5], frozenset(decided.get(e[0], ()))) for e in enrolments]
    return PlaybookDetail(
        _row(info, enrolments, summary),
        summary,
        funnel(shape(definition), traces, outcomes),
        held,
        locations is not None,
    )


def _decisions(workspace_id: str, key: str, locations: tuple[str, ...] | None) -> list[ColumnElement[bool]]:
    where = [Decision.workspace_id == workspace_id, Decision.playbook_key == key]
    scope = _in_scope(Decision.profile_id, workspace_id, locations)
    return where if scope is None else [*where, scope]


def _decided_steps(
    session: Session, workspace_id: str, key: str, locations: tuple[str, ...] | None
) -> dict[str, set[tuple[str, str]]]:
    rows = session.execute(
        select(Decision.enrollment_id, Decision.step_id, Decision.outcome)
        .where(*_decisions(workspace_id, key, locations), Decision.enrollment_id.is_not(None))
        .distinct()
    )
    out: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for enrollment_id, step_id, outcome in rows:
        if enrollment_id is not None and step_id is not None:
            out[enrollment_id].add((step_id, outcome))
    return out


def _outcomes_by_step(
    session: Session, workspace_id: str, key: str, locations: tuple[str, ...] | None
) -> dict[str, Counter[str]]:
    rows = session.execute(
        select(Decision.step_id, Decision.outcome, func.count())
        .where(*_decisions(workspace_id, key, locations), Decision.step_id.is_not(None))
        .group_by(Decision.step_id, Decision.outcome)
    )
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for step_id, outcome, count in rows:
        if step_id is not None:
            out[step_id][outcome] += int(count)
    return out


def _held_back(
    session: Session, workspace_id: str, key: str, locations: tuple[str, ...] | None, zone: ZoneInfo
) -> list[HeldBack]:
    """Counted in the database (a paused playbook or quiet hours can leave many decisions);
    only a few of the newest are read per reason."""
    reason = func.coalesce(Decision.reason, "unspecified")
    where = [
        *_decisions(workspace_id, key, locations),
        Decision.outcome.in_(sorted(HELD_BACK_OUTCOMES)),
        *[~((Decision.outcome == o) & (reason == r)) for o, r in sorted(NOT_HELD_BACK)],
    ]
    counts = {
        (str(r), str(o)): int(n)
        for r, o, n in session.execute(
            select(reason, Decision.outcome, func.count()).where(*where).group_by(reason, Decision.outcome)
        )
    }
    people = {
        str(r): int(n)
        for r, n in session.execute(
            select(reason, func.count(func.distinct(Decision.profile_id))).where(*where).group_by(reason)
        )
    }
    examples: dict[str, list[HeldDecision]] = {}
    for name in people:
        rows = session.execute(
            select(Decision.user_id, Decision.step_id, Decision.outcome, Decision.channel, Decision.at)
            .where(*where, reason == name)
            .order_by(Decision.id.desc())
            .limit(EXAMPLES_PER_REASON)
        )
        examples[name] = [
            HeldDecision(u, step, outcome, name, channel, at, at.astimezone(zone).strftime("%d %b %H:%M"))
            for u, step, outcome, channel, at in rows
        ]
    return held_back(counts, people, examples)
