"""API keys: random, shown once, stored as SHA-256 digests.

Keys carry 256 bits of randomness, so a fast digest is safe here (no dictionary to guess
from) and lets every request find its workspace with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def generate_key(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_matches(key: str, digest: str) -> bool:
    return hmac.compare_digest(hash_key(key), digest)
