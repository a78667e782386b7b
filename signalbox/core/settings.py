"""One typed settings object, read once from the environment (prefix ``SIGNALBOX_``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./signalbox.db"
# Good enough to try signalbox on a laptop, useless as protection: anyone can read it here.
INSECURE_SECRET_KEY = "signalbox-development-only-secret-key-do-not-use"  # noqa: S105
MIN_SECRET_KEY_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIGNALBOX_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    # Segment's own limits; clients split batches to stay under them.
    max_message_bytes: int = Field(default=32 * 1024, gt=0)
    max_batch_bytes: int = Field(default=500 * 1024, gt=0)
    log_level: str = "INFO"
    # Trait keys that carry an id from another system of record; stitched like email/phone.
    external_id_traits: tuple[str, ...] = (
        "stripe_customer_id",
        "pos_member_id",
        "member_id",
        "booking_customer_id",
        "crm_id",
    )
    sqlite_busy_timeout_ms: int = Field(default=10_000, gt=0)
    # SQLite reads this much of the database file through a memory map instead of a read()
    # per page into its own cache: a million-profile scoring reads ~3 GB and ran ~6 % faster
    # (docs/BENCHMARKS.md). Address space, not memory: the pages are the OS's file cache.
    # SQLite builds commonly cap it at 2 GB. 0 turns it off (a database on a network file
    # system, where a map is unsafe).
    sqlite_mmap_mb: int = Field(default=2048, ge=0)
    # Connections kept per process; 10 more may open under load. Sized for a burst of about 32
    # concurrent webhook deliveries (docs/BENCHMARKS.md); lazily opened, so idle processes hold few.
    pg_pool_size: int = Field(default=20, gt=0)
    # How long a worker owns the steps it claimed; a crashed worker's steps wait this long.
    worker_lease_seconds: float = Field(default=60.0, ge=1.0, le=3600.0)
    # Encrypts secrets that must be read back to be used (Stripe webhook signing secrets are
    # HMAC keys, so they cannot be stored as digests). Changing it makes those unreadable:
    # connect them again. repr=False keeps it out of any printed or logged Settings.
    secret_key: str = Field(default=INSECURE_SECRET_KEY, repr=False)

    @model_validator(mode="after")
    def _refuse_insecure_defaults(self) -> Settings:
        # An embedded file next to the working directory is a development convenience; a
        # production deployment must say where its data lives.
        if self.environment == "production" and self.database_url == DEFAULT_DATABASE_URL:
            raise ValueError("SIGNALBOX_DATABASE_URL must be set explicitly when SIGNALBOX_ENVIRONMENT=production")
        if self.environment == "production" and (
            self.secret_key == INSECURE_SECRET_KEY or len(self.secret_key) < MIN_SECRET_KEY_LENGTH
        ):
            raise ValueError(
                f"SIGNALBOX_SECRET_KEY must be set to a random value of at least {MIN_SECRET_KEY_LENGTH} "
                "characters when SIGNALBOX_ENVIRONMENT=production "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
