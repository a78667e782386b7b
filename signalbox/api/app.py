"""App assembly: the one place dependencies are wired (a small bootstrap, Cosmic Python style)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from signalbox import __version__
from signalbox.api import admin, errors, ingest
from signalbox.api.deps import Services
from signalbox.core.clock import Clock, SystemClock
from signalbox.core.db import Database
from signalbox.core.metrics import render
from signalbox.core.settings import Settings
from signalbox.ingestion.schemas import BatchEnvelope, ErrorBody, SegmentMessage
from signalbox.ingestion.service import Pipeline


def create_app(settings: Settings, db: Database | None = None, clock: Clock | None = None) -> FastAPI:
    db = db or Database(settings)
    clock = clock or SystemClock()
    app = FastAPI(
        title="signalbox",
        version=__version__,
        description="Segment-compatible ingestion and the signalbox admin API.",
        default_response_class=JSONResponse,
    )
    app.state.services = Services(settings, db, clock, Pipeline(db, settings, clock))
    # First, so that CORS (added next, outermost) also wraps the error answers.
    errors.install(app)
    # Browsers (analytics.js, sendBeacon) post from any site that embeds the snippet.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["POST", "GET", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Content-Encoding"],
        max_age=86400,
    )
    app.include_router(ingest.router)
    app.include_router(admin.router)

    @app.get("/healthz", tags=["ops"], summary="Database reachable?", responses={503: {"model": ErrorBody}})
    def healthz() -> Response:
        if db.ping():
            return JSONResponse({"status": "ok"})
        return errors.error(503, "database_unreachable", "the database did not answer")

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=Response)
    def metrics() -> Response:
        return Response(render(), media_type="text/plain; version=0.0.4")

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    template = "#/components/schemas/{model}"
    schemas["SegmentMessage"] = SegmentMessage.model_json_schema(ref_template=template)
    envelope = BatchEnvelope.model_json_schema(ref_template=template)
    envelope.pop("$defs", None)
    schemas["BatchEnvelope"] = envelope
    doc["components"].setdefault("securitySchemes", {})["writeKeyBasic"] = {
        "type": "http",
        "scheme": "basic",
        "description": "The workspace's write key as the user name, empty password.",
    }
    app.openapi_schema = doc
    return doc
