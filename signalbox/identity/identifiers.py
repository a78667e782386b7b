"""Identifier normalization and the junk blocklist (the guard rails before any stitching)."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

# Priority when a message's identifiers point at different people: the strongest wins.
USER_ID = "user_id"
ANONYMOUS_ID = "anonymous_id"
EMAIL = "email"
PHONE = "phone"
_BASE_PRIORITY = {USER_ID: 0, EMAIL: 20, PHONE: 30, ANONYMOUS_ID: 40}
EXTERNAL_PRIORITY = 10

JUNK_VALUES = frozenset(
    {
        "",
        "null",
        "nil",
        "none",
        "undefined",
        "nan",
        "0",
        "-1",
        "-",
        "n/a",
        "na",
        "unknown",
        "anonymous",
        "anon",
        "guest",
        "test",
        "user",
        "default",
        "false",
        "true",
        "[object object]",
        "00000000-0000-0000-0000-000000000000",
    }
)
JUNK_EMAILS = frozenset(
    {
        "test@test.com",
        "test@example.com",
        "noemail@noemail.com",
        "no@email.com",
        "none@none.com",
        "email@email.com",
        "a@a.com",
        "abc@abc.com",
        "null@null.com",
        "noreply@noreply.com",
        "no-reply@no-reply.com",
        "donotreply@donotreply.com",
        "asdf@asdf.com",
        "fake@fake.com",
        "user@example.com",
    }
)
_JUNK_EMAIL_LOCALS = frozenset({"noemail", "no-email", "none", "null", "noreply", "unknown"})
_PLACEHOLDER_PHONE_DIGITS = frozenset(
    {"1234567890", "0123456789", "9876543210", "12345678901", "5555555555", "15555555555"}
)


def priority(identifier_type: str) -> int:
    return _BASE_PRIORITY.get(identifier_type, EXTERNAL_PRIORITY)


def is_junk(value: str) -> bool:
    return value.strip().lower() in JUNK_VALUES


def clean_id(value: object) -> str | None:
    """user_id / anonymous_id / external ids: strings or numbers, trimmed, junk dropped."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        value = str(int(value)) if float(value).is_integer() else str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if is_junk(text) or len(text) > 255:
        return None
    return text


@lru_cache(maxsize=65536)
def normalize_email(value: str) -> str | None:
    text = value.strip().lower()
    if is_junk(text) or text in JUNK_EMAILS or len(text) > 254:
        return None
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return None
    local = checked.local_part.lower()
    if local in _JUNK_EMAIL_LOCALS:
        return None
    return f"{local}@{checked.domain.lower()}"


@lru_cache(maxsize=65536)
def normalize_phone(value: str, default_region: str) -> str | None:
    text = value.strip()
    digits = re.sub(r"\D", "", text)
    if not digits or _placeholder_digits(digits):
        return None
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _placeholder_digits(digits: str) -> bool:
    national = digits[-10:]
    return (
        len(set(digits)) == 1
        or digits in _PLACEHOLDER_PHONE_DIGITS
        or national in _PLACEHOLDER_PHONE_DIGITS
        or len(set(national)) == 1
    )
