"""Policies: named rules over one unit's saved plan (the `terraform show -json` document).

Pure: a plan document and the run's facts in, verdicts out. A manifest declares them
(`[[policies]]` in stack.toml); each entry names a policy, a level and where it applies:

    [[policies]]
    policy = "ownership_tags"      # a built-in below, or a project's entry point
    level = "deny"                 # deny: refused, nothing applied; warn: shown and recorded
    environments = ["protected"]   # default: every environment; "protected": those marked so

Every other key is an argument of the policy function (a literal). The built-ins:

- stateful_replace: a delete or replace of a resource of [guard] stateful_types (a teardown's
  destroy plan is exempt: its typed confirmation is the gate);
- open_to_internet: an ingress rule admitting 0.0.0.0/0 or ::/0 to a group that [guard]
  public_security_groups does not name;
- ownership_tags: a resource created or updated without every [ownership] tag;
- encrypted_storage: storage of the types the platform uses left unencrypted at rest;
- no_wildcard_iam_action: a policy document allowing `"Action": "*"`;
- checkov_checks (opt-in): the project's checkov custom checks on the plan (checkov's own
  virtualenv; several seconds per plan).

When the manifest names neither guard rule, [guard] keeps its old meaning: both, deny, in
protected environments. A project adds its own as Python entry points in the group
`orchestrator.policies`: `def policy(plan: dict, facts: Facts, **arguments)` returning
(address, why) pairs. Every entry is checked when the manifest loads: an unknown policy, level,
argument or environment is one line, before any terraform runs.

An operator accepts one violation by naming it, with a reason that is recorded:
`--override POLICY:ADDRESS --reason "..."`; `--allow-replace ADDRESS` is the guard rules' alias.
"""

from __future__ import annotations

import difflib
import inspect
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigError
from orchestrator.policy import guard

GROUP = "orchestrator.policies"
LEVELS = ("deny", "warn")
PROTECTED = "protected"
ENTRY_KEYS = ("policy", "level", "environments")
GUARD_POLICIES = ("stateful_replace", "open_to_internet")
ALLOW_REPLACE_REASON = "named with --allow-replace"


@dataclass(frozen=True)
class Facts:
    """What a policy knows beside the plan."""

    environment: str
    protected: bool
    destroy: bool = False
    stateful_types: frozenset[str] = frozenset()
    public_security_groups: frozenset[str] = frozenset()
    ownership_tags: tuple[str, ...] = ()
    project_root: str = ""  # where a policy finds the project's files (checkov's checks directory)


@dataclass(frozen=True)
class Rule:
    """One [[policies]] entry, bound."""

    policy: str
    level: str
    environments: tuple[str, ...] = ()  # empty: every environment
    arguments: tuple[tuple[str, Any], ...] = ()

    def applies(self, environment: str, protected: bool) -> bool:
        if not self.environments:
            return True
        return environment in self.environments or (protected and PROTECTED in self.environments)


@dataclass(frozen=True)
class Override:
    policy: str
    address: str
    reason: str

    def covers(self, policy: str, address: str) -> bool:
        return self.address == address and self.policy in (policy, "*")


@dataclass(frozen=True)
class Verdict:
    policy: str
    level: str
    address: str
    why: str
    override: str = ""  # the operator's reason, when this violation was accepted by name

    @property
    def denied(self) -> bool:
        return self.level == "deny" and not self.override

    def line(self) -> str:
        """One line: the policy, the address, why, and what accepts it."""
        text = f"policy {self.policy} ({self.level}): {self.address}: {self.why}"
        if self.override:
            return f"{text}; overridden: {self.override}"
        if self.level == "deny":
            return f'{text} (to accept: --override {self.policy}:{self.address} --reason "...")'
        return text

    def to_dict(self) -> dict:
        return {
            "policy": self.policy,
            "level": self.level,
            "address": self.address,
            "why": self.why,
            "override": self.override or None,
        }


