"""The lift interval against the published values (Newcombe 1998, Table II, method 10)."""

from __future__ import annotations

import pytest

from signalbox.journeys.report import newcombe, wilson


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "lower", "upper"),
    [
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (0, 10, 0, 20, -0.1611, 0.2775),
    ],
)
def test_newcombe_hybrid_score_interval(x1, n1, x2, n2, lower, upper):
    low, high = newcombe(x1, n1, x2, n2)
    assert low == pytest.approx(lower, abs=5e-5) and high == pytest.approx(upper, abs=5e-5)


def test_wilson_interval():
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    assert wilson(0, 0) == (0.0, 1.0)
