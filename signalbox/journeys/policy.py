"""Send-time rules, read from the database at the moment of sending, never from a cache.

- consent: the ledger's current state; marketing needs a grant, transactional no revocation;
- automation holds: a person taken out of automation gets nothing automated;
- quiet hours: SMS always (every purpose), e-mail only when the step sets a `window`;
  the recipient's zone, with the stricter US state windows by area code;
- frequency caps: marketing sends per person and channel in a rolling window, counted under a
  lock so two workers cannot both take the last slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from signalbox.channels import service as channels
from signalbox.consent import service as consent
from signalbox.consent.quiet_hours import QuietHours, parse_window, state_of_phone
from signalbox.consent.schemas import UNKNOWN, ConsentState
from signalbox.core.db import Database
from signalbox.core.errors import InvalidInputError
from signalbox.events import service as events
from signalbox.journeys.models import AutomationHold
from signalbox.segments.spec import duration
from signalbox.workspaces import service as workspaces

SETTINGS_KEY = "journeys"


class Cap(BaseModel):
    count: int = Field(ge=1, le=1000)
    seconds: int = Field(ge=60, le=90 * 86400)


class JourneySettings(BaseModel):
    quiet_hours: str = "08:00-21:00"
    caps: dict[str, Cap] = Field(default_factory=dict)
    # Staff tasks a location takes per day ("*": every location without its own number).
    task_capacity: dict[str, int] = Field(default_factory=dict)

    def capacity_for(self, location: str | None) -> int | None:
        if location is not None and location in self.task_capacity:
            return self.task_capacity[location]
        return self.task_capacity.get("*")

    @field_validator("task_capacity")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for key, number in value.items():
            if number < 1 or number > 100_000:
                raise ValueError(f"task capacity of {key} must be 1 to 100000 a day")
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_window(value)
        return value

    @field_validator("caps")
    @classmethod
    def _channels(cls, value: dict[str, Cap]) -> dict[str, Cap]:
        unknown = sorted(set(value) - {"email", "sms"})
        if unknown:
            raise ValueError(f"caps are per channel: email or sms, not {', '.join(unknown)}")
        return value


def get_settings(db: Database, workspace_id: str) -> JourneySettings:
    return JourneySettings.model_validate(workspaces.get_setting(db, workspace_id, SETTINGS_KEY))


def update_settings(
    db: Database,
    workspace_id: str,
    *,
    quiet_hours: str | None = None,
    caps: list[str] | None = None,
    task_capacity: list[str] | None = None,
) -> JourneySettings:
    """Change the quiet-hours window, set caps (`sms=1/1d`; `sms=off` removes one) and task
    capacities (`loc-01=12`, `*=20`; `loc-01=off` removes one)."""
    current = get_settings(db, workspace_id).model_dump()
    if quiet_hours is not None:
        current["quiet_hours"] = quiet_hours
    for text in task_capacity or []:
        where, _, number = text.partition("=")
        if not where.strip() or not (number.strip().isdigit() or number.strip() == "off"):
            raise InvalidInputError(f"--task-capacity {text!r} is not like loc-01=12 or *=20 (or loc-01=off)")
        if number.strip() == "off":
            current["task_capacity"].pop(where.strip(), None)
        else:
            current["task_capacity"][where.strip()] = int(number)
    for text in caps or []:
        channel, _, rule = text.partition("=")
        if rule.strip() == "off":
            current["caps"].pop(channel.strip(), None)
            continue
        name, cap = parse_cap(text)
        current["caps"][name] = cap.model_dump()
    try:
        updated = JourneySettings.model_validate(current)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise InvalidInputError(f"{where}: {first['msg']}") from None
    workspaces.put_setting(db, workspace_id, SETTINGS_KEY, updated.model_dump(mode="json"))
    return updated


def parse_cap(text: str) -> tuple[str, Cap]:
    """`sms=1/1d` -> ("sms", Cap(1, 86400))."""
    channel, _, rule = text.partition("=")
    count, _, window = rule.partition("/")
    seconds = duration(window.strip())
    if not channel or not count.strip().isdigit() or seconds is None:
        raise InvalidInputError(f"--cap {text!r} is not like sms=1/1d or email=3/7d (or sms=off)")
    return channel.strip(), Cap(count=int(count), seconds=seconds)


@dataclass
class Recipient:
    """What the rules need to know of a person, read once per step run."""

    workspace_id: str
    root: str
    nodes: list[str]
    user_id: str | None
    email: str | None
    phone: str | None
    zone: str
    context: dict[str, Any] = field(default_factory=dict)  # traits, scores, profile, event
    anonymous_id: str | None = None
    zone_of_workspace: str = "UTC"  # the business's zone: a location's working day
    settings: JourneySettings = field(default_factory=JourneySettings)  # read once per run
    # Consent as the batch read it: only to choose a fallback channel; the send itself is
    # checked against the ledger in its own transaction (`precheck_many`).
    consent: dict[str, ConsentState] = field(default_factory=dict)

    def address(self, channel: str) -> str | None:
        return self.email if channel == "email" else self.phone

    def unreachable(self, channel: str, purpose: str) -> str | None:
        """Why a send on this channel cannot go (`no_address`, `no_consent`), or None."""
        if not self.address(channel):
            return "no_address"
        if not self.consent.get(channel, UNKNOWN).allows(purpose):
            return "no_consent"
        return None


def zones_of(
    session: Session, workspace_id: str, people: dict[str, tuple[dict[str, Any], list[str]]], fallback: str
) -> dict[str, str]:
    """Each person's zone (root -> (traits, nodes)), in one query: the identify trait
    `timezone`, else the newest `context.timezone`, else the workspace's."""
    out = {root: zone for root, (traits, _) in people.items() if (zone := _valid_zone(traits.get("timezone")))}
    rest: dict[str, Sequence[str]] = {root: nodes for root, (_, nodes) in people.items() if root not in out}
    if rest:
        seen = events.latest_context_values(session, workspace_id, rest, "timezone")
        for root in rest:
            out[root] = _valid_zone(seen.get(root)) or fallback
    return out


