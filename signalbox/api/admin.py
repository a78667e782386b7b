"""The admin API (`/api/v1`): read profiles and their events. The admin key picks the
workspace, so another workspace's data answers 404 exactly as if it did not exist."""

from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from signalbox import documents
from signalbox.api.deps import AdminWorkspace, ServicesDep
from signalbox.api.errors import SERVER_RESPONSES, ApiError
from signalbox.connectors import smtp as smtp_connector
from signalbox.core.clock import ensure_utc
from signalbox.identity import service as identity
from signalbox.ingestion.content import is_storable_text
from signalbox.ingestion.schemas import ErrorBody

router = APIRouter(prefix="/api/v1", tags=["admin"])
Band = Literal["Low", "Medium", "High"]
# The width of the user_id and profile id columns: a longer id cannot name anyone.
_MAX_ID_LENGTH = 255
# Scores are 0-100; the bound keeps a forged cursor's number within every database's integers.
_SCORE_RANGE = range(-(2**31), 2**31)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid parameter"},
    401: {"model": ErrorBody, "description": "Missing or wrong admin key"},
    404: {"model": ErrorBody, "description": "No such profile in this workspace"},
    **SERVER_RESPONSES,
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


def _bad_cursor() -> ApiError:
    return ApiError(400, "invalid_cursor", "cursor is not one this API returned")


def _decode(cursor: str) -> tuple[Any, str]:
    try:
        key, pid = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise _bad_cursor() from None
    if not isinstance(pid, str) or not is_storable_text(pid, _MAX_ID_LENGTH):
        raise _bad_cursor()
    return key, pid


def _after(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    at, pid = _decode(cursor)
    try:
        return ensure_utc(datetime.fromisoformat(at)), pid
    except (ValueError, TypeError, OverflowError):
        raise _bad_cursor() from None


def _after_score(cursor: str | None) -> tuple[int, str] | None:
    if not cursor:
        return None
    score, pid = _decode(cursor)
    if not isinstance(score, int) or isinstance(score, bool) or score not in _SCORE_RANGE:
        raise _bad_cursor()
    return score, pid


def _utc(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return ensure_utc(value)
    except OverflowError:
        # e.g. 0001-01-01T00:00:00+01:00 is the last hour of year 0 in UTC, before datetime's range.
        message = f"query.{name}: {value.isoformat()} is outside the years 1-9999 in UTC"
        raise ApiError(400, "invalid_request", message) from None


def _known_user_id(user_id: str) -> str:
    # An id no column can hold names nobody: the same 404 as any unknown id, without a query
    # that the database would refuse.
    if not is_storable_text(user_id, _MAX_ID_LENGTH):
        raise ApiError(404, "not_found", "no profile with that user_id in this workspace")
    return user_id


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
    doc = await run_in_threadpool(identity.profile_document, svc.db, workspace.id, _known_user_id(user_id))
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
    known, after, before = _known_user_id(user_id), _utc("since", since), _utc("until", until)
    found = await run_in_threadpool(
        lambda: identity.profile_events(svc.db, workspace.id, known, since=after, until=before, limit=limit)
    )
    return {"items": [documents.event_doc(e) for e in found]}


class ConsentIn(BaseModel):
    channel: Literal["email", "sms"]
    status: Literal["granted", "revoked"]
    purpose: Literal["all", "marketing"] = "all"
    note: Annotated[str | None, Field(max_length=500)] = None


class ConsentOut(BaseModel):
    user_id: str | None
    consent: dict[str, dict[str, Any]]


@router.post(
    "/profiles/{user_id}/consent",
    response_model=ConsentOut,
    responses=_ERRORS,
    summary="Record a consent change (a ledger row; the newest decides)",
)
async def post_consent(user_id: str, body: ConsentIn, workspace: AdminWorkspace, svc: ServicesDep) -> dict[str, Any]:
    if body.note is not None and not is_storable_text(body.note, 500):
        raise ApiError(400, "invalid_request", "body.note: text a database cannot store (NUL or a lone surrogate)")
    evidence = {"note": body.note} if body.note else {}
    doc = await run_in_threadpool(
        lambda: identity.change_consent(
            svc.db,
            workspace.id,
            _known_user_id(user_id),
            body.channel,
            body.status,
            source="api",
            now=svc.clock.now(),
            purpose=body.purpose,
            evidence=evidence,
        )
    )
    return {"user_id": doc.user_id, "consent": doc.consent}


class SuppressionIn(BaseModel):
    address: str = Field(max_length=320, description="The address that bounced or complained")
    reason: Literal["bounce", "complaint"]


class SuppressionOut(BaseModel):
    address: str
    reason: str
    profiles: list[str]


@router.post(
    "/email/suppressions",
    response_model=SuppressionOut,
    responses=_ERRORS,
    summary="Report a hard bounce or a complaint: all e-mail to that person stops (a consent revocation)",
)
async def post_suppression(body: SuppressionIn, workspace: AdminWorkspace, svc: ServicesDep) -> dict[str, Any]:
    """What `signalbox email suppress` does, for a mail provider's bounce and complaint
    notifications relayed by a script: 404 when no profile has the address."""
    profiles = await run_in_threadpool(
        smtp_connector.suppress,
        svc.db,
        workspace.id,
        body.address,
        body.reason,
        svc.clock.now(),
        "POST /api/v1/email/suppressions",
    )
    return {"address": body.address.strip().lower(), "reason": body.reason, "profiles": profiles}
