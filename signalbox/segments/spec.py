"""The condition language shared by segments, triggers and branches, and the checks every
file format shares. Each problem is collected with its path (never only the first), so an
author fixes a file in one pass."""

from __future__ import annotations

import re
from typing import Any

from signalbox.core.yamlsource import Path, Problem

PLAYBOOK_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_DURATION = re.compile(r"^([+-]?)(\d{1,6})(s|m|h|d|w)$")
CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists", "contains")
COMBINATORS = ("all", "any", "not")
# What `scores.` and `profile.` can name: the fields a profile actually has.
SCORE_FIELDS = ("at_risk_score", "at_risk_band", "churn_probability")
PROFILE_FIELDS = ("user_id", "first_seen", "last_seen", "timezone", "home_location")


def duration(text: Any, *, signed: bool = False) -> int | None:
    """`30s`, `15m`, `24h`, `3d`, `2w` in seconds (a sign only where `signed`), else None."""
    if not isinstance(text, str):
        return None
    found = _DURATION.match(text.strip())
    if not found or (found.group(1) and not signed):
        return None
    seconds = int(found.group(2)) * _UNIT_SECONDS[found.group(3)]
    return -seconds if found.group(1) == "-" else seconds


class Checker:
    """Collects every problem with its path: the checks every file format shares."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, path: Path, message: str) -> None:
        self.problems.append(Problem(path, message))

    def mapping(self, value: Any, path: Path, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> bool:
        if not isinstance(value, dict):
            self.problem(path, "must be a mapping")
            return False
        for key in value:
            if key not in allowed:
                self.problem((*path, str(key)), f"unknown field; expected one of {', '.join(allowed)}")
        for key in required:
            if key not in value:
                self.problem((*path, key), "is required")
        return True

    def text(self, value: Any, path: Path, pattern: re.Pattern[str] | None = None, what: str = "") -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.problem(path, "must be a non-empty string")
            return None
        if pattern is not None and not pattern.match(value):
            self.problem(path, f"{value!r} is not {what}")
            return None
        return value

    def choice(self, value: Any, path: Path, options: tuple[str, ...]) -> str | None:
        if value not in options:
            self.problem(path, f"{value!r} is not one of {', '.join(options)}")
            return None
        return str(value)

    def seconds(self, value: Any, path: Path, *, signed: bool = False) -> int | None:
        found = duration(value, signed=signed)
        if found is None or (found == 0 and not signed):
            example = "-30d" if signed else "24h"
            self.problem(path, f"{value!r} is not a duration like 30s, 15m, {example}, 3d or 2w")
        return found

    def clock(self, value: Any, path: Path) -> str | None:
        if not isinstance(value, str) or not CLOCK.match(value):
            self.problem(path, f"{value!r} is not a time like 09:00")
            return None
        return value

    # ---- conditions ----------------------------------------------------------------------

    def field_path(self, key: str, path: Path, *, event_ok: bool) -> None:
        head, _, rest = key.partition(".")
        if not rest:
            self.problem(path, f"{key!r} is not a path: start with event., traits., scores. or profile.")
        elif head == "event":
            if not event_ok:
                self.problem(path, f"{key!r} cannot exist here: only an event trigger has an event")
        elif head == "scores":
            if rest not in SCORE_FIELDS:
                self.problem(path, f"{key!r} cannot exist: scores are {', '.join(SCORE_FIELDS)}")
        elif head == "profile":
            if rest not in PROFILE_FIELDS:
                self.problem(path, f"{key!r} cannot exist: profile fields are {', '.join(PROFILE_FIELDS)}")
        elif head != "traits":
            self.problem(path, f"{key!r} must start with event., traits., scores. or profile.")

    def condition(self, value: Any, path: Path, *, event_ok: bool) -> dict[str, Any]:
        """A mapping of path -> value or {operator: value}; `all`/`any`/`not` combine."""
        if not isinstance(value, dict) or not value:
            self.problem(path, "must be a non-empty mapping of path: value or path: {operator: value}")
            return {"all": []}
        parts: list[dict[str, Any]] = []
        for key, test in value.items():
            here = (*path, str(key))
            if key in ("all", "any"):
                if not isinstance(test, list) or not test:
                    self.problem(here, f"{key} needs a non-empty list of conditions")
                    continue
                parts.append({key: [self.condition(c, (*here, i), event_ok=event_ok) for i, c in enumerate(test)]})
            elif key == "not":
                parts.append({"not": self.condition(test, here, event_ok=event_ok)})
            else:
                self.field_path(str(key), here, event_ok=event_ok)
                parts.append({"path": str(key), **self.comparison(test, here)})
        return parts[0] if len(parts) == 1 else {"all": parts}

    def comparison(self, test: Any, path: Path) -> dict[str, Any]:
        if not isinstance(test, dict):
            return {"op": "eq", "value": test}
        if len(test) != 1:
            self.problem(path, f"one operator per path ({', '.join(OPERATORS)}); combine with all:")
            return {"op": "eq", "value": None}
        ((op, operand),) = test.items()
        if op not in OPERATORS:
            self.problem((*path, str(op)), f"unknown operator; expected one of {', '.join(OPERATORS)}")
        elif op in ("in", "not_in") and not isinstance(operand, list):
            self.problem((*path, op), f"{op} needs a list")
        elif op == "exists" and not isinstance(operand, bool):
            self.problem((*path, op), "exists needs true or false")
        elif op in ("gt", "gte", "lt", "lte") and (
            isinstance(operand, bool) or not isinstance(operand, int | float | str)
        ):
            self.problem((*path, op), f"{op} needs a number or an ISO date")
        return {"op": str(op), "value": operand}


def check_segment(data: Any) -> tuple[dict[str, Any], list[Problem]]:
    """A segment: `segment: id`, optional `name`, and `where`, a condition over `traits.`,
    `scores.` and `profile.` (no event: membership is about who someone is now)."""
    c = Checker()
    if not c.mapping(data, (), ("segment", "name", "where", "description"), ("segment", "where")):
        return {}, c.problems
    out: dict[str, Any] = {
        "segment": c.text(data.get("segment"), ("segment",), PLAYBOOK_ID, "an id like lapsing-vips"),
        "name": data.get("name") if isinstance(data.get("name"), str) else None,
        "where": c.condition(data.get("where"), ("where",), event_ok=False),
    }
    return out, c.problems
