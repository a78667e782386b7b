"""schemathesis drives every documented endpoint with generated input: never a 5xx, and every
response matches the OpenAPI document."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from signalbox.api.app import create_app
from signalbox.core import migrate
from signalbox.core.db import Database
from signalbox.workspaces import service as workspaces
from tests.factories import make_settings

_dir = Path(tempfile.mkdtemp(prefix="sb-fuzz-"))
_url = f"sqlite:///{_dir / 'fuzz.db'}"
migrate.upgrade(_url)
_settings = make_settings(_url)
_db = Database(_settings)
_ws = workspaces.create_workspace(_db, "fuzz")
app = create_app(_settings, _db)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@hsettings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_responses_match_the_document(case):
    if case.path.startswith("/api/"):
        headers = {"Authorization": f"Bearer {_ws.admin_key}"}
    elif case.path.startswith("/v1/"):
        headers = {"Authorization": "Basic " + base64.b64encode(f"{_ws.write_key}:".encode()).decode()}
    else:
        headers = {}
    case.call_and_validate(
        headers=headers,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
