"""Passwords are argon2id hashes that only the right password opens; CSRF tokens belong to one
session; e-mails and locations are normalised before they are stored or compared."""

from __future__ import annotations

import pytest

from signalbox.accounts import service as accounts
from signalbox.core.errors import InvalidInputError

PASSWORD = "correct horse battery"


def test_hash_is_argon2id_salted_and_opens_only_with_the_password():
    first, second = accounts.hash_password(PASSWORD), accounts.hash_password(PASSWORD)
    assert first.startswith("$argon2id$") and PASSWORD not in first
    assert first != second  # a fresh salt each time
    assert accounts.password_matches(PASSWORD, first)
    assert not accounts.password_matches(PASSWORD + "x", first)
    assert not accounts.password_matches(PASSWORD, "not-a-hash")


@pytest.mark.parametrize("password", ["", "short", "x" * 11, "y" * 1025])
def test_too_short_or_absurdly_long_passwords_are_refused(password):
    with pytest.raises(InvalidInputError, match="characters"):
        accounts.hash_password(password)


def test_exactly_twelve_characters_is_enough():
    assert accounts.password_matches("x" * 12, accounts.hash_password("x" * 12))


def test_csrf_token_is_tied_to_its_session():
    token = accounts.csrf_token("session-a")
    assert accounts.csrf_matches("session-a", token)
    assert not accounts.csrf_matches("session-b", token)
    assert not accounts.csrf_matches("session-a", None)
    assert not accounts.csrf_matches("session-a", "")
    assert "session-a" not in token


def test_emails_are_lower_cased_and_validated():
    assert accounts.normalize_email("  Ana.Owner@Example.COM ") == "ana.owner@example.com"
    with pytest.raises(InvalidInputError, match="not an e-mail address"):
        accounts.normalize_email("nobody")


def test_locations_are_deduplicated_and_checked():
    assert accounts.normalize_locations(None) is None
    assert accounts.normalize_locations(["loc-01", " loc-02", "loc-01"]) == ("loc-01", "loc-02")
    with pytest.raises(InvalidInputError, match="at least one location"):
        accounts.normalize_locations([])
    with pytest.raises(InvalidInputError, match="location"):
        accounts.normalize_locations(["loc 01"])