def _valid_zone(candidate: Any) -> str | None:
    if not isinstance(candidate, str) or not candidate:
        return None
    try:
        ZoneInfo(candidate)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return candidate


def quiet_hours(
    settings: JourneySettings, channel: str, window: list[str] | None, phone: str | None
) -> QuietHours | None:
    """The window a send must fall in, or None when it may go at any hour."""
    if window is not None:
        return QuietHours(time.fromisoformat(window[0]), time.fromisoformat(window[1]), state_of_phone(phone))
    if channel != "sms":
        return None
    start, end = parse_window(settings.quiet_hours)
    return QuietHours(start, end, state_of_phone(phone))


def held_nodes(session: Session, workspace_id: str, nodes: list[str]) -> set[str]:
    """Which of these nodes are taken out of automation."""
    found: set[str] = set()
    for start in range(0, len(nodes), 500):
        found.update(
            session.scalars(
                select(AutomationHold.profile_id).where(
                    AutomationHold.workspace_id == workspace_id,
                    AutomationHold.profile_id.in_(nodes[start : start + 500]),
                )
            )
        )
    return found


@dataclass(frozen=True)
class Outgoing:
    """A send the rules are asked about: to whom, on which channel, for what purpose."""

    key: str
    person: Recipient
    channel: str
    purpose: str
    cap: Cap | None


def precheck_many(session: Session, sends: list[Outgoing], now: datetime) -> dict[str, str]:
    """Inside the transaction that writes the sends' ledger rows: the reason not to send, by
    key, for those that must not go. Sends earlier in the list count against the caps of the
    later ones, as if each had committed before the next was checked."""
    refused: dict[str, str] = {}
    by_workspace: dict[str, list[Outgoing]] = {}
    for send in sends:
        by_workspace.setdefault(send.person.workspace_id, []).append(send)
    for workspace_id, group in by_workspace.items():
        trees: dict[str, Sequence[str]] = {s.person.root: s.person.nodes for s in group}
        holds = held_nodes(session, workspace_id, [node for nodes in trees.values() for node in nodes])
        states = consent.states(session, workspace_id, trees)
        taken: dict[tuple[str, str], int] = {}
        for send in group:
            person, channel = send.person, send.channel
            if holds.intersection(person.nodes):
                refused[send.key] = "automation_paused"
            elif not states[person.root][channel].allows(send.purpose):
                refused[send.key] = "no_consent"
            elif send.purpose == "marketing" and send.cap is not None:
                channels.lock_recipient(session, workspace_id, person.root, channel)
                since = now - timedelta(seconds=send.cap.seconds)
                slot = (person.root, channel)
                used = channels.recent_sends(session, workspace_id, person.root, channel, since) + taken.get(slot, 0)
                if used >= send.cap.count:
                    refused[send.key] = "frequency_cap"
                else:
                    taken[slot] = taken.get(slot, 0) + 1
    return refused


_PRIORITY_ORDER = {"high": 0, "normal": 1, "low": 2}


def day_start(now: datetime, zone: str) -> datetime:
    local = now.astimezone(ZoneInfo(zone))
    return datetime.combine(local.date(), time(0), tzinfo=local.tzinfo).astimezone(now.tzinfo)


def next_day_start(now: datetime, zone: str, priority: str) -> datetime:
    """Local midnight tomorrow, a minute later per priority step, so when the day opens the
    claim (oldest due first) takes high-priority overflow before normal and low."""
    tz = ZoneInfo(zone)
    tomorrow = now.astimezone(tz).date() + timedelta(days=1)
    opens = datetime.combine(tomorrow, time(0), tzinfo=tz).astimezone(now.tzinfo)
    return opens + timedelta(minutes=_PRIORITY_ORDER.get(priority, 1))
