"""Evaluate a checked condition (see `spec.condition`) against what is known of a person."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

MISSING = object()


def lookup(context: Mapping[str, Mapping[str, Any]], path: str) -> Any:
    """`traits.plan` -> context["traits"]["plan"]; nested keys follow dots. Missing: MISSING."""
    head, _, rest = path.partition(".")
    value: Any = context.get(head, {})
    for part in rest.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


def evaluate(condition: Mapping[str, Any], context: Mapping[str, Mapping[str, Any]]) -> bool:
    if "all" in condition:
        return all(evaluate(c, context) for c in condition["all"])
    if "any" in condition:
        return any(evaluate(c, context) for c in condition["any"])
    if "not" in condition:
        return not evaluate(condition["not"], context)
    return compare(lookup(context, condition["path"]), condition["op"], condition["value"])


def compare(found: Any, op: str, operand: Any) -> bool:  # noqa: PLR0911 - one branch per operator
    if op == "exists":
        return (found is not MISSING and found is not None) == bool(operand)
    if found is MISSING or found is None:
        return op in ("ne", "not_in")
    if op == "eq":
        return bool(_same(found, operand))
    if op == "ne":
        return not _same(found, operand)
    if op == "in":
        return any(_same(found, item) for item in operand)
    if op == "not_in":
        return not any(_same(found, item) for item in operand)
    if op == "contains":
        if isinstance(found, str):
            return isinstance(operand, str) and operand in found
        return isinstance(found, list) and any(_same(item, operand) for item in found)
    return _ordered(found, op, operand)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


def _ordered(found: Any, op: str, operand: Any) -> bool:
    """gt/gte/lt/lte between numbers, or between ISO dates/timestamps; anything else is False."""
    left, right = _comparable(found), _comparable(operand)
    if left is None or right is None or left[0] != right[0]:
        return False
    a, b = left[1], right[1]
    if op == "gt":
        return a > b
    if op == "gte":
        return a >= b
    if op == "lt":
        return a < b
    return a <= b


def _comparable(value: Any) -> tuple[str, float] | None:
    """("number", x) or ("time", epoch seconds; a date is its UTC midnight), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return "number", float(value)
    if not isinstance(value, str):
        return None
    try:
        return "number", float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return "time", moment.timestamp()
