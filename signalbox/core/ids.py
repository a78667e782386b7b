"""Identifiers: sortable random ids for rows, content hashes for idempotency keys."""

from __future__ import annotations

import hashlib
import os
import time

import orjson


def new_id(prefix: str) -> str:
    # Time-ordered (ms) then random, so ids sort by creation like ULIDs do.
    return f"{prefix}_{int(time.time() * 1000):012x}{os.urandom(8).hex()}"


def content_id(prefix: str, payload: object) -> str:
    digest = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{prefix}-{digest[:32]}"
