from __future__ import annotations

import httpx
import pytest

from signalbox.accounts import service as accounts
from tests.dashboard_factory import PASSWORD


@pytest.fixture
def users(db, workspace, clock):
    """An owner who sees every location and a staff member of loc-01 and loc-02."""
    accounts.create_user(
        db, workspace.id, email="owner@example.com", password=PASSWORD, role="owner", locations=None, clock=clock
    )
    accounts.create_user(
        db,
        workspace.id,
        email="staff@example.com",
        password=PASSWORD,
        role="staff",
        locations=["loc-02", "loc-01"],
        clock=clock,
    )
    return workspace


@pytest.fixture
def browser(clocked_server):
    with httpx.Client(base_url=clocked_server.url, follow_redirects=False, timeout=10) as client:
        yield client


@pytest.fixture
def second_browser(clocked_server):
    with httpx.Client(base_url=clocked_server.url, follow_redirects=False, timeout=10) as client:
        yield client
