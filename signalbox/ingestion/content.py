"""JSON content that is valid (RFC 8259) but that a database cannot store as it is.

Reading is lenient, storing is strict: a body that orjson refuses only because of a lone
surrogate escape or a number beyond double range is still JSON, so it is read by the stdlib
parser and each message is checked here. A message holding such a value is rejected with a
reason naming the field path (never cleaned: a cleaned id could become someone else's, and a
cleaned number or string is not what the client meant); its batch-mates land. The dead-letter
table keeps an ASCII-escaped copy of a message that cannot be stored as it is.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

# Deeper structures are a serialised object graph sent by mistake, not analytics; the bound
# also keeps every later step (orjson writes at most 254 levels) and JSONB far from their limits.
MAX_DEPTH = 32
# orjson reads integers up to the unsigned 64-bit range and bigger ones as floats; the
# fallback parser does the same, so one body reads alike on either path.
_INT_RANGE = (-(2**63), 2**64 - 1)
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_$@-]{1,64}")
ESCAPED_KEY = "signalbox_escaped_json"


class UnreadableJSON(ValueError):
    """Not RFC 8259 JSON (or nested beyond what any parser here reads): the whole body is refused."""


def loads(data: bytes | str) -> Any:
    """Parse JSON text; values that no database column can hold are left for `find_problem`."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _loads_leniently(data)


def _loads_leniently(data: bytes | str) -> Any:
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise UnreadableJSON(f"not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_int=_orjson_int)
    except RecursionError:
        raise UnreadableJSON("nested too deeply to read") from None
    except json.JSONDecodeError as exc:
        # The stdlib's complaint, not orjson's: orjson may have stopped at an earlier, readable
        # value (a lone surrogate) before the real fault.
        raise UnreadableJSON(f"{exc.msg} at character {exc.pos}") from None
    except ValueError as exc:
        raise UnreadableJSON(str(exc)) from None


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are JavaScript, not JSON; orjson refuses them too.
    raise ValueError(f"{name} is not a JSON value")


def _orjson_int(text: str) -> int | float:
    if len(text) <= 20:
        number = int(text)
        if _INT_RANGE[0] <= number <= _INT_RANGE[1]:
            return number
    return float(text)  # beyond 1e308 this is inf, which find_problem refuses


def find_problem(value: Any, path: str = "", depth: int = 0) -> str | None:
    """The first value or key under `value` (itself `depth` levels down in its message) that
    cannot be stored, as `path: what is wrong`."""
    # Every message goes through here: orjson's writer first (~1 us), then a walk without paths
    # (~10 us for a 1 KB message), the walk that names the path only for the rare message that
    # holds a problem.
    if _surely_storable(value, depth):
        return None
    return _describe_problem(value, path, depth) if _has_problem(value, depth) else None


def _surely_storable(value: Any, depth: int) -> bool:
    """True only when no walk can find a problem; False means "walk and see". orjson refuses
    lone surrogates and integers beyond the same 64-bit range (`_INT_RANGE`) and writes NUL as
    an escape; what it lets through silently, a non-finite float (written `null`) and depth, is
    ruled out by the absence of `null` in the text and by the count of opening brackets, an
    upper bound on the nesting. A false "walk and see" costs only the walk (the import profile
    had the walk at ~4 % of the import, on messages that almost all pass this check)."""
    try:
        text = orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        return False
    return b"\\u0000" not in text and b"null" not in text and text.count(b"{") + text.count(b"[") <= MAX_DEPTH - depth


def _has_problem(value: Any, depth: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, depth)]
    push, pop = stack.append, stack.pop
    while stack:
        item, level = pop()
        kind = type(item)
        if kind is str:
            if "\x00" in item or not (item.isascii() or _encodes(item)):
                return True
        elif kind is dict:
            if level >= MAX_DEPTH:
                return True
            for key, child in item.items():
                if "\x00" in key or not (key.isascii() or _encodes(key)):
                    return True
                push((child, level + 1))
        elif kind is list:
            if level >= MAX_DEPTH:
                return True
            for child in item:
                push((child, level + 1))
        elif (kind is float or kind is int) and _scalar_problem(item) is not None:
            return True
    return False


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _describe_problem(value: Any, path: str, depth: int) -> str | None:
    stack: list[tuple[Any, str, int]] = [(value, path, depth)]
    while stack:
        item, where, level = stack.pop()
        kind = type(item)
        if kind is dict or kind is list:
            if level >= MAX_DEPTH:
                return f"{where or 'message'}: nested deeper than {MAX_DEPTH} levels"
            if kind is list:
                stack.extend((child, f"{where}[{i}]", level + 1) for i, child in enumerate(item))
                continue
            for key, child in item.items():
                child_path = join(where, key)
                if (problem := text_problem(key)) is not None:
                    return f"{child_path}: the key {problem}"
                stack.append((child, child_path, level + 1))
        elif (problem := _scalar_problem(item)) is not None:
            return f"{where or 'value'}: {problem}"
    return None


def _scalar_problem(item: Any) -> str | None:
    kind = type(item)
    if kind is str:
        return text_problem(item)
    if kind is float and not math.isfinite(item):
        return "is a number beyond double range"
    if kind is int and not _INT_RANGE[0] <= item <= _INT_RANGE[1]:
        return "is an integer beyond 64 bits"
    return None


def text_problem(text: str) -> str | None:
    """Why a string cannot be stored (PostgreSQL text and JSONB hold no NUL; UTF-8 holds no
    lone surrogate, which browsers' JSON.stringify emits for a split emoji), or None."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which the database cannot store"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"contains a lone surrogate (\\u{ord(text[exc.start]):04x}), which is not Unicode text"
    return None


def is_storable_text(text: str, max_length: int) -> bool:
    return len(text) <= max_length and text_problem(text) is None


def join(path: str, key: str) -> str:
    shown = key if _PLAIN_KEY.fullmatch(key) else f"[{json.dumps(key[:64])}]"
    if shown.startswith("["):
        return f"{path}{shown}"
    return f"{path}.{shown}" if path else shown


def safe_text(text: str, limit: int = 2000) -> str:
    """Text that any column and any JSON encoder accepts: NUL and lone surrogates escaped."""
    if text_problem(text) is None:
        return text[:limit]
    return json.dumps(text)[1:-1][:limit]


def storable_copy(message: Any) -> Any:
    """The message itself when it can be stored, else `{ESCAPED_KEY: "<ASCII JSON text>"}`:
    every NUL and lone surrogate written as a `\\u` escape and an infinite number as
    `Infinity`, so the dead-letter write cannot fail on what it keeps."""
    if find_problem(message) is None:
        return message
    try:
        return {ESCAPED_KEY: json.dumps(message, ensure_ascii=True, allow_nan=True)}
    except RecursionError:
        return {ESCAPED_KEY: None, "note": "nested too deeply to keep a copy"}


def unescape(stored: Any) -> Any:
    """A stored dead-letter message as it was received (the inverse of `storable_copy`)."""
    if isinstance(stored, dict) and set(stored) >= {ESCAPED_KEY} and isinstance(stored[ESCAPED_KEY], str):
        # The stdlib reads back the `Infinity` it wrote; find_problem refuses it again.
        return json.loads(stored[ESCAPED_KEY], parse_int=_orjson_int)
    return stored
