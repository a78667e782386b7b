"""When the session cookie is Secure: everywhere except a developer's own machine."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from signalbox.core.settings import Settings
from signalbox.dashboard.web import secure_cookies


def request(scheme: str, host: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": scheme,
            "path": "/login",
            "query_string": b"",
            "headers": [(b"host", host.encode())],
            "server": (host.split(":", maxsplit=1)[0], 80),
        }
    )


@pytest.mark.parametrize(
    ("environment", "scheme", "host", "secure"),
    [
        ("production", "https", "crm.example.com", True),
        ("production", "http", "crm.example.com", True),  # the browser will refuse it: TLS is needed
        ("test", "http", "crm.example.com", True),
        ("production", "https", "127.0.0.1:8000", True),
        ("production", "http", "127.0.0.1:8000", False),
        ("test", "http", "localhost:8000", False),
        ("test", "http", "[::1]:8000", False),
        ("development", "http", "crm.example.com", False),
    ],
)
def test_secure_unless_development_or_plain_http_to_loopback(environment, scheme, host, secure):
    settings = Settings(database_url="sqlite://", environment=environment, secret_key="k" * 40)
    assert secure_cookies(request(scheme, host), settings) is secure