@dataclass(frozen=True)
class Policies:
    """The manifest's rules; what applies to one environment; verdicts on one plan."""

    rules: tuple[Rule, ...] = ()
    overrides: tuple[Override, ...] = field(default=())

    def for_environment(self, environment: str, protected: bool) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.applies(environment, protected))

    def evaluate(self, plan: dict, facts: Facts) -> list[Verdict]:
        out = []
        known = registry()
        for rule in self.for_environment(facts.environment, facts.protected):
            for address, why in known[rule.policy](plan, facts, **dict(rule.arguments)) or ():
                reason = next((o.reason for o in self.overrides if o.covers(rule.policy, address)), "")
                out.append(Verdict(rule.policy, rule.level, address, why, reason))
        return sorted(set(out), key=lambda v: (v.level, v.policy, v.address, v.why))


# ---- the built-ins ------------------------------------------------------------------------------
def stateful_replace(plan: dict, facts: Facts, types: Iterable[str] | None = None):
    """A delete or replace of a stateful resource (a teardown's destroy plan is exempt)."""
    if facts.destroy:
        return []
    chosen = facts.stateful_types if types is None else types
    return [(a, "deletes or replaces a stateful resource") for a in guard.stateful_deletes(plan, chosen)]


def open_to_internet(plan: dict, facts: Facts, public_security_groups: Iterable[str] | None = None):
    """An ingress admitting the whole internet to a group that is not declared public."""
    public = set(facts.public_security_groups if public_security_groups is None else public_security_groups)
    return [
        (rule, f"opens {group} to the internet (only [guard] public_security_groups may be)")
        for rule, group in guard.open_to_world(plan)
        if guard.base_address(group) not in public
    ]


def _written(plan: dict):
    """(resource change, after, after_unknown) of each managed resource the plan creates or updates."""
    for rc in plan.get("resource_changes", []):
        change = rc.get("change", {})
        if rc.get("mode", "managed") != "managed" or not {"create", "update"} & set(change.get("actions", [])):
            continue
        yield rc, change.get("after") or {}, change.get("after_unknown") or {}


def ownership_tags(plan: dict, facts: Facts, tags: Iterable[str] | None = None):
    """Every taggable resource written carries the ownership tags (tags_all: default_tags included)."""
    wanted = tuple(facts.ownership_tags if tags is None else tags)
    out = []
    for rc, after, unknown in _written(plan):
        if "tags_all" not in after or unknown.get("tags_all") is True:
            continue  # not taggable, or not known before apply
        have = after.get("tags_all") or {}
        missing = [t for t in wanted if t not in have and not (unknown.get("tags_all") or {}).get(t)]
        if missing:
            out.append((rc["address"], f"has no tag {', '.join(missing)}"))
    return out


def _set(after: dict, unknown: dict, key: str) -> bool:
    """An attribute given a value (or one known only after apply, e.g. a key made in the same plan)."""
    return bool(after.get(key)) or unknown.get(key) is True


# type -> (what must hold, why when it does not)
_ENCRYPTION: dict[str, tuple[Callable[[dict, dict], bool], str]] = {
    "aws_rds_cluster": (lambda a, u: a.get("storage_encrypted") is True, "storage_encrypted is not true"),
    "aws_db_instance": (lambda a, u: a.get("storage_encrypted") is True, "storage_encrypted is not true"),
    "aws_ebs_volume": (lambda a, u: a.get("encrypted") is True, "encrypted is not true"),
    "aws_efs_file_system": (lambda a, u: a.get("encrypted") is True, "encrypted is not true"),
    "aws_elasticache_replication_group": (
        lambda a, u: a.get("at_rest_encryption_enabled") in (True, "true"),
        "at_rest_encryption_enabled is not true",
    ),
    "aws_sns_topic": (lambda a, u: _set(a, u, "kms_master_key_id"), "no kms_master_key_id (messages unencrypted)"),
    "aws_sqs_queue": (
        lambda a, u: _set(a, u, "kms_master_key_id") or a.get("sqs_managed_sse_enabled") is True,
        "neither kms_master_key_id nor sqs_managed_sse_enabled",
    ),
    "aws_cloudwatch_log_group": (lambda a, u: _set(a, u, "kms_key_id"), "no kms_key_id"),
    "aws_kinesis_stream": (lambda a, u: a.get("encryption_type") == "KMS", "encryption_type is not KMS"),
    "aws_dynamodb_table": (
        lambda a, u: (
            any(s.get("enabled") for s in a.get("server_side_encryption") or [])
            or bool(u.get("server_side_encryption"))
        ),
        "no server_side_encryption with a KMS key",
    ),
}


