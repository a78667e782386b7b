"""Twilio test helpers: a local stand-in for the Messages API that the official client is
pointed at (`--api-base-url`), and inbound requests signed with the official RequestValidator.

Numbers are fictional (555-01xx) or Twilio's documented test numbers (+15005550006 is the
magic "from" number that is always valid for test credentials)."""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fedcba9876543210" * 2
FROM = "+15005550006"
MEMBER = "+14155550132"
BASE = "https://sb.example.com"


def message_sid() -> str:
    return "SM" + secrets.token_hex(16)


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


def inbound(body: str, sid: str | None = None, sender: str = MEMBER) -> dict[str, str]:
    sid = sid or message_sid()
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "To": FROM,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
    }


def post(server, ws_ref, kind, params, *, signed_url=None, signature=None, token=AUTH_TOKEN, query=""):
    """POST as Twilio does: a form, signed over the public URL with its query (or `signed_url`)."""
    path = f"/webhooks/twilio/{ws_ref}/{kind}" + (f"?{query}" if query else "")
    if signature is None:
        signature = sign(signed_url or f"{BASE}{path}", params, token)
    return httpx.post(f"{server.url}{path}", data=params, headers={"X-Twilio-Signature": signature})


class FakeTwilio:
    """Records what the official client sends and answers like the Messages API."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answer: tuple[int, dict] | None = None  # override: (status, JSON body)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                outer.requests.append(
                    {"path": self.path, "form": form, "authorization": self.headers.get("Authorization")}
                )
                status, doc = outer.answer or (201, outer.message(form))
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def message(form: dict) -> dict:
        sid = message_sid()
        return {
            "sid": sid,
            "account_sid": ACCOUNT_SID,
            "api_version": "2010-04-01",
            "body": form.get("Body"),
            "to": form.get("To"),
            "from": form.get("From"),
            "status": "queued",
            "direction": "outbound-api",
            "num_segments": "1",
            "num_media": "0",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "date_created": "Tue, 13 Jan 2026 16:00:00 +0000",
            "date_updated": "Tue, 13 Jan 2026 16:00:00 +0000",
            "date_sent": None,
            "messaging_service_sid": None,
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}/Media.json"},
        }

    def __enter__(self) -> FakeTwilio:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
