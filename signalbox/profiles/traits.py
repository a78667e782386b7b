"""Computed traits: windows over the event log, evaluated as of a local date.

A trait is data (`TraitDef`: which events, which window, which aggregation), so adding one is
a line in `DEFAULT_TRAITS`. Windows are calendar days in each person's own time zone (their
home location's, else the workspace's): "last 30 days as of 2026-03-10" means local dates
2026-02-09 through 2026-03-10 wherever the person lives, across DST changes. Nothing at or
after the end of the as-of day is read.

The computation is columnar: a few grouped queries, then NumPy over the rows, so a workspace
of any size costs the same handful of round trips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import repeat
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import orjson
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from signalbox.events import service as events
from signalbox.profiles import service as profiles
from signalbox.profiles import trait_docs

Aggregation = Literal["count", "sum", "min", "max", "first_at", "last_at"]
FloatArray = NDArray[np.float64]

# What counts as a person showing up; a retail store's purchases count too.
DEFAULT_ACTIVITY_EVENTS: tuple[str, ...] = ("visit", "check_in", "class_attended", "purchase")
# Identify traits carried onto the table as labels (as they stood at the as-of date).
LABEL_TRAITS: tuple[str, ...] = ("plan", "home_location", "timezone", "member_since")


@dataclass(frozen=True, slots=True)
class TraitDef:
    """One computed trait. ``window_days=None`` means all history up to the as-of date;
    ``offset_days`` shifts the window back (the prior window of a "now vs before" pair)."""

    name: str
    agg: Aggregation
    events: tuple[str, ...]
    window_days: int | None = None
    offset_days: int = 0
    prop: str | None = None  # the property summed, or compared by `where`
    where: tuple[str, str, float] | None = None  # (property, "<=" | ">=" | "==", value)

    def __post_init__(self) -> None:
        if self.agg in ("sum", "min", "max") and self.prop is None:
            raise ValueError(f"trait {self.name}: {self.agg} needs a property")
        if self.window_days is not None and self.window_days < 1:
            raise ValueError(f"trait {self.name}: window_days must be at least 1")
        if self.window_days is None and (self.where is not None or self.agg in ("min", "max")):
            raise ValueError(f"trait {self.name}: filters and min/max need a window")


def default_traits(activity: Sequence[str] = DEFAULT_ACTIVITY_EVENTS) -> tuple[TraitDef, ...]:
    act = tuple(activity)
    sent, engaged = ("email_sent", "sms_sent"), ("email_opened", "sms_replied")
    return (
        TraitDef("last_activity_at", "last_at", act),
        TraitDef("first_activity_at", "first_at", act),
        TraitDef("activity_total", "count", act),
        TraitDef("activity_30d", "count", act, 30),
        TraitDef("activity_prior_90d", "count", act, 90, offset_days=30),
        TraitDef("payment_failures_30d", "count", ("payment_failed",), 30),
        TraitDef("last_payment_failed_at", "last_at", ("payment_failed",), 30),
        TraitDef("last_payment_succeeded_at", "last_at", ("payment_succeeded",), 30),
        TraitDef("messages_sent_30d", "count", sent, 30),
        TraitDef("messages_engaged_30d", "count", engaged, 30),
        TraitDef("messages_sent_prior_30d", "count", sent, 30, offset_days=30),
        TraitDef("messages_engaged_prior_30d", "count", engaged, 30, offset_days=30),
        TraitDef("min_nps_90d", "min", ("nps_submitted",), 90, prop="score"),
        TraitDef("escalated_tickets_90d", "count", ("support_ticket_created",), 90, where=("escalated", "==", 1.0)),
        TraitDef("negative_reviews_90d", "count", ("review_posted",), 90, where=("rating", "<=", 2.0)),
        TraitDef("total_spend", "sum", ("payment_succeeded", "purchase"), prop="amount"),
        TraitDef("cancelled_at", "last_at", ("subscription_cancelled",)),
    )


@dataclass
class TraitTable:
    """Traits of many profiles as columns. Times are epoch seconds (NaN when never)."""

    as_of: date
    cutoff: FloatArray  # per profile: end of the as-of day in their zone, epoch seconds
    profile_ids: list[str]
    user_ids: list[str | None]
    zones: list[str]
    values: dict[str, FloatArray] = field(default_factory=dict)
    labels: dict[str, list[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.profile_ids)

    def days_since(self, name: str) -> FloatArray:
        """Whole local calendar days between the trait's moment and the as-of date."""
        return local_days_before(self.values[name], self.as_of, self.zones)

    def row(self, i: int) -> dict[str, Any]:
        """One profile's traits as a JSON-ready document."""
        doc: dict[str, Any] = {"as_of": self.as_of.isoformat(), "timezone": self.zones[i]}
        for name, column in self.values.items():
            value = float(column[i])
            if np.isnan(value):
                doc[name] = None
            elif name.endswith("_at"):
                doc[name] = datetime.fromtimestamp(value, UTC).isoformat()
            else:
                doc[name] = round(value, 2) if value % 1 else int(value)
        for name, labels in self.labels.items():
            doc[name] = labels[i]
        return doc

    def documents(self) -> list[str]:
        """Every row's stored document as JSON text, built a column at a time: the default
        traits compact (`trait_docs`, rendered on read into what `row()` gives), any other
        set as `row()`'s own document."""
        n = len(self)
        if tuple(self.values) == trait_docs.VALUE_NAMES and tuple(self.labels) == trait_docs.LABEL_NAMES:
            # The traits every workspace computes: stored compact, rendered on read.
            labels = [_json_literals(self.zones), *(_json_literals(v) for v in self.labels.values())]
            return trait_docs.encode(self.as_of.isoformat(), list(self.values.values()), labels)
        columns: list[list[str]] = [_json_literals(self.zones)]
        columns += [_time_literals(v) if k.endswith("_at") else _number_literals(v) for k, v in self.values.items()]
        columns += [_json_literals(labels) for labels in self.labels.values()]
        keys = ["timezone", *self.values, *self.labels]
        head = '{"as_of":' + orjson.dumps(self.as_of.isoformat()).decode()
        template = head + "".join("," + orjson.dumps(k).decode().replace("%", "%%") + ":%s" for k in keys) + "}"
        return [template % row for row in zip(*columns, strict=True)] if n else []


