"""schemathesis drives every documented endpoint with generated input, on SQLite and on
PostgreSQL (which refuses content SQLite stores): never a 5xx, and every response matches the
OpenAPI document.

The operations are parametrized by hand (schemathesis' fixture loader does not run on pytest 9),
so each one is its own test on each database."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation, BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from signalbox.api.app import create_app
from signalbox.core.db import Database
from signalbox.core.settings import Settings
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.workspaces import service as workspaces
from signalbox.workspaces.schemas import CreatedWorkspace
from tests.conftest import _pg_url, _sqlite_url
from tests.factories import make_settings, track

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _operations(schema: BaseSchema) -> dict[str, APIOperation]:
    return {op.label: op for op in (result.ok() for result in schema.get_all_operations())}


def _schema(settings: Settings, db: Database) -> BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(settings, db))


# Reading the document touches no database, so an unopened SQLite URL is enough to list it.
_offline = make_settings("sqlite:///:memory:")
LABELS = sorted(_operations(_schema(_offline, Database(_offline))))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fuzz_db(request, tmp_path_factory, pg_schema_factory) -> Iterator[Database]:
    # One database per engine for every operation: a fresh PostgreSQL schema per test would
    # cost a migration each.
    url = _sqlite_url(tmp_path_factory.mktemp("fuzz")) if request.param == "sqlite" else _pg_url(pg_schema_factory)
    database = Database(make_settings(url))
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def fuzz_workspace(fuzz_db: Database) -> CreatedWorkspace:
    created = workspaces.create_workspace(fuzz_db, "fuzz")
    # A stored person, so profile reads also walk real rows, not only the 404 path.
    pipeline = Pipeline(fuzz_db, fuzz_db.settings)
    pipeline.ingest(workspaces.get_workspace(fuzz_db, created.id), BatchInput([track("visit", "fuzz-1")]))
    return created


@pytest.fixture(scope="module")
def fuzz_operations(fuzz_db: Database) -> dict[str, APIOperation]:
    return _operations(_schema(fuzz_db.settings, fuzz_db))


def _headers(path: str, ws: CreatedWorkspace) -> dict[str, str]:
    if path.startswith("/api/"):
        return {"Authorization": f"Bearer {ws.admin_key}"}
    if path.startswith("/v1/"):
        return {"Authorization": "Basic " + base64.b64encode(f"{ws.write_key}:".encode()).decode()}
    return {}


@pytest.mark.parametrize("label", LABELS)
def test_no_server_errors_and_responses_match_the_document(fuzz_operations, fuzz_workspace, label):
    operation = fuzz_operations[label]
    headers = _headers(operation.path, fuzz_workspace)

    @given(case=operation.as_strategy())
    @hsettings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()
