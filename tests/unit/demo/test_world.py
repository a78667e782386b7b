"""The demo world generator: deterministic, realistic in local time, and churn that shows in behaviour."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from signalbox.core.errors import InvalidInputError
from signalbox.demo import cast
from signalbox.demo.catalog import AREA_CODES, LOCATIONS
from signalbox.demo.schemas import GROUND_TRUTH_COLUMNS, GroundTruthRow, WorldConfig
from signalbox.demo.world import World, build_world
from signalbox.identity.identifiers import normalize_email, normalize_phone

END = date(2026, 3, 1)
EARLIEST, LATEST = time(5, 30), time(21, 30)


def digest(world: World) -> str:
    h = hashlib.sha256()
    for message in world.messages():
        h.update(orjson.dumps(message, option=orjson.OPT_SORT_KEYS))
    return h.hexdigest()


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(WorldConfig(end=END, members=2500, months=15, seed=7))


@pytest.fixture(scope="module")
def messages(world: World) -> list[dict]:
    return list(world.messages())


@pytest.fixture(scope="module")
def members(world: World) -> dict[str, GroundTruthRow]:
    return {r.user_id: r for r in world.ground_truth if r.source == "member"}


def at(message: dict) -> datetime:
    return datetime.fromisoformat(message["timestamp"])


# ---- determinism -------------------------------------------------------------------------


def test_same_config_same_world_and_other_seed_another():
    config = WorldConfig(end=END, members=150, months=4, seed=11)
    first, again = build_world(config), build_world(config)
    assert digest(first) == digest(again)
    assert first.ground_truth == again.ground_truth
    other = build_world(WorldConfig(end=END, members=150, months=4, seed=12))
    assert digest(other) != digest(first)
    assert other.ground_truth != first.ground_truth


def test_message_ids_are_unique_and_stable(messages):
    ids = [m["messageId"] for m in messages]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("demo-") for i in ids[:10])


def test_messages_come_in_timestamp_order_within_the_world(world, messages):
    stamps = [at(m) for m in messages]
    assert stamps == sorted(stamps)
    first_day = datetime.combine(world.start, time(0), ZoneInfo("America/Los_Angeles"))
    last_day = datetime.combine(world.end + timedelta(days=1), time(0), ZoneInfo("America/Los_Angeles"))
    assert stamps[0] >= first_day - timedelta(hours=3) and stamps[-1] < last_day
    assert world.start == date(2024, 12, 2) and world.end == END
    assert all("sentAt" not in m for m in messages[:1000])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"members": 0}, "members"),
        ({"locations": 0}, "locations"),
        ({"locations": 13}, "locations"),
        ({"months": 0}, "months"),
        ({"months": 61}, "months"),
    ],
)
def test_config_refuses_out_of_range_values(kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        WorldConfig(end=END, **kwargs)


# ---- places and times --------------------------------------------------------------------


@pytest.mark.parametrize("count", [3, 6, 12])
def test_locations_span_at_least_three_time_zones(count):
    world = build_world(WorldConfig(end=END, members=20, months=1, locations=count))
    assert len(world.locations) == count
    assert len({loc.timezone for loc in world.locations}) >= 3
    assert {"America/New_York", "America/Chicago", "America/Los_Angeles"} <= {loc.timezone for loc in LOCATIONS[:count]}


def test_visits_happen_in_opening_hours_local_time_across_dst(world, messages):
    zone_of = {loc.id: ZoneInfo(loc.timezone) for loc in world.locations}
    by_local_day: Counter[date] = Counter()
    for m in messages:
        if m.get("event") != "visit":
            continue
        local = at(m).astimezone(zone_of[m["properties"]["location_id"]])
        assert EARLIEST <= local.time() <= LATEST, (m, local)
        by_local_day[local.date()] += 1
    # The world spans both US DST changes of 2025; members keep their local rhythm through them.
    for change in (date(2025, 3, 9), date(2025, 11, 2)):
        assert by_local_day[change - timedelta(days=1)] > 0 and by_local_day[change + timedelta(days=1)] > 0


def test_a_morning_regular_keeps_local_hours_when_the_clocks_change(world, messages):
    """Same local hour before and after DST starts means a UTC hour one earlier after it."""
    zone_of = {loc.id: ZoneInfo(loc.timezone) for loc in world.locations}
    utc_hours: dict[str, set[int]] = defaultdict(set)
    for m in messages:
        if m.get("event") != "visit" or m["properties"]["location_id"] != "loc-01":
            continue
        local = at(m).astimezone(zone_of["loc-01"])
        if local.date().month in (2, 4) and local.year == 2025 and local.hour == 7:
            utc_hours[f"{local.month}"].add(at(m).astimezone(UTC).hour)
    assert utc_hours["2"] == {12} and utc_hours["4"] == {11}


# ---- people and identity ------------------------------------------------------------------


def test_ground_truth_covers_every_member_and_record(world, members):
    assert len(members) == 2500
    assert {"user_id", "person_id", "source", "source_id", "email_as_sent", "joined_at", "churned_at"} <= set(
        GROUND_TRUTH_COLUMNS
    )
    sources = Counter(r.source for r in world.ground_truth)
    assert sources["pos"] > 0 and sources["booking"] > 0 and sources["lead"] > 0
    for row in world.ground_truth:
        if row.user_id:
            assert row.person_id == members[row.user_id].person_id


def test_contact_details_are_fictional_and_never_shared_between_people(world):
    emails: dict[str, str] = {}
    phones: dict[str, str] = {}
    for row in world.ground_truth:
        if row.email_as_sent:
            email = normalize_email(row.email_as_sent)
            assert email and email.endswith(("@example.com", "@example.org"))
            assert emails.setdefault(email, row.person_id) == row.person_id
        if row.phone_as_sent:
            phone = normalize_phone(row.phone_as_sent, "US")
            assert phone and phone[5:9] == "5550" and 100 <= int(phone[-3:]) <= 199
            assert phones.setdefault(phone, row.person_id) == row.person_id


def test_messy_records_match_the_member_unless_misspelt(world, members):
    seen = Counter()
    for row in world.ground_truth:
        if row.source not in ("pos", "booking"):
            continue
        member = members[row.user_id]
        if row.email_as_sent:
            same = normalize_email(row.email_as_sent) == member.email_as_sent
            assert same == row.stitchable
            seen["odd case" if row.email_as_sent != member.email_as_sent and same else "typo" if not same else "x"] += 1
        if row.phone_as_sent:
            assert normalize_phone(row.phone_as_sent, "US") == member.phone_as_sent
            assert row.phone_as_sent != member.phone_as_sent  # another format than the member record
    assert seen["odd case"] > 0 and seen["typo"] > 0


def test_every_area_code_gives_valid_fictional_numbers():
    assert len(set(AREA_CODES)) == len(AREA_CODES)
    for code in AREA_CODES:
        assert normalize_phone(f"+1{code}5550100", "US") == f"+1{code}5550100"
    assert normalize_phone(cast.phone_format("+14155550132", 0.1), "US") == "+14155550132"


def test_converted_leads_carry_their_anonymous_id_into_the_member_identify(world, messages):
    leads = {r.source_id: r.user_id for r in world.ground_truth if r.source == "lead" and r.user_id}
    joined = {
        m["userId"]: m.get("anonymousId")
        for m in messages
        if m["type"] == "identify" and m.get("userId") and "member_since" in m["traits"]
    }
    assert leads
    for anon, user_id in leads.items():
        assert joined[user_id] == anon
    first_seen: dict[str, datetime] = {}
    for m in messages:
        anon = m.get("anonymousId")
        if anon in leads and m["type"] != "identify":
            first_seen.setdefault(anon, at(m))
    # the web visit comes before the membership
    assert all(first_seen[a] < datetime.fromisoformat(members_join(messages, u)) for a, u in list(leads.items())[:50])


def members_join(messages: list[dict], user_id: str) -> str:
    return next(
        m["timestamp"]
        for m in messages
        if m["type"] == "identify" and m.get("userId") == user_id and "member_since" in m["traits"]
    )


def test_member_identify_has_the_documented_traits(messages):
    identify = next(m for m in messages if m["type"] == "identify" and "member_since" in m.get("traits", {}))
    assert {
        "email",
        "first_name",
        "last_name",
        "plan",
        "monthly_price",
        "home_location",
        "location_name",
        "timezone",
        "member_since",
        "status",
    } <= set(identify["traits"])
    assert identify["userId"].startswith("m-") and identify["traits"]["status"] == "active"


def test_event_properties_follow_the_vocabulary(messages):
    props: dict[str, set[str]] = defaultdict(set)
    for m in messages:
        if m["type"] == "track":
            props[m["event"]] |= set(m["properties"])
    assert props["visit"] == {"location_id"}
    assert props["class_booked"] == {"class_name", "location_id"}
    assert props["payment_succeeded"] == {"amount", "currency", "invoice_id"}
    assert props["payment_failed"] == {"amount", "currency", "invoice_id", "attempt_count"}
    assert props["nps_submitted"] == {"score"}
    assert props["support_ticket_created"] == {"topic", "escalated"}
    assert props["review_posted"] == {"rating", "text", "source"}
    assert props["subscription_cancelled"] == {"reason"}
    assert props["lead_created"] == {"source", "location_id"}
    for event in ("email_sent", "email_opened", "sms_sent", "sms_replied", "class_attended", "no_show", "purchase"):
        assert event in props
    pages = {m["name"] for m in messages if m["type"] == "page"}
    assert pages == {"pricing", "schedule", "cancellation"}


# ---- churn ---------------------------------------------------------------------------------


def membership_months(world: World, members: dict[str, GroundTruthRow]) -> tuple[Counter, Counter]:
    """Members active at the start of each full month, and cancellations during it."""
    active: Counter[date] = Counter()
    cancelled: Counter[date] = Counter()
    months = []
    day = date(world.start.year, world.start.month, 1)
    while day <= world.end:
        following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        if day >= world.start and following - timedelta(days=1) <= world.end:
            months.append((day, following))
        day = following
    for row in members.values():
        cancels = [date.fromisoformat(x) for x in row.cancellations.split(";") if x]
        rejoins = [date.fromisoformat(x) for x in row.rejoins.split(";") if x]
        starts = [date.fromisoformat(row.joined_at), *rejoins]
        spans = [(s, cancels[i] if i < len(cancels) else date.max) for i, s in enumerate(starts)]
        for first, following in months:
            active[first] += any(s <= first < e for s, e in spans)
            cancelled[first] += sum(first <= c < following for c in cancels)
    return active, cancelled


def test_monthly_churn_is_plausible(world, members):
    active, cancelled = membership_months(world, members)
    rates = [cancelled[m] / active[m] for m in active if active[m] >= 300]
    assert len(rates) >= 10
    mean = sum(rates) / len(rates)
    assert 0.03 <= mean <= 0.06, rates
    assert all(0.015 <= r <= 0.09 for r in rates), rates


def test_january_brings_more_sign_ups_than_an_average_month(world, members):
    joins = Counter(
        (d.year, d.month)
        for r in members.values()
        if (d := date.fromisoformat(r.joined_at)) >= world.start and d.month != world.end.month
    )
    average = sum(joins.values()) / len(joins)
    assert joins[(2025, 1)] > 1.4 * average and joins[(2026, 1)] > 1.4 * average


def test_churners_cancel_on_their_churn_date_and_go_quiet(world, members, messages):
    cancelled_at: dict[str, datetime] = {}
    after: Counter[str] = Counter()
    for m in messages:
        uid = m.get("userId")
        if m.get("event") == "subscription_cancelled":
            cancelled_at[uid] = at(m)
        elif uid in cancelled_at and m["type"] != "identify":
            after[uid] += 1
    gone = [r for r in members.values() if r.churned_at and not r.rejoins]
    assert len(gone) > 200
    for row in gone:
        local = cancelled_at[row.user_id].astimezone(ZoneInfo(row.timezone))
        assert local.date().isoformat() == row.churned_at
    quiet = [after[r.user_id] for r in gone]
    assert sum(quiet) / len(quiet) < 0.6 and max(quiet) <= 4
    stayed = [r for r in members.values() if not r.cancellations]
    assert all(r.user_id not in cancelled_at for r in stayed)


def test_visits_fall_off_before_churn(members, messages):
    """The signal exists: in the 30 days before cancelling, churners visit less than they used to."""
    visits: dict[str, list[float]] = defaultdict(list)
    cancelled_at: dict[str, float] = {}
    first_at: dict[str, float] = {}
    for m in messages:
        uid = m.get("userId")
        if uid is None:
            continue
        when = at(m).timestamp()
        first_at.setdefault(uid, when)
        if m.get("event") == "visit":
            visits[uid].append(when)
        elif m.get("event") == "subscription_cancelled":
            cancelled_at.setdefault(uid, when)
    month = 30 * 86_400
    before, usual = [], []
    for uid, churn in cancelled_at.items():
        history = churn - month - first_at[uid]
        if history < 2 * month:
            continue
        times = visits[uid]
        before.append(sum(churn - month <= t < churn for t in times))
        usual.append(sum(t < churn - month for t in times) / history * month)
    assert len(before) > 200
    assert sum(before) / len(before) < 0.8 * sum(usual) / len(usual)
    # noisy, not deterministic: some churners keep their rhythm to the end
    assert 0.05 < sum(b >= u for b, u in zip(before, usual, strict=True)) / len(before) < 0.5


def test_cancellation_page_is_a_noisy_signal(members, messages):
    viewers = {m["userId"] for m in messages if m["type"] == "page" and m["name"] == "cancellation"}
    churned = [u for u, r in members.items() if r.churned_at]
    stayed = [u for u, r in members.items() if not r.cancellations]
    churned_share = sum(u in viewers for u in churned) / len(churned)
    stayed_share = sum(u in viewers for u in stayed) / len(stayed)
    assert churned_share > 2 * stayed_share > 0


def test_events_per_member_month_stay_in_the_budget(world, members, messages):
    days = 0
    for row in members.values():
        cancels = [date.fromisoformat(x) for x in row.cancellations.split(";") if x]
        rejoins = [date.fromisoformat(x) for x in row.rejoins.split(";") if x]
        starts = [max(date.fromisoformat(row.joined_at), world.start), *rejoins]
        for i, s in enumerate(starts):
            days += ((cancels[i] if i < len(cancels) else world.end + timedelta(days=1)) - s).days
    per_month = len(messages) / (days / 30.44)
    assert 9 <= per_month <= 14, per_month
