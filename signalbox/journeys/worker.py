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
    _last_due: float = field(default=float("-inf"), init=False)

    def __post_init__(self) -> None:
        self.engine = Engine(self.db, self.settings, self.clock, email=self.email, sms=self.sms)

    def tick(self, *, due: bool = True) -> TickReport:
        """One pass over every workspace: new changes, then date triggers and due steps, then
        (on its cadence) the stale recompute that makes `enters` triggers fire with no cron.
        With `due` False the date triggers and due steps are looked for only if this tick read
        changes (which may have enrolled someone whose first step is due now)."""
        report = TickReport()
        now = self.clock.now()
        spaces = workspaces.list_workspaces(self.db)
        if time.monotonic() - self._last_stale >= self.stale_every_seconds:
            self._last_stale = time.monotonic()
            for ws in spaces:
                report.rescored += scoring.compute_scores(self.db, ws, None, self.clock, only_stale=True).profiles
        for ws in spaces:
            report.changes += triggers.process(self.db, ws, now)
        if due or report.changes:
            self._last_due = time.monotonic()
            for ws in spaces:
                report.changes += triggers.fire_dates(self.db, ws, now)
            report.steps += self.engine.run_due()
        return report

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set: tick, and when idle sleep until woken or the poll interval."""
        listener = wakeup.Listener(self.settings.database_url)
        try:
            while not stop.is_set():
                # Woken by each committed batch, a tick looks for date triggers and due steps
                # (moments that come with time, not with changes) at most once a poll interval:
                # under a stream of batches those look-ups, a handful of statements each tick,
                # were a fifth of the served ingestion's time (docs/BENCHMARKS.md).
                due = time.monotonic() - self._last_due >= self.poll_seconds
                try:
                    busy = self.tick(due=due).busy
                except Exception:
                    # A database gone for a moment must not end the worker: it retries on the poll.
                    log.exception("worker tick failed")
                    listener.wait(self.poll_seconds)
                    continue
                if not busy:
                    # At the latest until the next look for due steps.
                    next_due = self._last_due + self.poll_seconds - time.monotonic()
                    listener.wait(max(0.0, min(self.poll_seconds, next_due)))
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
