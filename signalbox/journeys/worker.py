"""The worker: triggers from the change log, due steps, and traits/scores kept current.

Stateless: N workers against one PostgreSQL share the load through the database alone (the
change-log consumer takes its rows under the counter's order, due steps are claimed with
SKIP LOCKED). A stop request finishes the tick in progress, then returns.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from signalbox.channels.schemas import EmailSender, SmsSender
from signalbox.core import wakeup
from signalbox.core.clock import Clock
from signalbox.core.db import Database
from signalbox.core.logging import get_logger
from signalbox.core.settings import Settings
from signalbox.journeys import triggers
from signalbox.journeys.engine import Engine
from signalbox.scoring import service as scoring
from signalbox.workspaces import service as workspaces

log = get_logger("journeys.worker")


@dataclass
class TickReport:
    changes: int = 0
    steps: int = 0
    rescored: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.changes or self.steps)


@dataclass
class Worker:
    db: Database
    settings: Settings
    clock: Clock
    poll_seconds: float = 1.0
    stale_every_seconds: float = 60.0
    email: EmailSender | None = None
    sms: SmsSender | None = None
    _last_stale: float = field(default=float("-inf"), init=False)

    def __post_init__(self) -> None:
        self.engine = Engine(self.db, self.settings, self.clock, email=self.email, sms=self.sms)

    def tick(self) -> TickReport:
        """One pass over every workspace: new changes, then due steps, then (on its cadence)
        the stale recompute that makes `enters` triggers fire with no cron."""
        report = TickReport()
        now = self.clock.now()
        spaces = workspaces.list_workspaces(self.db)
        if time.monotonic() - self._last_stale >= self.stale_every_seconds:
            self._last_stale = time.monotonic()
            for ws in spaces:
                report.rescored += scoring.compute_scores(self.db, ws, None, self.clock, only_stale=True).profiles
        for ws in spaces:
            report.changes += triggers.process(self.db, ws, now)
            report.changes += triggers.fire_dates(self.db, ws, now)
        report.steps += self.engine.run_due()
        return report

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set: tick, and when idle sleep until woken or the poll interval."""
        listener = wakeup.Listener(self.settings.database_url)
        try:
            while not stop.is_set():
                try:
                    busy = self.tick().busy
                except Exception:
                    # A database gone for a moment must not end the worker: it retries on the poll.
                    log.exception("worker tick failed")
                    busy = False
                if not busy:
                    listener.wait(self.poll_seconds)
        finally:
            listener.close()

    def drain(self, max_ticks: int = 1000) -> TickReport:
        """Tick until nothing is left to do now (`worker --once`, tests)."""
        total = TickReport()
        for _ in range(max_ticks):
            report = self.tick()
            total.changes += report.changes
            total.steps += report.steps
            total.rescored += report.rescored
            if not report.busy:
                break
        return total
