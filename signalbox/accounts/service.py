"""Dashboard users: create, list, disable; sign in with a rate limit; sessions and their CSRF
tokens. The one write path for the users, user_sessions and login_failures tables."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Delete, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from signalbox.accounts.models import LoginFailure, User, UserSession
from signalbox.accounts.schemas import (
    ROLES,
    BadCredentialsError,
    Disabled,
    RateLimitedError,
    Role,
    SignedIn,
    UserInfo,
)
from signalbox.core.clock import Clock, ensure_utc
from signalbox.core.db import Database
from signalbox.core.errors import ConflictError, InvalidInputError, NotFoundError
from signalbox.core.ids import new_id
from signalbox.core.keys import hash_key
from signalbox.workspaces import service as workspaces

MIN_PASSWORD_LENGTH = 12
# Far beyond any real password; stops a megabyte "password" from being hashed on every try.
MAX_PASSWORD_LENGTH = 1024
SESSION_LIFETIME = timedelta(hours=12)
# last_seen_at is informational; writing it on every page view would make every read a write.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
_LOCATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

# argon2id with the library's defaults (RFC 9106's low-memory profile); a hash made with older
# parameters is upgraded at the next good sign-in.
_hasher = PasswordHasher()


# ---- passwords ---------------------------------------------------------------------------------


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInputError(f"the password must be at most {MAX_PASSWORD_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(check_password(password))


def password_matches(password: str, password_hash: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(24))


# ---- users -------------------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    try:
        found = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInputError(f"{email!r} is not an e-mail address: {exc}") from None
    return found.normalized.lower()


def normalize_locations(locations: Iterable[str] | None) -> tuple[str, ...] | None:
    if locations is None:
        return None
    clean: list[str] = []
    for raw in locations:
        loc = raw.strip()
        if not _LOCATION.match(loc):
            raise InvalidInputError(
                f"location {raw!r} must be 1-64 letters, digits, '_', '.', ':' or '-' and start with a letter or digit"
            )
        if loc not in clean:
            clean.append(loc)
    if not clean:
        raise InvalidInputError("give at least one location, or none at all for every location")
    return tuple(clean)


def _role(role: str) -> Role:
    if role not in ROLES:
        raise InvalidInputError(f"role {role!r} must be one of {', '.join(ROLES)}")
    return cast(Role, role)


def _info(row: User) -> UserInfo:
    return UserInfo(
        id=row.id,
        workspace_id=row.workspace_id,
        email=row.email,
        role=_role(row.role),
        locations=None if row.locations is None else tuple(row.locations),
        disabled_at=row.disabled_at,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


def create_user(
    db: Database,
    workspace_id: str,
    *,
    email: str,
    password: str,
    role: str,
    locations: Iterable[str] | None,
    clock: Clock,
) -> UserInfo:
    address = normalize_email(email)
    row = User(
        id=new_id("usr"),
        workspace_id=workspace_id,
        email=address,
        password_hash=hash_password(password),
        role=_role(role),
        locations=None if (locs := normalize_locations(locations)) is None else list(locs),
        disabled_at=None,
        created_at=clock.now(),
        last_login_at=None,
    )
    taken = ConflictError(f"a user {address!r} already exists in this workspace")
    try:
        with db.transaction() as session:
            if session.scalar(select(User.id).where(User.workspace_id == workspace_id, User.email == address)):
                raise taken
            session.add(row)
    except IntegrityError:
        raise taken from None
    return _info(row)


def list_users(db: Database, workspace_id: str) -> list[UserInfo]:
    with db.session() as session:
        rows = session.scalars(select(User).where(User.workspace_id == workspace_id).order_by(User.email)).all()
    return [_info(r) for r in rows]


def get_user(db: Database, workspace_id: str, email: str) -> UserInfo:
    with db.session() as session:
        row = _find(session, workspace_id, normalize_email(email))
    return _info(row)


def _find(session: Session, workspace_id: str, address: str) -> User:
    row = session.scalar(select(User).where(User.workspace_id == workspace_id, User.email == address))
    if row is None:
        raise NotFoundError(f"no user {address!r} in this workspace")
    return row


def disable_user(db: Database, workspace_id: str, email: str, clock: Clock) -> Disabled:
    """Refuses every later sign-in and ends the user's open sessions at once. Disabling twice
    keeps the first date."""
    with db.transaction() as session:
        row = _find(session, workspace_id, normalize_email(email))
        if row.disabled_at is None:
            row.disabled_at = clock.now()
        ended = _deleted(
            session, delete(UserSession).where(UserSession.workspace_id == workspace_id, UserSession.user_id == row.id)
        )
        return Disabled(_info(row), ended)


def set_password(db: Database, workspace_id: str, email: str, password: str) -> UserInfo:
    """A new password; every open session of the user ends, as after a suspected leak."""
    digest = hash_password(password)
    with db.transaction() as session:
        row = _find(session, workspace_id, normalize_email(email))
        row.password_hash = digest
        _deleted(
            session, delete(UserSession).where(UserSession.workspace_id == workspace_id, UserSession.user_id == row.id)
        )
        return _info(row)


# ---- signing in --------------------------------------------------------------------------------


def _failure_key(workspace: str, email: str, client: str | None) -> str:
    # An unknown workspace or address is keyed on what was typed, so guesses against names that
    # do not exist are limited exactly like the rest and reveal nothing by being treated apart.
    # The address as the user lookup reads it: every spelling that reaches one account (case,
    # full-width letters) shares one budget of tries.
    try:
        address = normalize_email(email)
    except InvalidInputError:
        address = email.strip().lower()
    text = "\n".join((workspace, address, client or "-"))
    return hashlib.sha256(text.encode()).hexdigest()


def _workspace_id(db: Database, name_or_id: str) -> str | None:
    try:
        return workspaces.get_workspace(db, name_or_id.strip()).id
    except NotFoundError:
        return None


def _refuse_if_limited(session: Session, key: str, now: datetime) -> None:
    since = now - FAILURE_WINDOW
    count, oldest = session.execute(
        select(func.count(), func.min(LoginFailure.failed_at)).where(
            LoginFailure.key_hash == key, LoginFailure.failed_at > since
        )
    ).one()
    if count >= MAX_FAILURES and oldest is not None:
        wait = ensure_utc(oldest) + FAILURE_WINDOW - now
        raise RateLimitedError(max(1, int(wait.total_seconds()) + 1))


def _record_failure(db: Database, key: str, now: datetime) -> None:
    with db.transaction() as session:
        # Rows past the window count for nothing. Each failure sweeps them all (the table names
        # no one and no workspace), so it never holds more than the last window's failures,
        # even when a guesser never comes back to a key.
        session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= now - FAILURE_WINDOW))
        session.add(LoginFailure(key_hash=key, failed_at=now))


def sign_in(
    db: Database, workspace_name: str, email: str, password: str, *, client: str | None, clock: Clock
) -> SignedIn:
    """Checks the rate limit first (a right password does not lift it), then the password."""
    now = clock.now()
    if any(not part.isprintable() for part in (workspace_name, email)):
        # A control character names no workspace or address (and PostgreSQL refuses NUL).
        raise BadCredentialsError()
    workspace_id = _workspace_id(db, workspace_name)
    # A workspace typed by name or by id is one key, so switching between them earns no tries.
    key = _failure_key(workspace_id or workspace_name.strip().lower(), email, client)
    with db.session() as session:
        _refuse_if_limited(session, key, now)
    user = _verified_user(db, workspace_id, email, password)
    if user is None:
        _record_failure(db, key, now)
        raise BadCredentialsError()
    token = secrets.token_urlsafe(32)
    expires = now + SESSION_LIFETIME
    with db.transaction() as session:
        row = session.get(User, user.id)
        if row is None or row.disabled_at is not None:  # disabled meanwhile
            raise BadCredentialsError()
        row.last_login_at = now
        if _hasher.check_needs_rehash(row.password_hash):
            row.password_hash = _hasher.hash(password)
        session.add(
            UserSession(
                token_hash=hash_key(token),
                workspace_id=row.workspace_id,
                user_id=row.id,
                created_at=now,
                expires_at=expires,
                last_seen_at=now,
            )
        )
        session.execute(delete(LoginFailure).where(LoginFailure.key_hash == key))
        # Expired sessions of this workspace go here, so the table does not grow without a sweeper.
        session.execute(
            delete(UserSession).where(UserSession.workspace_id == row.workspace_id, UserSession.expires_at <= now)
        )
        signed = _info(row)
    return SignedIn(token, signed, expires)


def _verified_user(db: Database, workspace_id: str | None, email: str, password: str) -> UserInfo | None:
    row: User | None = None
    if workspace_id is not None and len(password) <= MAX_PASSWORD_LENGTH:
        try:
            address = normalize_email(email)
        except InvalidInputError:
            address = ""
        if address:
            with db.session() as session:
                row = session.scalar(select(User).where(User.workspace_id == workspace_id, User.email == address))
    # Verify against a decoy when there is no such user, so the answer takes as long either way.
    good = password_matches(password[:MAX_PASSWORD_LENGTH], row.password_hash if row else _decoy_hash())
    if row is None or not good or row.disabled_at is not None:
        return None
    return _info(row)


def user_for_session(db: Database, token: str, clock: Clock) -> UserInfo | None:
    """The signed-in user behind a cookie's token, or None when it is unknown, expired or its
    user is disabled."""
    now = clock.now()
    with db.session() as session:
        found = session.execute(
            select(UserSession, User)
            .join(User, (User.id == UserSession.user_id) & (User.workspace_id == UserSession.workspace_id))
            .where(UserSession.token_hash == hash_key(token))
        ).one_or_none()
    if found is None:
        return None
    held, user = found
    if held.expires_at <= now or user.disabled_at is not None:
        return None
    if now - held.last_seen_at >= LAST_SEEN_RESOLUTION:
        with db.transaction() as session:
            session.execute(
                update(UserSession).where(UserSession.token_hash == held.token_hash).values(last_seen_at=now)
            )
    return _info(user)


def sign_out(db: Database, token: str) -> bool:
    with db.transaction() as session:
        ended = _deleted(session, delete(UserSession).where(UserSession.token_hash == hash_key(token)))
    return ended > 0


def _deleted(session: Session, statement: Delete) -> int:
    return int(session.connection().execute(statement).rowcount or 0)


# ---- CSRF --------------------------------------------------------------------------------------


def csrf_token(session_token: str) -> str:
    """Derived from the session token, which only the cookie carries (HttpOnly): another site
    can make the browser send the cookie but cannot read it, so it cannot compute this."""
    return hmac.new(session_token.encode(), b"signalbox-dashboard-csrf", hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(session_token), given or "")
