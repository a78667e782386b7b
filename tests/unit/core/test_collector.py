"""The garbage collector's pace during bulk work (`core.collector`)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from signalbox.core import collector
from signalbox.core.collector import BULK_YOUNG_THRESHOLD, bulk_work


@pytest.fixture(autouse=True)
def default_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_bulk_work_raises_the_young_threshold_and_restores_what_it_found() -> None:
    with bulk_work():
        assert gc.get_threshold() == (BULK_YOUNG_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_an_error_inside_still_restores_the_thresholds() -> None:
    with pytest.raises(RuntimeError), bulk_work():
        raise RuntimeError("batch failed")
    assert gc.get_threshold() == (700, 10, 10)
    assert collector._depth == 0


def test_only_the_outermost_use_restores() -> None:
    with bulk_work():
        with bulk_work():
            pass
        assert gc.get_threshold()[0] == BULK_YOUNG_THRESHOLD
    assert gc.get_threshold()[0] == 700


def test_concurrent_uses_keep_it_raised_until_the_last_one_ends() -> None:
    first_in, second_in, first_may_leave = threading.Event(), threading.Event(), threading.Event()
    seen_after_first: list[int] = []

    def first() -> None:
        with bulk_work():
            first_in.set()
            second_in.wait(5)
            first_may_leave.wait(5)

    def second() -> None:
        first_in.wait(5)
        with bulk_work():
            second_in.set()
            first_may_leave.set()
            worker.join(5)  # the first has left; this one is still inside
            seen_after_first.append(gc.get_threshold()[0])

    worker = threading.Thread(target=first)
    other = threading.Thread(target=second)
    worker.start()
    other.start()
    other.join(10)
    assert seen_after_first == [BULK_YOUNG_THRESHOLD]
    assert gc.get_threshold()[0] == 700


def test_a_higher_threshold_is_not_lowered_and_a_disabled_collector_stays_disabled() -> None:
    gc.set_threshold(50_000, 10, 10)
    with bulk_work():
        assert gc.get_threshold()[0] == 50_000
    gc.set_threshold(0, 10, 10)
    with bulk_work():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold()[0] == 0
