"""SMTP e-mail: `connect smtp` (the configuration, in the workspace's settings), the per-workspace
sender the worker uses, and suppression of addresses that bounced or complained.

Settings section "smtp": host, port, starttls, username, the password sealed with
SIGNALBOX_SECRET_KEY (shown only by fingerprint), from, and the DKIM selector and key (the key
sealed too, normalised to PKCS#1 PEM). The public base URL of the unsubscribe links is the
workspace-wide section "public" → {"base_url": …}, shared with the other connectors.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from email_validator import EmailNotValidError, validate_email

from signalbox.channels import service as channels
from signalbox.channels.schemas import EmailSender
from signalbox.channels.smtp import RoutingEmailSender, SmtpConfig, SmtpEmailSender
from signalbox.consent import service as consent
from signalbox.core.clock import Clock
from signalbox.core.db import Database
from signalbox.core.errors import InvalidInputError, NotFoundError
from signalbox.core.logging import get_logger
from signalbox.core.secretbox import SecretBox, UnreadableSecretError, fingerprint
from signalbox.core.settings import Settings
from signalbox.identity import identifiers as ids
from signalbox.identity import service as identity
from signalbox.workspaces import service as workspaces

log = get_logger("connectors.smtp")
SECTION = "smtp"
MIN_DKIM_BITS = 1024
MAX_KEY_FILE = 64 * 1024
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$|^\[[0-9A-Fa-f:.]+\]$")
_SELECTOR = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
SUPPRESS_REASONS = ("bounce", "complaint")
CONFIG_TTL = timedelta(seconds=5)


@lru_cache(maxsize=4)
def _box(secret_key: str) -> SecretBox:
    return SecretBox(secret_key, "smtp-credentials")


@dataclass(frozen=True, slots=True)
class DkimKey:
    pem: bytes  # PKCS#1 ("BEGIN RSA PRIVATE KEY"), what dkimpy reads
    public_b64: str  # the p= of the DNS record
    bits: int


# ---- checks ------------------------------------------------------------------------------


def check_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise InvalidInputError(f"--port {port} is not a TCP port (1-65535); 587 with --starttls is usual")
    return port


def check_host(host: str) -> str:
    text = host.strip()
    if not text or not _HOST.match(text):
        raise InvalidInputError(f"--host {host!r} is not a host name or address")
    return text


def check_from(value: str) -> tuple[str | None, str]:
    """(display name, bare address) of `a@example.com` or `Name <a@example.com>`."""
    name, address = parseaddr(value)
    if not address or "@" not in address:
        raise InvalidInputError(f"--from {value!r} is not an e-mail address (e.g. news@example.com)")
    try:
        checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInputError(f"--from {value!r} is not a valid e-mail address: {exc}") from None
    return (name.strip() or None), checked.normalized


def check_public_base_url(url: str) -> tuple[str, str | None]:
    """The base URL without a trailing slash, and a warning when it is plain http."""
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise InvalidInputError(
            f"--public-base-url {url!r} must be an absolute https:// URL with no query, e.g. https://crm.example.com"
        )
    warning = None
    if parts.scheme == "http":
        warning = "the public base URL is http://: mail providers require https:// for one-click unsubscribe"
    return text, warning


def load_dkim_key(data: bytes, source: str) -> DkimKey:
    """An RSA private key in PEM, PKCS#1 or PKCS#8 (unencrypted), or a clear error."""
    if b"-----BEGIN" not in data:
        raise InvalidInputError(f"{source}: not a PEM file (expected -----BEGIN PRIVATE KEY----- or RSA PRIVATE KEY)")
    if b"ENCRYPTED" in data:
        raise InvalidInputError(f"{source}: the key is encrypted; give an unencrypted key (openssl rsa -in … -out …)")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"{source}: not a readable PEM private key ({str(exc).splitlines()[0]})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidInputError(f"{source}: DKIM signing here needs an RSA key (rsa-sha256)")
    if key.key_size < MIN_DKIM_BITS:
        raise InvalidInputError(f"{source}: a {key.key_size}-bit key is too short; use 2048 bits")
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimKey(pem, base64.b64encode(public).decode("ascii"), key.key_size)


