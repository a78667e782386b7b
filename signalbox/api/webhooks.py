"""Inbound webhooks: `POST /webhooks/stripe/{workspace}`, `POST /webhooks/twilio/{workspace}/sms`
and `/status`. The routes read the raw body (the signature covers it) and hand it to the
connector; nothing else happens here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from signalbox.api.deps import ServicesDep
from signalbox.api.errors import SERVER_RESPONSES, ApiError
from signalbox.connectors.service import MAX_BODY_BYTES
from signalbox.connectors.twilio import TwilioForbidden
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


class TwilioStatusAck(BaseModel):
    received: bool = True
    message_sid: str
    status: str
    outcome: str  # updated | stale | unknown_message


_TWILIO_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorBody,
        "description": "Not a form, MessageSid or From missing or malformed, an unknown MessageStatus. "
        "Nothing is stored.",
    },
    403: {
        "model": ErrorBody,
        "description": "X-Twilio-Signature missing or wrong for the public base URL + path; Twilio not "
        "connected or no public base URL set. Nothing is stored.",
    },
    404: {"model": ErrorBody, "description": "No workspace with that name or id"},
    **SERVER_RESPONSES,
}


async def _twilio(request: Request, call: Any, workspace: str, signature: str | None) -> Any:
    body = await _raw_body(request)
    try:
        return await run_in_threadpool(
            call, workspace, request.url.query, body, signature, request.headers.get("content-type")
        )
    except TwilioForbidden as exc:
        raise ApiError(403, exc.code, exc.message) from None


@router.post(
    "/twilio/{workspace}/sms",
    summary="Twilio inbound SMS: signature-checked; STOP/START/HELP handled before answering; replies stored",
    response_class=Response,
    responses={
        200: {
            "content": {"application/xml": {"schema": {"type": "string"}}},
            "description": "TwiML: `<Response><Message>…</Message></Response>` for HELP (and for STOP with "
            "--stop-reply), else an empty `<Response/>`",
        },
        **_TWILIO_ERRORS,
    },
)
async def twilio_sms(
    workspace: str,
    request: Request,
    svc: ServicesDep,
    x_twilio_signature: Annotated[str | None, Header(alias="X-Twilio-Signature")] = None,
) -> Response:
    """`{workspace}` is the workspace's name or id, exactly as in the URL given to Twilio. A
    MessageSid seen before answers 200 with an empty `<Response/>` and changes nothing."""
    result = await _twilio(request, svc.twilio.receive_sms, workspace, x_twilio_signature)
    return Response(result.twiml, media_type="application/xml")


@router.post(
    "/twilio/{workspace}/status",
    summary="Twilio delivery status callback: signature-checked; a status never moves backwards",
    response_model=TwilioStatusAck,
    responses=_TWILIO_ERRORS,
)
async def twilio_status(
    workspace: str,
    request: Request,
    svc: ServicesDep,
    x_twilio_signature: Annotated[str | None, Header(alias="X-Twilio-Signature")] = None,
) -> JSONResponse:
    """Records the message's status in the outbox: queued < sending < sent < delivered /
    undelivered / failed. A late callback for an earlier status answers `stale`."""
    doc = await _twilio(request, svc.twilio.receive_status, workspace, x_twilio_signature)
    return JSONResponse(doc)