def encrypted_storage(plan: dict, facts: Facts, types: Iterable[str] | None = None):
    """Storage written unencrypted at rest (among the types the platform uses)."""
    chosen = set(_ENCRYPTION if types is None else types)
    out = []
    for rc, after, unknown in _written(plan):
        rule = _ENCRYPTION.get(rc.get("type"))
        if rule and rc.get("type") in chosen and not rule[0](after, unknown):
            out.append((rc["address"], rule[1]))
    return out


def _documents(after: dict):
    """The JSON policy documents a resource's attributes hold (policy, inline_policy[].policy, ...)."""
    for key in ("policy", "assume_role_policy"):
        if isinstance(after.get(key), str):
            yield after[key]
    for block in after.get("inline_policy") or []:
        if isinstance(block, dict) and isinstance(block.get("policy"), str):
            yield block["policy"]


def no_wildcard_iam_action(plan: dict, facts: Facts):
    """A policy document with an Allow statement whose Action is "*" (or "*:*")."""
    out = []
    for rc, after, _ in _written(plan):
        for text in _documents(after):
            try:
                doc = json.loads(text)
            except ValueError:
                continue
            statements = doc.get("Statement", []) if isinstance(doc, dict) else []
            for st in statements if isinstance(statements, list) else [statements]:
                actions = st.get("Action", []) if isinstance(st, dict) else []
                actions = [actions] if isinstance(actions, str) else actions
                if st.get("Effect") == "Allow" and {"*", "*:*"} & set(actions):
                    out.append((rc["address"], 'allows "Action": "*"'))
                    break
    return out


_CHECK_ID = re.compile(r"""\bid\s*[=:]\s*["']?([A-Z][A-Z0-9]*_[A-Z0-9_]+)""")


def _checkov_path(given: str, root: Path) -> str:
    import os
    import shutil

    for candidate in (given, os.environ.get("CHECKOV", ""), str(root / ".venv-checkov" / "bin" / "checkov")):
        if candidate and Path(candidate).is_file():
            return str(Path(candidate).resolve())
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    raise ConfigError(
        "policy checkov_checks: checkov not found (give checkov = PATH, set CHECKOV, or make checkov-venv); "
        "it runs from a virtualenv of its own"
    )


def checkov_checks(plan: dict, facts: Facts, checks_dir: str = "checks", checks=None, checkov: str = ""):
    """The project's checkov custom checks (checks_dir, ids found in its files unless `checks`
    names them) on the unit's plan, with checkov's terraform_plan framework. Opt-in: checkov
    starts in seconds, on every plan that changes something."""
    import subprocess
    import tempfile

    root = Path(facts.project_root or ".")
    folder = Path(checks_dir) if Path(checks_dir).is_absolute() else root / checks_dir
    if not folder.is_dir():
        raise ConfigError(f"policy checkov_checks: checks directory {folder} not found")
    ids = list(checks or sorted({m for f in folder.iterdir() if f.is_file() for m in _CHECK_ID.findall(f.read_text())}))
    if not ids:
        raise ConfigError(f"policy checkov_checks: no check ids in {folder} (name them with checks = [...])")
    exe = _checkov_path(checkov, root)
    with tempfile.TemporaryDirectory(prefix="orchestrator-checkov-") as tmp:
        plan_file = Path(tmp) / "tfplan.json"
        plan_file.write_text(json.dumps(plan))
        run = subprocess.run(
            [exe, "-f", str(plan_file), "--framework", "terraform_plan", "--external-checks-dir", str(folder),
             "--check", ",".join(ids), "--skip-download", "--quiet", "--compact", "-o", "json"],
            capture_output=True, text=True, timeout=600, cwd=tmp,
        )  # fmt: skip
    try:
        doc = json.loads(run.stdout or "{}")
    except ValueError:
        raise ConfigError(
            f"policy checkov_checks: checkov failed (exit {run.returncode}): {run.stderr.strip()[-300:]}"
        ) from None
    reports = doc if isinstance(doc, list) else [doc]
    out = []
    for report in reports:
        for failed in (report.get("results") or {}).get("failed_checks", []):
            detail = "; ".join(failed.get("details") or [])
            why = f"{failed['check_id']}: {failed['check_name']}" + (f" ({detail})" if detail else "")
            out.append((failed.get("resource_address") or failed.get("resource"), why))
    return out


