"""New work (events stored, steps due) wakes a waiting worker at once instead of at its next
poll: in-process with an event (the embedded worker), across processes on PostgreSQL with
LISTEN/NOTIFY (a separate `signalbox worker`)."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from signalbox.core.logging import get_logger

CHANNEL = "signalbox_work"
WORK_ARRIVED = threading.Event()
log = get_logger("wakeup")


def notify() -> None:
    WORK_ARRIVED.set()


def notify_in(session: Session) -> None:
    """On PostgreSQL, tell other processes' workers when this transaction commits (NOTIFY is
    delivered at commit, and not at all on rollback)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))


class Listener:
    """Waits for a wake-up: the in-process event, or a PostgreSQL notification."""

    def __init__(self, database_url: str) -> None:
        self._conn: Any = None
        if database_url.startswith("postgresql"):
            try:
                import psycopg

                dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
                self._conn = psycopg.connect(dsn, autocommit=True)
                self._conn.execute(f"LISTEN {CHANNEL}")
            except Exception:
                # Without LISTEN the worker still polls; it only wakes a little later.
                log.warning("no LISTEN connection; polling only")
                self._conn = None

    def wait(self, seconds: float) -> None:
        if WORK_ARRIVED.wait(0 if self._conn is not None else seconds):
            WORK_ARRIVED.clear()
            return
        if self._conn is None:
            return
        try:
            for _ in self._conn.notifies(timeout=seconds, stop_after=1):
                break
        except Exception:
            log.warning("LISTEN connection lost; polling only")
            self.close()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
