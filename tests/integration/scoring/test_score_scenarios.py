"""Scenario tests for each at-risk component and its reason code, through the real pipeline,
on SQLite and PostgreSQL, with an injected clock. Windows are local calendar days: the
scenarios sit on month ends and on the US DST change (2026-03-08), in two time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from signalbox.core.clock import FixedClock
from signalbox.core.errors import InvalidInputError
from signalbox.identity import service as identity
from signalbox.ingestion.service import BatchInput
from signalbox.scoring import service as scoring
from signalbox.workspaces import service as workspaces
from tests.factories import identify, track

LA, NY = "America/Los_Angeles", "America/New_York"
NOW = FixedClock(datetime(2026, 7, 1, 12, 0, tzinfo=UTC))


def local(zone: str, *args: int) -> str:
    return datetime(*args, tzinfo=ZoneInfo(zone)).isoformat()


def at(msg: dict, when: str) -> dict:
    return {**msg, "timestamp": when}


@pytest.fixture
def ws(db, workspace):
    return workspaces.get_workspace(db, workspace.id)


@pytest.fixture
def send(pipeline, ws):
    def _send(*messages: dict) -> None:
        result = pipeline.ingest(ws, BatchInput(list(messages), source="test"))
        assert not result.rejected, result.rejected

    return _send


def member(user: str, zone: str, joined: str) -> dict:
    return at(identify(user, timezone=zone, plan="standard", email=f"{user}@example.com"), joined)


def components(db, ws, user: str) -> dict[str, dict]:
    doc = identity.profile_document(db, ws.id, user)
    assert doc.signals is not None and doc.signals.at_risk_components is not None
    return {c["component"]: c for c in doc.signals.at_risk_components}


def score(db, ws, as_of: date) -> None:
    scoring.compute_scores(db, ws, as_of, NOW)


def test_recency_counts_local_days_across_dst_in_two_zones(db, ws, send):
    # 23:30 on 1 March in Los Angeles is already 2 March in UTC; 14 local days later is 15 March.
    send(
        member("la-1", LA, local(LA, 2026, 1, 5, 9)),
        at(track("visit", "la-1"), local(LA, 2026, 3, 1, 23, 30)),
        member("ny-1", NY, local(NY, 2026, 1, 5, 9)),
        at(track("visit", "ny-1"), local(NY, 2026, 3, 2, 0, 15)),
    )
    score(db, ws, date(2026, 3, 15))
    assert components(db, ws, "la-1")["recency"]["points"] == 0
    assert components(db, ws, "la-1")["recency"]["reason"] == "active_recently"
    score(db, ws, date(2026, 3, 16))
    la, ny = components(db, ws, "la-1")["recency"], components(db, ws, "ny-1")["recency"]
    assert (la["points"], la["reason"], la["detail"]) == (15, "inactive_15_30d", "last activity 15 days ago")
    assert (ny["points"], ny["reason"]) == (0, "active_recently")  # 14 local days in New York
    score(db, ws, date(2026, 4, 1))  # 31 days: over the month boundary
    assert components(db, ws, "la-1")["recency"]["reason"] == "inactive_over_30d"
    assert components(db, ws, "la-1")["recency"]["points"] == 30


def test_recency_sensitivity_knob_shortens_the_thresholds(db, ws, send):
    send(member("k-1", NY, local(NY, 2026, 1, 5, 9)), at(track("visit", "k-1"), local(NY, 2026, 3, 1, 10)))
    scoring.set_knobs(db, ws, {"recency_sensitivity": 2.0})  # 7 and 15 days
    score(db, ws, date(2026, 3, 9))
    assert components(db, ws, "k-1")["recency"]["points"] == 15


def test_frequency_change_against_the_personal_baseline_at_a_month_end(db, ws, send):
    first = datetime(2026, 1, 2, 8, tzinfo=ZoneInfo(LA))
    # 9 visits in January-February, before the window
    visits = [at(track("visit", "f-1"), (first + timedelta(days=6 * i)).isoformat()) for i in range(9)]
    # "Last 30 days" as of 31 March = local 2 March .. 31 March.
    inside = at(track("visit", "f-1"), local(LA, 2026, 3, 2, 0, 10))
    outside = at(track("visit", "f-1"), local(LA, 2026, 3, 1, 23, 50))
    send(member("f-1", LA, local(LA, 2026, 1, 1, 7)), *visits, inside, outside)
    score(db, ws, date(2026, 3, 31))
    comp = components(db, ws, "f-1")["frequency_change"]
    # Baseline: the 90 days before the window hold 10 visits (3.33 per 30 d); 1 visit now: 70 % drop.
    assert comp["reason"] == "frequency_down"
    assert comp["points"] == 25
    assert comp["detail"].startswith("1 visits in the last 30 days vs a usual 3.3")


def test_new_member_has_no_baseline(db, ws, send):
    send(member("n-1", NY, local(NY, 2026, 3, 1, 7)), at(track("visit", "n-1"), local(NY, 2026, 3, 3, 7)))
    score(db, ws, date(2026, 3, 10))
    comp = components(db, ws, "n-1")["frequency_change"]
    assert (comp["points"], comp["reason"]) == (0, "no_baseline")


def test_payment_friction_counts_failures_and_recovery(db, ws, send):
    send(
        member("p-1", NY, local(NY, 2026, 1, 5, 9)),
        at(track("visit", "p-1"), local(NY, 2026, 3, 1, 9)),
        at(track("payment_failed", "p-1", amount=49.0), local(NY, 2026, 2, 20, 2, 13)),
        at(track("payment_failed", "p-1", amount=49.0), local(NY, 2026, 2, 23, 2, 13)),
        member("p-2", NY, local(NY, 2026, 1, 5, 9)),
        at(track("visit", "p-2"), local(NY, 2026, 3, 1, 9)),
        at(track("payment_failed", "p-2", amount=49.0), local(NY, 2026, 2, 20, 2, 13)),
        at(track("payment_succeeded", "p-2", amount=49.0), local(NY, 2026, 2, 21, 9)),
    )
    score(db, ws, date(2026, 3, 5))
    one, two = components(db, ws, "p-1")["payment_friction"], components(db, ws, "p-2")["payment_friction"]
    assert (one["points"], one["reason"]) == (20, "payment_failed_30d")
    assert (two["points"], two["reason"]) == (8, "payment_failed_recovered")  # 15 halved, rounded
    scoring.set_knobs(db, ws, {"payment_weight": 2.0})
    score(db, ws, date(2026, 3, 5))
    assert components(db, ws, "p-1")["payment_friction"]["points"] == 25  # capped
    score(db, ws, date(2026, 3, 25))  # the failures are now older than 30 days
    assert components(db, ws, "p-1")["payment_friction"]["reason"] == "no_payment_issues"


def test_engagement_decay_compares_response_rates(db, ws, send):
    prior = [
        at(track(e, "e-1"), local(NY, 2026, 2, 5 + i, 12)) for i in range(4) for e in ("email_sent", "email_opened")
    ]
    now = [at(track("email_sent", "e-1"), local(NY, 2026, 3, 5 + i, 12)) for i in range(4)]
    now.append(at(track("email_opened", "e-1"), local(NY, 2026, 3, 6, 13)))
    send(
        member("e-1", NY, local(NY, 2026, 1, 5, 9)), at(track("visit", "e-1"), local(NY, 2026, 3, 20, 9)), *prior, *now
    )
    score(db, ws, date(2026, 3, 25))
    comp = components(db, ws, "e-1")["engagement_decay"]
    assert (comp["points"], comp["reason"]) == (11, "engagement_down")  # 100 % -> 25 %: 15 * 0.75
    scoring.set_knobs(db, ws, {"engagement_decay_multiplier": 3.0})
    score(db, ws, date(2026, 3, 25))
    assert components(db, ws, "e-1")["engagement_decay"]["points"] == 15


def test_support_and_sentiment(db, ws, send):
    send(
        member("s-1", NY, local(NY, 2026, 1, 5, 9)),
        at(track("visit", "s-1"), local(NY, 2026, 3, 1, 9)),
        at(track("nps_submitted", "s-1", score=5), local(NY, 2026, 2, 1, 9)),
        member("s-2", NY, local(NY, 2026, 1, 5, 9)),
        at(track("visit", "s-2"), local(NY, 2026, 3, 1, 9)),
        at(track("support_ticket_created", "s-2", escalated=True, topic="billing"), local(NY, 2026, 2, 1, 9)),
        member("s-3", NY, local(NY, 2026, 1, 5, 9)),
        at(track("visit", "s-3"), local(NY, 2026, 3, 1, 9)),
        at(track("review_posted", "s-3", rating=1, text="Dirty"), local(NY, 2026, 2, 1, 9)),
        at(track("nps_submitted", "s-3", score=9), local(NY, 2026, 2, 2, 9)),
    )
    score(db, ws, date(2026, 3, 5))
    assert components(db, ws, "s-1")["support_sentiment"]["reason"] == "negative_nps"
    assert components(db, ws, "s-1")["support_sentiment"]["points"] == 3
    assert components(db, ws, "s-2")["support_sentiment"]["points"] == 5
    assert components(db, ws, "s-3")["support_sentiment"]["reason"] == "escalated_or_negative_review"


def test_total_band_and_former_customers(db, ws, send):
    send(
        member("b-1", NY, local(NY, 2025, 10, 1, 9)),
        *[at(track("visit", "b-1"), local(NY, 2025, 11, 1 + 2 * i, 9)) for i in range(12)],
        at(track("payment_failed", "b-1", amount=49.0), local(NY, 2026, 1, 20, 2)),
        member("gone", NY, local(NY, 2025, 10, 1, 9)),
        at(track("visit", "gone"), local(NY, 2025, 12, 1, 9)),
        at(track("subscription_cancelled", "gone"), local(NY, 2025, 12, 2, 9)),
    )
    run = scoring.compute_scores(db, ws, date(2026, 2, 1), NOW)
    doc = identity.profile_document(db, ws.id, "b-1").signals
    assert doc is not None
    # 30 (gone > 30 d) + 25 (no visits vs 4 per 30 d) + 15 (one failure) = 70
    assert doc.at_risk_score == 70 and doc.at_risk_band == "High"
    assert sum(c["points"] for c in doc.at_risk_components or []) == 70
    assert doc.score_as_of == date(2026, 2, 1)
    gone = identity.profile_document(db, ws.id, "gone").signals
    assert gone is not None and gone.at_risk_score is None and gone.computed_traits is not None
    assert run.profiles == 1 and run.unscored == 1 and run.bands == {"Low": 0, "Medium": 0, "High": 1}


def test_traits_as_of_a_date_ignore_later_events(db, ws, send):
    send(member("t-1", NY, local(NY, 2026, 1, 5, 9)), at(track("visit", "t-1"), local(NY, 2026, 2, 1, 9)))
    score(db, ws, date(2026, 2, 10))
    before = identity.profile_document(db, ws.id, "t-1").signals
    send(
        at(track("visit", "t-1"), local(NY, 2026, 2, 11, 0, 5)),  # the next local day
        at(track("payment_failed", "t-1", amount=1.0), local(NY, 2026, 2, 12, 9)),
    )
    score(db, ws, date(2026, 2, 10))
    after = identity.profile_document(db, ws.id, "t-1").signals
    assert before is not None and after is not None
    assert before.at_risk_components == after.at_risk_components
    assert {k: v for k, v in (before.computed_traits or {}).items()} == after.computed_traits


def test_backtest_precision_and_recall_per_band(db, ws, send):
    start = datetime(2025, 12, 1, 9, tzinfo=ZoneInfo(NY))
    messages = []
    for n in range(6):
        user = f"bt-{n}"
        messages.append(member(user, NY, (start - timedelta(days=100)).isoformat()))
        # everyone visits weekly from September; half stop in late October, half keep coming
        last = 200 if n < 3 else 60
        messages += [
            at(track("visit", user), (start - timedelta(days=90) + timedelta(days=d)).isoformat())
            for d in range(0, last, 7)
        ]
    send(*messages)
    report = scoring.backtest(db, ws, date(2026, 1, 15), 30, NOW)
    assert report.population == 6
    assert report.churned == 3
    assert report.bands["High"].profiles == 3 and report.bands["High"].precision == 1.0
    assert report.bands["High"].recall == 1.0
    assert report.bands["Low"].churned == 0


def test_as_of_in_the_future_and_backtest_past_today_are_refused(db, ws):
    with pytest.raises(InvalidInputError, match="future"):
        scoring.compute_scores(db, ws, date(2026, 7, 3), NOW)
    with pytest.raises(InvalidInputError, match="past today"):
        scoring.backtest(db, ws, date(2026, 6, 20), 30, NOW)
    with pytest.raises(InvalidInputError, match="payment_weight"):
        scoring.set_knobs(db, ws, {"payment_weight": 9})


def test_a_trait_changed_after_the_as_of_day_does_not_move_its_windows(db, ws, send):
    # Late evening in Los Angeles on 15 March: inside the 30-day window as of 15 March there.
    send(
        member("tz-1", LA, local(LA, 2026, 1, 5, 9)),
        *[at(track("visit", "tz-1"), local(LA, 2026, 1, 10 + 2 * i, 9)) for i in range(10)],
        at(track("visit", "tz-1"), local(LA, 2026, 3, 15, 22, 30)),
    )
    score(db, ws, date(2026, 3, 15))
    before = identity.profile_document(db, ws.id, "tz-1").signals
    # The next day they move to New York, where 22:30 LA time already was 16 March.
    send(at(identify("tz-1", timezone=NY), local(NY, 2026, 3, 16, 8)))
    score(db, ws, date(2026, 3, 15))
    after = identity.profile_document(db, ws.id, "tz-1").signals
    assert before is not None and after is not None
    assert after.computed_traits is not None and after.computed_traits["timezone"] == LA
    assert before.computed_traits == after.computed_traits


def test_stale_refresh_recomputes_only_people_with_new_events(db, ws, send, clock):
    send(
        member("st-1", NY, local(NY, 2026, 1, 5, 9)),
        at(track("visit", "st-1"), local(NY, 2026, 2, 1, 9)),
        member("st-2", NY, local(NY, 2026, 1, 5, 9)),
        at(track("visit", "st-2"), local(NY, 2026, 2, 1, 9)),
    )
    scoring.compute_scores(db, ws, date(2026, 3, 1), NOW)
    untouched = identity.profile_document(db, ws.id, "st-2").signals
    assert untouched is not None and untouched.at_risk_components is not None
    assert untouched.at_risk_components[0]["points"] == 15  # 28 days since the visit
    clock.advance(timedelta(days=200))  # the pipeline's clock: after the computation above
    send(at(track("visit", "st-1"), local(NY, 2026, 2, 27, 9)))
    later = FixedClock(clock.now() + timedelta(hours=1))
    run = scoring.compute_scores(db, ws, date(2026, 3, 1), later, only_stale=True)
    assert run.profiles == 1
    fresh = identity.profile_document(db, ws.id, "st-1").signals
    assert fresh is not None and fresh.at_risk_components is not None
    assert fresh.at_risk_components[0]["points"] == 0 and fresh.scored_at == later.now()
    assert identity.profile_document(db, ws.id, "st-2").signals == untouched
    assert scoring.compute_scores(db, ws, date(2026, 3, 1), later, only_stale=True).profiles == 0


def test_property_values_are_read_as_numbers_only_where_they_are_numbers(db, ws, send):
    # Amounts as numbers, numeric strings, booleans and junk; the lifetime spend sums only
    # JSON numbers in the history aggregated in SQL, and numbers or numeric strings in the
    # recent window read row by row (both as before the columnar read).
    send(
        member("v-1", NY, local(NY, 2025, 1, 5, 9)),
        at(track("purchase", "v-1", amount=10.25), local(NY, 2025, 2, 1, 9)),
        at(track("purchase", "v-1", amount="7.5"), local(NY, 2025, 2, 2, 9)),
        at(track("purchase", "v-1", amount="lots"), local(NY, 2025, 2, 3, 9)),
        at(track("purchase", "v-1", amount=40), local(NY, 2026, 2, 20, 9)),
        at(track("purchase", "v-1", amount=" 2.5 "), local(NY, 2026, 2, 21, 9)),
        at(track("purchase", "v-1", amount={"value": 3}), local(NY, 2026, 2, 22, 9)),
        at(track("purchase", "v-1", amount=True), local(NY, 2026, 2, 23, 9)),
        at(track("nps_submitted", "v-1", score="4"), local(NY, 2026, 2, 24, 9)),
        at(track("review_posted", "v-1", rating="n/a"), local(NY, 2026, 2, 25, 9)),
    )
    score(db, ws, date(2026, 3, 5))
    doc = identity.profile_document(db, ws.id, "v-1")
    assert doc.signals is not None and doc.signals.computed_traits is not None
    traits = doc.signals.computed_traits
    assert traits["total_spend"] == pytest.approx(10.25 + 40 + 2.5 + 1.0)
    assert traits["min_nps_90d"] == 4
    assert traits["negative_reviews_90d"] == 0
    assert traits["activity_total"] == 7
    assert traits["timezone"] == NY and traits["plan"] == "standard"
    assert components(db, ws, "v-1")["support_sentiment"]["detail"] == "NPS of 4 in the last 90 days"
