"""The admin API (`/api/v1`): read profiles and their events. The admin key picks the
workspace, so another workspace's data answers 404 exactly as if it did not exist."""

from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from signalbox import documents
from signalbox.api.deps import AdminWorkspace, ServicesDep
from signalbox.api.errors import ApiError
from signalbox.core.clock import ensure_utc
from signalbox.identity import service as identity
from signalbox.ingestion.schemas import ErrorBody

router = APIRouter(prefix="/api/v1", tags=["admin"])
Band = Literal["Low", "Medium", "High"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid parameter"},
    401: {"model": ErrorBody, "description": "Missing or wrong admin key"},
    404: {"model": ErrorBody, "description": "No such profile in this workspace"},
}


class IdentifierOut(BaseModel):
    type: str
    value: str


class ProfileOut(BaseModel):
    user_id: str | None
    profile_id: str
    traits: dict[str, Any]
    identifiers: list[IdentifierOut]
    consent: dict[str, dict[str, Any]]
    first_seen: datetime | None
    last_seen: datetime | None
    event_counts: dict[str, Any]
    at_risk_score: int | None = None
    at_risk_band: str | None = None
    at_risk_components: list[dict[str, Any]] | None = None
    score_as_of: date | None = None
    scored_at: datetime | None = None
    computed_traits: dict[str, Any] | None = None
    traits_computed_at: datetime | None = None
    churn_probability: float | None = None
    churn_model_id: int | None = None
    predicted_at: datetime | None = None


class ProfilePage(BaseModel):
    items: list[ProfileOut]
    next_cursor: str | None


class EventOut(BaseModel):
    message_id: str
    type: str
    event: str | None
    properties: dict[str, Any]
    traits: dict[str, Any] | None
    timestamp: datetime
    received_at: datetime


class EventPage(BaseModel):
    items: list[EventOut]


def _cursor(doc: dict[str, Any], band: str | None) -> str:
    key = doc["at_risk_score"] if band else doc["last_seen"]
    return base64.urlsafe_b64encode(orjson.dumps([key, doc["profile_id"]])).decode()


def _decode(cursor: str) -> tuple[Any, str]:
    try:
        key, pid = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from None
    return key, str(pid)


def _after(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    at, pid = _decode(cursor)
    try:
        return ensure_utc(datetime.fromisoformat(at)), pid
    except (ValueError, TypeError):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from None


def _after_score(cursor: str | None) -> tuple[int, str] | None:
    if not cursor:
        return None
    score, pid = _decode(cursor)
    if not isinstance(score, int) or isinstance(score, bool):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned")
    return score, pid


@router.get(
    "/profiles",
    response_model=ProfilePage,
    responses=_ERRORS,
    summary="List profiles, newest activity first (or one at-risk band, highest score first)",
)
async def list_profiles(
    workspace: AdminWorkspace,
    svc: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
    band: Band | None = None,
) -> dict[str, Any]:
    if band is None:
        after = _after(cursor)
        found = await run_in_threadpool(identity.list_profile_documents, svc.db, workspace.id, limit=limit, after=after)
    else:
        after_score = _after_score(cursor)
        found = await run_in_threadpool(
            lambda: identity.list_band_documents(svc.db, workspace.id, band, limit=limit, after=after_score)
        )
    items = [documents.profile_doc(p) for p in found]
    return {"items": items, "next_cursor": _cursor(items[-1], band) if len(items) == limit else None}


@router.get("/profiles/{user_id}", response_model=ProfileOut, responses=_ERRORS, summary="One profile")
async def get_profile(user_id: str, workspace: AdminWorkspace, svc: ServicesDep) -> dict[str, Any]:
    doc = await run_in_threadpool(identity.profile_document, svc.db, workspace.id, user_id)
    return documents.profile_doc(doc)


@router.get("/profiles/{user_id}/events", response_model=EventPage, responses=_ERRORS, summary="A profile's events")
async def get_profile_events(
    user_id: str,
    workspace: AdminWorkspace,
    svc: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    found = await run_in_threadpool(
        lambda: identity.profile_events(
            svc.db,
            workspace.id,
            user_id,
            since=ensure_utc(since) if since else None,
            until=ensure_utc(until) if until else None,
            limit=limit,
        )
    )
    return {"items": [documents.event_doc(e) for e in found]}
