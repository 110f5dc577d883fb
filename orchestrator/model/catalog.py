"""The checks and hooks a manifest may name (the built-in library, then the project's entry
points), and a manifest entry bound to one of them (orchestrator.model.plugins is the contract)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from orchestrator.errors import ConfigError
from orchestrator.model import library
from orchestrator.model.plugins import DEFAULT_CHECK_BUDGET, GROUPS, Context, MissingOutput, entry_point_functions

RESERVED = {"check", "hook", "name", "when"}


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

    built_in = dict(library.CHECKS if kind == "check" else library.HOOKS)
    return {**entry_point_functions(GROUPS[kind], set(built_in)), **built_in}


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
