"""The CLI end to end: JSON on stdout, one-line errors, idempotent imports with reject files."""

from __future__ import annotations

import csv

import orjson

from tests.factories import jrun


def test_workspace_create_prints_keys_once(cli):
    doc = jrun(cli, "workspace", "create", "studio-a")
    assert set(doc) == {"id", "name", "write_key", "admin_key"}
    again = cli("workspace", "create", "studio-a", ok=False)
    assert again.exit_code == 1 and "already exists" in again.stderr
    assert "Traceback" not in again.output
    bad = cli("workspace", "create", "x", "--timezone", "Mars/Base", ok=False)
    assert bad.exit_code == 1 and "time zone" in bad.stderr


def test_import_events_is_idempotent_with_rejects(cli, tmp_path):
    jrun(cli, "workspace", "create", "studio-b")
    path = tmp_path / "events.jsonl"
    lines = [
        {
            "type": "identify",
            "userId": "m1",
            "traits": {"email": "M1@Example.com"},
            "timestamp": "2026-01-05T10:00:00Z",
        },
        {"type": "track", "userId": "m1", "event": "visit", "timestamp": "2026-01-06T10:00:00Z"},
        {"type": "track", "event": "visit"},
    ]
    path.write_text("\n".join(orjson.dumps(x).decode() for x in lines) + "\n{broken\n")
    first = jrun(cli, "import", "events", str(path), "--workspace", "studio-b")
    assert (first["accepted"], first["rejected"]) == (2, 2)
    rejects = sorted(
        (orjson.loads(x) for x in (tmp_path / "events.jsonl.rejects.jsonl").read_text().splitlines()),
        key=lambda r: r["line"],
    )
    assert [r["line"] for r in rejects] == [3, 4]
    assert "userId" in rejects[0]["reason"] and "JSON" in rejects[1]["reason"]
    second = jrun(cli, "import", "events", str(path), "--workspace", "studio-b")
    assert (second["accepted"], second["duplicates"]) == (0, 2)
    profile = jrun(cli, "profile", "show", "--workspace", "studio-b", "--user-id", "m1")
    assert profile["event_counts"]["total"] == 2
    assert {"type": "email", "value": "m1@example.com"} in profile["identifiers"]
    assert profile["consent"]["email"]["status"] == "unknown"
    events = jrun(cli, "events", "list", "--workspace", "studio-b", "--user-id", "m1")
    assert [e["type"] for e in events] == ["identify", "track"]
    assert events[0]["timestamp"] == "2026-01-05T10:00:00+00:00"


def test_import_transactions_local_time_and_rejects(cli, tmp_path):
    jrun(cli, "workspace", "create", "shop", "--timezone", "America/Los_Angeles")
    path = tmp_path / "sales.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["member", "sold_at", "total", "sku"])
        writer.writerow(["c-1", "03/08/2026 01:30", "49.00", "class-pack"])  # before the DST jump
        writer.writerow(["c-1", "03/08/2026 03:30", "$12.50", "water"])  # after it
        writer.writerow(["c-1", "03/08/2026 03:30", "$12.50", "water"])  # a second identical sale
        writer.writerow(["", "03/08/2026 04:00", "1", "x"])
        writer.writerow(["c-2", "not a date", "1", "x"])
        writer.writerow(["c-2", "03/08/2026 05:00", "abc", "x"])
    args = (
        "import",
        "transactions",
        str(path),
        "-w",
        "shop",
        "--customer-column",
        "member",
        "--timestamp-column",
        "sold_at",
        "--amount-column",
        "total",
        "--timestamp-format",
        "%m/%d/%Y %H:%M",
    )
    first = jrun(cli, *args)
    assert (first["accepted"], first["rejected"]) == (3, 3)
    assert jrun(cli, *args)["accepted"] == 0
    events = jrun(cli, "events", "list", "-w", "shop", "-u", "c-1")
    assert [e["timestamp"] for e in events] == [
        "2026-03-08T09:30:00+00:00",  # 01:30 PST
        "2026-03-08T10:30:00+00:00",  # 03:30 PDT
        "2026-03-08T10:30:00+00:00",
    ]
    assert events[0]["properties"] == {"amount": 49.0, "sku": "class-pack"}
    missing = cli(
        "import",
        "transactions",
        str(path),
        "-w",
        "shop",
        "--customer-column",
        "nope",
        "--timestamp-column",
        "sold_at",
        "--amount-column",
        "total",
        ok=False,
    )
    assert missing.exit_code == 1 and "no column 'nope'" in missing.stderr


def test_dlq_list_and_replay(cli, tmp_path):
    jrun(cli, "workspace", "create", "studio-c")
    path = tmp_path / "bad.jsonl"
    path.write_text(orjson.dumps({"type": "track", "userId": "z", "event": ""}).decode() + "\n")
    jrun(cli, "import", "events", str(path), "-w", "studio-c")
    items = jrun(cli, "dlq", "list", "-w", "studio-c")
    assert len(items) == 1 and items[0]["kind"] == "rejected"
    replay = jrun(cli, "dlq", "replay", "-w", "studio-c")
    assert (replay["replayed"], replay["still_failing"]) == (0, 1)
    missing = cli("dlq", "replay", "-w", "studio-c", "--id", "999", ok=False)
    assert missing.exit_code == 1 and "999" in missing.stderr


def test_lookup_errors_are_one_line(cli):
    jrun(cli, "workspace", "create", "studio-d")
    result = cli("profile", "show", "-w", "studio-d", "-u", "ghost", ok=False)
    assert result.exit_code == 1 and "ghost" in result.stderr and "Traceback" not in result.output
    result = cli("profile", "show", "-w", "nowhere", "-u", "ghost", ok=False)
    assert result.exit_code == 1 and "nowhere" in result.stderr
