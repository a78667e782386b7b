"""`pg_array`: the array literal PostgreSQL reads back as exactly the values given."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from signalbox.core.db import Database, pg_array
from tests.conftest import _pg_url
from tests.factories import make_settings

AWKWARD = [
    "prof_01",
    "",
    None,
    "NULL",
    "null",
    'say "hi"',
    "back\\slash",
    "\\n is not a newline",
    "a,b",
    "{braces}",
    " padded ",
    "zoë 日本 🙂",
    '{"k": "v\\u0041", "n": [1, null]}',
]
CONTROL = ["tab\there", "line\nbreak", "bell\x07", "cr\r", "\x1f"]


@pytest.mark.parametrize("values", [AWKWARD, CONTROL, AWKWARD + CONTROL, [], [None], ["x"] * 3], ids=str)
@pytest.mark.postgres
def test_the_literal_reads_back_as_the_values(pg_schema_factory: list[str], values: list[str | None]) -> None:
    db = Database(make_settings(_pg_url(pg_schema_factory)))
    try:
        with db.session() as s:
            back = s.execute(text("SELECT CAST(:a AS text[])"), {"a": pg_array(values)}).scalar_one()
    finally:
        db.dispose()
    assert back == values


def test_any_iterable_gives_the_same_literal() -> None:
    assert pg_array(iter(AWKWARD + CONTROL)) == pg_array(AWKWARD + CONTROL)
    assert pg_array(v for v in ["a", None]) == '{"a",null}'
