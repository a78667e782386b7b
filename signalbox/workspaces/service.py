"""Create and find workspaces; authenticate keys."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from signalbox.core.clock import Clock, SystemClock
from signalbox.core.db import Database
from signalbox.core.errors import ConflictError, InvalidInputError, NotFoundError
from signalbox.core.ids import new_id
from signalbox.core.keys import generate_key, hash_key
from signalbox.workspaces.models import Workspace
from signalbox.workspaces.schemas import CreatedWorkspace, WorkspaceInfo

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _info(row: Workspace) -> WorkspaceInfo:
    return WorkspaceInfo(row.id, row.name, row.default_region, row.timezone)


def validate_settings(name: str, default_region: str, timezone: str) -> tuple[str, str]:
    if not _NAME.match(name):
        raise InvalidInputError(
            f"workspace name {name!r} must be 1-100 letters, digits, '.', '_' or '-' and start with a letter or digit"
        )
    region = default_region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInputError(f"default region {default_region!r} is not an ISO 3166 code")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(f"timezone {timezone!r} is not an IANA time zone") from None
    return region, timezone


def create_workspace(
    db: Database,
    name: str,
    *,
    default_region: str = "US",
    timezone: str = "America/New_York",
    clock: Clock | None = None,
    settings: dict[str, Any] | None = None,
) -> CreatedWorkspace:
    """`settings` are stored with the row, in the same transaction, so no reader ever sees the
    workspace without them (the demo marks its workspaces this way)."""
    region, tz = validate_settings(name, default_region, timezone)
    write_key, admin_key = generate_key("sbw"), generate_key("sba")
    row = Workspace(
        id=new_id("ws"),
        name=name,
        write_key_hash=hash_key(write_key),
        admin_key_hash=hash_key(admin_key),
        default_region=region,
        timezone=tz,
        created_at=(clock or SystemClock()).now(),
        settings=dict(settings or {}),
    )
    try:
        with db.transaction() as session:
            if session.scalar(select(Workspace.id).where(Workspace.name == name)):
                raise ConflictError(f"a workspace named {name!r} already exists")
            session.add(row)
    except IntegrityError:
        raise ConflictError(f"a workspace named {name!r} already exists") from None
    return CreatedWorkspace(row.id, row.name, write_key, admin_key, region, tz)


def get_workspace(db: Database, name_or_id: str) -> WorkspaceInfo:
    with db.session() as session:
        row = session.scalar(select(Workspace).where((Workspace.id == name_or_id) | (Workspace.name == name_or_id)))
    if row is None:
        raise NotFoundError(f"no workspace named or with id {name_or_id!r}")
    return _info(row)


def list_workspaces(db: Database) -> list[WorkspaceInfo]:
    with db.session() as session:
        rows = session.scalars(select(Workspace).order_by(Workspace.created_at)).all()
    return [_info(r) for r in rows]


def workspace_for_write_key(db: Database, write_key: str) -> WorkspaceInfo | None:
    with db.session() as session:
        row = session.scalar(select(Workspace).where(Workspace.write_key_hash == hash_key(write_key)))
    return None if row is None else _info(row)


def workspace_for_admin_key(db: Database, admin_key: str) -> WorkspaceInfo | None:
    with db.session() as session:
        row = session.scalar(select(Workspace).where(Workspace.admin_key_hash == hash_key(admin_key)))
    return None if row is None else _info(row)


def rotate_keys(db: Database, name_or_id: str) -> CreatedWorkspace:
    """Issue new write and admin keys; the old ones stop working at once."""
    write_key, admin_key = generate_key("sbw"), generate_key("sba")
    with db.transaction() as session:
        row = session.scalar(select(Workspace).where((Workspace.id == name_or_id) | (Workspace.name == name_or_id)))
        if row is None:
            raise NotFoundError(f"no workspace named or with id {name_or_id!r}")
        row.write_key_hash, row.admin_key_hash = hash_key(write_key), hash_key(admin_key)
        return CreatedWorkspace(row.id, row.name, write_key, admin_key, row.default_region, row.timezone)


def get_setting(db: Database, workspace_id: str, key: str) -> dict[str, Any]:
    """One section of the workspace's settings (empty when never set)."""
    with db.session() as session:
        found = session.scalar(select(Workspace.settings).where(Workspace.id == workspace_id))
    section = (found or {}).get(key)
    return dict(section) if isinstance(section, dict) else {}


def put_setting(db: Database, workspace_id: str, key: str, value: dict[str, Any]) -> None:
    """Replace one section; the capability owning the key has validated `value`."""
    with db.transaction() as session:
        row = session.scalar(select(Workspace).where(Workspace.id == workspace_id))
        if row is None:
            raise NotFoundError(f"no workspace with id {workspace_id!r}")
        row.settings = {**(row.settings or {}), key: value}


def update_timezone(db: Database, name_or_id: str, timezone: str) -> WorkspaceInfo:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(f"timezone {timezone!r} is not an IANA time zone") from None
    with db.transaction() as session:
        row = session.scalar(select(Workspace).where((Workspace.id == name_or_id) | (Workspace.name == name_or_id)))
        if row is None:
            raise NotFoundError(f"no workspace named or with id {name_or_id!r}")
        row.timezone = timezone
        return _info(row)


# ---- the public base URL ---------------------------------------------------------------------

PUBLIC = "public"
MAX_URL = 300


def check_public_base_url(url: str) -> tuple[str, str | None]:
    """The workspace's one public base (unsubscribe pages, tracked links, Twilio's signature
    check), without a trailing slash, and a warning when it is plain http://."""
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(f"--public-base-url must be an http(s) URL such as https://sb.example.com, not {url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidInputError("--public-base-url takes no query, fragment or user name, only scheme, host and path")
    if len(text) > MAX_URL or any(c.isspace() for c in text):
        raise InvalidInputError(f"--public-base-url must be at most {MAX_URL} characters with no spaces")
    warning = None
    if parts.scheme == "http":
        warning = (
            "the public base URL is plain http://; fine for a local tunnel or a test host, but providers "
            "and people reach it unencrypted"
        )
    return text, warning


def set_public_base_url(db: Database, workspace_id: str, url: str) -> tuple[str, str | None]:
    clean, warning = check_public_base_url(url)
    put_setting(db, workspace_id, PUBLIC, {"base_url": clean})
    return clean, warning


def public_base_url(db: Database, workspace_id: str) -> str | None:
    found = get_setting(db, workspace_id, PUBLIC).get("base_url")
    return found if isinstance(found, str) and found else None