def _json_literals(values: Sequence[Any]) -> list[str]:
    """Each value as orjson writes it in a document; the few distinct labels are written once."""
    cache: dict[tuple[type, Any], str] = {}
    out = []
    for value in values:
        if isinstance(value, dict | list):
            out.append(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode())
            continue
        key = (type(value), value)  # 1, 1.0 and True are equal keys but different JSON
        text = cache.get(key)
        if text is None:
            text = cache[key] = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
        out.append(text)
    return out


def _time_literals(moments: FloatArray) -> list[str]:
    """`datetime.fromtimestamp(v, UTC).isoformat()` of each moment, quoted, or null."""
    missing = np.isnan(moments)
    micros = np.round(np.where(missing, 0.0, moments) * 1e6).astype(np.int64)
    stamps = micros.astype("datetime64[us]")
    whole = micros % 1_000_000 == 0  # isoformat leaves out a zero fraction
    text = np.where(whole, np.datetime_as_string(stamps, unit="s"), np.datetime_as_string(stamps, unit="us"))
    out = [f'"{t}+00:00"' for t in text.tolist()]
    for i in np.flatnonzero(missing).tolist():
        out[i] = "null"
    return out


def _number_literals(values: FloatArray) -> list[str]:
    """`row()`'s number of each value (a whole number as an int, else rounded to 2 places), or null."""
    missing = np.isnan(values)
    whole = ~missing & (np.mod(values, 1) == 0)
    out: list[str] = np.where(whole, values, 0).astype(np.int64).astype(str).tolist()
    for i in np.flatnonzero(~whole).tolist():
        value = float(values[i])
        out[i] = "null" if missing[i] else orjson.dumps(round(value, 2)).decode()
    return out


