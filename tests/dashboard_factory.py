"""Signing in to the dashboard over HTTP the way a browser does, for the dashboard's tests."""

from __future__ import annotations

import re

import httpx

PASSWORD = "correct horse battery"


def login_token(client: httpx.Client) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found and client.cookies.get("sb_login_csrf") == found.group(1)
    return found.group(1)


def post_login(client: httpx.Client, workspace: str, email: str, password: str, **extra: str) -> httpx.Response:
    form = {"csrf_token": login_token(client), "workspace": workspace, "email": email, "password": password, **extra}
    return client.post("/login", data=form)


def session_csrf(client: httpx.Client) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/today").text)
    assert found
    return found.group(1)


def sign_in(client: httpx.Client, workspace: str, email: str, password: str = PASSWORD) -> str:
    """Signs the client in; returns the session's CSRF token for forms and htmx headers."""
    answer = post_login(client, workspace, email, password)
    assert answer.status_code == 303, answer.text
    return session_csrf(client)
