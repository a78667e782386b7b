"""Signal commands end to end: traits, scores, backtest, knobs, the band call list (CLI and API)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import orjson

from signalbox.workspaces import service as workspaces
from tests.factories import jrun


def _history(path) -> None:
    start = datetime(2026, 1, 1, 15, tzinfo=UTC)
    lines = []
    for n in range(4):
        user = f"m-{n}"
        zone = "America/Los_Angeles" if n % 2 else "America/Chicago"
        lines.append(
            {
                "type": "identify",
                "userId": user,
                "traits": {"timezone": zone, "plan": "basic"},
                "timestamp": start.isoformat(),
            }
        )
        # m-0 and m-1 stop coming at the end of January; m-2 and m-3 keep a weekly rhythm.
        days = range(0, 30, 3) if n < 2 else range(0, 120, 3)
        lines += [
            {"type": "track", "userId": user, "event": "visit", "timestamp": (start + timedelta(days=d)).isoformat()}
            for d in days
        ]
    lines.append(
        {
            "type": "track",
            "userId": "m-0",
            "event": "payment_failed",
            "properties": {"amount": 49},
            "timestamp": datetime(2026, 3, 20, 7, tzinfo=UTC).isoformat(),
        }
    )
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines))


def test_traits_scores_backtest_and_band_list(cli, tmp_path):
    jrun(cli, "workspace", "create", "sig")
    path = tmp_path / "history.jsonl"
    _history(path)
    assert jrun(cli, "import", "events", str(path), "-w", "sig")["accepted"] == 4 + 2 * 10 + 2 * 40 + 1

    traits = jrun(cli, "traits", "compute", "-w", "sig", "--as-of", "2026-03-31")
    assert traits["as_of"] == "2026-03-31" and traits["profiles"] == 4

    run = jrun(cli, "scores", "compute", "-w", "sig", "--as-of", "2026-03-31")
    assert set(run) == {"as_of", "profiles", "unscored", "bands", "seconds"}
    assert run["bands"] == {"Low": 2, "Medium": 0, "High": 2}

    high = jrun(cli, "profile", "list", "-w", "sig", "--band", "High")
    assert [d["user_id"] for d in high] == ["m-0", "m-1"]  # m-0 also has a failed payment
    assert high[0]["at_risk_score"] > high[1]["at_risk_score"]
    shown = jrun(cli, "profile", "show", "-w", "sig", "-u", "m-0")
    assert shown["at_risk_band"] == "High" and shown["score_as_of"] == "2026-03-31"
    assert {c["component"] for c in shown["at_risk_components"]} == {
        "recency",
        "frequency_change",
        "payment_friction",
        "engagement_decay",
        "support_sentiment",
    }
    assert shown["computed_traits"]["timezone"] == "America/Chicago"

    report = jrun(cli, "scores", "backtest", "-w", "sig", "--as-of", "2026-03-05", "--horizon-days", "20")
    assert report["population"] == 4 and report["churned"] == 2
    assert report["bands"]["High"] == {"profiles": 2, "churned": 2, "precision": 1.0, "recall": 1.0}

    knobs = jrun(cli, "scores", "settings", "-w", "sig", "--payment-weight", "1.5")
    assert knobs["payment_weight"] == 1.5 and knobs["recency_sensitivity"] == 1.0


def test_signal_commands_refuse_bad_input(cli):
    jrun(cli, "workspace", "create", "sig-bad")
    for args, message in [
        (("scores", "compute", "-w", "sig-bad", "--as-of", "2026-13-01"), "not a date"),
        (("scores", "compute", "-w", "sig-bad", "--as-of", "2999-01-01"), "future"),
        (("scores", "settings", "-w", "sig-bad", "--payment-weight", "7"), "payment_weight"),
        (("scores", "settings", "-w", "sig-bad", "--medium-threshold", "60"), "below high_threshold"),
        (("profile", "list", "-w", "sig-bad", "--band", "Severe"), "Low, Medium, High"),
        (("scores", "backtest", "-w", "nope", "--as-of", "2026-01-01"), "no workspace"),
    ]:
        result = cli(*args, ok=False)
        assert result.exit_code != 0 and message in result.output + result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output


def test_api_lists_one_band_with_a_cursor(cli, tmp_path, live_server, db):
    created = jrun(cli, "workspace", "create", "sig-api")
    path = tmp_path / "history.jsonl"
    _history(path)
    jrun(cli, "import", "events", str(path), "-w", "sig-api")
    jrun(cli, "scores", "compute", "-w", "sig-api", "--as-of", "2026-03-31")
    headers = {"Authorization": f"Bearer {created['admin_key']}"}
    first = httpx.get(f"{live_server.url}/api/v1/profiles", params={"band": "High", "limit": 1}, headers=headers)
    assert first.status_code == 200, first.text
    page = first.json()
    assert [p["user_id"] for p in page["items"]] == ["m-0"] and page["next_cursor"]
    second = httpx.get(
        f"{live_server.url}/api/v1/profiles",
        params={"band": "High", "limit": 1, "cursor": page["next_cursor"]},
        headers=headers,
    ).json()
    assert [p["user_id"] for p in second["items"]] == ["m-1"]
    bad = httpx.get(f"{live_server.url}/api/v1/profiles", params={"band": "Severe"}, headers=headers)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_request"
    assert workspaces.get_workspace(db, "sig-api").name == "sig-api"
