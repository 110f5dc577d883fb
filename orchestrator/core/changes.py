"""What a unit's plan depends on, as digests, and whether any of it moved since its last apply.

`deploy --changed` skips a unit without running terraform when all of these are
what the journal recorded at the unit's last successful apply:
- its files: every file of the unit's directory and of each local module it calls
  (`source = "../modules/x"`, followed through modules that call others);
- its inputs: each variable value it gets (settings, identity, upstream outputs
  it consumes, artifacts), one digest per variable so the reason names it;
- its state: lineage and serial, so a write behind the journal's back (another
  tool, `orchestrator tf -- state rm`, a second copy of this tool) is noticed.

Generated secrets are never variable values (they reach terraform as TF_VAR_ in
the environment), so no digest is made of a secret. What this cannot see is a
change made in AWS outside terraform: that is drift, and `drift` (scheduled)
finds it. Pure: paths and dicts in, strings out.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from orchestrator.model.hcl import local_module_dirs


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _files(root: Path):
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = f.relative_to(root)
        if ".terraform" in rel.parts or "__pycache__" in rel.parts:
            continue
        yield rel, f


def source_digest(unit_dir: Path) -> str:
    """Every file of the unit and of each local module it calls (names and contents)."""
    h = hashlib.sha256()
    roots = [unit_dir, *local_module_dirs(unit_dir)]
    for i, root in enumerate(roots):
        h.update(f"\0root {i}\0".encode())
        for rel, f in _files(root):
            h.update(str(rel).encode() + b"\0")
            h.update(f.read_bytes())
    return h.hexdigest()


def input_digests(values: dict, artifacts=(), secrets=()) -> dict[str, str]:
    """One digest per variable. An artifact's path differs between machines; its file name carries
    its content's digest, so that is what counts. A generated secret is left out by name (it never
    is a value here; if it were, no digest of it would be kept)."""
    return {
        name: _digest(Path(v).name if name in artifacts and v else v)
        for name, v in sorted(values.items())
        if name not in secrets
    }


def fingerprint(values: dict, unit_dir: Path, artifacts=(), secrets=()) -> str:
    """One digest of everything above (the journal's `fingerprint`, which --resume compares)."""
    return _digest({"files": source_digest(unit_dir), "inputs": input_digests(values, artifacts, secrets)})


def state_version(state: dict | None) -> list | None:
    """[lineage, serial] of a state document: any write to it changes this."""
    if state is None:
        return None
    return [state.get("lineage", ""), state.get("serial", 0)]


def record(values: dict, unit_dir: Path, state: dict | None, artifacts=(), secrets=()) -> dict:
    """What the journal keeps of a unit after a successful apply, for the next --changed."""
    return {
        "files": source_digest(unit_dir),
        "inputs": input_digests(values, artifacts, secrets),
        "state": state_version(state),
    }


DONE = ("succeeded", "no changes", "resumed")


def why_run(last: dict | None, now: dict) -> str | None:
    """None when nothing moved since the unit's last successful apply; otherwise the reason it runs.
    `last` is the journal's record of the unit, `now` what `record` says today."""
    if not last or last.get("status") not in DONE or last.get("command") not in ("deploy", "apply"):
        return "no successful apply recorded"
    then = last.get("digests")
    if not then:
        return "no digests recorded at its last apply"
    if now["state"] is None:
        return "it has no state"
    if then.get("state") != now["state"]:
        was = then.get("state") or [None, None]
        if was[0] != now["state"][0]:
            return "its state was replaced since its last apply (another lineage)"
        return f"its state was written since its last apply (serial {was[1]} -> {now['state'][1]})"
    if then.get("files") != now["files"]:
        return "its files changed"
    before, after = then.get("inputs") or {}, now["inputs"]
    moved = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if moved:
        shown = ", ".join(moved[:5]) + (f" and {len(moved) - 5} more" if len(moved) > 5 else "")
        return f"input{'s' if len(moved) > 1 else ''} changed: {shown}"
    return None
