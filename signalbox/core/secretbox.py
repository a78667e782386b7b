"""Secrets that must be read back (HMAC keys such as Stripe signing secrets), encrypted at rest.

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) under a key derived from
``SIGNALBOX_SECRET_KEY`` with HKDF, so a stolen database alone does not give the secrets away.
Fingerprints name a secret without revealing it.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class UnreadableSecretError(Exception):
    """The stored value was sealed under another SIGNALBOX_SECRET_KEY (or was altered)."""


def derive_key(secret_key: str, purpose: str) -> bytes:
    """32 bytes for one purpose (an encryption key, an HMAC key), derived from
    SIGNALBOX_SECRET_KEY with HKDF, so no two purposes ever share a key."""
    if not secret_key:
        raise ValueError("SIGNALBOX_SECRET_KEY is empty")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"signalbox:{purpose}".encode()).derive(
        secret_key.encode()
    )


class SecretBox:
    def __init__(self, secret_key: str, purpose: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(secret_key, purpose)))

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except (InvalidToken, UnicodeError, ValueError):
            raise UnreadableSecretError("sealed with another SIGNALBOX_SECRET_KEY, or altered") from None


def fingerprint(secret: str) -> str:
    """A short, stable name for a secret. The secrets it names are high-entropy random
    strings, so a truncated digest reveals nothing useful about them."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:16]
