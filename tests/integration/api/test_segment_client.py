"""The official Segment Python library, unmodified, against the real server on loopback."""

from __future__ import annotations

import segment.analytics as segment_analytics
from segment.analytics.client import Client

from signalbox.identity import service as identity
from signalbox.ingestion import service as ingestion
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


def test_module_level_client_batches_gzip_and_keeps_a_batch_with_a_bad_message(live_server, db, workspace, monkeypatch):
    """The way the library's README uses it: module settings, a background consumer thread
    sending gzipped batches. A NUL in one message must not cost its batch-mates (a 5xx would
    make the library retry, and on_error would see it)."""
    errors: list[Exception] = []
    for name, value in {
        "write_key": workspace.write_key,
        "host": live_server.url,
        "gzip": True,
        "sync_mode": False,
        "max_retries": 0,
        "on_error": lambda exc, _batch: errors.append(exc),
        "default_client": None,
    }.items():
        monkeypatch.setattr(segment_analytics, name, value)
    segment_analytics.identify("member-9", {"email": "sam@example.org", "plan": "gold"})
    segment_analytics.track("member-9", "class_booked", {"class": "spin", "price": 12.5})
    segment_analytics.track("member-9", "class_booked", {"class": "yoga", "note": "bad\x00note"})
    segment_analytics.page("member-9", "web", "schedule", {"path": "/schedule"})
    segment_analytics.shutdown()
    assert errors == []

    listed = identity.profile_events(db, workspace.id, "member-9")
    assert sorted((e.type, e.event) for e in listed) == [
        ("identify", None),
        ("page", "schedule"),
        ("track", "class_booked"),
    ]
    booked = next(e for e in listed if e.event == "class_booked")
    assert booked.properties == {"class": "spin", "price": 12.5}
    doc = identity.profile_document(db, workspace.id, "member-9")
    assert doc.traits["plan"] == "gold" and ("email", "sam@example.org") in {(i.type, i.value) for i in doc.identifiers}
    rejected = ingestion.list_dead_letters(db, workspace.id, kind="rejected")
    assert [d.reason.split(":")[0] for d in rejected] == ["properties.note"]
