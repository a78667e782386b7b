"""The demo world: a multi-location fitness chain, simulated week by week, as Segment messages.

Pure and deterministic: everything random comes from one ``numpy`` Generator seeded from the
config, nothing reads the wall clock. ``build_world(config)`` returns a ``World`` whose
``messages()`` yields message dicts in timestamp order and whose ``ground_truth`` says who is
really who and who really churned.

How churn is made (hidden from the messages, visible only through behaviour):
- Every member has latent motivation, price sensitivity, class affinity and digital
  engagement. They set a personal rhythm of visits, classes, e-mail opens and SMS replies.
- Each week an active member may start to *disengage* (hazard from the latents, the location's
  quality, tenure, season, and recent bad experiences: a low NPS, an escalated ticket, a bad
  review, a failed payment). Engagement then decays over a few weeks (fewer visits, fewer
  opens, more no-shows, a look at the cancellation page) and most, not all, cancel at the end.
- Some leave abruptly (moving, injury) with no warning at all, and some are lost to a card that
  keeps failing. A few come back months later.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from dateutil.relativedelta import relativedelta
from numpy.typing import NDArray

from signalbox.demo import cast
from signalbox.demo.catalog import (
    CAMPAIGNS,
    CANCEL_REASONS,
    CLASSES,
    JOIN_SEASON,
    LEAD_SOURCES,
    LOCATIONS,
    PAGES,
    PLANS,
    RETAIL_ITEMS,
    REVIEW_TEXTS,
    TICKET_TOPICS,
    VISIT_SEASON,
    Location,
)
from signalbox.demo.schemas import GroundTruthRow, WorldConfig

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]

MINUTE, HOUR, DAY = 60, 3600, 86_400
EARLIEST_LOCAL = 5 * HOUR + 30 * MINUTE  # the doors open
LATEST_LOCAL = 21 * HOUR + 30 * MINUTE  # last check-in
SPILL_DAYS = 70  # follow-ups scheduled past the end are computed, then dropped
EXISTING_SHARE = 0.1  # members who joined before the world starts
PHONE_SHARE = 0.55
LEAD_SHARE = 0.4  # new members who first came in as a web lead
LOST_LEADS = 0.3  # leads that never joined, per new member
POS_SHARE, BOOKING_SHARE, TYPO_SHARE = 0.4, 0.35, 0.07
NEVER = np.iinfo(np.int64).max

# Message kinds, the order of _Renderer.table.
(
    K_JOIN,
    K_STATUS_CANCELLED,
    K_REJOIN,
    K_POS_RECORD,
    K_BOOKING_RECORD,
    K_LEAD_PAGE,
    K_LEAD_CREATED,
    K_VISIT,
    K_CLASS_BOOKED,
    K_CLASS_ATTENDED,
    K_NO_SHOW,
    K_BOOKING_CANCELLED,
    K_PAYMENT_OK,
    K_PAYMENT_FAILED,
    K_PURCHASE,
    K_EMAIL_SENT,
    K_EMAIL_OPENED,
    K_EMAIL_CLICKED,
    K_SMS_SENT,
    K_SMS_REPLIED,
    K_NPS,
    K_TICKET,
    K_REVIEW,
    K_CANCELLED,
    K_PAGE,
) = range(25)

# Classes that suit each time-of-day slot, padded: _FITTING[slot, i % _FITTING_COUNT[slot]].
_FITTING_LISTS = [[i for i, c in enumerate(CLASSES) if c[2] == slot] for slot in range(3)]
_FITTING_COUNT = np.array([len(x) for x in _FITTING_LISTS], dtype=np.int64)
_FITTING = np.array([x + [x[0]] * (max(_FITTING_COUNT) - len(x)) for x in _FITTING_LISTS], dtype=np.int64)

R_NOT_USING, R_EXPENSIVE, R_SWITCHING, R_SCHEDULE, R_UNHAPPY, R_MOVING, R_INJURY, R_PAYMENT = range(8)
assert CANCEL_REASONS[R_PAYMENT] == "payment_failed"


def world_span(config: WorldConfig) -> tuple[date, date]:
    """First and last date of the world (both included)."""
    return config.end - relativedelta(months=config.months) + timedelta(days=1), config.end


def fingerprint(config: WorldConfig) -> str:
    text = f"{config.seed}|{config.members}|{config.locations}|{config.months}|{config.end.isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()[:10]


# ---- calendar ----------------------------------------------------------------------------


class _Calendar:
    """Day indexes (0 = first day) to local midnights as UTC epoch seconds, per location.

    The offset is taken at local noon: every local time we generate is after 03:00, when a DST
    change of that day has already happened, so noon's offset is the right one."""

    def __init__(self, start: date, days: int, zones: list[str]) -> None:
        self.start, self.days = start, days
        total = days + SPILL_DAYS
        self.total = total
        dates = [start + timedelta(days=d) for d in range(total)]
        epoch0 = (start - date(1970, 1, 1)).days * DAY
        utc_midnights = epoch0 + np.arange(total, dtype=np.int64) * DAY
        by_zone: dict[str, Ints] = {}
        for tz in dict.fromkeys(zones):
            zone = ZoneInfo(tz)
            offsets = [datetime.combine(d, time(12), zone).utcoffset() or timedelta(0) for d in dates]
            by_zone[tz] = utc_midnights - np.array([int(o.total_seconds()) for o in offsets], dtype=np.int64)
        self.midnight = np.stack([by_zone[tz] for tz in zones])
        self.weekday = np.array([d.weekday() for d in dates], dtype=np.int64)
        self.month = np.array([d.month - 1 for d in dates], dtype=np.int64)
        self.dom = np.array([d.day for d in dates], dtype=np.int64)
        self.end_bound = self.midnight[:, days]  # local midnight after the last day

    def at(self, loc: Ints, day: Ints, secs: Ints | Floats | int) -> Ints:
        day = np.clip(day, 0, self.total - 1)
        out: Ints = self.midnight[loc, day] + np.asarray(secs, dtype=np.int64)
        return out


# ---- event log ---------------------------------------------------------------------------


