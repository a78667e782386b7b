"""The cyclic garbage collector's pace during bulk work.

CPython runs a young collection every 700 net container allocations and a full one whenever
enough objects have survived into the oldest generation. A batch's messages, rows, identity
graph and ORM state all stay alive until the batch commits, so at those defaults a
5,000-message import chunk triggers about 200 young collections, each promoting what it
traverses, and the survivors set off full collections that traverse every live object in the
process. Measured on PostgreSQL (50,000 bench messages in-process, docs/BENCHMARKS.md): the
collector took 1.7-2.0 s of a 9-10 s import. Nothing here relies on it: reference counting
frees everything acyclic as soon as a batch is done, and the few cycles wait for a later,
rarer pass.

`bulk_work()` raises the young threshold while any bulk work is in progress in the process
(nested and concurrent uses count; the last one out restores the thresholds it found). The
older generations keep their own thresholds, so the collector still runs, only less often.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# A young collection per this many net container allocations during bulk work. 5,000-20,000
# measured alike (within the run-to-run noise); the collector's own time fell from ~1.9 s to
# 0.2-0.45 s per 50,000 imported messages, without a visible change in peak memory.
BULK_YOUNG_THRESHOLD = 10_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def bulk_work() -> Iterator[None]:
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            young, middle, old = _saved
            if young:  # 0 means the collector is off; leave that choice alone
                gc.set_threshold(max(young, BULK_YOUNG_THRESHOLD), middle, old)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