def read_dkim_key(path: str) -> DkimKey:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise InvalidInputError(f"--dkim-key {path}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > MAX_KEY_FILE:
        raise InvalidInputError(f"--dkim-key {path}: over {MAX_KEY_FILE} bytes, not a key file")
    return load_dkim_key(data, f"--dkim-key {path}")


# ---- the configuration ----------------------------------------------------------------------


def connect(
    db: Database,
    settings: Settings,
    workspace_id: str,
    *,
    host: str,
    port: int,
    starttls: bool,
    username: str | None,
    password: str | None,
    from_value: str,
    dkim_key: DkimKey | None,
    dkim_selector: str | None,
    now: datetime,
) -> None:
    host, port = check_host(host), check_port(port)
    name, address = check_from(from_value)
    if (dkim_key is None) != (dkim_selector is None):
        raise InvalidInputError("--dkim-key and --dkim-selector go together: give both or neither")
    if dkim_selector is not None and not _SELECTOR.match(dkim_selector):
        raise InvalidInputError(f"--dkim-selector {dkim_selector!r} is not a DNS label (e.g. s2026)")
    if password is not None and not username:
        raise InvalidInputError("--password needs --username")
    box = _box(settings.secret_key)
    doc: dict[str, Any] = {
        "host": host,
        "port": port,
        "starttls": starttls,
        "username": username or None,
        "password_sealed": box.seal(password) if password else None,
        "password_fingerprint": fingerprint(password) if password else None,
        "from": address,
        "from_name": name,
        "connected_at": now.isoformat(),
    }
    if dkim_key is not None and dkim_selector is not None:
        doc["dkim"] = {
            "selector": dkim_selector,
            "key_sealed": box.seal(dkim_key.pem.decode("ascii")),
            "public_key": dkim_key.public_b64,
            "bits": dkim_key.bits,
        }
    workspaces.put_setting(db, workspace_id, SECTION, doc)


def describe(db: Database, settings: Settings, workspace_id: str) -> dict[str, Any] | None:
    """The configuration as `connect smtp --json` shows it: secrets by fingerprint only."""
    doc = workspaces.get_setting(db, workspace_id, SECTION)
    if not doc:
        return None
    box = _box(settings.secret_key)
    out: dict[str, Any] = {
        "host": doc["host"],
        "port": doc["port"],
        "starttls": doc["starttls"],
        "username": doc.get("username"),
        "password_fingerprint": doc.get("password_fingerprint"),
        "from": doc["from"],
        "from_name": doc.get("from_name"),
        "public_base_url": workspaces.public_base_url(db, workspace_id),
        "usable": _usable(box, doc),
        "dkim": None,
    }
    dkim_doc = doc.get("dkim")
    if isinstance(dkim_doc, dict):
        domain = str(doc["from"]).rsplit("@", 1)[1]
        out["dkim"] = {
            "selector": dkim_doc["selector"],
            "domain": domain,
            "bits": dkim_doc.get("bits"),
            "dns_name": f"{dkim_doc['selector']}._domainkey.{domain}",
            "dns_txt": f"v=DKIM1; k=rsa; p={dkim_doc['public_key']}",
        }
    return out


def _usable(box: SecretBox, doc: dict[str, Any]) -> bool:
    try:
        if doc.get("password_sealed"):
            box.open(doc["password_sealed"])
        if isinstance(doc.get("dkim"), dict):
            box.open(doc["dkim"]["key_sealed"])
    except UnreadableSecretError:
        return False
    return True


def config_for(db: Database, settings: Settings, workspace_id: str) -> SmtpConfig | None:
    """The workspace's SMTP configuration, or None when it has none (or its secrets cannot be
    read with this SIGNALBOX_SECRET_KEY: then it sends nothing through SMTP, and says so)."""
    doc = workspaces.get_setting(db, workspace_id, SECTION)
    if not doc:
        return None
    box = _box(settings.secret_key)
    try:
        password = box.open(doc["password_sealed"]) if doc.get("password_sealed") else None
        dkim_doc = doc.get("dkim") if isinstance(doc.get("dkim"), dict) else None
        key_pem = box.open(dkim_doc["key_sealed"]).encode("ascii") if dkim_doc else None
    except UnreadableSecretError:
        log.error(
            "smtp secrets unreadable with this SIGNALBOX_SECRET_KEY; connect smtp again",
            extra={"workspace_id": workspace_id},
        )
        return None
    return SmtpConfig(
        host=doc["host"],
        port=int(doc["port"]),
        starttls=bool(doc["starttls"]),
        username=doc.get("username"),
        password=password,
        from_address=doc["from"],
        public_base_url=workspaces.public_base_url(db, workspace_id),
        from_name=doc.get("from_name"),
        dkim_selector=dkim_doc["selector"] if dkim_doc else None,
        dkim_key_pem=key_pem,
    )


def email_sender(db: Database, settings: Settings, clock: Clock) -> EmailSender:
    """What the worker sends e-mail through: SMTP where connected, the sandbox elsewhere. The
    configuration is read again at most every CONFIG_TTL per workspace (a send to the
    sandbox then costs no extra query), so `connect smtp` applies within that time."""
    cache: dict[str, tuple[datetime, SmtpConfig | None]] = {}

    def current(workspace_id: str) -> SmtpConfig | None:
        now, found = clock.now(), cache.get(workspace_id)
        if found is not None and timedelta(0) <= now - found[0] < CONFIG_TTL:
            return found[1]
        config = config_for(db, settings, workspace_id)
        cache[workspace_id] = (now, config)
        return config

    smtp = SmtpEmailSender(db, clock, current)
    return RoutingEmailSender(smtp, channels.SandboxProvider(db, clock))


# ---- bounces and complaints -------------------------------------------------------------------


def suppress(db: Database, workspace_id: str, address: str, reason: str, now: datetime) -> list[str]:
    """Revoke all e-mail (marketing and transactional) for the person with this address, after
    a hard bounce or a complaint reported by the mail provider. Returns the profile ids."""
    if reason not in SUPPRESS_REASONS:
        raise InvalidInputError(f"--reason {reason!r} is not one of {', '.join(SUPPRESS_REASONS)}")
    email = ids.normalize_email(address)
    if email is None:
        raise InvalidInputError(f"--address {address!r} is not an e-mail address")
    with db.transaction() as session:
        root = identity.find_root(session, workspace_id, (ids.EMAIL, email))
        if root is None:
            raise NotFoundError(f"no profile in this workspace has the e-mail address {email}")
        consent.record(
            session,
            workspace_id,
            root,
            "email",
            "revoked",
            source=f"email_{reason}",
            at=now,
            now=now,
            purpose="all",
            evidence={"address": email, "reason": reason, "via": "signalbox email suppress"},
        )
    return [root]