@dataclass
class _Log:
    """Columns of generated events, appended in chunks; sorted by time once at the end."""

    kind: list[Ints] = field(default_factory=list)
    who: list[Ints] = field(default_factory=list)
    t: list[Ints] = field(default_factory=list)
    loc: list[Ints] = field(default_factory=list)
    a: list[Ints] = field(default_factory=list)
    b: list[Ints] = field(default_factory=list)

    def add(self, kind: int, who: Ints, t: Ints, loc: Ints, a: Ints | int = 0, b: Ints | int = 0) -> None:
        n = len(who)
        if n == 0:
            return
        self.kind.append(np.full(n, kind, dtype=np.int64))
        self.who.append(np.asarray(who, dtype=np.int64))
        self.t.append(np.asarray(t, dtype=np.int64))
        self.loc.append(np.asarray(loc, dtype=np.int64))
        self.a.append(np.broadcast_to(np.asarray(a, dtype=np.int64), (n,)).copy())
        self.b.append(np.broadcast_to(np.asarray(b, dtype=np.int64), (n,)).copy())

    def columns(self, first: Ints, bound: Ints) -> dict[str, Ints]:
        cols = {
            name: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            for name, parts in (
                ("kind", self.kind),
                ("who", self.who),
                ("t", self.t),
                ("loc", self.loc),
                ("a", self.a),
                ("b", self.b),
            )
        }
        keep = (cols["t"] >= first[cols["loc"]]) & (cols["t"] < bound[cols["loc"]])
        order = np.argsort(cols["t"][keep], kind="stable")
        return {name: col[keep][order] for name, col in cols.items()}


# ---- members -----------------------------------------------------------------------------


@dataclass
class _Members:
    """Per-member latent traits and fixed habits (arrays indexed by member)."""

    join_day: Ints
    join_secs: Ints
    home: Ints
    plan: Ints
    motivation: Floats
    price_sens: Floats
    social: Floats
    digital: Floats
    retail: Floats
    time_center: Ints
    slot: Ints
    visit_rate: Floats
    class_rate: Floats
    open_p: Floats
    reply_p: Floats
    fail_p: Floats
    bill_dom: Ints
    base_onset: Floats
    has_phone: Bools


def _join_days(rng: np.random.Generator, cal: _Calendar, n: int) -> Ints:
    existing = round(n * EXISTING_SHARE)
    before = -rng.integers(20, 1100, existing)
    weekday_w = np.array([1.35, 1.2, 1.1, 1.0, 0.85, 0.75, 0.6])
    weights = np.array(JOIN_SEASON)[cal.month[: cal.days]] * weekday_w[cal.weekday[: cal.days]]
    during = rng.choice(cal.days, size=n - existing, p=weights / weights.sum())
    return np.sort(np.concatenate([before, during]).astype(np.int64))


def _members(rng: np.random.Generator, cal: _Calendar, locations: tuple[Location, ...], n: int) -> _Members:
    join_day = _join_days(rng, cal, n)
    sizes = np.array([loc.size for loc in locations])
    home = rng.choice(len(locations), size=n, p=sizes / sizes.sum()).astype(np.int64)
    january = cal.month[np.clip(join_day, 0, None)] == 0
    january &= join_day >= 0
    # New-year resolutions: January joiners are keen at first and less motivated underneath.
    motivation = np.where(january, rng.beta(1.7, 2.6, n), rng.beta(2.2, 2.0, n))
    price_sens, social = rng.beta(2.0, 2.0, n), rng.beta(1.6, 2.4, n)
    digital, retail = rng.beta(2.0, 2.5, n), rng.beta(1.2, 4.0, n)
    score = (1 - price_sens) + 0.35 * social + rng.normal(0, 0.25, n)
    plan = np.where(score > 1.0, 2, np.where(score < 0.45, 0, 1)).astype(np.int64)
    slot = rng.choice(3, size=n, p=[0.36, 0.18, 0.46]).astype(np.int64)
    centers = np.array([6 * HOUR + 20 * MINUTE, 12 * HOUR + 10 * MINUTE, 18 * HOUR + 5 * MINUTE])
    spread = np.array([30 * MINUTE, 25 * MINUTE, 55 * MINUTE])
    time_center = (centers[slot] + rng.normal(0, 1, n) * spread[slot]).astype(np.int64)
    plan_visit = np.array([0.93, 1.0, 1.12])[plan]
    class_factor = np.array([p.class_factor for p in PLANS])[plan]
    price_weight = np.array([0.8, 1.0, 1.25])[plan]
    quality = np.array([loc.quality for loc in locations])[home]
    join_dom = np.array([(cal.start + timedelta(days=int(d))).day for d in join_day], dtype=np.int64)
    return _Members(
        join_day=join_day,
        join_secs=rng.integers(7 * HOUR, 21 * HOUR, n).astype(np.int64),
        home=home,
        plan=plan,
        motivation=motivation,
        price_sens=price_sens,
        social=social,
        digital=digital,
        retail=retail,
        time_center=time_center,
        slot=slot,
        visit_rate=(0.26 + 1.9 * motivation**1.3) * plan_visit,
        class_rate=0.54 * social * class_factor * (0.5 + motivation),
        open_p=0.1 + 0.55 * digital,
        reply_p=0.03 + 0.3 * digital,
        fail_p=0.012 + 0.075 * price_sens**1.5,
        bill_dom=np.minimum(join_dom, 28),
        base_onset=0.0068 * (1.9 - 1.6 * motivation) * (0.7 + 0.6 * price_sens * price_weight) / quality**3,
        has_phone=np.zeros(n, dtype=np.bool_),
    )


# ---- identity records (the person as other systems know them) ----------------------------


@dataclass(frozen=True)
class _Record:
    """An identify from another system: a POS member record, a booking-system customer, a lead."""

    member: int  # -1: a lead who never joined
    source: str
    source_id: str
    anonymous_id: str
    traits: dict[str, Any]
    email_as_sent: str
    phone_as_sent: str
    stitchable: bool
    lead: int = -1  # index among leads, for a lead record


# ---- the simulation ----------------------------------------------------------------------


