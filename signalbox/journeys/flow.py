"""A checked playbook definition as the engine walks it: steps by id and what comes next."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Flow:
    key: str
    version: int
    definition: dict[str, Any]
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The step that follows each one when it finishes (None: the playbook ends).
    after: dict[str, str | None] = field(default_factory=dict)
    start_seq: int = 0  # triggers act on changes after this one only

    @classmethod
    def of(cls, key: str, version: int, definition: dict[str, Any], start_seq: int = 0) -> Flow:
        flow = cls(key, version, definition, start_seq=start_seq)
        flow._index(definition["steps"], None)
        return flow

    def _index(self, steps: list[dict[str, Any]], then: str | None) -> None:
        """Step ids are unique in a playbook, so a position is just a step id. A nested list
        (a branch arm, on_timeout) continues after the step that holds it."""
        for i, step in enumerate(steps):
            following = steps[i + 1]["id"] if i + 1 < len(steps) else then
            self.steps[step["id"]] = step
            self.after[step["id"]] = following
            if step["verb"] == "branch":
                for arm in step["branch"]["arms"]:
                    self._index(arm["steps"], following)
                self._index(step["branch"]["else"], following)
            elif step["verb"] == "wait_for":
                self._index(step["on_timeout"], following)

    @property
    def first(self) -> str:
        return str(self.definition["steps"][0]["id"])

    @property
    def purpose(self) -> str:
        return str(self.definition["purpose"])

    def goals(self) -> list[dict[str, Any]]:
        return list(self.definition.get("goals", []))
