"""An in-process signal: new work (events stored, steps due) wakes the embedded worker at once
instead of at its next poll."""

from __future__ import annotations

import threading

WORK_ARRIVED = threading.Event()


def notify() -> None:
    WORK_ARRIVED.set()
