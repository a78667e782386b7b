"""`changes list|status|trim` and `--stale` through the CLI."""

from __future__ import annotations

import orjson

from tests.factories import jrun


def test_stale_runs_and_the_change_log_commands(cli, tmp_path):
    jrun(cli, "workspace", "create", "chg")
    path = tmp_path / "events.jsonl"
    lines = [
        {"type": "track", "userId": f"m-{n}", "event": "visit", "timestamp": "2026-02-20T15:00:00+00:00"}
        for n in range(3)
    ]
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    jrun(cli, "import", "events", str(path), "-w", "chg")
    assert jrun(cli, "traits", "compute", "-w", "chg", "--as-of", "2026-03-01", "--stale")["profiles"] == 3
    assert jrun(cli, "traits", "compute", "-w", "chg", "--as-of", "2026-03-01", "--stale")["profiles"] == 0

    listed = jrun(cli, "changes", "list", "-w", "chg", "--kind", "event")
    assert [c["name"] for c in listed] == ["visit"] * 3 and [c["seq"] for c in listed] == [1, 2, 3]
    assert jrun(cli, "changes", "list", "-w", "chg", "--after", "2") == listed[2:]
    status = jrun(cli, "changes", "status", "-w", "chg")
    assert status == {"head": 3, "trimmed_through": 0, "rows": 3, "consumers": {"traits": 3}}
    assert jrun(cli, "changes", "trim", "-w", "chg") == {"deleted": 0, "trimmed_through": 0}

    bad = cli("changes", "list", "-w", "chg", "--kind", "visit", ok=False)
    assert bad.exit_code != 0 and "not one of" in bad.stderr and "Traceback" not in bad.output
    bad = cli("changes", "trim", "-w", "chg", "--keep-days", "40", ok=False)
    assert bad.exit_code != 0 and "--max-days" in bad.stderr