HISTORY_DAYS = 3660  # local midnights tabulated per zone; older moments are counted in plain days


def local_days_before(moments: FloatArray, as_of: date, zones: Sequence[str]) -> FloatArray:
    """For each epoch-seconds moment, how many local calendar days before `as_of` it fell in
    that row's zone (0 = on the as-of day). Vectorised: a table of each zone's local midnights
    (exact across DST) and a binary search, instead of a zoneinfo call per row."""
    out = np.full(len(moments), np.nan)
    zone_array = np.asarray(zones, dtype=object)
    for zone in set(zones):
        rows = np.flatnonzero((zone_array == zone) & ~np.isnan(moments))
        if not len(rows):
            continue
        # midnights[j] starts local day as_of - (HISTORY_DAYS - j); ascending.
        midnights = np.array(
            [day_start(as_of - timedelta(days=k), zone).timestamp() for k in range(HISTORY_DAYS, -1, -1)]
        )
        ts = moments[rows]
        pos = np.searchsorted(midnights, ts, side="right") - 1
        days = (HISTORY_DAYS - pos).astype(np.float64)
        older = pos < 0
        days[older] = HISTORY_DAYS + np.ceil((midnights[0] - ts[older]) / 86400.0)
        out[rows] = np.maximum(days, 0.0)
    return out


def zone_or(name: Any, fallback: str) -> str:
    if isinstance(name, str) and name:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return fallback
        return name
    return fallback


