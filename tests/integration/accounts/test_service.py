"""Users, sign-in, sessions and the rate limit against a real database, time moved by an
injected clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from signalbox.accounts import service as accounts
from signalbox.accounts.schemas import BadCredentialsError, RateLimitedError
from signalbox.core.errors import ConflictError, InvalidInputError, NotFoundError
from signalbox.workspaces import service as workspaces

PASSWORD = "correct horse battery"


@pytest.fixture
def owner(db, workspace, clock):
    return accounts.create_user(
        db, workspace.id, email="Owner@Example.com", password=PASSWORD, role="owner", locations=None, clock=clock
    )


def sign_in(db, workspace, clock, password=PASSWORD, *, email="owner@example.com", client="127.0.0.1"):
    return accounts.sign_in(db, workspace.name, email, password, client=client, clock=clock)


def test_create_stores_a_lower_cased_email_and_never_the_password(db, workspace, owner):
    assert owner.email == "owner@example.com" and owner.role == "owner" and owner.locations is None
    with db.session() as session:
        stored = session.execute(text("SELECT email, password_hash FROM users")).one()
    assert stored[0] == "owner@example.com" and PASSWORD not in stored[1]
    assert stored[1].startswith("$argon2id$")


def test_email_is_unique_per_workspace_whatever_its_case(db, workspace, owner, clock):
    with pytest.raises(ConflictError, match="already exists"):
        accounts.create_user(
            db, workspace.id, email="OWNER@example.com", password=PASSWORD, role="staff", locations=None, clock=clock
        )
    other = workspaces.create_workspace(db, "other-ws")
    again = accounts.create_user(
        db, other.id, email="owner@example.com", password=PASSWORD, role="staff", locations=["loc-01"], clock=clock
    )
    assert again.locations == ("loc-01",)
    assert [u.email for u in accounts.list_users(db, workspace.id)] == ["owner@example.com"]
    assert [u.role for u in accounts.list_users(db, other.id)] == ["staff"]


def test_unknown_role_is_refused(db, workspace, clock):
    with pytest.raises(InvalidInputError, match="role"):
        accounts.create_user(
            db, workspace.id, email="a@example.com", password=PASSWORD, role="admin", locations=None, clock=clock
        )


def test_good_sign_in_opens_a_session_that_is_stored_as_a_digest(db, workspace, owner, clock):
    signed = sign_in(db, workspace, clock, email=" OWNER@example.com")
    assert signed.user.id == owner.id and signed.expires_at == clock.now() + accounts.SESSION_LIFETIME
    assert accounts.user_for_session(db, signed.token, clock).email == "owner@example.com"
    with db.session() as session:
        stored = session.execute(text("SELECT token_hash FROM user_sessions")).scalars().all()
    assert signed.token not in stored and len(stored) == 1
    assert accounts.get_user(db, workspace.id, "owner@example.com").last_login_at == clock.now()


@pytest.mark.parametrize(
    ("workspace_name", "email", "password"),
    [
        (None, "owner@example.com", "wrong password!"),
        (None, "nobody@example.com", PASSWORD),
        ("no-such-workspace", "owner@example.com", PASSWORD),
        (None, "not an email", PASSWORD),
    ],
)
def test_every_wrong_sign_in_gets_the_same_answer(db, workspace, owner, clock, workspace_name, email, password):
    with pytest.raises(BadCredentialsError) as caught:
        accounts.sign_in(db, workspace_name or workspace.name, email, password, client="127.0.0.1", clock=clock)
    assert caught.value.message == "the workspace, e-mail or password is not right"


def test_the_session_ends_when_it_expires(db, workspace, owner, clock):
    signed = sign_in(db, workspace, clock)
    clock.advance(accounts.SESSION_LIFETIME - timedelta(seconds=1))
    assert accounts.user_for_session(db, signed.token, clock) is not None
    clock.advance(timedelta(seconds=1))
    assert accounts.user_for_session(db, signed.token, clock) is None
    # The next sign-in in the workspace sweeps the expired row away.
    sign_in(db, workspace, clock)
    assert count(db, "user_sessions") == 1


def count(db, table):
    with db.session() as session:
        return session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_failures_past_the_window_are_swept_whoever_they_were(db, workspace, owner, clock):
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        with pytest.raises(BadCredentialsError):
            sign_in(db, workspace, clock, email=email)
    assert count(db, "login_failures") == 3
    clock.advance(accounts.FAILURE_WINDOW)
    with pytest.raises(BadCredentialsError):
        sign_in(db, workspace, clock, email="d@example.com")
    assert count(db, "login_failures") == 1


def test_sign_out_ends_only_that_session(db, workspace, owner, clock):
    first, second = sign_in(db, workspace, clock), sign_in(db, workspace, clock)
    assert accounts.sign_out(db, first.token) is True
    assert accounts.sign_out(db, first.token) is False
    assert accounts.user_for_session(db, first.token, clock) is None
    assert accounts.user_for_session(db, second.token, clock) is not None
    assert accounts.user_for_session(db, "made-up", clock) is None


def test_disabling_ends_sessions_and_refuses_sign_in(db, workspace, owner, clock):
    signed = sign_in(db, workspace, clock)
    clock.advance(timedelta(minutes=5))
    done = accounts.disable_user(db, workspace.id, "Owner@example.com", clock)
    assert done.sessions_ended == 1 and done.user.disabled_at == clock.now() and not done.user.active
    assert accounts.user_for_session(db, signed.token, clock) is None
    with pytest.raises(BadCredentialsError):
        sign_in(db, workspace, clock)
    clock.advance(timedelta(minutes=5))
    again = accounts.disable_user(db, workspace.id, "owner@example.com", clock)
    assert again.sessions_ended == 0 and again.user.disabled_at == done.user.disabled_at
    with pytest.raises(NotFoundError):
        accounts.disable_user(db, workspace.id, "nobody@example.com", clock)


def test_disabling_is_scoped_to_the_workspace(db, workspace, owner, clock):
    other = workspaces.create_workspace(db, "other-ws")
    with pytest.raises(NotFoundError):
        accounts.disable_user(db, other.id, "owner@example.com", clock)
    assert accounts.get_user(db, workspace.id, "owner@example.com").active


def test_five_failures_in_fifteen_minutes_lock_that_email_and_address(db, workspace, owner, clock):
    for _ in range(accounts.MAX_FAILURES):
        with pytest.raises(BadCredentialsError):
            sign_in(db, workspace, clock, "wrong password!")
        clock.advance(timedelta(minutes=1))
    # Locked: even the right password is refused, with how long to wait.
    with pytest.raises(RateLimitedError) as caught:
        sign_in(db, workspace, clock)
    # The first failure was 5 minutes ago, so it leaves the window in 10.
    assert caught.value.retry_after_seconds == 10 * 60 + 1
    # Another address is counted apart.
    assert sign_in(db, workspace, clock, client="192.0.2.7").user.id == owner.id
    clock.advance(timedelta(minutes=10))
    assert sign_in(db, workspace, clock).user.id == owner.id


def test_a_good_sign_in_clears_the_count(db, workspace, owner, clock):
    for _ in range(accounts.MAX_FAILURES - 1):
        with pytest.raises(BadCredentialsError):
            sign_in(db, workspace, clock, "wrong password!")
    sign_in(db, workspace, clock)
    for _ in range(accounts.MAX_FAILURES - 1):
        with pytest.raises(BadCredentialsError):
            sign_in(db, workspace, clock, "wrong password!")
    assert sign_in(db, workspace, clock).user.id == owner.id


def test_naming_the_workspace_by_id_instead_of_name_earns_no_extra_tries(db, workspace, owner, clock):
    for name in (workspace.name, workspace.id, workspace.name, workspace.id, workspace.name):
        with pytest.raises(BadCredentialsError):
            accounts.sign_in(db, name, owner.email, "wrong password!", client="::1", clock=clock)
    with pytest.raises(RateLimitedError):
        accounts.sign_in(db, workspace.id, owner.email, PASSWORD, client="::1", clock=clock)


def test_spelling_the_address_another_way_earns_no_extra_tries(db, workspace, owner, clock):
    local, domain = owner.email.split("@")
    # Each reaches the same account: upper case, and full-width letters the lookup folds.
    wide = domain.replace("e", "\uff45", 1)  # FULLWIDTH LATIN SMALL LETTER E
    spellings = [owner.email.upper(), f"{local}@{wide}", f" {owner.email} "]
    for address in [owner.email, *spellings, owner.email]:
        with pytest.raises(BadCredentialsError):
            accounts.sign_in(db, workspace.name, address, "wrong password!", client="::1", clock=clock)
    with pytest.raises(RateLimitedError):
        accounts.sign_in(db, workspace.name, spellings[1], PASSWORD, client="::1", clock=clock)


def test_unknown_accounts_are_rate_limited_too(db, workspace, clock):
    for _ in range(accounts.MAX_FAILURES):
        with pytest.raises(BadCredentialsError):
            sign_in(db, workspace, clock, email="ghost@example.com")
    with pytest.raises(RateLimitedError):
        sign_in(db, workspace, clock, email="ghost@example.com")


def test_the_limit_lives_in_the_database_so_another_engine_sees_it(db, settings, workspace, owner, clock):
    from signalbox.core.db import Database

    other_process = Database(settings)
    try:
        for handle in (db, other_process, db, other_process, db):
            with pytest.raises(BadCredentialsError):
                accounts.sign_in(handle, workspace.name, owner.email, "wrong password!", client="::1", clock=clock)
        with pytest.raises(RateLimitedError):
            accounts.sign_in(other_process, workspace.name, owner.email, PASSWORD, client="::1", clock=clock)
    finally:
        other_process.dispose()