class _Simulation:
    """Walks the world week by week over all members at once (numpy arrays indexed by member);
    every event goes into the log with its UTC time, sorted once at the end."""

    def __init__(self, config: WorldConfig) -> None:
        self.config = config
        self.rng = np.random.default_rng([config.seed, 0x5B0C])
        self.start, self.end = world_span(config)
        self.locations = LOCATIONS[: config.locations]
        days = (self.end - self.start).days + 1
        self.cal = _Calendar(self.start, days, [loc.timezone for loc in self.locations])
        self.weeks = -(-days // 7)
        self.m = _members(self.rng, self.cal, self.locations, config.members)
        phones = cast.PhonePool(self.rng)
        self.contacts = cast.make_contacts(self.rng, config.members, phones, PHONE_SHARE, "")
        self.m.has_phone = np.array([c.phone is not None for c in self.contacts], dtype=np.bool_)
        self.phones = phones
        self.log = _Log()
        self.records: list[_Record] = []
        self.lead_anon: list[str] = []
        self.lead_loc: list[int] = []
        self.cancellations: list[list[tuple[int, str]]] = [[] for _ in range(config.members)]
        self.rejoins: list[list[int]] = [[] for _ in range(config.members)]
        self.member_lead: dict[int, int] = {}
        self._init_state()

    def _init_state(self) -> None:
        n = self.config.members
        self.status = np.zeros(n, dtype=np.int64)  # 0 not yet joined, 1 member, 2 gone
        self.no_churn = np.full(n, NEVER, dtype=np.int64)
        self.from_t = np.full(n, NEVER, dtype=np.int64)
        self.since_day = self.m.join_day.copy()  # start of the current membership
        self.onset_w = np.full(n, -1, dtype=np.int64)
        self.decline = np.zeros(n, dtype=np.int64)
        self.tau = np.ones(n)
        self.will_churn = np.zeros(n, dtype=np.bool_)
        self.boost = np.ones(n)
        self.boost_until = np.full(n, -1, dtype=np.int64)
        self.lock_until = np.full(n, -1, dtype=np.int64)  # payment collection in progress
        self.pending_churn = np.full(n, -1, dtype=np.int64)
        self.return_day = np.full(n, -1, dtype=np.int64)
        self.invoices = np.zeros(n, dtype=np.int64)
        self.pos_day = np.where(self.rng.random(n) < POS_SHARE, self._first_contact_day(60), -1)
        booking_p = BOOKING_SHARE * (0.5 + self.m.social * 1.5)
        self.booking_day = np.where(self.rng.random(n) < booking_p, self._first_contact_day(45), -1)

    def _first_contact_day(self, within: int) -> Ints:
        n = self.config.members
        first = np.maximum(self.m.join_day + 1, 0)
        return (first + self.rng.integers(0, within, n)).astype(np.int64)

    # ---- run ----

    def run(self) -> None:
        self._leads()
        for w in range(self.weeks):
            self._joins(w)
            self._returns(w)
            churn_t, reasons = self._churn_plan(w)
            self._activity(w, churn_t)
            self._records(w, churn_t)
            self._billing(w, churn_t)
            self._feedback(w, churn_t)
            self._churn(w, churn_t, reasons)
            self._onsets(w)

    def week_days(self, w: int) -> tuple[int, int]:
        return 7 * w, min(7 * w + 7, self.cal.days)

    def local(self, who: Ints, day: Ints, secs: Ints | Floats | int) -> Ints:
        return self.cal.at(self.m.home[who], day, secs)

    def keep(self, who: Ints, t: Ints, churn_t: Ints) -> Bools:
        out: Bools = (t >= self.from_t[who]) & (t < churn_t[who])
        return out

    # ---- joining ----

    def _joins(self, w: int) -> None:
        lo, hi = self.week_days(w)
        if w == 0:
            lo = -(10**6)
        new = np.flatnonzero((self.m.join_day >= lo) & (self.m.join_day < hi) & (self.status == 0))
        if len(new) == 0:
            return
        existing = self.m.join_day[new] < 0
        day = np.maximum(self.m.join_day[new], 0)
        # Members from before the world start are loaded at 04:xx on day one, before any activity.
        secs = np.where(existing, 4 * HOUR + self.rng.integers(0, 1800, len(new)), self.m.join_secs[new])
        t = self.local(new, day, secs)
        self.status[new] = 1
        self.from_t[new] = np.where(existing, t + 60, self.local(new, day + 1, 0))
        self.log.add(K_JOIN, new, t, self.m.home[new])
        fresh = new[~existing]
        self._first_payment(fresh, t[~existing] + 45)

    def _leads(self) -> None:
        """Web leads: a page or two, a form, and for most who join a membership days later.
        The member's identify carries the lead's anonymousId, so the pipeline stitches the
        earlier web events to the member."""
        joined = np.flatnonzero(self.m.join_day >= 2)
        converted = joined[self.rng.random(len(joined)) < LEAD_SHARE]
        lead_day = self.m.join_day[converted] - self.rng.integers(1, 22, len(converted))
        converted, lead_day = converted[lead_day >= 0], lead_day[lead_day >= 0]
        lost = round(LOST_LEADS * len(joined))
        lost_contacts = cast.make_contacts(self.rng, lost, self.phones, 0.35, ".lead")
        weights = np.array(JOIN_SEASON)[self.cal.month[: self.cal.days]]
        lost_day = self.rng.choice(self.cal.days, size=lost, p=weights / weights.sum()).astype(np.int64)
        lost_loc = self.rng.integers(0, len(self.locations), lost)
        for i, member in enumerate(converted.tolist()):
            self.member_lead[member] = i
            self._add_lead(self.contacts[member], int(self.m.home[member]), member, with_phone=i % 2 == 0)
        for i in range(lost):
            self._add_lead(lost_contacts[i], int(lost_loc[i]), -1, with_phone=True)
        days = np.concatenate([lead_day, lost_day]).astype(np.int64)
        self._lead_events(days)

    def _add_lead(self, contact: cast.Contact, loc: int, member: int, *, with_phone: bool) -> None:
        index = len(self.lead_anon)
        anon = f"anon-{self.config.seed:x}-{index:06d}-{int(self.rng.integers(0, 1 << 32)):08x}"
        phone = contact.phone if with_phone else None
        traits: dict[str, Any] = {"email": contact.email, "first_name": contact.first_name}
        if phone:
            traits["phone"] = phone
        self.lead_anon.append(anon)
        self.lead_loc.append(loc)
        self.records.append(_Record(member, "lead", anon, anon, traits, contact.email, phone or "", True, index))

    def _lead_events(self, days: Ints) -> None:
        n = len(days)
        leads = np.arange(n, dtype=np.int64)
        loc = np.array(self.lead_loc, dtype=np.int64)
        t = self.cal.at(loc, days, self.rng.integers(7 * HOUR, 22 * HOUR, n))
        source = self.rng.integers(0, len(LEAD_SOURCES), n)
        self.log.add(K_LEAD_CREATED, leads, t, loc, source)
        pages = self.rng.integers(1, 4, n)
        who = np.repeat(leads, pages)
        before = self.rng.integers(5 * MINUTE, 3 * DAY, len(who))
        self.log.add(K_LEAD_PAGE, who, t[who] - before, loc[who], self.rng.integers(0, 2, len(who)))

    def _returns(self, w: int) -> None:
        lo, hi = self.week_days(w)
        back = np.flatnonzero((self.status == 2) & (self.return_day >= lo) & (self.return_day < hi))
        if len(back) == 0:
            return
        day = self.return_day[back]
        t = self.local(back, day, self.rng.integers(8 * HOUR, 20 * HOUR, len(back)))
        self.status[back] = 1
        self.since_day[back] = day
        self.from_t[back] = t + 120
        self.onset_w[back] = -1
        self.boost[back], self.boost_until[back] = 1.0, -1
        self.return_day[back] = -1
        for member, d in zip(back.tolist(), day.tolist(), strict=True):
            self.rejoins[member].append(d)
        self.log.add(K_PAGE, back, t - self.rng.integers(HOUR, 5 * DAY, len(back)), self.m.home[back], 0)
        self.log.add(K_REJOIN, back, t, self.m.home[back])
        self._first_payment(back, t + 45)

    # ---- churn ----

    def _churn_plan(self, w: int) -> tuple[Ints, Ints]:
        """Who cancels this week, and when: the end of a decline, an abrupt exit, or a card
        that never recovered."""
        n = self.config.members
        lo, hi = self.week_days(w)
        active = self.status == 1
        unlocked = self.lock_until < lo
        declined = active & unlocked & (self.onset_w >= 0) & (self.onset_w + self.decline <= w) & self.will_churn
        quality = np.array([loc.quality for loc in self.locations])[self.m.home]
        abrupt = active & unlocked & ~declined & (self.rng.random(n) < 0.0021 / quality)
        unpaid = active & (self.pending_churn >= lo) & (self.pending_churn < hi)
        reasons = np.full(n, -1, dtype=np.int64)
        reasons[declined] = self._decline_reasons(np.flatnonzero(declined), quality)
        reasons[abrupt] = self.rng.choice([R_MOVING, R_INJURY, R_SWITCHING], p=[0.6, 0.25, 0.15], size=abrupt.sum())
        reasons[unpaid] = R_PAYMENT
        day = np.where(unpaid, self.pending_churn, lo + self.rng.integers(0, hi - lo, n))
        t = self.local(np.arange(n), day, self.rng.integers(8 * HOUR, 21 * HOUR, n))
        churn_t = np.where(reasons >= 0, np.maximum(t, self.from_t + 60), NEVER)
        return churn_t, reasons

    def _decline_reasons(self, who: Ints, quality: Floats) -> Ints:
        n = len(who)
        weights = np.stack(
            [
                1.6 - self.m.motivation[who],
                0.4 + 1.4 * self.m.price_sens[who],
                np.full(n, 0.45),
                np.full(n, 0.5),
                np.maximum(0.1, 1.6 - quality[who]) * 0.8,
            ],
            axis=1,
        )
        cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
        picks = (self.rng.random((n, 1)) > cumulative).sum(axis=1)
        out: Ints = np.array([R_NOT_USING, R_EXPENSIVE, R_SWITCHING, R_SCHEDULE, R_UNHAPPY])[np.minimum(picks, 4)]
        return out

    def _churn(self, w: int, churn_t: Ints, reasons: Ints) -> None:
        gone = np.flatnonzero(churn_t < NEVER)
        if len(gone) == 0:
            return
        t, why, home = churn_t[gone], reasons[gone], self.m.home[gone]
        self.log.add(K_CANCELLED, gone, t, home, why)
        self.log.add(K_STATUS_CANCELLED, gone, t + 2, home)
        voluntary = why < R_MOVING
        looked = gone[voluntary & (self.rng.random(len(gone)) < 0.62)]
        ahead = self.rng.integers(2 * HOUR, 16 * DAY, len(looked))
        self._emit_masked(K_PAGE, looked, churn_t[looked] - ahead, 2, self.no_churn)
        winback = gone[self.rng.random(len(gone)) < 0.28]
        self.log.add(
            K_EMAIL_SENT,
            winback,
            churn_t[winback] + self.rng.integers(20 * DAY, 45 * DAY, len(winback)),
            self.m.home[winback],
            len(CAMPAIGNS),
        )
        day = ((t - self.cal.midnight[home, 0]) // DAY).astype(np.int64)
        for member, d, reason in zip(gone.tolist(), day.tolist(), why.tolist(), strict=True):
            self.cancellations[member].append((d, CANCEL_REASONS[reason]))
        self.status[gone] = 2
        self.onset_w[gone] = -1
        self.pending_churn[gone] = -1
        comes_back = self.rng.random(len(gone)) < np.where(why == R_MOVING, 0.02, 0.11)
        self.return_day[gone] = np.where(comes_back, day + self.rng.integers(40, 200, len(gone)), -1)

    def _onsets(self, w: int) -> None:
        """Start (or end) a decline. Not every decline ends in a cancellation."""
        n = self.config.members
        active = self.status == 1
        recovered = active & (self.onset_w >= 0) & ~self.will_churn & (self.onset_w + self.decline <= w)
        self.onset_w[recovered] = -1
        mid_day = min(7 * w + 3, self.cal.days - 1)
        season = 1.2 if self.cal.month[mid_day] in (5, 6, 7, 11) else 1.0
        tenure_weeks = (7 * w - self.since_day) / 7
        tenure = np.where(tenure_weeks < 12, 1.6, np.where(tenure_weeks > 104, 0.7, 1.0))
        boost = np.where(self.boost_until >= w, self.boost, 1.0)
        hazard = self.m.base_onset * season * tenure * boost
        start = np.flatnonzero(active & (self.onset_w < 0) & (self.rng.random(n) < hazard))
        k = len(start)
        self.onset_w[start] = w
        self.decline[start] = 2 + self.rng.poisson(2.5, k)
        self.tau[start] = self.rng.uniform(1.5, 4.0, k)
        self.will_churn[start] = self.rng.random(k) < 0.74

    def engagement(self, who: Ints, w: int) -> Floats:
        onset = self.onset_w[who]
        since = np.where(onset >= 0, w - onset, 0)
        out: Floats = np.where(onset >= 0, np.maximum(0.05, np.exp(-since / self.tau[who])), 1.0)
        return out

    def _boost(self, who: Ints, w: int, factor: float, weeks: int = 8) -> None:
        self.boost[who] = np.where(self.boost_until[who] >= w, np.maximum(self.boost[who], factor), factor)
        self.boost_until[who] = w + weeks

    # ---- activity ----

    def _activity(self, w: int, churn_t: Ints) -> None:
        who = np.flatnonzero(self.status == 1)
        if len(who) == 0:
            return
        eng = self.engagement(who, w)
        lo, _ = self.week_days(w)
        season = VISIT_SEASON[self.cal.month[min(lo + 3, self.cal.days - 1)]]
        self._visits(w, who, eng * season, churn_t)
        self._classes(w, who, eng, season, churn_t)
        self._messaging(w, who, eng, churn_t)
        self._extras(w, who, eng, churn_t)

    def _spread_days(self, w: int, counts: Ints) -> tuple[Ints, Ints]:
        """Repeat each member's index `count` times with distinct, evenly spread days."""
        owner = np.repeat(np.arange(len(counts)), counts)
        first = np.cumsum(counts) - counts
        j = np.arange(len(owner)) - first[owner]
        phase = self.rng.random(len(counts))[owner]
        day = 7 * w + np.floor((j + phase) * 7 / counts[owner]).astype(np.int64)
        return owner, day

    def _visits(self, w: int, who: Ints, eng: Floats, churn_t: Ints) -> None:
        n = len(who)
        tenure_days = 7 * w - self.since_day[who]
        honeymoon = np.where(tenure_days < 28, 1.25, 1.0)
        noise = np.exp(self.rng.normal(0, 0.3, n)) * (self.rng.random(n) > 0.03)  # and some weeks away
        counts = np.minimum(self.rng.poisson(self.m.visit_rate[who] * eng * honeymoon * noise), 6)
        owner, day = self._spread_days(w, counts)
        member = who[owner]
        weekend = self.cal.weekday[np.minimum(day, self.cal.total - 1)] >= 5
        center = np.where(weekend, 9 * HOUR + 40 * MINUTE, self.m.time_center[member])
        spread = np.where(weekend, 90 * MINUTE, 35 * MINUTE)
        secs = np.clip(center + self.rng.normal(0, 1, len(member)) * spread, EARLIEST_LOCAL, LATEST_LOCAL)
        travel = self.rng.random(len(member)) < 0.06
        loc = np.where(travel, self.rng.integers(0, len(self.locations), len(member)), self.m.home[member])
        t = self.cal.at(loc, day, secs)
        ok = self.keep(member, t, churn_t)
        self.log.add(K_VISIT, member[ok], t[ok], loc[ok])

    def _classes(self, w: int, who: Ints, eng: Floats, season: float, churn_t: Ints) -> None:
        rate = self.m.class_rate[who] * eng**0.7 * season
        counts = np.minimum(self.rng.poisson(rate), 3)
        owner, day = self._spread_days(w, counts)
        member = who[owner]
        e = eng[owner]
        k = len(member)
        suits = self.rng.random(k) < 0.8
        slot = self.m.slot[member]
        pick = self.rng.integers(0, 1 << 20, k) % _FITTING_COUNT[slot]
        cls = np.where(suits, _FITTING[slot, pick], self.rng.integers(0, len(CLASSES), k)).astype(np.int64)
        starts = np.array([c[1] * MINUTE for c in CLASSES], dtype=np.int64)
        loc = self.m.home[member]
        class_t = self.cal.at(loc, day, starts[cls])
        ok = self.keep(member, class_t + 65 * MINUTE, churn_t)
        member, e, cls, loc, class_t = member[ok], e[ok], cls[ok], loc[ok], class_t[ok]
        booked = np.maximum(class_t - self.rng.integers(3 * HOUR, 72 * HOUR, len(member)), self.from_t[member])
        self.log.add(K_CLASS_BOOKED, member, booked, loc, cls)
        u = self.rng.random(len(member))
        cancel_p = 0.07 + 0.1 * (1 - e)
        noshow_p = cancel_p + 0.06 + 0.2 * (1 - e)
        cancel, noshow = u < cancel_p, (u >= cancel_p) & (u < noshow_p)
        came = u >= noshow_p
        lead = class_t - booked
        frac = self.rng.uniform(0.2, 0.9, len(member))
        self.log.add(K_BOOKING_CANCELLED, member[cancel], (booked + lead * frac)[cancel], loc[cancel], cls[cancel])
        self.log.add(K_NO_SHOW, member[noshow], class_t[noshow] + 65 * MINUTE, loc[noshow], cls[noshow])
        self.log.add(K_VISIT, member[came], class_t[came] - 10 * MINUTE, loc[came])
        self.log.add(K_CLASS_ATTENDED, member[came], class_t[came] + 50 * MINUTE, loc[came], cls[came])

    def _send_day(self, w: int, weekday: int) -> int:
        lo = 7 * w
        return lo + int((weekday - self.cal.weekday[lo]) % 7)

    def _messaging(self, w: int, who: Ints, eng: Floats, churn_t: Ints) -> None:
        n = len(who)
        campaign = w % len(CAMPAIGNS)
        sent = self.rng.random(n) < 0.3
        day = np.full(n, self._send_day(w, 1 + 2 * (w % 2)))  # Tuesdays and Thursdays
        t = self.local(who, day, 10 * HOUR + self.rng.integers(0, 40 * MINUTE, n))
        opened = sent & (self.rng.random(n) < self.m.open_p[who] * eng**0.8)
        open_t = t + np.minimum(self.rng.exponential(4 * HOUR, n), 3 * DAY).astype(np.int64)
        clicked = opened & (self.rng.random(n) < 0.24)
        click_t = open_t + self.rng.integers(20, 900, n)
        for kind, mask, at in (
            (K_EMAIL_SENT, sent, t),
            (K_EMAIL_OPENED, opened, open_t),
            (K_EMAIL_CLICKED, clicked, click_t),
        ):
            self._emit_masked(kind, who[mask], at[mask], campaign, churn_t)
        texted = self.m.has_phone[who] & (self.rng.random(n) < 0.11)
        sms_t = self.local(
            who, np.full(n, self._send_day(w, 2 + 2 * (w % 2))), 12 * HOUR + self.rng.integers(0, HOUR, n)
        )
        replied = texted & (self.rng.random(n) < self.m.reply_p[who] * eng**0.8)
        reply_t = sms_t + self.rng.integers(MINUTE, 2 * HOUR, n)
        self._emit_masked(K_SMS_SENT, who[texted], sms_t[texted], 0, churn_t)
        self._emit_masked(K_SMS_REPLIED, who[replied], reply_t[replied], 0, churn_t)

    def _emit_masked(self, kind: int, who: Ints, t: Ints, a: Ints | int, churn_t: Ints, b: Ints | int = 0) -> None:
        ok = self.keep(who, t, churn_t)
        a_ok = a[ok] if isinstance(a, np.ndarray) else a
        b_ok = b[ok] if isinstance(b, np.ndarray) else b
        self.log.add(kind, who[ok], t[ok], self.m.home[who[ok]], a_ok, b_ok)

    def _extras(self, w: int, who: Ints, eng: Floats, churn_t: Ints) -> None:
        """Retail purchases and the member's own web visits (schedule, now and then pricing or
        the cancellation page without meaning it)."""
        n = len(who)
        day = 7 * w + self.rng.integers(0, 7, n)
        bought = self.rng.random(n) < (0.015 + 0.12 * self.m.retail[who]) * eng
        item = self.rng.choice(len(RETAIL_ITEMS), size=n, p=[0.35, 0.1, 0.25, 0.08, 0.07, 0.15])
        buy_t = self.local(who, day, self.rng.integers(6 * HOUR, 21 * HOUR, n))
        self._emit_masked(K_PURCHASE, who[bought], buy_t[bought], item[bought], churn_t)
        page = np.where(self.rng.random(n) < 0.004, 2, np.where(self.rng.random(n) < 0.08, 0, 1))
        looked = self.rng.random(n) < 0.006 + 0.03 * self.m.digital[who] * eng
        looked |= page == 2
        page_t = self.local(who, day, self.rng.integers(7 * HOUR, 23 * HOUR, n))
        self._emit_masked(K_PAGE, who[looked], page_t[looked], page[looked], churn_t)

    # ---- money ----

    def _first_payment(self, who: Ints, t: Ints) -> None:
        self.invoices[who] += 1
        self.log.add(K_PAYMENT_OK, who, t, self.m.home[who], self._invoice(who, 0), self._price_cents(who))

    def _invoice(self, who: Ints, attempt: int | Ints) -> Ints:
        out: Ints = (who * 1000 + self.invoices[who]) * 4 + attempt
        return out

    def _price_cents(self, who: Ints) -> Ints:
        return np.array([round(p.monthly_price * 100) for p in PLANS], dtype=np.int64)[self.m.plan[who]]

    def _billing(self, w: int, churn_t: Ints) -> None:
        lo, hi = self.week_days(w)
        week_dom = self.cal.dom[lo:hi]
        who = np.flatnonzero(self.status == 1)
        hit = week_dom[None, :] == self.m.bill_dom[who][:, None]
        # A member who joined this month is not billed again until next month.
        has = hit.any(axis=1)
        who, offset = who[has], hit[has].argmax(axis=1)
        day = lo + offset
        recent = day - self.since_day[who] < 20
        who, day = who[~recent], day[~recent]
        t = self.local(who, day, self.rng.integers(5 * HOUR, 7 * HOUR, len(who)))
        ok = self.keep(who, t, churn_t)
        who, day, t = who[ok], day[ok], t[ok]
        self.invoices[who] += 1
        onset = self.onset_w[who] >= 0
        failed = self.rng.random(len(who)) < self.m.fail_p[who] * np.where(onset, 1.4, 1.0)
        paid = who[~failed]
        self.log.add(K_PAYMENT_OK, paid, t[~failed], self.m.home[paid], self._invoice(paid, 0), self._price_cents(paid))
        self._collections(w, who[failed], day[failed], t[failed])

    def _collections(self, w: int, who: Ints, day: Ints, t: Ints) -> None:
        """A failed card: retries, reminders, and either a late payment or a lost member."""
        n = len(who)
        if n == 0:
            return
        price, home = self._price_cents(who), self.m.home[who]
        self.log.add(K_PAYMENT_FAILED, who, t, home, self._invoice(who, 1), price)
        quick = self.rng.random(n) < 0.6
        second = ~quick & (self.rng.random(n) < 0.4)
        lost = ~quick & ~second & (self.rng.random(n) < 0.55)
        retry2 = t + 3 * DAY + self.rng.integers(0, HOUR, n)
        retry3 = t + 7 * DAY + self.rng.integers(0, HOUR, n)
        self.log.add(
            K_PAYMENT_FAILED, who[~quick], retry2[~quick], home[~quick], self._invoice(who[~quick], 2), price[~quick]
        )
        third = ~quick & ~second
        self.log.add(
            K_PAYMENT_FAILED, who[third], retry3[third], home[third], self._invoice(who[third], 3), price[third]
        )
        ok_t = np.where(
            quick,
            t + self.rng.integers(HOUR, 5 * DAY, n),
            np.where(
                second, retry2 + self.rng.integers(DAY, 4 * DAY, n), retry3 + self.rng.integers(2 * DAY, 14 * DAY, n)
            ),
        )
        pays = ~lost
        self.log.add(K_PAYMENT_OK, who[pays], ok_t[pays], home[pays], self._invoice(who[pays], 0), price[pays])
        self.pending_churn[who[lost]] = day[lost] + self.rng.integers(9, 22, int(lost.sum()))
        self.lock_until[who] = np.where(lost, self.pending_churn[who], (ok_t - t) // DAY + day + 1)
        self._boost(who[~lost], w, 1.5, weeks=6)

    # ---- records from other systems ----

    def _records(self, w: int, churn_t: Ints) -> None:
        lo, hi = self.week_days(w)
        for days, make in ((self.pos_day, self._pos_record), (self.booking_day, self._booking_record)):
            due = np.flatnonzero((days >= lo) & (days < hi) & (self.status == 1))
            t = self.local(due, days[due], self.rng.integers(9 * HOUR, 20 * HOUR, len(due)))
            ok = self.keep(due, t, churn_t)
            for member, at in zip(due[ok].tolist(), t[ok].tolist(), strict=True):
                make(member, at)

    def _pos_record(self, member: int, at: int) -> None:
        contact = self.contacts[member]
        pos_id = f"POS-{member + 100_000:07d}"
        misspelt = self.rng.random() < TYPO_SHARE
        sent = (
            cast.typo(contact.email, float(self.rng.random()), float(self.rng.random()))
            if misspelt
            else cast.messy_case(contact.email, float(self.rng.random()))
        )
        traits = {
            "pos_member_id": pos_id,
            "email": sent,
            "first_name": contact.first_name.upper(),
            "last_name": contact.last_name.upper(),
        }
        self._add_record(
            member, at, K_POS_RECORD, _Record(member, "pos", pos_id, f"pos-{pos_id}", traits, sent, "", not misspelt)
        )

    def _booking_record(self, member: int, at: int) -> None:
        contact = self.contacts[member]
        booking_id = f"bk_{member * 7919 % 1_000_003:07d}{member % 10}"
        traits: dict[str, Any] = {
            "booking_customer_id": booking_id,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
        }
        phone, email, stitchable = "", "", True
        if contact.phone is not None:
            phone = cast.phone_format(contact.phone, float(self.rng.random()))
            traits["phone"] = phone
        else:
            stitchable = self.rng.random() >= TYPO_SHARE
            email = (
                cast.messy_case(contact.email, float(self.rng.random()))
                if stitchable
                else cast.typo(contact.email, float(self.rng.random()), float(self.rng.random()))
            )
            traits["email"] = email
        record = _Record(member, "booking", booking_id, f"booking-{booking_id}", traits, email, phone, stitchable)
        self._add_record(member, at, K_BOOKING_RECORD, record)

    def _add_record(self, member: int, at: int, kind: int, record: _Record) -> None:
        index = len(self.records)
        self.records.append(record)
        self.log.add(kind, np.array([member]), np.array([at]), self.m.home[[member]], index)

    # ---- voice of the customer ----

    def _feedback(self, w: int, churn_t: Ints) -> None:
        """NPS answers, support tickets and reviews; the bad ones raise the disengagement hazard."""
        who = np.flatnonzero(self.status == 1)
        n = len(who)
        if n == 0:
            return
        onset = (self.onset_w[who] >= 0).astype(np.float64)
        quality = np.array([loc.quality for loc in self.locations])[self.m.home[who]]
        mood = 7.7 + 2.6 * (self.m.motivation[who] - 0.5) + 4 * (quality - 1) - 3.2 * onset + self.rng.normal(0, 1.7, n)
        day = 7 * w + self.rng.integers(0, 7, n)
        t = self.local(who, day, self.rng.integers(8 * HOUR, 22 * HOUR, n))
        score = np.clip(np.round(mood), 0, 10).astype(np.int64)
        answered = self.rng.random(n) < 0.014
        self._emit_masked(K_NPS, who[answered], t[answered], score[answered], churn_t)
        self._boost(who[answered & (score <= 6)], w, 2.2)
        ticket = self.rng.random(n) < 0.006 + 0.02 * onset
        escalated = self.rng.random(n) < 0.12 + 0.25 * onset
        topic = self.rng.integers(0, len(TICKET_TOPICS), n)
        self._emit_masked(
            K_TICKET, who[ticket], t[ticket] + 600, topic[ticket], churn_t, escalated[ticket].astype(np.int64)
        )
        self._boost(who[ticket & escalated], w, 2.5)
        reviewed = self.rng.random(n) < 0.0028
        rating = np.clip(np.digitize(mood, [3.5, 5.5, 7.3, 8.6]) + 1, 1, 5)
        text = self.rng.integers(0, 6, n) * 2 + (self.rng.random(n) < 0.3)
        self._emit_masked(K_REVIEW, who[reviewed], t[reviewed] + 1200, rating[reviewed], churn_t, text[reviewed])
        self._boost(who[reviewed & (rating <= 2)], w, 2.0)

    # ---- ground truth ----

    def ground_truth(self) -> list[GroundTruthRow]:
        rows = [
            self._truth(
                member,
                "member",
                self._uid(member),
                self.contacts[member].email,
                self.contacts[member].phone or "",
                True,
            )
            for member in range(self.config.members)
        ]
        lost = 0
        for record in self.records:
            if record.member >= 0:
                rows.append(
                    self._truth(
                        record.member,
                        record.source,
                        record.source_id,
                        record.email_as_sent,
                        record.phone_as_sent,
                        record.stitchable,
                    )
                )
                continue
            lost += 1
            loc = self.locations[self.lead_loc[record.lead]]
            rows.append(
                GroundTruthRow(
                    person_id=f"p-{self.config.members + lost:06d}",
                    user_id="",
                    source="lead",
                    source_id=record.source_id,
                    email_as_sent=record.email_as_sent,
                    phone_as_sent=record.phone_as_sent,
                    stitchable=True,
                    joined_at="",
                    churned_at="",
                    cancellations="",
                    rejoins="",
                    churn_reason="",
                    plan="",
                    home_location=loc.id,
                    timezone=loc.timezone,
                )
            )
        return rows

    def _uid(self, member: int) -> str:
        return f"m-{member + 1:06d}"

    def _iso(self, day: int) -> str:
        return (self.start + timedelta(days=day)).isoformat()

    def _truth(
        self, member: int, source: str, source_id: str, email: str, phone: str, stitchable: bool
    ) -> GroundTruthRow:
        cancels = self.cancellations[member]
        gone = self.status[member] == 2
        loc = self.locations[int(self.m.home[member])]
        return GroundTruthRow(
            person_id=f"p-{member + 1:06d}",
            user_id=self._uid(member),
            source=source,
            source_id=source_id,
            email_as_sent=email,
            phone_as_sent=phone,
            stitchable=stitchable,
            joined_at=self._iso(int(self.m.join_day[member])),
            churned_at=self._iso(cancels[-1][0]) if gone and cancels else "",
            cancellations=";".join(self._iso(d) for d, _ in cancels),
            rejoins=";".join(self._iso(d) for d in self.rejoins[member]),
            churn_reason=cancels[-1][1] if cancels else "",
            plan=PLANS[int(self.m.plan[member])].name,
            home_location=loc.id,
            timezone=loc.timezone,
        )


# ---- messages ----------------------------------------------------------------------------

Render = Callable[[int, int, int, int, str, str], dict[str, Any]]


class _Renderer:
    """Turns one row of the event columns into a Segment message dict."""

    def __init__(self, sim: _Simulation) -> None:
        m = sim.m
        self.locations = sim.locations
        self.uids = [f"m-{i + 1:06d}" for i in range(sim.config.members)]
        self.contacts = sim.contacts
        self.plan = m.plan.tolist()
        self.home = m.home.tolist()
        self.since = [(sim.start + timedelta(days=d)).isoformat() for d in m.join_day.tolist()]
        self.records = sim.records
        self.lead_anon = sim.lead_anon
        self.lead_of = sim.member_lead
        self.lead_traits: list[dict[str, Any]] = [{} for _ in sim.lead_anon]
        for record in sim.records:
            if record.lead >= 0:
                self.lead_traits[record.lead] = record.traits
        self.table: list[Render] = [
            self._join,
            self._status_cancelled,
            self._rejoin,
            self._record,
            self._record,
            self._lead_page,
            self._lead_created,
            self._at_location("visit"),
            self._class("class_booked"),
            self._class("class_attended"),
            self._class("no_show"),
            self._class("booking_cancelled"),
            self._payment_ok,
            self._payment_failed,
            self._purchase,
            self._campaign("email_sent"),
            self._campaign("email_opened"),
            self._campaign("email_clicked"),
            self._plain("sms_sent"),
            self._plain("sms_replied"),
            self._nps,
            self._ticket,
            self._review,
            self._cancelled,
            self._page,
        ]

    def _track(self, mid: str, who: int, event: str, props: dict[str, Any], ts: str) -> dict[str, Any]:
        return {
            "type": "track",
            "messageId": mid,
            "userId": self.uids[who],
            "event": event,
            "properties": props,
            "timestamp": ts,
        }

    def _identify(self, mid: str, who: int, traits: dict[str, Any], ts: str) -> dict[str, Any]:
        return {"type": "identify", "messageId": mid, "userId": self.uids[who], "traits": traits, "timestamp": ts}

    def _join(self, who: int, loc: int, a: int, b: int, ts: str, mid: str) -> dict[str, Any]:
        contact, plan, home = self.contacts[who], PLANS[self.plan[who]], self.locations[self.home[who]]
        traits: dict[str, Any] = {"email": contact.email}
        if contact.phone:
            traits["phone"] = contact.phone
        traits.update(
            first_name=contact.first_name,
            last_name=contact.last_name,
            plan=plan.name,
            monthly_price=plan.monthly_price,
            home_location=home.id,
            location_name=home.name,
            timezone=home.timezone,
            member_since=self.since[who],
            status="active",
        )
        # Most members opt in at the desk; a deterministic few do not, so the demo's sends
        # show the consent rule at work (suppressed/no_consent) beside the ones that go out.
        traits["email_subscribe"] = "opted_in" if who % 10 < 9 else "unsubscribed"
        if contact.phone:
            traits["sms_subscribe"] = "opted_in" if who % 10 < 7 else "unsubscribed"
        msg = self._identify(mid, who, traits, ts)
        lead = self.lead_of.get(who)
        if lead is not None:
            msg["anonymousId"] = self.lead_anon[lead]
        return msg

    def _status_cancelled(self, who: int, loc: int, a: int, b: int, ts: str, mid: str) -> dict[str, Any]:
        return self._identify(mid, who, {"status": "cancelled"}, ts)

    def _rejoin(self, who: int, loc: int, a: int, b: int, ts: str, mid: str) -> dict[str, Any]:
        plan = PLANS[self.plan[who]]
        return self._identify(
            mid, who, {"status": "active", "plan": plan.name, "monthly_price": plan.monthly_price}, ts
        )

    def _record(self, who: int, loc: int, a: int, b: int, ts: str, mid: str) -> dict[str, Any]:
        record = self.records[a]
        return {
            "type": "identify",
            "messageId": mid,
            "anonymousId": record.anonymous_id,
            "traits": dict(record.traits),
            "timestamp": ts,
        }

    def _lead_page(self, who: int, loc: int, a: int, b: int, ts: str, mid: str) -> dict[str, Any]:
        return _page_view(mid, "anonymousId", self.lead_anon[who], PAGES[a], ts)

    def _lead_created(self, who: int, loc: int, a: int, b: int, ts: str, mid: str) -> dict[str, Any]:
        return {
            "type": "track",
            "messageId": mid,
            "anonymousId": self.lead_anon[who],
            "event": "lead_created",
            "properties": {"source": LEAD_SOURCES[a], "location_id": self.locations[loc].id},
            "context": {"traits": dict(self.lead_traits[who])},
            "timestamp": ts,
        }

    def _at_location(self, event: str) -> Render:
        def render(who: int, loc: int, a: int, b: int, ts: str, mid: str) -> dict[str, Any]:
            return self._track(mid, who, event, {"location_id": self.locations[loc].id}, ts)

        return render

    def _class(self, event: str) -> Render:
        def render(who: int, loc: int, a: int, b: int, ts: str, mid: str) -> dict[str, Any]:
            return self._track(
                mid, who, event, {"class_name": CLASSES[a][0], "location_id": self.locations[loc].id}, ts
            )

        return render

    def _campaign(self, event: str) -> Render:
        def render(who: int, loc: int, a: int, b: int, ts: str, mid: str) -> dict[str, Any]:
            name = CAMPAIGNS[a] if a < len(CAMPAIGNS) else "win_back"
            return self._track(mid, who, event, {"campaign": name}, ts)

        return render

    def _plain(self, event: str) -> Render:
        def render(who: int, loc: int, a: int, b: int, ts: str, mid: str) -> dict[str, Any]:
            return self._track(mid, who, event, {}, ts)

        return render

    @staticmethod
    def _invoice_props(a: int, b: int) -> dict[str, Any]:
        return {"amount": b / 100, "currency": "usd", "invoice_id": f"in_test_{a // 4:011d}"}

    def _payment_ok(self, who: int, loc: int, a: int, b: int, ts: str, mid: str) -> dict[str, Any]:
        return self._track(mid, who, "payment_succeeded", self._invoice_props(a, b), ts)

    def _payment_failed(self, who: int, loc: int, a: int, b: int, ts: str, mid: str) -> dict[str, Any]:
        props = {**self._invoice_props(a, b), "attempt_count": a % 4}
        return self._track(mid, who, "payment_failed", props, ts)

    def _purchase(self, who: int, loc: int, a: int, b: int, ts: str, mid: str) -> dict[str, Any]:
        item, price = RETAIL_ITEMS[a]
        return self._track(mid, who, "purchase", {"amount": price, "item": item}, ts)

    def _nps(self, who: int, loc: int, a: int, b: int, ts: str, mid: str) -> dict[str, Any]:
        return self._track(mid, who, "nps_submitted", {"score": a}, ts)

    def _ticket(self, who: int, loc: int, a: int, b: int, ts: str, mid: str) -> dict[str, Any]:
        return self._track(mid, who, "support_ticket_created", {"topic": TICKET_TOPICS[a], "escalated": bool(b)}, ts)

    def _review(self, who: int, loc: int, a: int, b: int, ts: str, mid: str) -> dict[str, Any]:
        texts = REVIEW_TEXTS[a - 1]
        props = {"rating": a, "text": texts[(b // 2) % len(texts)], "source": "yelp" if b % 2 else "google"}
        return self._track(mid, who, "review_posted", props, ts)

    def _cancelled(self, who: int, loc: int, a: int, b: int, ts: str, mid: str) -> dict[str, Any]:
        return self._track(mid, who, "subscription_cancelled", {"reason": CANCEL_REASONS[a]}, ts)

    def _page(self, who: int, loc: int, a: int, b: int, ts: str, mid: str) -> dict[str, Any]:
        return _page_view(mid, "userId", self.uids[who], PAGES[a], ts)


class World:
    """A generated world: its messages in timestamp order, and the truth behind them."""

    def __init__(self, config: WorldConfig, sim: _Simulation) -> None:
        self.config = config
        self.start, self.end = sim.start, sim.end
        self.locations = sim.locations
        self.ground_truth: tuple[GroundTruthRow, ...] = tuple(sim.ground_truth())
        self._cols = sim.log.columns(sim.cal.midnight[:, 0], sim.cal.end_bound)
        self._renderer = _Renderer(sim)
        self._prefix = f"demo-{fingerprint(config)}"

    def __len__(self) -> int:
        return len(self._cols["t"])

    def messages(self, chunk: int = 50_000) -> Iterator[dict[str, Any]]:
        cols, table, prefix = self._cols, self._renderer.table, self._prefix
        for lo in range(0, len(self), chunk):
            hi = min(lo + chunk, len(self))
            stamps = np.datetime_as_string(cols["t"][lo:hi].astype("datetime64[s]"), unit="s").tolist()
            rows = zip(
                cols["kind"][lo:hi].tolist(),
                cols["who"][lo:hi].tolist(),
                cols["loc"][lo:hi].tolist(),
                cols["a"][lo:hi].tolist(),
                cols["b"][lo:hi].tolist(),
                stamps,
                strict=True,
            )
            for i, (kind, who, loc, a, b, stamp) in enumerate(rows, start=lo):
                yield table[kind](who, loc, a, b, stamp + "Z", f"{prefix}-{i:08d}")


def build_world(config: WorldConfig) -> World:
    sim = _Simulation(config)
    sim.run()
    return World(config, sim)


def _page_view(mid: str, id_key: str, id_value: str, name: str, ts: str) -> dict[str, Any]:
    return {
        "type": "page",
        "messageId": mid,
        id_key: id_value,
        "name": name,
        "properties": {"path": f"/{name}"},
        "timestamp": ts,
    }