BUILTIN: dict[str, Callable[..., Any]] = {
    "stateful_replace": stateful_replace,
    "open_to_internet": open_to_internet,
    "ownership_tags": ownership_tags,
    "encrypted_storage": encrypted_storage,
    "no_wildcard_iam_action": no_wildcard_iam_action,
    "checkov_checks": checkov_checks,
}


def registry() -> dict[str, Callable[..., Any]]:
    """The built-ins, then the installed entry points (which may not shadow them)."""
    return {**_entry_points(), **BUILTIN}


@cache
def _entry_points() -> dict[str, Callable[..., Any]]:
    from orchestrator.model.plugins import entry_point_functions

    return entry_point_functions(GROUP, set(BUILTIN))


# ---- the manifest -------------------------------------------------------------------------------
def bind(entry: Any, where: str, environments: Iterable[str] = ()) -> Rule:
    """One [[policies]] entry checked against the registry, the levels and the function's signature."""
    if not isinstance(entry, dict) or not isinstance(entry.get("policy"), str):
        raise ConfigError(f'{where}: each [[policies]] entry is a table with policy = "<name>", got {entry!r}')
    name, known = entry["policy"], registry()
    if name not in known:
        near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise ConfigError(
            f"{where}: unknown policy {name!r} ({hint}known: {', '.join(sorted(known))}; a project adds its own "
            f"as entry points in {GROUP})"
        )
    level = entry.get("level", "deny")
    if level not in LEVELS:
        raise ConfigError(f"{where}: policy {name!r}: level must be one of {', '.join(LEVELS)}, got {level!r}")
    envs = entry.get("environments", [])
    if not isinstance(envs, list) or not all(isinstance(e, str) for e in envs):
        raise ConfigError(f'{where}: policy {name!r}: environments must be a list of names (or "{PROTECTED}")')
    allowed = set(environments) | {PROTECTED}
    unknown_envs = [e for e in envs if environments and e not in allowed]
    if unknown_envs:
        raise ConfigError(
            f"{where}: policy {name!r}: unknown environment {unknown_envs[0]!r} "
            f'(known: {", ".join(sorted(environments))}, or "{PROTECTED}")'
        )
    params = list(inspect.signature(known[name]).parameters.values())[2:]  # plan, facts
    accepted = {p.name for p in params}
    required = {p.name for p in params if p.default is inspect.Parameter.empty}
    given = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
    unknown = sorted(set(given) - accepted)
    if unknown:
        takes = ", ".join(sorted(accepted)) or "nothing"
        raise ConfigError(f"{where}: policy {name!r} has no argument {', '.join(unknown)} (it takes {takes})")
    missing = sorted(required - set(given))
    if missing:
        raise ConfigError(f"{where}: policy {name!r} needs argument(s) {', '.join(missing)}")
    return Rule(name, level, tuple(envs), tuple(sorted(given.items())))


def from_manifest(entries: Any, where: str, *, guard_rules: bool, environments: Iterable[str] = ()) -> tuple[Rule, ...]:
    """The manifest's [[policies]]; with [guard] set and neither guard rule named, both (deny, protected)."""
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: [[policies]] must be an array of tables")
    rules = [bind(e, f"{where}: policies[{i}]", environments) for i, e in enumerate(entries)]
    if guard_rules and not {r.policy for r in rules} & set(GUARD_POLICIES):
        rules += [Rule(name, "deny", (PROTECTED,)) for name in GUARD_POLICIES]
    return tuple(rules)


def overrides(values: Iterable[str], reason: str | None, allow_replace: Iterable[str] = ()) -> tuple[Override, ...]:
    """--override POLICY:ADDRESS (each needs --reason) and --allow-replace ADDRESS (the guard rules)."""
    out = []
    values, reason = list(values), (reason or "").strip()
    if values and not reason:
        raise ConfigError('--override needs --reason "..." (why the violation is accepted; it is recorded)')
    for value in values:
        policy, sep, address = value.partition(":")
        if not sep or not policy or not address:
            raise ConfigError(
                f"--override {value!r}: expected POLICY:ADDRESS, e.g. stateful_replace:aws_rds_cluster.main"
            )
        if policy != "*" and policy not in registry():
            near = difflib.get_close_matches(policy, registry(), n=1, cutoff=0.6)
            raise ConfigError(
                f"--override {value!r}: unknown policy {policy!r}" + (f" (did you mean {near[0]!r}?)" if near else "")
            )
        out.append(Override(policy, address, reason))
    for address in allow_replace:
        out += [Override(p, address, reason or ALLOW_REPLACE_REASON) for p in GUARD_POLICIES]
    return tuple(out)


