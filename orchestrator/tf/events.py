"""terraform's machine-readable UI (`-json`): what its plan and apply commands report, as data.

HashiCorp documents the human output as not stable and the JSON UI as an interface
(https://developer.hashicorp.com/terraform/internals/machine-readable-ui): one JSON object per
line, each with `type`, `@level` and `@message`. What the orchestrator reads from it:

- `planned_change`: each resource a plan (or the plan inside an apply) changes, with its action;
- `change_summary`: the counts terraform itself reports;
- `diagnostic`: errors and warnings, with `summary` and `detail` apart.

Standard library only: tfshim.py renders each event for the unit's log with `log_lines`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

# planned_change's action -> the plan's actions list (as `show -json` writes them); read, no-op,
# move, import and remove (forget) leave the resource in AWS as it is.
ACTIONS = {
    "create": ["create"],
    "update": ["update"],
    "delete": ["delete"],
    "replace": ["delete", "create"],
}

LOCK_ERROR = "Error acquiring the state lock"  # the diagnostic's summary when another holds the lock
STALE_PLAN = "Saved plan is stale"  # apply's diagnostic when the state moved since the plan


def parse(line: str) -> dict | None:
    """One line of terraform's `-json` output as an event, or None for anything else (a line
    terraform writes to stderr before its UI starts)."""
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "type" in event else None


def read(text: str) -> tuple[dict, ...]:
    return tuple(e for e in map(parse, text.splitlines()) if e is not None)


def log_lines(event: dict) -> list[str]:
    """What the unit's log says of an event: its `@message`; a diagnostic with its detail under it,
    as terraform's human output would show it."""
    message = str(event.get("@message", ""))
    diagnostic = event.get("diagnostic")
    if event.get("type") != "diagnostic" or not isinstance(diagnostic, dict):
        return [message]
    lines = [message]
    where = diagnostic.get("range") or {}
    if where.get("filename"):
        lines.append(f"  on {where['filename']} line {where.get('start', {}).get('line', '?')}")
    detail = str(diagnostic.get("detail") or "")
    if detail:
        lines += ["", *(f"  {line}" if line else "" for line in detail.splitlines())]
    return lines


def planned_changes(events: Iterable[dict]) -> list[dict]:
    """Each resource the plan changes: {"address", "actions"}, by address (terraform plans them
    concurrently, so the events come in no set order; its human plan lists them by address)."""
    out = []
    for e in events:
        if e.get("type") != "planned_change":
            continue
        change = e.get("change") or {}
        actions = ACTIONS.get(change.get("action", ""))
        if actions is not None:
            out.append({"address": (change.get("resource") or {}).get("addr", "?"), "actions": actions})
    return sorted(out, key=lambda c: c["address"])


def diagnostics(events: Iterable[dict], severity: str = "error") -> list[dict]:
    """The diagnostics of one severity, each {"summary", "detail"}."""
    return [
        e["diagnostic"]
        for e in events
        if e.get("type") == "diagnostic"
        and isinstance(e.get("diagnostic"), dict)
        and e["diagnostic"].get("severity") == severity
    ]


def has_error(events: Iterable[dict], summary: str) -> bool:
    return any(d.get("summary") == summary for d in diagnostics(events))


def first_error(events: Iterable[dict]) -> str | None:
    """The first error's summary (what terraform's human output puts after `Error:`)."""
    errors = diagnostics(events)
    return str(errors[0].get("summary") or "").strip() or None if errors else None


def changes_outputs(events: Iterable[dict]) -> bool:
    """The plan sets, changes or removes an output (its `outputs` event names an action other than
    no-op; the apply's own `outputs` event carries values, no action)."""
    return any(
        isinstance(o, dict) and o.get("action") not in (None, "noop")
        for e in events
        if e.get("type") == "outputs"
        for o in (e.get("outputs") or {}).values()
    )


def drifted(events: Iterable[dict]) -> bool:
    """The refresh found a resource changed or deleted outside terraform (`resource_drift`)."""
    return any(e.get("type") == "resource_drift" for e in events)


def refreshed_types(events: Iterable[dict]) -> set[str]:
    """The resource types the plan's refresh read (its `refresh_start` events)."""
    return {
        str(((e.get("hook") or {}).get("resource") or {}).get("resource_type", ""))
        for e in events
        if e.get("type") == "refresh_start"
    }
