"""The consent ledger through identify traits, the CLI and merges, on both databases."""

from __future__ import annotations

from signalbox.identity import service as identity
from signalbox.ingestion.service import BatchInput
from signalbox.workspaces import service as workspaces
from tests.factories import identify, jrun


def test_identify_traits_write_the_ledger_and_the_newest_change_wins(pipeline, db, workspace):
    ws = workspaces.get_workspace(db, workspace.id)
    first = {
        **identify("m-1", email_subscribe="opted_in", sms_subscribe="subscribed"),
        "timestamp": "2026-03-01T10:00Z",
    }
    later = {**identify("m-1", sms_subscribe="unsubscribed"), "timestamp": "2026-03-02T10:00Z"}
    # Out of order: the newer change arrives first and still wins.
    pipeline.ingest(ws, BatchInput([later]))
    pipeline.ingest(ws, BatchInput([first]))
    doc = identity.profile_document(db, ws.id, "m-1")
    assert doc.consent["email"]["status"] == "granted" and doc.consent["email"]["source"] == "identify"
    assert doc.consent["sms"]["status"] == "revoked" and doc.consent["sms"]["updated_at"].startswith("2026-03-02")
    history = identity.consent_history(db, ws.id, "m-1")
    assert [(r.channel, r.status) for r in history] == [("sms", "revoked"), ("sms", "granted"), ("email", "granted")]
    assert history[0].evidence == {"message_id": later["messageId"]}


def test_consent_follows_a_merge(pipeline, db, workspace):
    ws = workspaces.get_workspace(db, workspace.id)
    visitor = {**identify(anonymous_id="anon-1", sms_subscribe="opted_in"), "timestamp": "2026-03-01T10:00Z"}
    pipeline.ingest(ws, BatchInput([visitor]))
    pipeline.ingest(ws, BatchInput([identify("m-2", anonymous_id="anon-1")]))
    assert identity.profile_document(db, ws.id, "m-2").consent["sms"]["status"] == "granted"


def test_consent_commands(cli, tmp_path):
    jrun(cli, "workspace", "create", "cons")
    path = tmp_path / "people.jsonl"
    path.write_text('{"type":"identify","userId":"m-1","traits":{"email":"m1@example.com"}}\n')
    jrun(cli, "import", "events", str(path), "-w", "cons")
    assert jrun(cli, "profile", "show", "-w", "cons", "-u", "m-1")["consent"]["sms"]["status"] == "unknown"
    out = jrun(
        cli, "consent", "set", "-w", "cons", "-u", "m-1", "--channel", "sms", "--status", "revoked", "--note", "asked"
    )
    assert out["consent"]["sms"]["status"] == "revoked" and out["consent"]["sms"]["source"] == "cli"
    (row,) = jrun(cli, "consent", "list", "-w", "cons", "-u", "m-1")
    assert row["evidence"] == {"note": "asked"} and row["purpose"] == "all"
    for args, message in [
        (("--channel", "fax", "--status", "revoked"), "channel 'fax'"),
        (("--channel", "sms", "--status", "maybe"), "status 'maybe'"),
    ]:
        bad = cli("consent", "set", "-w", "cons", "-u", "m-1", *args, ok=False)
        assert bad.exit_code == 1 and message in bad.stderr
    missing = cli("consent", "list", "-w", "cons", "-u", "nobody", ok=False)
    assert missing.exit_code == 1 and "no profile with user_id 'nobody'" in missing.stderr
