"""The start page `make demo` points to answers a person's browser with a page that leads somewhere."""

from __future__ import annotations

import re

import httpx


def test_root_is_a_page_with_working_links(live_server):
    r = httpx.get(f"{live_server.url}/start", headers={"Accept": "text/html"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    links = set(re.findall(r'href="([^"]+)"', r.text))
    assert {"/docs", "/healthz", "/openapi.json", "/login"} <= links
    for link in links:
        assert httpx.get(f"{live_server.url}{link}").status_code == 200, link
    assert f"{live_server.url}/v1/track" in r.text  # the first event to send, with this server's address
    assert "/start" in httpx.get(f"{live_server.url}/openapi.json").json()["paths"]


def test_root_escapes_the_host_it_echoes():
    from signalbox.api.app import _home_page

    page = _home_page("http://<script>x</script>")
    assert "<script>" not in page and "&lt;script&gt;" in page
