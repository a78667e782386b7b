from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from signalbox.core.db import Base


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    write_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    admin_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    default_region: Mapped[str] = mapped_column(String(2))
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    # Per-workspace tuning (e.g. the at-risk score's knobs), validated by the capability that owns each key.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
