"""What a smoke check and a post-apply hook are: the contract the library's and a project's
functions are written against (orchestrator.model.catalog binds a manifest's entries to them).

A unit's entry in stack.toml names each by `check = "..."` or `hook = "..."`;
every other key is an argument of the function:

- a string is the name of one of the unit's outputs (`ids = "nat_gateway_ids"`);
- `"settings.NAME"` is an environment setting (`count = "settings.az_count"`);
- `{ value = ... }` is a literal; numbers, bools and lists are literals too.

`when = "SETTING"` (a bool setting) switches an entry on; `name = "..."` is the
label shown in results (default: the check's name).

The library ships the checks and hooks in `orchestrator.model.library`; a project
adds its own as Python entry points in the groups `orchestrator.checks` and
`orchestrator.hooks`. Every entry is bound when the manifest loads, so an
unknown name, a missing or unknown argument, or an output the unit does not
declare is a ConfigError before any terraform runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import ConfigError

GROUPS = {"check": "orchestrator.checks", "hook": "orchestrator.hooks"}


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
