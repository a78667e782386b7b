"""Who is in the world: names, contact details and the messy copies other systems keep of them.

Every person's e-mail is unique (it carries the person's number), every phone number is drawn
once from a pool of fictional numbers, so two different people never share an identifier and
the ground truth stays exact. Messiness is only ever a different spelling of the *same*
person's details: odd case and spaces, another phone format, or a typo (which legitimately
stays a separate profile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from signalbox.demo.catalog import AREA_CODES, FIRST_NAMES, LAST_NAMES


@dataclass(frozen=True)
class Contact:
    first_name: str
    last_name: str
    email: str
    phone: str | None  # E.164


class PhonePool:
    """Fictional numbers handed out once each; when they run out, people simply have none."""

    def __init__(self, rng: np.random.Generator) -> None:
        codes = np.repeat(np.arange(len(AREA_CODES)), 100)
        lines = np.tile(np.arange(100, 200), len(AREA_CODES))
        order = rng.permutation(len(codes))
        self._numbers = [f"+1{AREA_CODES[c]}5550{n:03d}" for c, n in zip(codes[order], lines[order], strict=True)]
        self._next = 0

    def take(self) -> str | None:
        if self._next >= len(self._numbers):
            return None
        self._next += 1
        return self._numbers[self._next - 1]


def make_contacts(
    rng: np.random.Generator, count: int, phones: PhonePool, phone_share: float, tag: str
) -> list[Contact]:
    """`tag` keeps the address spaces of members ('') and leads ('.lead') apart."""
    firsts = rng.integers(0, len(FIRST_NAMES), count).tolist()
    lasts = rng.integers(0, len(LAST_NAMES), count).tolist()
    domains = np.where(rng.random(count) < 0.7, "example.com", "example.org").tolist()
    with_phone = (rng.random(count) < phone_share).tolist()
    out: list[Contact] = []
    for i in range(count):
        first, last = FIRST_NAMES[firsts[i]], LAST_NAMES[lasts[i]]
        email = f"{first}.{last}{tag}{i + 1}@{domains[i]}".lower()
        out.append(Contact(first, last, email, phones.take() if with_phone[i] else None))
    return out


def messy_case(email: str, pick: float) -> str:
    """The same address as a POS clerk typed it: odd case, stray spaces."""
    local, domain = email.split("@")
    if pick < 0.3:
        return f"{local.title()}@{domain.upper()}"
    if pick < 0.55:
        return f"  {email.upper()} "
    if pick < 0.8:
        return f" {local.capitalize()}@{domain.capitalize()}"
    return email


def typo(email: str, position: float, kind: float) -> str:
    """A different address (a slip of the finger in the name part, never in the number)."""
    local, domain = email.split("@")
    letters = [i for i, ch in enumerate(local) if ch.isalpha()]
    i = letters[min(int(position * len(letters)), len(letters) - 1)]
    if kind < 0.4 and i + 1 < len(local) and local[i + 1].isalpha() and local[i + 1] != local[i]:
        changed = local[:i] + local[i + 1] + local[i] + local[i + 2 :]
    elif kind < 0.7 and len(letters) > 2:
        changed = local[:i] + local[i + 1 :]
    else:
        changed = local[:i] + local[i] + local[i:]
    return f"{changed}@{domain}"


def phone_format(e164: str, pick: float) -> str:
    """The same number as a booking system stores it."""
    area, exchange, line = e164[2:5], e164[5:8], e164[8:]
    if pick < 0.4:
        return f"({area}) {exchange}-{line}"
    if pick < 0.7:
        return f"{area}.{exchange}.{line}"
    if pick < 0.9:
        return f"{area}-{exchange}-{line}"
    return f"1 {area} {exchange} {line}"
