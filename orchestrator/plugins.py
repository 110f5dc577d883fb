"""Named smoke checks and post-apply hooks, and how a manifest calls them.

A unit's entry in stack.toml names each by `check = "..."` or `hook = "..."`;
every other key is an argument of the function:

- a string is the name of one of the unit's outputs (`ids = "nat_gateway_ids"`);
- `"settings.NAME"` is an environment setting (`count = "settings.az_count"`);
- `{ value = ... }` is a literal; numbers, bools and lists are literals too.

`when = "SETTING"` (a bool setting) switches an entry on; `name = "..."` is the
label shown in results (default: the check's name).

The library ships the checks and hooks in `orchestrator.library`; a project
adds its own as Python entry points in the groups `orchestrator.checks` and
`orchestrator.hooks`. Every entry is bound when the manifest loads, so an
unknown name, a missing or unknown argument, or an output the unit does not
declare is a ConfigError before any terraform runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from orchestrator.errors import ConfigError

GROUPS = {"check": "orchestrator.checks", "hook": "orchestrator.hooks"}
RESERVED = {"check", "hook", "name", "when"}


class MissingOutput(LookupError):
    """A check's or hook's argument names an output the unit's state does not have."""


class NotYet(Exception):
    """A check's resource may still be converging: the check is tried again (bounded)."""


class Fail(Exception):
    """A check found something definitely wrong."""


# How long a check may keep saying NotYet before it fails, unless its function says otherwise
# (converges_within). Most of what a check reads is settled when terraform's apply returns.
DEFAULT_CHECK_BUDGET = 60.0


def converges_within(seconds: float):
    """Declares how long what a check reads may take on AWS to settle after an apply (the
    check's budget of NotYet retries): size it from AWS's documented behaviour, not from the
    emulator's speed."""

    def mark(fn):
        fn.converge_seconds = float(seconds)
        return fn

    return mark


@dataclass(frozen=True)
class HookResult:
    name: str
    changed: bool
    detail: str


@dataclass(frozen=True)
class Context:
    """What a check or hook gets besides its arguments."""

    aws: Any
    settings: Mapping[str, Any]
    redactor: Any = None


@dataclass(frozen=True)
class Call:
    """One manifest entry, bound: the function, and where each argument comes from."""

    kind: str  # "check" or "hook"
    function: str
    label: str
    unit: str
    args: tuple[tuple[str, str, Any], ...]  # (parameter, "output" | "setting" | "literal", name or value)
    when: str = ""

    def enabled(self, settings: Mapping[str, Any]) -> bool:
        return not self.when or bool(settings.get(self.when))

    def arguments(self, outputs: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
        """Raises MissingOutput naming an output the unit's state lacks."""
        out = {}
        for param, source, ref in self.args:
            if source == "output":
                if ref not in outputs:
                    raise MissingOutput(f"output {ref!r} of unit {self.unit}")
                out[param] = outputs[ref]
            elif source == "setting":
                out[param] = settings[ref]
            else:
                out[param] = ref
        return out

    def __call__(self, ctx: Context, outputs: Mapping[str, Any]):
        return registry(self.kind)[self.function](ctx, **self.arguments(outputs, ctx.settings))

    @property
    def budget(self) -> float:
        """Seconds a check may go on saying NotYet (its function's converges_within)."""
        return getattr(registry(self.kind)[self.function], "converge_seconds", DEFAULT_CHECK_BUDGET)


@cache
def registry(kind: str) -> dict[str, Callable[..., Any]]:
    """Built-in functions of this kind, then the installed entry points (which may not shadow them)."""

    from orchestrator import library

    built_in = dict(library.CHECKS if kind == "check" else library.HOOKS)
    return {**entry_point_functions(GROUPS[kind], set(built_in)), **built_in}


def entry_point_functions(group: str, taken: set[str]) -> dict[str, Callable[..., Any]]:
    """A group's installed entry points, loaded (a name the package already has is left out)."""
    from importlib.metadata import entry_points

    found = {}
    for ep in entry_points(group=group):
        if ep.name in taken:
            continue
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin is named, not a traceback
            raise ConfigError(f"entry point {group}:{ep.name} ({ep.value}) failed to load: {exc}") from None
    return found


def bind(
    kind: str,
    entry: Any,
    *,
    unit: str,
    where: str,
    outputs: set[str],
    settings_schema: Mapping[str, str],
) -> Call:
    """A manifest entry checked against the function's signature, the unit's outputs and the settings."""
    if not isinstance(entry, dict) or not isinstance(entry.get(kind), str):
        raise ConfigError(f'{where}: each entry is a table with {kind} = "<name>", got {entry!r}')
    name = entry[kind]
    known = registry(kind)
    if name not in known:
        raise ConfigError(
            f"{where}: unknown {kind} {name!r} (known: {', '.join(sorted(known))}; a project adds its own "
            f"as entry points in {GROUPS[kind]})"
        )
    params = list(inspect.signature(known[name]).parameters.values())[1:]  # the first is the Context
    accepted = {p.name for p in params}
    required = {p.name for p in params if p.default is inspect.Parameter.empty}
    given = {k: v for k, v in entry.items() if k not in RESERVED}
    unknown = sorted(set(given) - accepted)
    if unknown:
        raise ConfigError(f"{where}: {kind} {name!r} has no argument {', '.join(unknown)} (it takes {_names(params)})")
    missing = sorted(required - set(given))
    if missing:
        raise ConfigError(
            f"{where}: {kind} {name!r} needs argument(s) {', '.join(missing)} (it takes {_names(params)})"
        )
    when = entry.get("when", "")
    if when and settings_schema.get(when) != "bool":
        raise ConfigError(f"{where}: when = {when!r} must name a bool setting")
    args = []
    for param, value in sorted(given.items()):
        if isinstance(value, dict):
            if set(value) != {"value"}:
                raise ConfigError(f"{where}: argument {param!r}: a table must be {{ value = ... }} (a literal)")
            args.append((param, "literal", value["value"]))
        elif isinstance(value, str) and value.startswith("settings."):
            setting = value.removeprefix("settings.")
            if setting not in settings_schema:
                raise ConfigError(f"{where}: argument {param!r} names {value!r}, which is not a declared setting")
            args.append((param, "setting", setting))
        elif isinstance(value, str):
            if value not in outputs:
                raise ConfigError(
                    f"{where}: argument {param!r} names output {value!r}, which unit {unit} does not declare "
                    f"(it declares: {', '.join(sorted(outputs)) or 'none'})"
                )
            args.append((param, "output", value))
        else:
            args.append((param, "literal", value))
    return Call(kind, name, entry.get("name", name), unit, tuple(args), when)


def _names(params) -> str:
    return ", ".join(p.name if p.default is inspect.Parameter.empty else f"[{p.name}]" for p in params) or "nothing"
