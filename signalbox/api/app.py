"""App assembly: the one place dependencies are wired (a small bootstrap, Cosmic Python style)."""

from __future__ import annotations

import html
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse

from signalbox import __version__
from signalbox.api import admin, errors, ingest, journeys, links, unsubscribe, webhooks
from signalbox.api.deps import Services
from signalbox.connectors.links import LinkClicks
from signalbox.connectors.service import StripeInbound
from signalbox.connectors.twilio import TwilioInbound
from signalbox.core.clock import Clock, SystemClock
from signalbox.core.db import Database
from signalbox.core.logging import configure_logging
from signalbox.core.metrics import render
from signalbox.core.settings import Settings
from signalbox.dashboard import routes as dashboard
from signalbox.ingestion.schemas import BatchEnvelope, ErrorBody, SegmentMessage
from signalbox.ingestion.service import Pipeline


def create_app(settings: Settings, db: Database | None = None, clock: Clock | None = None) -> FastAPI:
    db = db or Database(settings)
    clock = clock or SystemClock()
    app = FastAPI(
        title="signalbox",
        version=__version__,
        description="Segment-compatible ingestion, the signalbox admin API and inbound webhooks.",
        default_response_class=JSONResponse,
        # Served below from the package's own copies: a CDN would see every visit and break
        # the docs on a machine without Internet access.
        docs_url=None,
        redoc_url=None,
    )
    pipeline = Pipeline(db, settings, clock)
    app.state.services = Services(
        settings,
        db,
        clock,
        pipeline,
        StripeInbound(db, settings, pipeline, clock),
        TwilioInbound(db, settings, pipeline, clock),
        LinkClicks(db, pipeline, clock),
    )
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
    app.include_router(journeys.router)
    app.include_router(webhooks.router)
    app.include_router(unsubscribe.router)
    app.include_router(links.router)
    dashboard.install(app, db, settings, clock)

    @app.get(
        "/start",
        tags=["ops"],
        summary="Start page for a browser: links to the API docs, health and how to send a first event",
        response_class=HTMLResponse,
    )
    def home(request: Request) -> HTMLResponse:
        return HTMLResponse(_home_page(str(request.base_url).rstrip("/")))

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        vendor = f"{dashboard.STATIC_PATH}/vendor"
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{vendor}/swagger-ui-bundle.js",
            swagger_css_url=f"{vendor}/swagger-ui.css",
            swagger_favicon_url=f"{vendor}/favicon-32x32.png",
            # The validator badge would send the document's URL to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

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


_HOME = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>signalbox</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;color:#222}}
code,pre{{background:#f3f3f3;border-radius:4px;padding:.1rem .3rem}}pre{{padding:.6rem;overflow-x:auto}}</style>
</head><body>
<h1>signalbox {version} is running</h1>
<ul>
<li><a href="/login">Dashboard</a> (sign in; add a user with <code>signalbox users create</code>)</li>
<li><a href="/docs">API documentation</a> (interactive; the OpenAPI document is
<a href="/openapi.json">/openapi.json</a>)</li>
<li><a href="/healthz">/healthz</a>: is the database reachable?</li>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
</ul>
<h2>Get started</h2>
<p>Send an event with a workspace's write key (printed by <code>signalbox demo</code> or
<code>signalbox workspace create</code>) as the Basic user name, or point any Segment SDK here:</p>
<pre>curl -u "$WRITE_KEY:" {base}/v1/track -d '{{"userId":"u1","event":"visit"}}'</pre>
<p>Then, on the command line:</p>
<pre>signalbox profile show -w demo -u u1
signalbox scores compute -w demo
signalbox profile list -w demo --band High    # who is slipping away, and why</pre>
<p>The admin API under <code>/api/v1/</code> takes the admin key as a Bearer token.</p>
</body></html>
"""


def _home_page(base: str) -> str:
    # The base URL comes from the request's Host header, so it is escaped before it is shown.
    return _HOME.format(version=html.escape(__version__), base=html.escape(base))


def server(app: FastAPI, settings: Settings, host: str, port: int) -> uvicorn.Server:
    """uvicorn with no logging configuration of its own: its records go through ours (one JSON
    line each on stderr). Access logs stay off: paths and query strings carry customer ids."""
    configure_logging(settings.log_level)
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, log_level=settings.log_level.lower(), access_log=False
    )
    return uvicorn.Server(config)


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
