"""The admin API's journey resources (`/api/v1/playbooks`, `enrollments`, `decisions`, `sends`,
`outbox`, `tasks`), the same documents as the CLI's `--json`, scoped by the admin key."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, BaseModel

from signalbox import documents
from signalbox.api.deps import AdminWorkspace, ServicesDep
from signalbox.api.errors import SERVER_RESPONSES, ApiError
from signalbox.channels import service as channels
from signalbox.ingestion.content import is_storable_text
from signalbox.ingestion.schemas import ErrorBody
from signalbox.journeys import report
from signalbox.journeys import service as journeys

router = APIRouter(prefix="/api/v1", tags=["playbooks"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid parameter"},
    401: {"model": ErrorBody, "description": "Missing or wrong admin key"},
    404: {"model": ErrorBody, "description": "No such playbook in this workspace"},
    **SERVER_RESPONSES,
}
Limit = Annotated[int, Query(ge=1, le=10_000, description="At most this many, newest first.")]


def _storable(value: str | None) -> str | None:
    # A NUL or a lone surrogate names nothing we could have stored; PostgreSQL would refuse
    # the query, so it is the client's 400, not our 5xx.
    if value is not None and not is_storable_text(value, 255):
        raise ValueError("text a database cannot store (NUL or a lone surrogate)")
    return value


Text = Annotated[str | None, Query(min_length=1, max_length=255), AfterValidator(_storable)]


class PlaybookOut(BaseModel):
    playbook: str
    name: str
    purpose: str
    trigger: str
    version: int
    status: str
    updated_at: datetime


class EnrollmentOut(BaseModel):
    id: str
    playbook: str
    version: int
    user_id: str | None
    entry_key: str | None
    status: str
    exit_reason: str | None
    holdout: bool
    next_step: str | None
    due_at: datetime | None
    created_at: datetime


class DecisionOut(BaseModel):
    enrollment_id: str | None
    user_id: str | None
    playbook: str
    step: str | None
    outcome: str
    reason: str | None
    channel: str | None
    at: datetime
    detail: dict[str, Any] | None = None


class SendOut(BaseModel):
    user_id: str | None
    channel: str
    playbook: str | None
    step: str | None
    status: str
    idempotency_key: str
    created_at: datetime


class OutboxOut(BaseModel):
    idempotency_key: str
    channel: str
    to: str
    subject: str | None
    body: str
    created_at: datetime
    provider: str  # sandbox | twilio
    provider_id: str | None
    status: str | None  # the provider's: delivered (sandbox), calling, queued … delivered, refused
    error: str | None
    updated_at: datetime | None


class TaskOut(BaseModel):
    id: int
    user_id: str | None
    playbook: str | None
    title: str
    role: str
    location: str | None
    priority: str
    status: str
    due_at: datetime
    created_at: datetime
    done_at: datetime | None


class ArmOut(BaseModel):
    enrolled: int
    converted: int
    rate: float | None
    revenue: float
    revenue_per_enrolled: float | None


class LiftOut(BaseModel):
    absolute: float | None
    ci95: list[float] | None
    interval: str


class ReportOut(BaseModel):
    playbook: str
    arms: dict[str, ArmOut]
    lift: LiftOut
    revenue: dict[str, float | None]


@router.get("/playbooks", response_model=list[PlaybookOut], responses=_ERRORS, summary="Playbooks")
async def list_playbooks(workspace: AdminWorkspace, svc: ServicesDep) -> list[dict[str, Any]]:
    found = await run_in_threadpool(journeys.list_playbooks, svc.db, workspace.id)
    return [documents.playbook_doc(p) for p in found]


@router.get("/playbooks/{name}/report", response_model=ReportOut, responses=_ERRORS, summary="Treated vs holdout, lift")
async def playbook_report(name: str, workspace: AdminWorkspace, svc: ServicesDep) -> dict[str, Any]:
    if not is_storable_text(name, 64):
        raise ApiError(404, "not_found", "no such playbook in this workspace")
    return await run_in_threadpool(report.report, svc.db, workspace.id, name)


@router.get("/enrollments", response_model=list[EnrollmentOut], responses=_ERRORS, summary="Enrolments")
async def list_enrollments(
    workspace: AdminWorkspace, svc: ServicesDep, playbook: Text = None, user_id: Text = None, limit: Limit = 10_000
) -> list[dict[str, Any]]:
    found = await run_in_threadpool(
        lambda: journeys.list_enrollments(svc.db, workspace.id, playbook=playbook, user_id=user_id, limit=limit)
    )
    return [documents.enrollment_doc(e) for e in found]


@router.get("/decisions", response_model=list[DecisionOut], responses=_ERRORS, summary="The decision trace")
async def list_decisions(
    workspace: AdminWorkspace,
    svc: ServicesDep,
    enrollment_id: Text = None,
    user_id: Text = None,
    limit: Limit = 10_000,
) -> list[dict[str, Any]]:
    found = await run_in_threadpool(
        lambda: journeys.list_decisions(svc.db, workspace.id, enrollment_id=enrollment_id, user_id=user_id, limit=limit)
    )
    return [documents.decision_doc(d) for d in found]


@router.get("/sends", response_model=list[SendOut], responses=_ERRORS, summary="The send ledger")
async def list_sends(
    workspace: AdminWorkspace, svc: ServicesDep, user_id: Text = None, status: Text = None, limit: Limit = 10_000
) -> list[dict[str, Any]]:
    found = await run_in_threadpool(
        lambda: channels.list_sends(svc.db, workspace.id, user_id=user_id, status=status, limit=limit)
    )
    return [documents.send_doc(s) for s in found]


@router.get(
    "/outbox", response_model=list[OutboxOut], responses=_ERRORS, summary="Every provider call, with its status"
)
async def list_outbox(
    workspace: AdminWorkspace, svc: ServicesDep, channel: Text = None, limit: Limit = 10_000
) -> list[dict[str, Any]]:
    found = await run_in_threadpool(lambda: channels.list_outbox(svc.db, workspace.id, channel=channel, limit=limit))
    return [documents.outbox_doc(o) for o in found]


@router.get("/tasks", response_model=list[TaskOut], responses=_ERRORS, summary="Staff tasks")
async def list_tasks(
    workspace: AdminWorkspace, svc: ServicesDep, status: Text = None, location: Text = None, limit: Limit = 10_000
) -> list[dict[str, Any]]:
    found = await run_in_threadpool(
        lambda: channels.list_tasks(svc.db, workspace.id, status=status, location=location, limit=limit)
    )
    return [documents.task_doc(t) for t in found]
