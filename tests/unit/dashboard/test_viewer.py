from __future__ import annotations

import pytest

from signalbox.core.errors import NotFoundError
from signalbox.dashboard.access import Viewer


def test_a_scoped_viewer_sees_only_their_locations_and_nothing_without_one():
    staff = Viewer("ws", "s@example.com", "staff", ("loc-01",), "token")
    assert staff.sees("loc-01") and not staff.sees("loc-02") and not staff.sees(None)
    assert staff.scope() == ("loc-01",) and staff.scope("loc-01") == ("loc-01",)
    with pytest.raises(NotFoundError):
        staff.scope("loc-02")
    with pytest.raises(NotFoundError):
        staff.check(None)
    owner = Viewer("ws", "o@example.com", "owner", None, None)
    assert owner.sees(None) and owner.scope() is None and owner.scope("loc-09") == ("loc-09",)
    assert owner.csrf_token is None and staff.csrf_token
