"""Trained churn models, versioned per workspace (one row per `model train`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from signalbox.core.db import Base, BigIntPK, JSONType


class ChurnModel(Base):
    """A fitted churn model with the report that judged it. Rows are never updated: a new
    training run is a new version, and `model predict` names the one it used."""

    __tablename__ = "churn_models"
    __table_args__ = (Index("ix_churn_models_workspace", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(64), ForeignKey("workspaces.id"))
    created_at: Mapped[datetime]
    as_of: Mapped[date]
    horizon_days: Mapped[int]
    activity_events: Mapped[list[str]] = mapped_column(JSONType)
    feature_names: Mapped[list[str]] = mapped_column(JSONType)
    # The score knobs the features were computed with, so predictions use the same ones.
    knobs: Mapped[dict[str, Any]]
    report: Mapped[dict[str, Any]]
    # joblib/pickle bytes of the fitted estimator and BG/NBD parameters. Only objects this
    # code trained and wrote itself are ever unpickled (there is no upload path for this column).
    estimator: Mapped[bytes] = mapped_column(LargeBinary)
