"""The Insights formulas on hand-made facts: numbers a person can check on paper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from signalbox.overview.insights import (
    NOT_SCORED,
    Person,
    Track,
    band_history,
    cohorts,
    median_minutes,
    member_at,
    month_starts,
    monthly,
    reactivation,
)

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 4, 10, 12, tzinfo=UTC)
STARTS = month_starts(NOW, NY)


def at(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 15, tzinfo=UTC)


def month(label: str) -> int:
    return [f"{(s + timedelta(days=15)):%Y-%m}" for s in STARTS].index(label)


def test_months_start_at_local_midnight_and_end_with_the_current_month():
    assert len(STARTS) == 13
    assert STARTS[-1] == datetime(2026, 4, 1, 4, tzinfo=UTC)  # 00:00 EDT
    assert STARTS[0] == datetime(2025, 4, 1, 4, tzinfo=UTC)
    assert STARTS[month("2026-03")] == datetime(2026, 3, 1, 5, tzinfo=UTC)  # 00:00 EST


def test_ten_members_two_cancel_in_march_is_twenty_percent_churn():
    people = [Person(f"p{i}", "loc-01", at(2026, 1, 5), None) for i in range(10)]
    tracks = {f"p{i}": Track() for i in range(10)}
    march = month("2026-03")
    for i in (0, 1):
        tracks[f"p{i}"].cancelled.add(march)
        tracks[f"p{i}"].last_cancel[march] = at(2026, 3, 12)
    # A member who joins in March and cancels in March is in neither count.
    people.append(Person("late", "loc-01", at(2026, 3, 3), None))
    tracks["late"] = Track(cancelled={march}, last_cancel={march: at(2026, 3, 20)})
    rows = {r.month: r for r in monthly(people, tracks, STARTS)}
    assert (rows["2026-03"].members_at_start, rows["2026-03"].cancellations) == (10, 2)
    assert rows["2026-03"].churn == 0.2
    assert rows["2026-02"].churn == 0.0 and rows["2026-01"].members_at_start == 0
    # April starts with the eight who stayed.
    assert rows["2026-04"].members_at_start == 8 and rows["2026-04"].partial


def test_a_payment_after_a_cancellation_is_a_rejoin():
    person = Person("p", None, at(2025, 6, 1), None)
    feb, march = month("2026-02"), month("2026-03")
    gone = Track(last_cancel={feb: at(2026, 2, 3)})
    assert not member_at(person, gone, march, STARTS)
    back = Track(last_cancel={feb: at(2026, 2, 3)}, last_payment={feb: at(2026, 2, 20)})
    assert member_at(person, back, march, STARTS)
    assert not member_at(Person("q", None, None, None), None, march, STARTS)


def test_net_revenue_retention_counts_only_last_months_payers():
    people = [Person(p, None, at(2025, 1, 1), None) for p in ("a", "b", "c")]
    feb, march = month("2026-02"), month("2026-03")
    tracks = {
        "a": Track(revenue={feb: 100.0, march: 120.0}),  # expands
        "b": Track(revenue={feb: 100.0}),  # stops paying
        "c": Track(revenue={march: 500.0}),  # new: left out of NRR
    }
    rows = {r.month: r for r in monthly(people, tracks, STARTS)}
    assert rows["2026-03"].nrr == 0.6  # 120 / 200
    assert rows["2026-03"].revenue == 620.0


def test_cohort_matrix_by_hand():
    jan, feb, march = month("2026-01"), month("2026-02"), month("2026-03")
    people = [Person(f"j{i}", None, at(2026, 1, 10), None) for i in range(4)]
    people += [Person(f"f{i}", None, at(2026, 2, 10), None) for i in range(2)]
    tracks = {
        "j0": Track(active={jan, feb, march}),
        "j1": Track(active={jan, feb}),
        "j2": Track(active={jan}),
        "j3": Track(active={march}),
        "f0": Track(active={feb, march}),
        "f1": Track(active={feb}),
    }
    found = {c.cohort: c for c in cohorts(people, tracks, STARTS, len(STARTS) - 1)}
    assert set(found) == {"2026-01", "2026-02"}
    assert found["2026-01"].size == 4 and found["2026-01"].active == (3, 2, 2)
    assert found["2026-01"].shares == (0.75, 0.5, 0.5)
    assert found["2026-02"].active == (2, 1)  # April is not complete: no M2 cell yet


def test_reactivation_waits_for_the_whole_window():
    cancels = [("a", NOW - timedelta(days=100)), ("b", NOW - timedelta(days=70)), ("c", NOW - timedelta(days=10))]
    returns = {"a": [NOW - timedelta(days=80)], "b": [NOW - timedelta(days=20)], "c": [NOW - timedelta(days=5)]}
    r30, r60, r90 = reactivation(cancels, returns, NOW)
    # 30 days: a (back on day 20) and b (day 50: too late) are old enough; c is not.
    assert (r30.eligible, r30.returned) == (2, 1)
    assert (r60.eligible, r60.returned) == (2, 2)
    assert (r90.eligible, r90.returned, r90.rate) == (1, 1, 1.0)


def test_band_history_walks_back_from_todays_band():
    people = [Person("a", None, None, "High"), Person("b", None, None, "Low"), Person("c", None, None, None)]
    week1, week2 = NOW - timedelta(days=14), NOW - timedelta(days=7)
    changes = {
        # a: scored Low before week 1, moved to High between week 1 and week 2
        "a": [(NOW - timedelta(days=20), None), (NOW - timedelta(days=10), "Low")],
        # b: first scored after week 2
        "b": [(NOW - timedelta(days=3), None)],
    }
    points = band_history(people, changes, [week1, week2, NOW], ["w1", "w2", "now"])
    assert points[0].counts == {"Low": 1, "Medium": 0, "High": 0, NOT_SCORED: 2}
    assert points[1].counts == {"Low": 0, "Medium": 0, "High": 1, NOT_SCORED: 2}
    assert points[2].counts == {"Low": 1, "Medium": 0, "High": 1, NOT_SCORED: 1}
    assert points[2].share("High") == 1 / 3


def test_median_minutes():
    assert median_minutes([]) is None
    assert median_minutes([timedelta(minutes=m) for m in (30, 10, 90)]) == 30


def _luminance(hex_or_hsl: str) -> float:
    import colorsys
    import re

    if hex_or_hsl.startswith("#"):
        rgb = tuple(int(hex_or_hsl[i : i + 2], 16) / 255 for i in (1, 3, 5))
    else:
        h, s, lightness = (float(x) for x in re.findall(r"[\d.]+", hex_or_hsl))
        rgb = colorsys.hls_to_rgb(h / 360, lightness / 100, s / 100)

    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_every_heatmap_cell_has_readable_text():
    from signalbox.dashboard.pages_insights import heat

    for step in range(101):
        background, text = heat(step / 100)
        light, dark = sorted((_luminance(background), _luminance(text)), reverse=True)
        assert (light + 0.05) / (dark + 0.05) >= 4.5, (step, background, text)