def facts_for(stack, env, *, destroy: bool = False) -> Facts:
    return Facts(
        environment=env.name,
        protected=env.protected,
        destroy=destroy,
        stateful_types=frozenset(stack.stateful_types),
        public_security_groups=frozenset(stack.public_security_groups),
        ownership_tags=tuple(stack.ownership_tags),
        project_root=str(Path(stack.root).parent),
    )


def denied_detail(verdicts: Iterable[Verdict]) -> str:
    """A unit's one-line detail: which policies denied which addresses (the lines: Verdict.line)."""
    denied = [v for v in verdicts if v.denied]
    named = ", ".join(f"{v.policy} at {v.address}" for v in denied)
    return f"denied by policy: {named}; nothing was applied"


def denied_message(unit: str, verdicts: Iterable[Verdict]) -> str:
    """A refused `unit apply`: the first line names the unit, then one line per violation."""
    lines = [v.line() for v in verdicts if v.denied]
    return "\n".join([f"denied by policy: the plan of unit {unit}, nothing applied:", *lines])


def as_mapping(verdicts: Iterable[Verdict]) -> list[Mapping[str, Any]]:
    return [v.to_dict() for v in verdicts]


# ---- `orchestrator policy test`: the policies against a project's fixture plans -------------------
@dataclass(frozen=True)
class CaseResult:
    name: str
    environment: str
    passed: bool
    missing: tuple[tuple[str, str, str], ...] = ()  # (policy, level, address) expected, not found
    unexpected: tuple[tuple[str, str, str], ...] = ()  # found, not expected

    def line(self) -> str:
        if self.passed:
            return f"PASS {self.name} ({self.environment})"
        parts = [f"expected, not found: {', '.join(':'.join(t) for t in self.missing)}"] if self.missing else []
        parts += [f"found, not expected: {', '.join(':'.join(t) for t in self.unexpected)}"] if self.unexpected else []
        return f"FAIL {self.name} ({self.environment}): {'; '.join(parts)}"


CASE_KEYS = ("environment", "destroy", "plan", "plan_file", "expect", "description", "overrides")


def run_case(path, stack, environment_of: Callable[[str], Any]) -> CaseResult:
    """One fixture (JSON): the environment's policies on its plan, compared with its expected
    verdicts as (policy, level, address) triples; overrides, when given, as --override would."""
    path = Path(path)
    try:
        case = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a policy test (JSON): {exc}") from None
    if not isinstance(case, dict) or "environment" not in case or "expect" not in case:
        raise ConfigError(f'{path}: a policy test holds "environment", "plan" (or "plan_file") and "expect"')
    unknown = sorted(set(case) - set(CASE_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (valid: {', '.join(CASE_KEYS)})")
    plan = case.get("plan")
    if plan is None and "plan_file" in case:
        try:
            plan = json.loads((path.parent / case["plan_file"]).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: plan_file {case['plan_file']!r}: {exc}") from None
    if not isinstance(plan, dict):
        raise ConfigError(f'{path}: "plan" must be a plan document (terraform show -json), or name a "plan_file"')
    env = environment_of(case["environment"])
    accepted = tuple(Override(o["policy"], o["address"], o.get("reason", "test")) for o in case.get("overrides", []))
    verdicts = Policies(stack.policies, accepted).evaluate(
        plan, facts_for(stack, env, destroy=bool(case.get("destroy")))
    )
    found = {(v.policy, v.level if not v.override else "overridden", v.address) for v in verdicts}
    try:
        expected = {(e["policy"], e["level"], e["address"]) for e in case["expect"]}
    except (KeyError, TypeError):
        raise ConfigError(f'{path}: each "expect" entry is {{"policy", "level", "address"}}') from None
    return CaseResult(
        path.stem,
        env.name,
        found == expected,
        tuple(sorted(expected - found)),
        tuple(sorted(found - expected)),
    )