def day_start(day: date, zone: str) -> datetime:
    """Local midnight of `day` in `zone`, in UTC (fold=0: the first midnight if repeated)."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _bounds(defn: TraitDef, as_of: date, zone: str) -> tuple[datetime, datetime]:
    end_day = as_of + timedelta(days=1 - defn.offset_days)
    end = day_start(end_day, zone)
    if defn.window_days is None:
        return datetime(1970, 1, 1, tzinfo=UTC), end
    return day_start(end_day - timedelta(days=defn.window_days), zone), end


def compute(
    session: Session,
    workspace_id: str,
    workspace_zone: str,
    as_of: date,
    defs: Sequence[TraitDef],
    roots: Sequence[str] | None = None,
) -> TraitTable:
    """Every profile (or only `roots`) with at least one event before the end of `as_of`,
    with `defs` computed."""
    # Rows from a day before the earliest window start in UTC (local midnights anywhere lie
    # within 14 hours of UTC's); older history is aggregated in SQL. Where this splits does
    # not change any trait, only which read counts an event.
    starts = [_bounds(d, as_of, "UTC")[0] for d in defs if d.window_days is not None]
    fetch_start = min([*starts, day_start(as_of, "UTC")]) - timedelta(days=1)
    read = _read(session, workspace_id, as_of, defs, roots, fetch_start)
    root_of, labels, cols, older = read.root_of, read.labels, read.cols, read.older
    seen = set(cols.nodes).union(*(got[0] for got in older.values()))
    # map() over the dicts' own methods: a million people's lookups without a Python loop.
    found = sorted({root for root in map(root_of.get, seen) if root is not None} | read.identified)
    index = {root: i for i, root in enumerate(found)}
    position = {node: index[root] for node, root in root_of.items() if root in index}
    zone_names = _zones(found, labels["timezone"], workspace_zone)
    unique_zones = sorted(set(zone_names))
    zone_number = {zone: k for k, zone in enumerate(unique_zones)}
    zone_idx = np.fromiter((zone_number[z] for z in zone_names), dtype=np.int64, count=len(found))

    n = len(found)
    row_profile = _positions(cols.nodes, position)
    kept = row_profile >= 0  # events of nodes that are no longer in the graph are not anybody's
    row_profile, row_code, row_ts = row_profile[kept], cols.codes[kept], cols.ts[kept]
    row_props = {p: column[kept] for p, column in cols.props.items()}
    row_zone = zone_idx[row_profile]
    cutoff_by_zone = np.array([day_start(as_of + timedelta(days=1), z).timestamp() for z in unique_zones])
    table = TraitTable(as_of, cutoff_by_zone[zone_idx] if n else np.zeros(0), found, [None] * n, zone_names)
    older_who: dict[int, NDArray[np.int64]] = {}
    for defn in defs:
        bounds = np.array([[_bounds(defn, as_of, z)[k].timestamp() for k in (0, 1)] for z in unique_zones])
        lo, hi = (bounds[row_zone, k] if len(row_zone) else np.zeros(0) for k in (0, 1))
        mask = _codes_in(row_code, cols.names, defn.events) & (row_ts >= lo) & (row_ts < hi)
        if defn.where is not None:
            mask &= _compare(row_props[defn.where[0]], defn.where[1], defn.where[2])
        values = row_props[defn.prop] if defn.prop else np.ones(len(row_ts))
        column = _aggregate(defn.agg, n, row_profile[mask], values[mask], row_ts[mask])
        if defn.window_days is None:
            nodes, older_values = older[defn.name]
            if id(nodes) not in older_who:  # the history traits of one read share its nodes
                older_who[id(nodes)] = _positions(nodes, position)
            _fold_older(defn, column, older_who[id(nodes)], older_values)
        table.values[defn.name] = column
    for name in LABEL_TRAITS:
        table.labels[name] = list(map(labels[name].get, found))
    users = read.users if read.users is not None else profiles.tree_user_ids(session, workspace_id, found)
    table.user_ids = list(map(users.get, found))
    return table


Older = dict[str, tuple[list[str], NDArray[np.float64]]]


@dataclass(frozen=True)
class _Reads:
    root_of: dict[str, str]  # node -> root
    labels: dict[str, dict[str, Any]]  # label trait -> root -> value
    identified: set[str]
    cols: events.TrackColumns
    older: Older
    users: dict[str, str] | None  # root -> user id; None: read for the roots found (a subset)


def _read(
    session: Session,
    workspace_id: str,
    as_of: date,
    defs: Sequence[TraitDef],
    roots: Sequence[str] | None,
    fetch_start: datetime,
) -> _Reads:
    """What `compute` reads, in one session (one snapshot)."""
    latest_end = day_start(as_of + timedelta(days=2), "UTC")  # past the end of the day in every zone
    # A person's zone comes from their traits, so traits are read only up to the earliest end
    # of the as-of day anywhere (UTC+14): a trait changed later can never shape this as-of.
    traits_end = day_start(as_of + timedelta(days=1), "Etc/GMT-14")
    users: dict[str, str] | None = None
    nodes: list[str] | None = None
    if roots is None:
        root_of, users = profiles.node_roots_and_user_ids(session, workspace_id)
    else:
        root_of = profiles.nodes_of_roots(session, workspace_id, roots)
        nodes = sorted(root_of)
    identifies = events.identify_labels(session, workspace_id, traits_end, LABEL_TRAITS, nodes)
    cols = _read_rows(session, workspace_id, defs, fetch_start, latest_end, nodes)
    older = _read_older(session, workspace_id, defs, fetch_start, nodes)
    labels, identified = _identify_labels(identifies, root_of)
    return _Reads(root_of, labels, identified, cols, older, users)


def _read_rows(
    session: Session,
    workspace_id: str,
    defs: Sequence[TraitDef],
    fetch_start: datetime,
    latest_end: datetime,
    nodes: list[str] | None,
) -> events.TrackColumns:
    """The track rows from `fetch_start` on."""
    names = sorted({e for d in defs for e in d.events})
    props = sorted({p for d in defs for p in (d.prop, d.where[0] if d.where else None) if p})
    # Properties only of the events whose traits read one: the other rows come from the
    # event/time index alone, without a lookup of each event's row.
    prop_events = sorted({e for d in defs if d.prop or d.where for e in d.events})
    return events.track_columns(
        session, workspace_id, names, fetch_start, latest_end, props, nodes, property_events=prop_events
    )


def _read_older(
    session: Session, workspace_id: str, defs: Sequence[TraitDef], fetch_start: datetime, nodes: list[str] | None
) -> Older:
    """Each all-history trait over the events before `fetch_start`, aggregated in SQL:
    (nodes, values) under the trait's name."""
    history = [d for d in defs if d.window_days is None]
    specs = [events.HistorySpec(d.agg, d.events, d.prop) for d in history]  # type: ignore[arg-type]
    # Sums read each event's properties: a read of their own, over only the summed events.
    plain = [k for k, d in enumerate(history) if d.agg != "sum"]
    summed = [k for k, d in enumerate(history) if d.agg == "sum"]
    older: Older = {}
    for part in (plain, summed):
        if part:
            got = events.track_history(session, workspace_id, [specs[k] for k in part], fetch_start, nodes)
            for k, column in zip(part, got.values, strict=True):
                older[history[k].name] = (got.nodes, column)
    return older


