"""Planner statistics kept in step with the tables this process grows (PostgreSQL).

PostgreSQL plans a lookup from its statistics, and autovacuum refreshes them only once a
minute and once a tenth of a table has changed. A table that grows from nothing faster than
that (a new install's first import, a backfill over HTTP) is planned as if it were empty: the
batch's "which of these message ids are stored?" was planned as a scan of the workspace's
every event, filtered against the ids, instead of one index probe per id. Each batch then read
all the rows before it, quadratic in the import's size (bench/ingest.py, 500-message batches:
21.3 s without, 16.5 s with an ANALYZE at 1,500, 4,500 and 15,500 events; the lookup read all
50,000 rows of a workspace to find 500). So after a commit that appended rows, a table this
process has grown by as many rows as it held when last analysed (and at least MIN_ROWS) is
analysed: about log2(growth) times while it grows from empty, never again once it is large
next to what one process appends (autovacuum keeps those current).

Not covered: one new workspace inside a large shared table. Its rows stay a small part of the
table, and a sample of it may not show the planner how many the workspace has.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping

from signalbox.core.logging import get_logger

log = get_logger("planner")

MIN_ROWS = 1000


class PlannerStatistics:
    """Decides when a table is due for ANALYZE; `analyze(table)` runs it and returns the
    table's row estimate afterwards, `row_estimate(table)` reads the current one (-1 or 0
    for a table never analysed). Safe to share between threads: a table is analysed by one
    thread at a time, and a failure is logged, never raised (the rows are committed)."""

    def __init__(self, analyze: Callable[[str], float], row_estimate: Callable[[str], float]) -> None:
        self._analyze = analyze
        self._row_estimate = row_estimate
        self._lock = threading.Lock()
        self._since: Counter[str] = Counter()  # rows appended since the table was last analysed
        self._size: dict[str, float] = {}  # its row estimate then
        self._busy: set[str] = set()

    def appended(self, rows: Mapping[str, int]) -> list[str]:
        """Note rows appended (and committed) per table; analyse those now due. Returns them."""
        with self._lock:
            self._since.update(rows)
            candidates = [t for t, n in self._since.items() if n >= MIN_ROWS and t not in self._busy]
            self._busy.update(candidates)
        due: list[str] = []
        for table in candidates:
            seen = self._since[table]
            analysed = False
            try:
                if table not in self._size:
                    self._size[table] = max(0.0, self._row_estimate(table))
                if seen >= max(MIN_ROWS, self._size[table]):
                    self._size[table] = max(0.0, self._analyze(table))
                    analysed = True
                    due.append(table)
            except Exception as exc:
                # Lookups run slower until autovacuum analyses the table; nothing is lost. Not
                # retried before another MIN_ROWS rows, so a lasting failure logs rarely. Logged
                # by type, as database errors are everywhere (`core.logging`).
                error = type(getattr(exc, "orig", None) or exc).__name__
                log.warning("could not refresh planner statistics", extra={"table": table, "exc_type": error})
                analysed = True
            finally:
                with self._lock:
                    if analysed:
                        self._since[table] -= seen
                    self._busy.discard(table)
        return due
