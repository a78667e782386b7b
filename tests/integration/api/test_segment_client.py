"""The official Segment Python library, unmodified, against the real server on loopback."""

from __future__ import annotations

import segment.analytics as segment_analytics
from segment.analytics.client import Client

from signalbox.identity import service as identity
from tests.conftest import LiveServer


def _client(server: LiveServer, write_key: str, errors: list[Exception]) -> Client:
    return Client(
        write_key,
        host=server.url,
        sync_mode=True,
        on_error=lambda exc, _batch: errors.append(exc),
        max_retries=0,
    )


def test_segment_client_lands_every_message_once(live_server, db, workspace):
    errors: list[Exception] = []
    client = _client(live_server, workspace.write_key, errors)
    client.track(anonymous_id="anon-1", event="page_viewed", properties={"path": "/pricing"})
    client.identify("member-1", {"email": " Pat@Example.com ", "phone": "(415) 555-0132"}, anonymous_id="anon-1")
    client.track("member-1", "visit", {"location": "downtown"})
    client.page("member-1", category="web", name="schedule")
    client.screen("member-1", name="home")
    client.group("member-1", "group-9", {"name": "Team Red"})
    client.alias("anon-2", "member-1")
    client.flush()
    assert errors == []

    doc = identity.profile_document(db, workspace.id, "member-1")
    assert doc.event_counts["total"] == 7
    assert doc.event_counts["by_event"] == {"page_viewed": 1, "visit": 1}
    types = {(i.type, i.value) for i in doc.identifiers}
    assert {("email", "pat@example.com"), ("phone", "+14155550132"), ("anonymous_id", "anon-1")} <= types
    assert ("anonymous_id", "anon-2") in types
    listed = identity.profile_events(db, workspace.id, "member-1")
    assert [e.type for e in listed].count("track") == 2


def test_retried_batch_is_stored_once(live_server, db, workspace):
    errors: list[Exception] = []
    client = _client(live_server, workspace.write_key, errors)
    # Same messageId twice, as a client retry after a lost response would send it.
    for _ in range(2):
        client.track("member-2", "visit", message_id="fixed-id-1")
        client.flush()
    assert errors == []
    assert identity.profile_document(db, workspace.id, "member-2").event_counts["total"] == 1


def test_wrong_write_key_is_reported_to_the_client(live_server):
    errors: list[Exception] = []
    client = _client(live_server, "not-a-key", errors)
    # In sync mode the library raises its APIError (4xx: it does not retry) instead of calling on_error.
    try:
        client.track("member-3", "visit")
        client.flush()
    except Exception as exc:
        errors.append(exc)
    assert len(errors) == 1
    assert getattr(errors[0], "status", None) == 401
    assert segment_analytics is not None