def _zones(found: list[str], zone_of: dict[str, Any], fallback: str) -> list[str]:
    """Each root's zone: its identify trait where that names a real zone, else `fallback`.
    Each distinct name is checked once."""
    valid = {z: zone_or(z, fallback) for z in {v for v in zone_of.values() if isinstance(v, str)}}
    return [valid.get(z, fallback) if isinstance(z := zone_of.get(root), str) else fallback for root in found]


def _codes_in(codes: NDArray[np.int64], names: Sequence[str], wanted: Sequence[str]) -> NDArray[np.bool_]:
    return np.isin(codes, [k for k, name in enumerate(names) if name in wanted])


def _identify_labels(
    read: events.IdentifyLabels, root_of: dict[str, str]
) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Per label trait, its value per root (the newest identify that carries it wins, key by
    key: the rows come oldest first, so a later one overwrites), and every root identified."""
    roots = list(map(root_of.get, read.nodes))
    identified = {root for root in roots if root is not None}
    return {
        name: dict(
            [
                (root, value)
                for root, value in zip(roots, values, strict=True)
                if value is not None and value != "" and root is not None
            ]
        )
        for name, values in zip(LABEL_TRAITS, read.values, strict=True)
    }, identified


def _positions(nodes: Sequence[str], position: dict[str, int]) -> NDArray[np.int64]:
    """Each node's row in the table, -1 for a node that is nobody's now."""
    return np.fromiter(map(position.get, nodes, repeat(-1)), dtype=np.int64, count=len(nodes))


def _fold_older(defn: TraitDef, column: FloatArray, who: NDArray[np.int64], values: FloatArray) -> None:
    """Add what happened before the fetched rows (one SQL aggregate per node, at row `who`)."""
    if not len(who):
        return
    mask = who >= 0
    who, values = who[mask], values[mask]
    if defn.agg in ("count", "sum"):
        column += np.bincount(who, weights=values, minlength=len(column))
    elif defn.agg == "first_at":
        np.fmin.at(column, who, values)
    elif defn.agg == "last_at":
        np.fmax.at(column, who, values)


def _compare(values: FloatArray, op: str, threshold: float) -> NDArray[np.bool_]:
    with np.errstate(invalid="ignore"):
        if op == "<=":
            result = values <= threshold
        elif op == ">=":
            result = values >= threshold
        else:
            result = values == threshold
    return np.asarray(result, dtype=np.bool_)


def _aggregate(agg: Aggregation, n: int, who: NDArray[np.int64], values: FloatArray, ts: FloatArray) -> FloatArray:
    if agg == "count":
        return np.asarray(np.bincount(who, minlength=n), dtype=np.float64)
    if agg == "sum":
        return np.asarray(np.bincount(who, weights=np.nan_to_num(values), minlength=n), dtype=np.float64)
    out = np.full(n, np.nan)
    if agg == "min":
        np.fmin.at(out, who, values)
    elif agg == "max":
        np.fmax.at(out, who, values)
    elif agg == "first_at":
        np.fmin.at(out, who, ts)
    else:
        np.fmax.at(out, who, ts)
    return out
