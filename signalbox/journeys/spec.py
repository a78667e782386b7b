"""The playbook and template formats, checked whole before anything is stored.

Every problem is collected with the path it concerns (never only the first), so an author
fixes a file in one pass; nothing the engine could not run passes. The result is a plain,
JSON-ready definition with durations in seconds: the engine never re-parses YAML.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from signalbox.core.yamlsource import Path, Problem
from signalbox.segments.spec import CLOCK, PLAYBOOK_ID, Checker

STEP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
VERBS = ("send", "wait", "wait_until", "wait_for", "branch", "task", "set", "exit")
CHANNELS = ("email", "sms")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ROLES = ("front_desk", "manager", "coach", "owner", "staff")
PRIORITIES = ("low", "normal", "high")


class _Checker(Checker):
    def __init__(self, templates: Mapping[str, str] | None, segments: set[str] | None = None) -> None:
        super().__init__()
        self.templates = templates  # template id -> channel; None: not checked (unit use)
        self.segments = segments  # segment ids; None: not checked (unit use)
        self.step_ids: set[str] = set()
        self.event_trigger = False

    # ---- steps ---------------------------------------------------------------------------

    def steps(self, value: Any, path: Path) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not value:
            self.problem(path, "must be a non-empty list of steps")
            return []
        return [self.step(item, (*path, i)) for i, item in enumerate(value)]

    def step(self, item: Any, path: Path) -> dict[str, Any]:
        if not isinstance(item, dict):
            self.problem(path, "a step must be a mapping with an id and one verb")
            return {}
        step_id = self.text(item.get("id"), (*path, "id"), STEP_ID, "a step id ([a-z0-9_-], up to 64)")
        if step_id is not None:
            if step_id in self.step_ids:
                self.problem((*path, "id"), f"duplicate step id {step_id!r}: ids are unique in a playbook")
            self.step_ids.add(step_id)
        extra = ("on_timeout",) if "wait_for" in item else ()
        verbs = [k for k in item if k in VERBS]
        for key in item:
            if key not in (*VERBS, "id", *extra):
                self.problem(
                    (*path, str(key)), f"unknown step verb or field; a step has an id and one of {', '.join(VERBS)}"
                )
        if len(verbs) != 1:
            if not verbs and all(k in ("id", *extra) for k in item):
                self.problem(path, f"a step needs one verb: {', '.join(VERBS)}")
            elif len(verbs) > 1:
                self.problem(path, f"a step has one verb, this one has {', '.join(verbs)}")
            return {"id": step_id}
        verb = verbs[0]
        check: Callable[[Any, Path], dict[str, Any]] = getattr(self, f"_{verb}")
        out = {"id": step_id, "verb": verb, verb: check(item[verb], (*path, verb))}
        if verb == "wait_for":
            out["on_timeout"] = self.steps(item["on_timeout"], (*path, "on_timeout")) if "on_timeout" in item else []
        return out

    def _send(self, value: Any, path: Path) -> dict[str, Any]:
        keys = ("channel", "template", "window", "fallback", "fallback_template")
        if not self.mapping(value, path, keys, ("channel", "template")):
            return {}
        channel = self.choice(value.get("channel"), (*path, "channel"), CHANNELS)
        template = self.text(value.get("template"), (*path, "template"))
        self.template_for(template, channel, (*path, "template"))
        out: dict[str, Any] = {"channel": channel, "template": template}
        if "window" in value:
            out["window"] = self.window(value["window"], (*path, "window"))
        if "fallback" in value or "fallback_template" in value:
            out.update(self.fallback(value, channel, path))
        return out

    def fallback(self, value: dict[str, Any], channel: str | None, path: Path) -> dict[str, Any]:
        """`fallback: email` with `fallback_template`: the other channel, used when the first has
        no consent or no address."""
        if "fallback" not in value:
            self.problem((*path, "fallback_template"), "fallback_template needs fallback: email or sms")
            return {}
        other = self.choice(value["fallback"], (*path, "fallback"), CHANNELS)
        if other is not None and other == channel:
            self.problem((*path, "fallback"), f"the fallback must be the other channel, not {channel} again")
        if "fallback_template" not in value:
            self.problem((*path, "fallback"), f"fallback: {other} needs fallback_template: a template for {other}")
            return {}
        template = self.text(value["fallback_template"], (*path, "fallback_template"))
        self.template_for(template, other, (*path, "fallback_template"))
        return {"fallback": other, "fallback_template": template}

    def template_for(self, template: str | None, channel: str | None, path: Path) -> None:
        if not template or self.templates is None:
            return
        if template not in self.templates:
            self.problem(path, f"no template {template!r} in this workspace: apply it first")
        elif channel and self.templates[template] != channel:
            self.problem(path, f"template {template!r} is for {self.templates[template]}, not {channel}")

    def window(self, value: Any, path: Path) -> list[str] | None:
        parts = value.split("-") if isinstance(value, str) else []
        if len(parts) != 2 or not all(CLOCK.match(p) for p in parts) or parts[0] >= parts[1]:
            self.problem(path, f"{value!r} is not a window like 08:00-21:00")
            return None
        return parts

    def _wait(self, value: Any, path: Path) -> dict[str, Any]:
        return {"seconds": self.seconds(value, path)}

    def _wait_until(self, value: Any, path: Path) -> dict[str, Any]:
        if not self.mapping(value, path, ("time", "days", "if_past"), ("time",)):
            return {}
        out: dict[str, Any] = {"time": self.clock(value.get("time"), (*path, "time"))}
        days = value.get("days")
        if days is not None:
            if not isinstance(days, list) or not days or any(d not in DAYS for d in days):
                self.problem((*path, "days"), f"must be a list of {', '.join(DAYS)}")
            out["days"] = days
        out["if_past"] = self.choice(value.get("if_past", "next_day"), (*path, "if_past"), ("next_day", "skip"))
        return out

    def _wait_for(self, value: Any, path: Path) -> dict[str, Any]:
        if not self.mapping(value, path, ("event", "match", "timeout"), ("event", "timeout")):
            return {}
        out: dict[str, Any] = {
            "event": self.text(value.get("event"), (*path, "event")),
            "timeout": self.seconds(value.get("timeout"), (*path, "timeout")),
        }
        if "match" in value:
            out["match"] = self.match(value["match"], (*path, "match"))
        return out

    def match(self, value: Any, path: Path) -> str | None:
        prop = self.text(value, path)
        if prop and not self.event_trigger:
            self.problem(path, "can never match: match compares with the trigger event, and this trigger has none")
        return prop

    def _branch(self, value: Any, path: Path) -> dict[str, Any]:
        if not isinstance(value, list) or not value:
            self.problem(path, "must be a list of {when, steps} ending with an else")
            return {"arms": [], "else": []}
        arms: list[dict[str, Any]] = []
        otherwise: list[dict[str, Any]] | None = None
        for i, arm in enumerate(value):
            here = (*path, i)
            if isinstance(arm, dict) and "else" in arm:
                if i != len(value) - 1:
                    self.problem(here, "else must be the last arm of a branch")
                body = arm["else"]
                if self.mapping(body, (*here, "else"), ("steps",), ("steps",)):
                    # An empty else is allowed and explicit: "otherwise, go on".
                    empty = body.get("steps") == []
                    otherwise = [] if empty else self.steps(body.get("steps"), (*here, "else", "steps"))
                continue
            if not self.mapping(arm, here, ("when", "steps"), ("when", "steps")):
                continue
            arms.append(
                {
                    "when": self.condition(arm.get("when"), (*here, "when"), event_ok=self.event_trigger),
                    "steps": self.steps(arm.get("steps"), (*here, "steps")),
                }
            )
        if otherwise is None:
            self.problem(path, "a branch must end with an else arm (what happens when nothing matches)")
        return {"arms": arms, "else": otherwise or []}

    def _task(self, value: Any, path: Path) -> dict[str, Any]:
        allowed = ("title", "role", "location", "sla", "priority")
        if not self.mapping(value, path, allowed, ("title", "role", "sla")):
            return {}
        return {
            "title": self.text(value.get("title"), (*path, "title")),
            "role": self.choice(value.get("role"), (*path, "role"), ROLES),
            "location": self.text(value.get("location", "home"), (*path, "location")),
            "sla": self.seconds(value.get("sla"), (*path, "sla")),
            "priority": self.choice(value.get("priority", "normal"), (*path, "priority"), PRIORITIES),
        }

    def _set(self, value: Any, path: Path) -> dict[str, Any]:
        if not isinstance(value, dict) or not value:
            self.problem(path, "must be a mapping of traits.NAME: value")
            return {}
        for key, item in value.items():
            if not str(key).startswith("traits.") or len(str(key)) <= len("traits."):
                self.problem((*path, str(key)), "set writes traits only: traits.NAME")
            if isinstance(item, dict | list):
                self.problem((*path, str(key)), "a trait value is a string, number, boolean or null")
        return {str(k): v for k, v in value.items()}

    def _exit(self, value: Any, path: Path) -> dict[str, Any]:
        if value is True or value is None:
            return {}
        if not self.mapping(value, path, ("reason",)):
            return {}
        return {"reason": self.text(value.get("reason"), (*path, "reason"))}


def check_playbook(
    data: Any, templates: Mapping[str, str] | None = None, segments: set[str] | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """Validate a parsed playbook; returns its definition and every problem found."""
    c = _Checker(templates, segments)
    top = ("playbook", "name", "purpose", "trigger", "entry", "holdout", "goals", "steps", "description")
    if not c.mapping(data, (), top, ("playbook", "name", "purpose", "trigger", "steps")):
        return {}, c.problems
    out: dict[str, Any] = {
        "playbook": c.text(data.get("playbook"), ("playbook",), PLAYBOOK_ID, "an id like failed-payment-recovery"),
        "name": c.text(data.get("name"), ("name",)),
        "purpose": c.choice(data.get("purpose"), ("purpose",), ("transactional", "marketing")),
    }
    out["trigger"] = _trigger(c, data.get("trigger"))
    out["entry"] = _entry(c, data.get("entry", {}))
    out["holdout"] = _holdout(c, data.get("holdout", "10%"))
    out["goals"] = _goals(c, data.get("goals", []))
    out["steps"] = c.steps(data.get("steps"), ("steps",))
    return out, c.problems


def _trigger(c: _Checker, value: Any) -> dict[str, Any]:
    path: Path = ("trigger",)
    if not c.mapping(value, path, ("event", "where", "enters", "date")):
        return {}
    kinds = [k for k in ("event", "enters", "date") if k in value]
    if len(kinds) != 1:
        c.problem(path, f"needs exactly one of event, enters, date (found {', '.join(kinds) or 'none'})")
        return {}
    kind = kinds[0]
    c.event_trigger = kind == "event"
    if "where" in value and kind != "event":
        c.problem((*path, "where"), "where filters an event trigger; this trigger has no event")
    if kind == "event":
        out: dict[str, Any] = {"event": c.text(value["event"], (*path, "event"))}
        if "where" in value:
            out["where"] = c.condition(value["where"], (*path, "where"), event_ok=True)
        return out
    if kind == "enters":
        enters = value["enters"]
        if isinstance(enters, dict) and set(enters) == {"segment"}:
            name = c.text(enters["segment"], (*path, "enters", "segment"))
            if name and c.segments is not None and name not in c.segments:
                c.problem((*path, "enters", "segment"), f"no segment {name!r} in this workspace: apply it first")
            return {"enters": {"segment": name}}
        return {"enters": c.condition(enters, (*path, "enters"), event_ok=False)}
    return _date_trigger(c, value["date"], (*path, "date"))


def _date_trigger(c: _Checker, date_spec: Any, here: Path) -> dict[str, Any]:
    if not c.mapping(date_spec, here, ("trait", "offset", "at"), ("trait",)):
        return {}
    return {
        "date": {
            "trait": c.text(date_spec.get("trait"), (*here, "trait")),
            "offset": c.seconds(date_spec.get("offset", "0d"), (*here, "offset"), signed=True),
            "at": c.clock(date_spec.get("at", "09:00"), (*here, "at")),
        }
    }


def _entry(c: _Checker, value: Any) -> dict[str, Any]:
    path: Path = ("entry",)
    if not c.mapping(value, path, ("key", "reentry", "cooldown")):
        return {}
    out: dict[str, Any] = {
        "key": None,
        "reentry": c.choice(value.get("reentry", "once"), (*path, "reentry"), ("once", "after_exit", "every_time")),
        "cooldown": None,
    }
    if "key" in value:
        key = c.text(value["key"], (*path, "key"))
        if key:
            c.field_path(key, (*path, "key"), event_ok=c.event_trigger)
        out["key"] = key
    if "cooldown" in value:
        if out["reentry"] != "after_exit":
            c.problem((*path, "cooldown"), "cooldown applies only with reentry: after_exit")
        out["cooldown"] = c.seconds(value["cooldown"], (*path, "cooldown"))
    return out


def _holdout(c: _Checker, value: Any) -> float | None:
    text = str(value).strip()
    number = text[:-1] if text.endswith("%") else None
    try:
        share = float(number) / 100 if number is not None else None
    except ValueError:
        share = None
    if share is None or not 0 <= share <= 0.9:
        c.problem(("holdout",), f"{value!r} is not a share like 10% (0% to 90%)")
        return None
    return share


def _goals(c: _Checker, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        c.problem(("goals",), "must be a list of {event, match?}")
        return []
    out: list[dict[str, Any]] = []
    for i, goal in enumerate(value):
        path: Path = ("goals", i)
        if not c.mapping(goal, path, ("event", "match", "where"), ("event",)):
            continue
        item: dict[str, Any] = {"event": c.text(goal.get("event"), (*path, "event"))}
        if "match" in goal:
            item["match"] = c.match(goal["match"], (*path, "match"))
        if "where" in goal:
            item["where"] = c.condition(goal["where"], (*path, "where"), event_ok=True)
        out.append(item)
    return out


_JINJA = SandboxedEnvironment(autoescape=False)


def check_template(data: Any) -> tuple[dict[str, Any], list[Problem]]:
    """Validate a parsed message template; the Jinja2 source must compile in the sandbox."""
    c = _Checker(None)
    if not c.mapping(
        data, (), ("template", "channel", "subject", "body", "html", "description"), ("template", "channel", "body")
    ):
        return {}, c.problems
    channel = c.choice(data.get("channel"), ("channel",), CHANNELS)
    out: dict[str, Any] = {
        "template": c.text(data.get("template"), ("template",), PLAYBOOK_ID, "an id like payment-failed-1"),
        "channel": channel,
    }
    if channel == "email" and "subject" not in data:
        c.problem(("subject",), "an email template needs a subject")
    if channel == "sms":
        for key in ("subject", "html"):
            if key in data:
                c.problem((key,), f"an sms template has no {key}")
    for key in ("subject", "body", "html"):
        if key in data:
            source = c.text(data[key], (key,))
            if source is not None:
                try:
                    _JINJA.parse(source)
                except TemplateSyntaxError as exc:
                    c.problem((key,), f"template syntax: {exc.message} (line {exc.lineno} of the {key})")
            out[key] = source
    return out, c.problems
