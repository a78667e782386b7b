"""Valid JSON that no database column can hold: read it, then name where the problem is."""

from __future__ import annotations

import pytest

from signalbox.ingestion import content


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def test_orjson_refusals_that_are_still_json_are_read_by_the_fallback():
    doc = content.loads(b'{"a": "x\\ud800", "b": 1e400, "c": -1e400, "d": 123456789012345678901234567890}')
    assert doc["a"] == "x\ud800"
    assert doc["b"] == float("inf") and doc["c"] == float("-inf")
    # Like orjson: integers beyond 64 bits read as floats, so both parsers agree.
    assert doc["d"] == pytest.approx(1.2345678901234568e29)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"a": NaN}', b'{"a": Infinity}', b'{"a": "\xff"}', b"[" * 100_000, b'{"a": 1,}'],
)
def test_what_is_not_json_stays_unreadable(body):
    with pytest.raises(content.UnreadableJSON):
        content.loads(body)


@pytest.mark.parametrize(
    ("value", "where", "what"),
    [
        ({"userId": "a\x00b"}, "userId", "NUL"),
        ({"properties": {"x": ["ok", {"y": "\ud83d"}]}}, "properties.x[1].y", "lone surrogate (\\ud83d)"),
        ({"properties": {"a\x00b": 1}}, 'properties["a\\u0000b"]', "key contains a NUL"),
        ({"traits": {"\udc00": 1}}, 'traits["\\udc00"]', "key contains a lone surrogate"),
        ({"properties": {"n": float("inf")}}, "properties.n", "beyond double range"),
        ({"properties": {"n": 2**70}}, "properties.n", "beyond 64 bits"),
        ({"context": nested(40)}, "context" + ".a" * 31, "nested deeper than 32"),
        ({"properties": {"dotted.key": [[["\x00"]]]}}, 'properties["dotted.key"][0][0][0]', "NUL"),
    ],
)
def test_find_problem_names_the_path(value, where, what):
    problem = content.find_problem(value)
    assert problem is not None
    assert problem.startswith(f"{where}: ")
    assert what in problem


def test_clean_values_pass_and_depth_counts_from_where_a_value_sits():
    assert content.find_problem({"p": {"s": "café ☕ 😀", "n": 2**63, "f": 1.5, "b": True, "z": None}}) is None
    assert content.find_problem(nested(31)) is None
    assert content.find_problem(nested(31), "context", depth=1) is not None


def test_the_quick_check_passes_only_what_the_walk_passes():
    typical = {"type": "track", "event": "visit", "properties": {"amount": 12.5, "tags": ["a", "b"]}}
    assert content._surely_storable(typical, 0)  # the common case must take the quick path
    problems = [
        {"userId": "a\x00b"},
        {"k\x00": 1},
        {"s": "\ud83d"},
        {"n": float("nan")},
        {"n": float("-inf")},
        {"n": 2**64},
        {"n": -(2**63) - 1},
        nested(32),
        [[[[]]]] * 1 + [nested(31)],
    ]
    for value in problems:
        assert not content._surely_storable(value, 0), value
        assert content.find_problem(value) is not None, value
    # Depth counts from where the value sits: 31 levels pass at the top, not one level down.
    assert content._surely_storable(nested(31), 0)
    assert not content._surely_storable(nested(31), 1)
    # Text the quick check cannot vouch for is walked, and passes when it is fine.
    fine_but_walked = [{"z": None}, {"s": "nullable"}, {"s": "\\u0000 as text"}, {"n": 2**64 - 1, "m": -(2**63)}]
    for value in fine_but_walked:
        assert content.find_problem(value) is None, value
    assert content._surely_storable({"n": 2**64 - 1, "m": -(2**63)}, 0)


def test_storable_copy_escapes_and_unescape_gives_the_message_back():
    message = {"userId": "u\x00", "properties": {"s": "\ud800", "n": float("inf"), "k\x00": 1}}
    stored = content.storable_copy(message)
    assert stored == {content.ESCAPED_KEY: stored[content.ESCAPED_KEY]}
    assert stored[content.ESCAPED_KEY].isascii() and "\x00" not in stored[content.ESCAPED_KEY]
    assert content.unescape(stored) == message
    clean = {"userId": "u"}
    assert content.storable_copy(clean) is clean and content.unescape(clean) is clean


def test_safe_text_escapes_only_what_cannot_be_stored():
    assert content.safe_text("café") == "café"
    assert content.safe_text("a\x00\ud800") == "a\\u0000\\ud800"
