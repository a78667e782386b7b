"""Inbound webhooks: `POST /webhooks/stripe/{workspace}`. The route reads the raw body (the
signature covers its exact bytes) and hands it to the connector; nothing else happens here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from signalbox.api.deps import ServicesDep
from signalbox.api.errors import SERVER_RESPONSES, ApiError
from signalbox.connectors.service import MAX_BODY_BYTES
from signalbox.ingestion.schemas import ErrorBody

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


class StripeAck(BaseModel):
    received: bool = True
    event_id: str
    type: str
    outcome: str  # stored | duplicate_event | duplicate_message | ignored | rejected | no_customer


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorBody,
        "description": "Missing, unparsable or wrong Stripe-Signature; timestamp over 300 s away (past or "
        "future); no signing secret connected; not a Stripe event. Nothing is stored.",
    },
    404: {"model": ErrorBody, "description": "No workspace with that name or id"},
    **SERVER_RESPONSES,
}


async def _raw_body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(400, "too_large", f"request body is over the {MAX_BODY_BYTES}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/stripe/{workspace}",
    summary="Stripe webhook endpoint: verified, deduplicated by event id, mapped to events",
    response_model=StripeAck,
    responses=_ERRORS,
)
async def stripe_webhook(
    workspace: str,
    request: Request,
    svc: ServicesDep,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> JSONResponse:
    """`{workspace}` is the workspace's name or id. An event id already processed answers 200
    and changes nothing; a type signalbox does not read answers 200 and is ignored."""
    body = await _raw_body(request)
    result = await run_in_threadpool(svc.stripe.receive, workspace, body, stripe_signature)
    return JSONResponse(result.to_dict())
