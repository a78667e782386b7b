"""Test data: reserved fictional values (example.com, 555-01xx numbers)."""

from __future__ import annotations

import itertools
from typing import Any

import orjson

from signalbox.core.settings import Settings

_seq = itertools.count(1)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=database_url, environment="test", **overrides)


def phone(n: int) -> str:
    return f"+1415555{100 + (n % 100):04d}"


def identify(user_id: str | None = None, *, anonymous_id: str | None = None, **traits: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "identify", "messageId": f"m-{next(_seq)}", "traits": traits}
    if user_id is not None:
        msg["userId"] = user_id
    if anonymous_id is not None:
        msg["anonymousId"] = anonymous_id
    return msg


def track(event: str, user_id: str | None = None, *, anonymous_id: str | None = None, **props: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "track", "event": event, "messageId": f"m-{next(_seq)}", "properties": props}
    if user_id is not None:
        msg["userId"] = user_id
    if anonymous_id is not None:
        msg["anonymousId"] = anonymous_id
    return msg


def jrun(cli: Any, *args: str) -> Any:
    """Run a CLI command with --json and parse its one document."""
    return orjson.loads(cli(*args, "--json").stdout)
