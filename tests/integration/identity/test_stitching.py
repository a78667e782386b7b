"""Identity rules through the real pipeline and database (both SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from signalbox.core.errors import ConflictError
from signalbox.identity import service as identity
from signalbox.ingestion.service import BatchInput
from tests.factories import identify, track


def ingest(pipeline, workspace, *messages):
    return pipeline.ingest(workspace_info(pipeline, workspace), BatchInput(list(messages)))


def workspace_info(pipeline, workspace):
    from signalbox.workspaces import service as workspaces

    return workspaces.get_workspace(pipeline.db, workspace.id)


def ids_of(db, workspace, user_id):
    return {(i.type, i.value) for i in identity.profile_document(db, workspace.id, user_id).identifiers}


def test_anonymous_visitor_who_identifies_gets_earlier_events(pipeline, db, workspace):
    ingest(pipeline, workspace, track("page_viewed", anonymous_id="a-1"), track("class_booked", anonymous_id="a-1"))
    ingest(pipeline, workspace, identify("m-1", anonymous_id="a-1", email="pat@example.com"))
    events = identity.profile_events(db, workspace.id, "m-1")
    assert [e.event for e in events if e.type == "track"] == ["page_viewed", "class_booked"]
    doc = identity.profile_document(db, workspace.id, "m-1")
    assert doc.event_counts["total"] == 3


def test_shared_email_links_two_records(pipeline, db, workspace):
    ingest(pipeline, workspace, identify(anonymous_id="web-1", email="Sam@Example.com"))
    ingest(pipeline, workspace, identify("m-2", email="sam@example.com "), track("visit", "m-2"))
    assert ("anonymous_id", "web-1") in ids_of(db, workspace, "m-2")
    # The email found the visitor's node, so m-2 joined it: one node, nothing to merge.
    assert identity.merge_log(db, workspace.id) == []
    assert len(identity.profile_document(db, workspace.id, "m-2").profile_ids) == 1


def test_two_records_linked_later_are_merged_and_logged(pipeline, db, workspace):
    ingest(pipeline, workspace, identify(anonymous_id="web-2", email="lee@example.com"))
    ingest(pipeline, workspace, identify("m-3", phone="+1 415 555 0150"), track("visit", "m-3"))
    # One message carries both: the phone person and the email person are the same.
    ingest(pipeline, workspace, identify(anonymous_id="web-2", phone="415-555-0150"))
    doc = identity.profile_document(db, workspace.id, "m-3")
    assert ("email", "lee@example.com") in {(i.type, i.value) for i in doc.identifiers}
    assert doc.event_counts["total"] == 4
    (merge,) = identity.merge_log(db, workspace.id)
    assert merge.action == "merge" and merge.reason == "linked by anonymous_id"


def test_two_user_ids_are_never_merged_automatically(pipeline, db, workspace):
    ingest(pipeline, workspace, identify("m-4", email="family@example.com"))
    ingest(pipeline, workspace, identify("m-5", email="family@example.com"))
    assert identity.merge_log(db, workspace.id) == []
    assert ("email", "family@example.com") in ids_of(db, workspace, "m-4")
    assert ("email", "family@example.com") not in ids_of(db, workspace, "m-5")
    (review,) = identity.reviews(db, workspace.id)
    assert {review.user_id_a, review.user_id_b} == {"m-4", "m-5"}
    # The same conflict again does not ask twice.
    ingest(pipeline, workspace, identify("m-5", email="family@example.com"))
    assert len(identity.reviews(db, workspace.id)) == 1


def test_accepting_a_review_merges_and_rejecting_blocks(pipeline, db, workspace, clock):
    ingest(pipeline, workspace, identify("m-6", email="one@example.com"), identify("m-7", email="one@example.com"))
    (review,) = identity.reviews(db, workspace.id)
    decided = identity.decide_review(db, workspace.id, review.id, True, clock.now())
    assert decided.status == "accepted"
    assert (
        identity.profile_document(db, workspace.id, "m-6").id == identity.profile_document(db, workspace.id, "m-7").id
    )
    with pytest.raises(ConflictError):
        identity.decide_review(db, workspace.id, review.id, False, clock.now())


def test_unmerge_gives_events_back_and_is_not_redone(pipeline, db, workspace, clock):
    ingest(
        pipeline,
        workspace,
        identify(anonymous_id="web-3", email="kim@example.com"),
        track("page_viewed", anonymous_id="web-3"),
    )
    ingest(pipeline, workspace, identify("m-8", phone="+1 415 555 0160"), track("visit", "m-8"))
    ingest(pipeline, workspace, identify(anonymous_id="web-3", phone="415 555 0160"))
    assert identity.profile_document(db, workspace.id, "m-8").event_counts["total"] == 5
    (merge,) = identity.merge_log(db, workspace.id)
    identity.unmerge(db, workspace.id, merge.id, clock.now())
    after = identity.profile_document(db, workspace.id, "m-8")
    # Its own two plus the linking message, which landed on its phone.
    assert after.event_counts["total"] == 3
    assert ("email", "kim@example.com") not in {(i.type, i.value) for i in after.identifiers}
    with pytest.raises(ConflictError):
        identity.unmerge(db, workspace.id, merge.id, clock.now())
    # The same link arriving again does not re-merge what a person took apart.
    ingest(pipeline, workspace, identify(anonymous_id="web-3", phone="415 555 0160"))
    assert [m.action for m in identity.merge_log(db, workspace.id)] == ["unmerge", "merge"]
    assert identity.profile_document(db, workspace.id, "m-8").event_counts["total"] == 4


def test_alias_ties_previous_anonymous_id(pipeline, db, workspace):
    ingest(pipeline, workspace, track("page_viewed", anonymous_id="old-anon"))
    ingest(pipeline, workspace, identify("m-9"))
    ingest(pipeline, workspace, {"type": "alias", "userId": "m-9", "previousId": "old-anon", "messageId": "al-1"})
    assert identity.profile_document(db, workspace.id, "m-9").event_counts["total"] == 3


def test_alias_between_two_user_ids_goes_to_review(pipeline, db, workspace):
    ingest(pipeline, workspace, identify("m-10"), identify("m-11"))
    ingest(pipeline, workspace, {"type": "alias", "userId": "m-11", "previousId": "m-10", "messageId": "al-2"})
    assert identity.merge_log(db, workspace.id) == []
    assert len(identity.reviews(db, workspace.id)) == 1


def test_junk_email_never_links_people(pipeline, db, workspace):
    ingest(
        pipeline,
        workspace,
        identify(anonymous_id="x-1", email="test@test.com"),
        identify(anonymous_id="x-2", email="test@test.com"),
    )
    assert identity.merge_log(db, workspace.id) == []
