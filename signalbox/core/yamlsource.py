"""YAML read with the line of every key, so each problem can be reported as PATH:LINE."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    path: Path
    message: str


@dataclass
class Source:
    """A parsed document and the 1-based line where each path starts."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        # A missing key is reported on its nearest ancestor that exists.
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1


class SourceError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


def dotted(path: Path) -> str:
    """`steps[1].wait_for.timeout`: keys dotted, list indices in brackets."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def load(text: str) -> Source:
    """Parse one YAML document with the safe loader, keeping lines. Raises SourceError."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return _raise(mark.line + 1 if mark else 1, f"not valid YAML: {exc.problem or exc.context}")
    except yaml.YAMLError as exc:
        return _raise(1, f"not valid YAML: {exc}")
    source = Source(data)
    if node is not None:
        _walk(node, (), source.lines)
    return source


def _raise(line: int, message: str) -> Source:
    raise SourceError(line, message)


def _walk(node: Node, path: Path, lines: dict[Path, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode):
                child = (*path, str(key.value))
                lines[child] = key.start_mark.line + 1
                _walk(value, child, lines)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines)
