"""Versioned churn models: the only code that reads or writes the `churn_models` table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from signalbox.core.db import Database
from signalbox.core.errors import NotFoundError
from signalbox.scoring.models import ChurnModel


@dataclass(frozen=True)
class ChurnModelInfo:
    id: int
    workspace_id: str
    created_at: datetime
    as_of: date
    horizon_days: int
    activity_events: tuple[str, ...]
    feature_names: tuple[str, ...]
    knobs: dict[str, Any]
    report: dict[str, Any]


def _info(row: ChurnModel) -> ChurnModelInfo:
    return ChurnModelInfo(
        row.id,
        row.workspace_id,
        row.created_at,
        row.as_of,
        row.horizon_days,
        tuple(row.activity_events),
        tuple(row.feature_names),
        dict(row.knobs),
        dict(row.report),
    )


def save(
    db: Database,
    workspace_id: str,
    *,
    created_at: datetime,
    as_of: date,
    horizon_days: int,
    activity_events: tuple[str, ...],
    feature_names: tuple[str, ...],
    knobs: dict[str, Any],
    report: dict[str, Any],
    estimator: bytes,
) -> int:
    row = ChurnModel(
        workspace_id=workspace_id,
        created_at=created_at,
        as_of=as_of,
        horizon_days=horizon_days,
        activity_events=list(activity_events),
        feature_names=list(feature_names),
        knobs=knobs,
        report=report,
        estimator=estimator,
    )
    with db.transaction() as session:
        session.add(row)
        session.flush()
        return int(row.id)


def get(db: Database, workspace_id: str, model_id: int | None) -> tuple[ChurnModelInfo, bytes]:
    """The given model of the workspace, or its newest one; with the estimator's bytes."""
    stmt = select(ChurnModel).where(ChurnModel.workspace_id == workspace_id)
    if model_id is not None:
        stmt = stmt.where(ChurnModel.id == model_id)
    with db.session() as session:
        row = session.scalars(stmt.order_by(ChurnModel.id.desc()).limit(1)).first()
        if row is None:
            if model_id is None:
                raise NotFoundError("this workspace has no churn model yet: run `signalbox model train` first")
            raise NotFoundError(f"no churn model {model_id} in this workspace (see `signalbox model list`)")
        return _info(row), bytes(row.estimator)


def list_models(db: Database, workspace_id: str) -> list[ChurnModelInfo]:
    """Newest first, without the estimators' bytes."""
    columns = [c for c in ChurnModel.__table__.columns if c.name != "estimator"]
    with db.session() as session:
        rows = session.execute(
            select(*columns).where(ChurnModel.workspace_id == workspace_id).order_by(ChurnModel.id.desc())
        ).all()
    return [
        ChurnModelInfo(
            r.id,
            r.workspace_id,
            r.created_at,
            r.as_of,
            r.horizon_days,
            tuple(r.activity_events),
            tuple(r.feature_names),
            dict(r.knobs),
            dict(r.report),
        )
        for r in rows
    ]
