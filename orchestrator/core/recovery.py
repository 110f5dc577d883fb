"""What a previous run that died left behind, found before this one touches anything.

A terraform still running (waited for, bounded), a state lock on this host
whose terraform is gone (named, with the command that releases it; nothing
runs), a unit whose last command never finished (its journal record says
"running": noted, and planned again, so --resume never skips it).
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from orchestrator.core.graph import UnitGraph
from orchestrator.core.units import Units
from orchestrator.state.locks import StateLock
from orchestrator.state.runlock import RunLockedError, pid_alive


def recover(units: Units, graph: UnitGraph, previous: dict[str, dict], timeout: float, notes: list[str]) -> None:
    """Appends what it found to `notes` (for the summary) and says it at once."""
    ctx = units.ctx
    deadline = time.monotonic() + timeout

    def note(text: str) -> None:
        notes.append(f"previous run: {text}")
        ctx.say(f"[orchestrator] previous run: {text}")

    for unit in graph.order():
        ws = units.workspace(unit)
        marker = read_json(ws.marker_path)
        if marker and pid_alive(marker.get("pid", 0), None):
            note(
                f"{unit}: terraform {marker.get('command')} of run {marker.get('run_id') or '?'} "
                f"(pid {marker['pid']}) is still running: waiting for it to finish"
            )
            while ws.marker_path.exists() and pid_alive(marker["pid"], None):
                if time.monotonic() > deadline:
                    raise RunLockedError(
                        f"terraform {marker.get('command')} of unit {unit} (pid {marker['pid']}) is still "
                        f"running after {int(timeout)} s; nothing was changed"
                    )
                time.sleep(0.5)
        elif marker:
            ws.marker_path.unlink(missing_ok=True)
            note(f"{unit}: terraform {marker.get('command')} of run {marker.get('run_id') or '?'} was killed")
        info = ctx.store.lock(unit)
        if info and str(info.get("Who", "")).rpartition("@")[2] == socket.gethostname():
            lock = StateLock.from_info(unit, info)
            raise RunLockedError(
                f"{lock.describe()}, and no terraform runs for it on this host any more; "
                f"release it: {lock.release_command(ctx.env.cli_args)}"
            )
        last = previous.get(unit)
        if last and last.get("status") == "running":
            note(
                f"{unit}: the last {last.get('command')} (run {last.get('run_id')}) never finished: it is planned again"
            )


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
