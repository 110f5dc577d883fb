"""A preview: the plan of a unit whose upstream does not exist yet, never applied.

`plan` on a copy that was never deployed cannot plan a unit against its upstream's
outputs: there are none. Mock values would show a plan that is not the one a
deploy makes (and Terragrunt's mock outputs have been applied by mistake). The
preview composes instead, in a throwaway root of the work dir, the unit and
every upstream unit that has no state as modules of one configuration: each
undeployed upstream's outputs wired to the inputs that consume them, deployed
upstreams' outputs as literal values, an empty local state, the environment's
values. Terraform plans it; every value that depends on an upstream output is
"(known after apply)", exactly as in the real plan of that unit after its
upstream's apply. The unit's share of the plan (module.<unit>) is its preview.

Several units to preview in one `plan` (a copy never deployed) are composed together, in one
root with every undeployed upstream of theirs (Units.previews): one plan, each unit's share of it.

The plan file is read (`show -json`) and deleted at once: nothing can apply it.
A unit whose resources cannot be counted before its upstream exists (a `count`
or `for_each` over an upstream output) is said so, not guessed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.model.config import unit_outputs
from orchestrator.tf.terraform import PlanSummary

LOCK_FILE = ".terraform.lock.hcl"

# terraform's diagnostics when a count or for_each cannot be known before apply
CANNOT_COUNT = ("Invalid count argument", "Invalid for_each argument")


@dataclass(frozen=True)
class Ref:
    """An output of an undeployed upstream unit, known only after its apply."""

    unit: str
    output: str

    def expression(self) -> str:
        return f"${{module.{self.unit}.{self.output}}}"


class Unknown(dict):
    """An undeployed unit's outputs as references (each output the unit declares)."""

    def __init__(self, unit: str, unit_dir: Path):
        super().__init__({name: Ref(unit, name) for name in unit_outputs(unit_dir)})


def _literal(value):
    """A value as a literal of terraform's JSON syntax, where every string is a template:
    `${` and `%{` escaped so a value is never evaluated."""
    if isinstance(value, Ref):
        return value.expression()
    if isinstance(value, str):
        return value.replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, dict):
        return {_literal(str(k)): _literal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_literal(v) for v in value]
    return value


def compose(root: Path, modules: dict[str, tuple[Path, dict, tuple[str, ...]]]) -> dict:
    """The throwaway root's configuration (main.tf.json): one module per unit, named after it.
    `modules`: unit -> (its directory, its variable values, the generated secrets it declares)."""
    doc: dict = {"module": {}}
    secrets = sorted({s for _, _, names in modules.values() for s in names})
    if secrets:
        doc["variable"] = {name: {"type": "string", "sensitive": True} for name in secrets}
    for unit, (path, values, names) in modules.items():
        source = os.path.relpath(path.resolve(), root.resolve())
        block = {"source": source if source.startswith("../") else f"./{source}"}
        block.update({k: _literal(v) for k, v in sorted(values.items())})
        block.update({name: f"${{var.{name}}}" for name in names})
        doc["module"][unit] = block
    return doc


_PROVIDER_BLOCK_RE = re.compile(r'^provider "([^"]+)" \{\n.*?^\}\n', re.M | re.S)


def merged_lock_file(unit_dirs: list[Path]) -> str:
    """The units' lock files as one: each provider's block, first unit's pin wins (terraform then
    refuses a unit that pins another version, as it would in that unit)."""
    blocks: dict[str, str] = {}
    for d in unit_dirs:
        lock = d / LOCK_FILE
        if lock.is_file():
            for m in _PROVIDER_BLOCK_RE.finditer(lock.read_text()):
                blocks.setdefault(m.group(1), m.group(0))
    head = "# The units' lock files, merged for a preview (orchestrator).\n\n"
    return head + "\n".join(blocks[k] for k in sorted(blocks)) if blocks else ""


def write_root(root: Path, doc: dict, lock_text: str) -> str:
    """The root's files written; a digest of them (init again only when it changes)."""
    root.mkdir(parents=True, exist_ok=True)
    body = json.dumps(doc, indent=2, sort_keys=True)
    (root / "main.tf.json").write_text(body + "\n")
    lock = root / LOCK_FILE
    if lock_text:
        lock.write_text(lock_text)
    else:
        lock.unlink(missing_ok=True)
    return hashlib.sha256((body + lock_text).encode()).hexdigest()


def unit_share(plan: dict, unit: str) -> PlanSummary:
    """The changes of module.<unit> (and of the modules it calls) in a composed plan, addressed as
    in the unit's own plan."""
    prefix = f"module.{unit}."
    mine = []
    for rc in plan.get("resource_changes", []):
        address = rc.get("address", "")
        if address.startswith(prefix):
            mine.append({**rc, "address": address[len(prefix) :]})
    return PlanSummary.from_plan_json({"resource_changes": mine})


def diff_text(summary: PlanSummary) -> str:
    """What --show prints of a preview: each resource and what the plan does to it."""
    words = {"create": "will be created", "update": "will be updated in-place", "delete": "will be destroyed"}
    lines = ["Preview (never applied): values from upstream units that do not exist yet are known after apply."]
    for c in summary.resources:
        actions = c["actions"]
        said = "must be replaced" if len(actions) > 1 else words.get(actions[0], "/".join(actions))
        lines.append(f"  # {c['address']} {said}")
    return "\n".join(lines)
