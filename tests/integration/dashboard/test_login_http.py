"""The dashboard's sign-in over real HTTP on loopback: redirects, cookie flags, CSRF on every
POST, the rate limit, and pages and docs that load nothing from a CDN."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx

from signalbox.accounts import service as accounts
from tests.dashboard_factory import PASSWORD, login_token, post_login, session_csrf


def test_without_a_session_every_page_leads_to_the_login_form(browser):
    for path in ("/", "/today"):
        r = browser.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/login", path
    form = browser.get("/login")
    assert form.status_code == 200 and form.headers["content-type"].startswith("text/html")
    for field in ("workspace", "email", "password", "csrf_token"):
        assert f'name="{field}"' in form.text
    assert form.headers["cache-control"] == "no-store" and form.headers["x-frame-options"] == "DENY"
    # Laid out for a phone: the device's width, not a zoomed-out desktop page.
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in form.text


def test_login_form_prefills_the_workspace_from_the_link(browser):
    assert 'value="north&lt;side"' in browser.get("/login", params={"workspace": "north<side"}).text


def test_wrong_password_answers_401_with_the_form_and_no_session(browser, users):
    r = post_login(browser, users.name, "owner@example.com", "wrong password!")
    assert r.status_code == 401 and "The workspace, e-mail or password is not right." in r.text
    assert 'value="owner@example.com"' in r.text and "wrong password!" not in r.text
    assert "sb_session" not in r.cookies
    assert browser.get("/").headers["location"] == "/login"


def test_good_password_sets_a_hardened_session_cookie_and_shows_today(browser, users):
    r = post_login(browser, users.name, "Staff@Example.com", PASSWORD)
    assert r.status_code == 303 and r.headers["location"] == "/today"
    cookies = r.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("sb_session="))
    flags = {part.strip().lower() for part in session.split(";")}
    assert {"httponly", "samesite=lax", "path=/"} <= flags
    assert f"max-age={int(accounts.SESSION_LIFETIME.total_seconds())}" in flags
    # Plain http to loopback (a developer's machine): Secure would keep some browsers from sending it back.
    assert "secure" not in flags
    assert any(c.startswith('sb_login_csrf=""') or "sb_login_csrf=;" in c for c in cookies)

    assert browser.get("/").headers["location"] == "/today"
    today = browser.get("/today")
    assert today.status_code == 200
    assert "staff@example.com" in today.text and "staff" in today.text
    assert "<li>loc-02</li><li>loc-01</li>" in today.text and "All locations" not in today.text
    assert browser.get("/login").headers["location"] == "/today"


def test_the_cookie_is_secure_when_the_request_came_over_https(browser, users):
    # uvicorn believes X-Forwarded-Proto from loopback, as from a TLS-terminating proxy there.
    form = {"csrf_token": login_token(browser), "workspace": users.name, "email": "owner@example.com"}
    r = browser.post("/login", data={**form, "password": PASSWORD}, headers={"X-Forwarded-Proto": "https"})
    assert r.status_code == 303
    session = next(c for c in r.headers.get_list("set-cookie") if c.startswith("sb_session="))
    assert "secure" in {part.strip().lower() for part in session.split(";")}


def test_an_owner_sees_every_location(browser, users):
    post_login(browser, users.name, "owner@example.com", PASSWORD)
    assert "All locations" in browser.get("/today").text


def test_login_without_its_double_submit_token_is_refused(browser, users):
    login_token(browser)
    form = {"workspace": users.name, "email": "owner@example.com", "password": PASSWORD}
    assert browser.post("/login", data={**form, "csrf_token": "forged"}).status_code == 403
    assert browser.post("/login", data=form).status_code == 403
    browser.cookies.clear()
    # A token from the form but no cookie: what another site posting the form would have.
    r = httpx.post(f"{browser.base_url}/login", data={**form, "csrf_token": "x" * 43})
    assert r.status_code == 403 and "sb_session" not in r.cookies


def test_logout_needs_the_session_csrf_token(browser, users):
    post_login(browser, users.name, "owner@example.com", PASSWORD)
    assert browser.post("/logout").status_code == 403
    assert browser.post("/logout", data={"csrf_token": "0" * 64}).status_code == 403
    assert browser.get("/today").status_code == 200  # still signed in

    r = browser.post("/logout", data={"csrf_token": session_csrf(browser)})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert browser.get("/today").headers["location"] == "/login"


def test_logout_accepts_the_token_as_htmx_sends_it(browser, users):
    post_login(browser, users.name, "owner@example.com", PASSWORD)
    token = session_csrf(browser)
    assert f'hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'' in browser.get("/today").text
    assert browser.post("/logout", headers={"X-CSRF-Token": token}).status_code == 303
    assert browser.get("/").headers["location"] == "/login"


def test_an_ended_session_cookie_no_longer_opens_pages(browser, users, db, clock):
    post_login(browser, users.name, "owner@example.com", PASSWORD)
    stolen = browser.cookies.get("sb_session")
    accounts.disable_user(db, users.id, "owner@example.com", clock)
    with httpx.Client(base_url=str(browser.base_url), cookies={"sb_session": stolen}) as other:
        r = other.get("/today", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_the_session_expires_with_the_server_clock(browser, users, clock):
    post_login(browser, users.name, "owner@example.com", PASSWORD)
    clock.advance(accounts.SESSION_LIFETIME)
    assert browser.get("/today").headers["location"] == "/login"


def test_five_failures_then_429_with_retry_after(browser, users, clock):
    for _ in range(accounts.MAX_FAILURES):
        assert post_login(browser, users.name, "owner@example.com", "wrong password!").status_code == 401
    r = post_login(browser, users.name, "owner@example.com", PASSWORD)
    assert r.status_code == 429 and int(r.headers["retry-after"]) == 15 * 60 + 1
    assert "Too many failed sign-ins" in r.text and "sb_session" not in r.cookies
    clock.advance(timedelta(minutes=15))
    assert post_login(browser, users.name, "owner@example.com", PASSWORD).status_code == 303


def test_an_oversized_form_is_refused(browser, users):
    r = browser.post("/login", data={"csrf_token": login_token(browser), "password": "x" * 20_000})
    assert r.status_code == 413


def test_pages_and_docs_load_their_assets_from_this_server(browser, users):
    pages = [browser.get("/login").text, browser.get("/docs").text]
    post_login(browser, users.name, "owner@example.com", PASSWORD)
    pages.append(browser.get("/today").text)
    for html in pages:
        for url in re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html):
            assert url.startswith("/"), url
        assert "cdn" not in html.lower() and "https://" not in html
    docs = pages[1]
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', docs)
    assert {"/static/vendor/swagger-ui-bundle.js", "/static/vendor/swagger-ui.css"} <= set(assets)
    for asset in [*assets, "/static/vendor/htmx.min.js", "/static/dashboard.css"]:
        r = browser.get(asset)
        assert r.status_code == 200 and len(r.content) > 500, asset
    assert browser.get("/redoc").status_code == 404
    assert browser.get("/static/../accounts/service.py").status_code == 404
