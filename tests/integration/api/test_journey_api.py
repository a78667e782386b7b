"""The admin API's journey resources over real HTTP: the CLI's documents, scoped by the key."""

from __future__ import annotations

import httpx

from signalbox.core.clock import SystemClock
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.journeys import service as journeys
from signalbox.journeys.worker import Worker
from signalbox.workspaces import service as workspaces
from tests.factories import identify, track
from tests.integration.journeys.test_apply import TEMPLATES
from tests.unit.journeys.test_spec import GOOD


def test_journey_resources_over_http(live_server, db, settings, workspace):
    clock = SystemClock()
    ws = workspaces.get_workspace(db, workspace.id)
    other = workspaces.create_workspace(db, "someone-else")
    journeys.apply(db, ws.id, "template", list(TEMPLATES.items()), clock.now())
    journeys.apply(db, ws.id, "playbook", [("fpr.yaml", GOOD.replace("holdout: 10%", "holdout: 0%"))], clock.now())
    Pipeline(db, settings, clock).ingest(
        ws,
        BatchInput(
            [identify("m-1", email="pat@example.com"), track("payment_failed", "m-1", invoice_id="i1", amount=40)]
        ),
    )
    Worker(db, settings, clock, stale_every_seconds=1e9).drain()
    headers = {"Authorization": f"Bearer {workspace.admin_key}"}

    def get(path, **params):
        return httpx.get(f"{live_server.url}/api/v1{path}", headers=headers, params=params)

    (playbook,) = get("/playbooks").json()
    assert playbook["playbook"] == "failed-payment-recovery" and playbook["status"] == "active"
    (enr,) = get("/enrollments", playbook="failed-payment-recovery").json()
    assert enr["user_id"] == "m-1" and enr["next_step"] == "sms"
    assert [d["outcome"] for d in get("/decisions", enrollment_id=enr["id"]).json()] == ["sent"]
    assert get("/sends", user_id="m-1").json()[0]["idempotency_key"] == f"{enr['id']}:email-now"
    (call,) = get("/outbox", channel="email").json()
    assert call["to"] == "pat@example.com" and (call["provider"], call["status"]) == ("sandbox", "delivered")
    assert get("/tasks").json() == []
    report = get("/playbooks/failed-payment-recovery/report").json()
    assert report["arms"]["treated"]["enrolled"] == 1 and report["lift"]["interval"] == "newcombe-wilson"
    assert get("/playbooks/nope/report").status_code == 404
    assert get("/enrollments", limit=0).status_code == 400
    # Another workspace's key sees none of it.
    theirs = httpx.get(f"{live_server.url}/api/v1/enrollments", headers={"Authorization": f"Bearer {other.admin_key}"})
    assert theirs.status_code == 200 and theirs.json() == []
    assert httpx.get(f"{live_server.url}/api/v1/outbox").status_code == 401


def test_consent_is_written_through_the_admin_api(live_server, db, settings, workspace):
    ws = workspaces.get_workspace(db, workspace.id)
    Pipeline(db, settings, SystemClock()).ingest(ws, BatchInput([identify("m-9", email="m9@example.com")]))
    headers = {"Authorization": f"Bearer {workspace.admin_key}"}
    url = f"{live_server.url}/api/v1/profiles/m-9/consent"
    done = httpx.post(url, headers=headers, json={"channel": "sms", "status": "revoked", "note": "asked by phone"})
    assert done.status_code == 200, done.text
    assert done.json()["consent"]["sms"]["status"] == "revoked" and done.json()["consent"]["sms"]["source"] == "api"
    assert httpx.post(url, headers=headers, json={"channel": "fax", "status": "revoked"}).status_code == 400
    assert httpx.post(url, headers=headers, json={"channel": "sms", "status": "x"}).status_code == 400
    missing = f"{live_server.url}/api/v1/profiles/nobody/consent"
    assert httpx.post(missing, headers=headers, json={"channel": "sms", "status": "revoked"}).status_code == 404
    assert httpx.post(url, json={"channel": "sms", "status": "revoked"}).status_code == 401


def test_a_bounce_reported_over_the_api_stops_all_email(live_server, db, settings, workspace):
    ws = workspaces.get_workspace(db, workspace.id)
    Pipeline(db, settings, SystemClock()).ingest(ws, BatchInput([identify("m-8", email="m8@example.com")]))
    headers = {"Authorization": f"Bearer {workspace.admin_key}"}
    url = f"{live_server.url}/api/v1/email/suppressions"
    done = httpx.post(url, headers=headers, json={"address": " M8@Example.com", "reason": "bounce"})
    assert done.status_code == 200, done.text
    assert done.json()["address"] == "m8@example.com" and len(done.json()["profiles"]) == 1
    consent = httpx.get(f"{live_server.url}/api/v1/profiles/m-8", headers=headers).json()["consent"]["email"]
    assert (consent["status"], consent["purpose"], consent["source"]) == ("revoked", "all", "email_bounce")
    assert httpx.post(url, headers=headers, json={"address": "m8@example.com", "reason": "soft"}).status_code == 400
    assert httpx.post(url, headers=headers, json={"address": "nope", "reason": "bounce"}).status_code == 400
    assert httpx.post(url, headers=headers, json={"address": "x@example.com", "reason": "bounce"}).status_code == 404
    assert httpx.post(url, json={"address": "m8@example.com", "reason": "bounce"}).status_code == 401


def test_awkward_query_text_is_a_400_not_a_5xx(live_server, workspace):
    headers = {"Authorization": f"Bearer {workspace.admin_key}"}
    for query in ["/enrollments?playbook=a%00b", "/decisions?user_id=%00", "/sends?status=" + "x" * 300]:
        answer = httpx.get(f"{live_server.url}/api/v1{query}", headers=headers)
        assert answer.status_code == 400, (query, answer.status_code, answer.text)
    report = httpx.get(f"{live_server.url}/api/v1/playbooks/a%00b/report", headers=headers)
    assert report.status_code == 404
