"""What crosses the demo's boundaries: the world's recipe, its ground truth, a seed's outcome."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date

from signalbox.core.errors import InvalidInputError

MAX_LOCATIONS = 12
MAX_MONTHS = 60


@dataclass(frozen=True)
class WorldConfig:
    """Everything the generator depends on; the same config always gives the same world."""

    end: date
    members: int = 12_000
    locations: int = 6
    months: int = 15
    seed: int = 7

    def __post_init__(self) -> None:
        if self.members < 1:
            raise InvalidInputError(f"members must be at least 1, got {self.members}")
        if not 1 <= self.locations <= MAX_LOCATIONS:
            raise InvalidInputError(f"locations must be between 1 and {MAX_LOCATIONS}, got {self.locations}")
        if not 1 <= self.months <= MAX_MONTHS:
            raise InvalidInputError(f"months must be between 1 and {MAX_MONTHS}, got {self.months}")


@dataclass(frozen=True)
class GroundTruthRow:
    """One source record (a member, a POS or booking-system record, a web lead) and the real
    person behind it. `user_id` is the member's userId on every record of that person (empty
    for a lead who never joined); `stitchable` says whether the record's identifiers match the
    member's, i.e. whether a correct identity resolver should fold it into the member profile."""

    user_id: str
    person_id: str
    source: str  # member | pos | booking | lead
    source_id: str
    email_as_sent: str
    phone_as_sent: str
    stitchable: bool
    joined_at: str  # ISO date; empty for a lead who never joined
    churned_at: str  # ISO date of the last cancellation while not a member now; else empty
    cancellations: str  # every cancellation date, ';'-joined (win-backs have more than one)
    rejoins: str  # every return after a cancellation, ';'-joined
    churn_reason: str
    plan: str
    home_location: str
    timezone: str


GROUND_TRUTH_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(GroundTruthRow))


@dataclass(frozen=True)
class SeedResult:
    workspace: str
    members: int
    locations: int
    messages: int  # generated
    events: int  # accepted (stored)
    duplicates: int
    rejected: int
    start: date
    end: date
    seconds: float
    ground_truth: str
