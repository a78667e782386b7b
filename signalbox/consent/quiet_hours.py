"""Quiet hours in the recipient's local time, with the US states whose laws are stricter.

A step that falls inside quiet hours is delayed to the next allowed minute, never dropped.
The default window is 08:00-21:00 local. Florida, Oklahoma, Maryland, Mississippi and New
Jersey end calls and texts at 20:00 (their telemarketing statutes); Texas allows noon to
21:00 on Sundays. A phone number's state is read from its area code; a person's zone from
their profile (see `journeys.policy`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_WINDOW = (time(8, 0), time(21, 0))
_SUNDAY = 6

# North American area codes of the states with stricter windows (NANPA assignments).
AREA_CODES: dict[str, tuple[str, ...]] = {
    "FL": ("239", "305", "321", "324", "352", "386", "407", "448", "561", "645", "656", "689", "727", "754", "772",
           "786", "813", "850", "863", "904", "941", "954"),
    "OK": ("405", "539", "572", "580", "918"),
    "MD": ("227", "240", "301", "410", "443", "667"),
    "MS": ("228", "601", "662", "769"),
    "NJ": ("201", "551", "609", "640", "732", "848", "856", "862", "908", "973"),
    "TX": ("210", "214", "254", "281", "325", "346", "361", "409", "430", "432", "469", "512", "682", "713", "726",
           "737", "806", "817", "830", "832", "903", "915", "936", "940", "945", "956", "972", "979"),
}  # fmt: skip
_STATE_OF_AREA = {code: state for state, codes in AREA_CODES.items() for code in codes}
_ENDS_AT_EIGHT = ("FL", "OK", "MD", "MS", "NJ")


def state_of_phone(phone: str | None) -> str | None:
    """The stricter-window state of a +1 number, from its area code (None elsewhere)."""
    if not phone or not phone.startswith("+1") or len(phone) != 12:
        return None
    return _STATE_OF_AREA.get(phone[2:5])


@dataclass(frozen=True, slots=True)
class QuietHours:
    """When a channel may reach a person: a daily window, narrowed by state rules."""

    start: time = DEFAULT_WINDOW[0]
    end: time = DEFAULT_WINDOW[1]
    state: str | None = None

    def window(self, day: date) -> tuple[time, time]:
        start, end = self.start, self.end
        if self.state in _ENDS_AT_EIGHT:
            end = min(end, time(20, 0))
        if self.state == "TX" and day.weekday() == _SUNDAY:
            start = max(start, time(12, 0))
        return start, end

    def next_allowed(self, now: datetime, zone: str) -> datetime:
        """`now` if it is inside the window in `zone`, else the start of the next window (UTC)."""
        tz = ZoneInfo(zone)
        local = now.astimezone(tz)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            start, end = self.window(day)
            opens = _local(day, start, tz)
            closes = _local(day, end, tz)
            if opens <= now < closes:
                return now
            if now < opens:
                return opens
        raise ValueError(f"no allowed moment within a week for window {self.start}-{self.end}")


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    # fold=0: a repeated local time (the autumn change) means its first occurrence.
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def parse_window(text: str) -> tuple[time, time]:
    """`08:00-21:00` -> (08:00, 21:00); start before end, both on the same day."""
    try:
        first, second = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"{text!r} is not a window like 08:00-21:00") from None
    if first >= second:
        raise ValueError(f"{text!r}: the window must start before it ends")
    return first, second
