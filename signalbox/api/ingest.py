"""Segment-compatible ingestion: /v1/{identify,track,page,screen,group,alias,batch} and the
one-letter short forms. Bodies are parsed by hand: SDKs send gzip, `text/plain` (beacons) or a
form content type with JSON inside, and none of that may turn into a 5xx or a retry storm."""

from __future__ import annotations

import base64
import binascii
import zlib
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from signalbox.api.deps import services
from signalbox.api.errors import SERVER_RESPONSES, ApiError
from signalbox.core.metrics import REQUESTS_REJECTED
from signalbox.ingestion import content
from signalbox.ingestion.schemas import SHORT_TYPES, Accepted, ErrorBody
from signalbox.ingestion.service import BatchInput
from signalbox.ingestion.steps import EARLIEST, LATEST, utc_in_range
from signalbox.workspaces import service as workspaces
from signalbox.workspaces.schemas import WorkspaceInfo

router = APIRouter(prefix="/v1", tags=["ingestion"])

_when = TypeAdapter(datetime)
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Unreadable or invalid body, or over the size limit"},
    401: {"model": ErrorBody, "description": "Missing or unknown write key"},
    **SERVER_RESPONSES,
}


async def _read_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            _refuse("too_large", f"request body is over the {limit}-byte limit")
        chunks.append(chunk)
    body = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip" or body[:2] == b"\x1f\x8b":
        body = _gunzip(body, limit)
    return body


def _gunzip(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        _refuse("bad_gzip", "request body is not valid gzip")
    if len(out) > limit or inflater.unconsumed_tail:
        _refuse("too_large", f"decompressed body is over the {limit}-byte limit")
    return out


def _refuse(reason: str, message: str, status: int = 400) -> Any:
    REQUESTS_REJECTED.labels(reason).inc()
    raise ApiError(status, reason, message)


def _parse(body: bytes) -> dict[str, Any]:
    if not body.strip():
        _refuse("bad_json", "request body is empty; send a JSON object")
    try:
        # Lenient on purpose: valid JSON that the database cannot store (a lone surrogate,
        # 1e400) costs only the message holding it, which validation rejects by name.
        doc = content.loads(body)
    except content.UnreadableJSON as exc:
        _refuse("bad_json", f"request body is not valid JSON ({exc})")
    if not isinstance(doc, dict):
        _refuse("bad_json", "request body must be a JSON object")
    return doc  # type: ignore[no-any-return]


def _write_key(request: Request, doc: dict[str, Any]) -> str:
    header = request.headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            _refuse("unauthorized", "Authorization header is not valid Basic credentials", 401)
        # Segment: the write key is the user name; clients send "key:" or just "key".
        key = decoded.split(":", 1)[0]
        if key:
            return key
    body_key = doc.get("writeKey")
    if isinstance(body_key, str) and body_key:
        if content.text_problem(body_key) is not None:  # no key has one; hashing it would raise
            _refuse("unauthorized", "the write key is not valid", 401)
        return body_key
    return _refuse("unauthorized", "send the write key as the Basic user name or as writeKey", 401)  # type: ignore[no-any-return]


def _authenticate(request: Request, doc: dict[str, Any]) -> WorkspaceInfo:
    """Looks the key up in the database: call it in the threadpool, never on the event loop."""
    key = _write_key(request, doc)
    found = workspaces.workspace_for_write_key(services(request).db, key)
    if found is None:
        _refuse("unauthorized", "the write key is not valid", 401)
    assert found is not None
    return found


def _sent_at(doc: dict[str, Any]) -> datetime | None:
    raw = doc.get("sentAt")
    if raw is None:
        return None
    try:
        value = _when.validate_python(raw)
    except ValidationError:
        return _refuse("invalid_message", "sentAt is not an ISO 8601 timestamp")  # type: ignore[no-any-return]
    in_range = utc_in_range(value)
    if in_range is None:
        _refuse("invalid_message", f"sentAt must be between {EARLIEST.year} and {LATEST.year - 1}")
    return in_range


async def _single(request: Request, kind: str) -> JSONResponse:
    svc = services(request)
    doc = _parse(await _read_body(request, svc.settings.max_message_bytes))
    workspace = await run_in_threadpool(_authenticate, request, doc)
    batch = BatchInput([doc], source="http", implied_type=kind)
    result = await run_in_threadpool(svc.pipeline.ingest, workspace, batch)
    if result.rejected:
        raise ApiError(400, "invalid_message", result.rejected[0].reason)
    return JSONResponse({"success": True})


async def _batch(request: Request) -> JSONResponse:
    svc = services(request)
    doc = _parse(await _read_body(request, svc.settings.max_batch_bytes))
    workspace = await run_in_threadpool(_authenticate, request, doc)
    messages = doc.get("batch")
    if not isinstance(messages, list):
        _refuse("invalid_batch", "body needs a `batch` array of messages")
    context = doc.get("context")
    if context is not None and not isinstance(context, dict):
        _refuse("invalid_batch", "batch `context` must be an object")
    assert isinstance(messages, list)
    batch = BatchInput(messages, source="http", batch_context=context, batch_sent_at=_sent_at(doc))
    await run_in_threadpool(svc.pipeline.ingest, workspace, batch)
    return JSONResponse({"success": True})


def _message_body(kind: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/SegmentMessage"}},
                "text/plain": {"schema": {"type": "string"}},
            },
            "description": f"A Segment `{kind}` message (its `type` is implied by the path).",
        }
    }


_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/BatchEnvelope"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}


def _single_handler(kind: str) -> Any:
    async def handler(request: Request) -> JSONResponse:
        return await _single(request, kind)

    return handler


def _register() -> None:
    security: list[dict[str, list[str]]] = [{"writeKeyBasic": []}]
    for short, kind in SHORT_TYPES.items():
        handler = _single_handler(kind)
        for path, name in ((f"/{kind}", kind), (f"/{short}", f"{kind}_short")):
            router.add_api_route(
                path,
                handler,
                methods=["POST"],
                name=name,
                summary=f"Send a {kind} message" + (" (short form)" if path == f"/{short}" else ""),
                response_model=Accepted,
                responses=_ERRORS,
                openapi_extra={**_message_body(kind), "security": security},
            )
    for path, name in (("/batch", "batch"), ("/b", "batch_short")):
        router.add_api_route(
            path,
            _batch,
            methods=["POST"],
            name=name,
            summary="Send up to 500 KB of messages of any type" + (" (short form)" if path == "/b" else ""),
            response_model=Accepted,
            responses=_ERRORS,
            openapi_extra={**_BATCH_BODY, "security": security},
        )


_register()
