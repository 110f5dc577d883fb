"""Settings: terraform/stack.toml (the unit manifest) and environments/<env>/env.toml.

Pure file reads and validation; every error names the file (and the line for
a syntax error) and the setting.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from orchestrator.core.graph import UnitGraph
from orchestrator.errors import ConfigError
from orchestrator.model.catalog import bind
from orchestrator.model.hcl import VariableDecl, read_module  # noqa: F401 - VariableDecl re-exported
from orchestrator.policy import policies

SUFFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")
ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
# Every generated name starts with it: the platform's name limits are proven
# for the longest prefix and suffix accepted here.
NAME_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{1,9}$")
TYPES = {"string", "number", "bool", "list(string)"}
# Variables every unit gets from the environment's identity, not its settings.
COMMON_VARIABLES = (
    "region",
    "account_id",
    "environment",
    "environment_suffix",
    "name_prefix",
    "project",
    "repository",
    "owner",
    "emulator_endpoint",
)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line N, column M)".
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def check_type(value: Any, type_name: str) -> bool:
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name == "list(string)":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    raise ValueError(type_name)


@dataclass(frozen=True)
class Unit:
    name: str
    path: Path
    depends_on: frozenset[str]
    # terraform variable -> (upstream unit, upstream output)
    inputs: dict[str, tuple[str, str]]
    # named post-apply hooks and smoke checks (orchestrator.model.catalog.Call), bound when the manifest loads
    post_apply: tuple = ()
    smoke: tuple = ()
    # terraform variable -> directory (relative to the unit) packaged as a zip
    artifacts: dict[str, str] = field(default_factory=dict)
    # ephemeral variables the orchestrator generates (e.g. an initial password)
    generated_secrets: tuple[str, ...] = ()
    # generated secret -> (secret name template, JSON key): where the stack keeps its value once
    # written; a later run passes that value again instead of a new one
    secret_sources: dict[str, tuple[str, str]] = field(default_factory=dict)
    # resources teardown takes out of the unit's state instead of destroying (Keep)
    keep_on_teardown: tuple = ()

    def keeps(self, settings: Mapping[str, Any]) -> tuple:
        """What teardown keeps in an environment with these settings."""
        return tuple(k for k in self.keep_on_teardown if not k.when or settings.get(k.when))


@dataclass(frozen=True)
class Keep:
    """A resource teardown leaves in AWS (taken out of state, recorded, named in the summary):
    what outlives the environment needs it, e.g. the key a kept final snapshot is encrypted with."""

    address: str
    why: str
    when: str = ""  # a bool setting: kept only where it is true


@dataclass(frozen=True)
class Stack:
    root: Path
    manifest_path: Path
    units: dict[str, Unit]
    settings_schema: dict[str, str]
    # setting -> condition: artifacts only built when that bool setting is true
    artifact_switches: dict[str, str]
    # settings teardown applies before destroying (where they differ): what
    # would make a destroy fail or block a re-create; the second table only
    # outside protected environments
    teardown_settings: dict[str, Any] = field(default_factory=dict)
    teardown_unprotected_settings: dict[str, Any] = field(default_factory=dict)
    # [[preflight]] entries: a named check and its arguments
    preflight: tuple[dict[str, Any], ...] = ()
    # [guard] stateful_types: resource types whose delete or replace a protected
    # environment applies only when the operator names the address
    stateful_types: frozenset[str] = frozenset()
    # [guard] public_security_groups: the only groups a protected environment's plan may open to
    # 0.0.0.0/0 or ::/0 (addresses, e.g. the load balancer's)
    public_security_groups: frozenset[str] = frozenset()
    # [ownership] tags: tag key -> common variable; every resource of an environment carries these
    # tags (default_tags), which is how `orphans` finds what the environment owns
    ownership_tags: dict[str, str] = field(default_factory=dict)
    # [terraform] provider_mirror: a filesystem mirror for hashicorp/aws (the operator's
    # --provider-mirror wins); [terraform] lock_platforms: what `orchestrator lock` records
    provider_mirror: str = ""
    lock_platforms: tuple[str, ...] = ()
    # [[policies]]: rules over each unit's saved plan (orchestrator.policies), bound at load
    policies: tuple = ()

    def teardown_overrides(self, protected: bool) -> dict[str, Any]:
        return {**self.teardown_settings, **({} if protected else self.teardown_unprotected_settings)}

    @cached_property
    def graph(self) -> UnitGraph:
        return UnitGraph({u.name: u.depends_on for u in self.units.values()})


# Every key a manifest or an environment file may hold: anything else is a typo, refused with the
# nearest valid key (`smokes = [...]` would otherwise switch the smoke checks off in silence).
MANIFEST_KEYS = (
    "settings",
    "units",
    "teardown",
    "preflight",
    "guard",
    "policies",
    "ownership",
    "artifact_switches",
    "terraform",
)
UNIT_KEYS = (
    "path",
    "inputs",
    "depends_on",
    "post_apply",
    "smoke",
    "artifacts",
    "generated_secrets",
    "secret_sources",
    "keep_on_teardown",
)
TABLE_KEYS = {
    "teardown": ("settings", "unprotected_settings"),
    "guard": ("stateful_types", "public_security_groups"),
    "ownership": ("tags",),
    "terraform": ("provider_mirror", "lock_platforms"),
}
ENVIRONMENT_KEYS = (
    "region",
    "account_id",
    "name_prefix",
    "project",
    "repository",
    "owner",
    "protected",
    "backend",
    "settings",
    "ci",
    "audit",
    "notify",
)
BACKEND_KEYS = (
    "bucket",
    "key_prefix",
    "region",
    "kms_alias",
    "locking",
    "dynamodb_table",
    "access_log_bucket",
    "noncurrent_version_days",
)


def reject_unknown(path: Path, table: Any, allowed: tuple[str, ...], where: str = "") -> None:
    """One line naming the file, the first unknown key and the nearest valid one."""
    import difflib

    if not isinstance(table, dict):
        return
    unknown = sorted(set(table) - set(allowed))
    if not unknown:
        return
    key = unknown[0]
    near = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f"did you mean {where}{near[0]!r}?" if near else f"valid: {', '.join(allowed)}"
    more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
    raise ConfigError(f"{path}: unknown key {where}{key!r}{more}: {hint}")


def load_stack(terraform_dir: Path) -> Stack:
    path = terraform_dir / "stack.toml"
    data = read_toml(path)
    reject_unknown(path, data, MANIFEST_KEYS)
    for table, keys in TABLE_KEYS.items():
        reject_unknown(path, data.get(table), keys, f"{table}.")
    schema = data.get("settings", {})
    for name, type_name in schema.items():
        if type_name not in TYPES:
            raise ConfigError(f"{path}: setting {name!r} has unknown type {type_name!r} (one of {sorted(TYPES)})")
    units: dict[str, Unit] = {}
    raw_units = data.get("units", {})
    if not raw_units:
        raise ConfigError(f"{path}: no [units.*] tables")
    for name, raw in raw_units.items():
        reject_unknown(path, raw, UNIT_KEYS, f"units.{name}.")
        unit_path = terraform_dir / raw.get("path", name)
        if not unit_path.is_dir():
            raise ConfigError(f"{path}: unit {name!r}: directory {unit_path} not found")
        inputs: dict[str, tuple[str, str]] = {}
        for var, ref in raw.get("inputs", {}).items():
            if not isinstance(ref, str) or ref.count(".") != 1:
                raise ConfigError(f'{path}: unit {name!r}: input {var!r} must be "<unit>.<output>", got {ref!r}')
            up, out = ref.split(".")
            if up not in raw_units:
                raise ConfigError(f"{path}: unit {name!r}: input {var!r} names unknown unit {up!r}")
            inputs[var] = (up, out)
        depends = set(raw.get("depends_on", [])) | {u for u, _ in inputs.values()}
        outputs = set(unit_outputs(unit_path))
        calls = {}
        for kind, key in (("hook", "post_apply"), ("check", "smoke")):
            entries = raw.get(key, [])
            if not isinstance(entries, list):
                raise ConfigError(f"{path}: unit {name!r}: {key} must be a list of tables")
            calls[key] = tuple(
                bind(kind, e, unit=name, where=f"{path}: unit {name!r}: {key}", outputs=outputs, settings_schema=schema)
                for e in entries
            )
        units[name] = Unit(
            name=name,
            path=unit_path,
            depends_on=frozenset(depends),
            inputs=inputs,
            post_apply=calls["post_apply"],
            smoke=calls["smoke"],
            artifacts=dict(raw.get("artifacts", {})),
            generated_secrets=tuple(raw.get("generated_secrets", ())),
            secret_sources=_secret_sources(path, name, raw),
            keep_on_teardown=_keeps(path, name, raw, schema),
        )
    for unit in units.values():
        _check_wiring(path, unit, units, schema)
    teardown = data.get("teardown", {})
    teardown_tables = {}
    for table in ("settings", "unprotected_settings"):
        values = teardown.get(table, {})
        for key in values:
            if key not in schema:
                raise ConfigError(f"{path}: [teardown.{table}] names {key!r}, which is not a declared setting")
            _require(values, key, schema[key], path, f"teardown.{table}.")
        teardown_tables[table] = dict(values)
    preflight = data.get("preflight", [])
    if not isinstance(preflight, list) or not all(isinstance(p, dict) and "check" in p for p in preflight):
        raise ConfigError(f'{path}: [[preflight]] entries need check = "<name>"')
    guard = data.get("guard", {})
    for name in ("stateful_types", "public_security_groups"):
        value = guard.get(name, [])
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise ConfigError(f"{path}: [guard] {name} must be a list of strings")
    ownership = data.get("ownership", {}).get("tags", {})
    if not isinstance(ownership, dict) or not all(v in COMMON_VARIABLES for v in ownership.values()):
        raise ConfigError(
            f"{path}: [ownership] tags maps tag keys to common variables ({', '.join(sorted(COMMON_VARIABLES))})"
        )
    envs_dir = terraform_dir.parent / "environments"
    rules = policies.from_manifest(
        data.get("policies"),
        str(path),
        guard_rules=bool(guard.get("stateful_types") or guard.get("public_security_groups")),
        environments=known_environments(envs_dir) if envs_dir.is_dir() else (),
    )
    stack = Stack(
        root=terraform_dir,
        manifest_path=path,
        units=units,
        settings_schema=dict(schema),
        artifact_switches=dict(data.get("artifact_switches", {})),
        teardown_settings=teardown_tables["settings"],
        teardown_unprotected_settings=teardown_tables["unprotected_settings"],
        preflight=tuple(preflight),
        stateful_types=frozenset(guard.get("stateful_types", [])),
        public_security_groups=frozenset(guard.get("public_security_groups", [])),
        ownership_tags=dict(ownership),
        provider_mirror=str(data.get("terraform", {}).get("provider_mirror", "")),
        lock_platforms=tuple(data.get("terraform", {}).get("lock_platforms", ())),
        policies=rules,
    )
    stack.graph  # noqa: B018 - validates: unknown dependencies, cycles
    return stack


def _secret_sources(path: Path, name: str, raw: dict) -> dict[str, tuple[str, str]]:
    sources = raw.get("secret_sources", {})
    where = f"{path}: unit {name!r}: secret_sources"
    if not isinstance(sources, dict):
        raise ConfigError(f"{where} must be a table")
    out = {}
    for var, spec in sources.items():
        if var not in raw.get("generated_secrets", ()):
            raise ConfigError(f"{where}: {var!r} is not one of the unit's generated_secrets")
        if (
            not isinstance(spec, dict)
            or set(spec) != {"secret", "key"}
            or not all(isinstance(v, str) for v in spec.values())
        ):
            raise ConfigError(f'{where}: {var!r} needs {{ secret = "<name template>", key = "<JSON key>" }}')
        out[var] = (spec["secret"], spec["key"])
    return out


_ADDRESS_RE = re.compile(r"^(module\.[A-Za-z0-9_-]+\.)*[a-z0-9_]+\.[A-Za-z0-9_-]+$")


def _keeps(path: Path, name: str, raw: dict, schema: Mapping[str, str]) -> tuple[Keep, ...]:
    entries = raw.get("keep_on_teardown", [])
    where = f"{path}: unit {name!r}: keep_on_teardown"
    if not isinstance(entries, list):
        raise ConfigError(f"{where} must be a list of tables")
    out = []
    for e in entries:
        if (
            not isinstance(e, dict)
            or not set(e) <= {"address", "why", "when"}
            or not all(isinstance(e.get(k), str) and e.get(k) for k in ("address", "why"))
        ):
            raise ConfigError(
                f'{where}: each entry is {{ address = "<type.name>", why = "<reason>", [when = "<bool setting>"] }}, got {e!r}'
            )
        if not _ADDRESS_RE.match(e["address"]):
            raise ConfigError(
                f"{where}: {e['address']!r} is not a resource address (type.name, optionally in module.x.)"
            )
        when = e.get("when", "")
        if when and schema.get(when) != "bool":
            raise ConfigError(f"{where}: when = {when!r} is not a declared bool setting")
        out.append(Keep(e["address"], e["why"], when))
    return tuple(out)


def _check_wiring(path: Path, unit: Unit, units: dict[str, Unit], schema: dict[str, str]) -> None:
    """Every input names a variable the unit declares and an output its upstream declares; every
    variable without a default gets a value from somewhere."""
    declared = unit_variables(unit.path)
    where = f"{path}: unit {unit.name!r}"
    for var, (up, out) in sorted(unit.inputs.items()):
        if var not in declared:
            raise ConfigError(
                f"{where}: input {var!r} is not a variable of {unit.path} (it declares: {_list(declared)})"
            )
        up_outputs = unit_outputs(units[up].path)
        if out not in up_outputs:
            raise ConfigError(
                f"{where}: input {var!r} names output {out!r} of unit {up!r}, which it does not declare "
                f"(it declares: {_list(up_outputs)})"
            )
    filled = set(COMMON_VARIABLES) | set(schema) | set(unit.inputs) | set(unit.generated_secrets) | set(unit.artifacts)
    unfilled = sorted(n for n, d in declared.items() if not d.has_default and n not in filled)
    if unfilled:
        raise ConfigError(
            f"{where}: variable(s) {', '.join(unfilled)} get no value: declare a setting of that name in [settings] "
            f"or wire an input"
        )


def _list(names) -> str:
    return ", ".join(sorted(names)) or "none"


@dataclass(frozen=True)
class BackendSettings:
    bucket: str
    key_prefix: str
    region: str
    kms_alias: str
    locking: str = "lockfile"  # or "dynamodb"
    dynamodb_table: str = ""
    access_log_bucket: str = ""
    noncurrent_version_days: int = 90


@dataclass(frozen=True)
class AuditSettings:
    """[audit] of env.toml: where each run's record is kept, under S3 Object Lock (orchestrator.state.audit)."""

    bucket: str
    retention_days: int = 400  # PCI DSS 10.5.1: twelve months of history, three at hand
    mode: str = "COMPLIANCE"  # or GOVERNANCE (a role with s3:BypassGovernanceRetention may delete)


AUDIT_KEYS = ("bucket", "retention_days", "mode")


@dataclass(frozen=True)
class NotifySettings:
    """[notify] of env.toml: where `health` says that the environment changed state."""

    sns_topic: str = ""  # an SNS topic ARN, or "<unit>.<output>" (e.g. the platform's alerts topic)
    webhook_url_env: str = ""  # the environment variable holding a webhook URL (the URL is a secret)
    webhook_timeout_seconds: float = 5.0


NOTIFY_KEYS = ("sns_topic", "webhook_url_env", "webhook_timeout_seconds")


def _notify_in(notify: NotifySettings, stack: Stack, path: Path) -> NotifySettings:
    """A "<unit>.<output>" topic names a unit of the manifest and an output it declares."""
    if notify.sns_topic and not notify.sns_topic.startswith("arn:"):
        unit, output = notify.sns_topic.split(".")
        if unit not in stack.units:
            raise ConfigError(f"{path}: notify.sns_topic names unknown unit {unit!r} (known: {', '.join(stack.units)})")
        if output not in unit_outputs(stack.units[unit].path):
            raise ConfigError(f"{path}: notify.sns_topic names output {output!r}, which unit {unit} does not declare")
    return notify


def load_notify(data: dict, path: Path) -> NotifySettings:
    raw = data.get("notify", {})
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: [notify] must be a table")
    reject_unknown(path, raw, NOTIFY_KEYS, "notify.")
    topic = raw.get("sns_topic", "")
    if not isinstance(topic, str) or (topic and not (topic.startswith("arn:") or topic.count(".") == 1)):
        raise ConfigError(
            f"{path}: setting 'notify.sns_topic' must be an SNS topic ARN or \"<unit>.<output>\", got {topic!r}"
        )
    var = raw.get("webhook_url_env", "")
    if not isinstance(var, str) or (var and not re.fullmatch(r"[A-Z_][A-Z0-9_]*", var)):
        raise ConfigError(f"{path}: setting 'notify.webhook_url_env' must name an environment variable, got {var!r}")
    timeout = raw.get("webhook_timeout_seconds", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 60:
        raise ConfigError(f"{path}: setting 'notify.webhook_timeout_seconds' must be from 0 to 60, got {timeout!r}")
    return NotifySettings(topic, var, float(timeout))


def load_audit(data: dict, path: Path, backend: BackendSettings) -> AuditSettings:
    raw = data.get("audit", {})
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: [audit] must be a table")
    reject_unknown(path, raw, AUDIT_KEYS, "audit.")
    bucket = raw.get("bucket") or f"{backend.bucket}-audit"
    if not isinstance(bucket, str) or not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise ConfigError(
            f"{path}: audit bucket {bucket!r} is not a valid S3 bucket name (3-63 characters; set audit.bucket)"
        )
    days = raw.get("retention_days", 400)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 36500:
        raise ConfigError(
            f"{path}: setting 'audit.retention_days' must be a number of days from 1 to 36500, got {days!r}"
        )
    mode = str(raw.get("mode", "compliance")).upper()
    if mode not in ("COMPLIANCE", "GOVERNANCE"):
        raise ConfigError(
            f'{path}: setting \'audit.mode\' must be "compliance" or "governance", got {raw.get("mode")!r}'
        )
    return AuditSettings(bucket=bucket, retention_days=days, mode=mode)


@dataclass(frozen=True)
class CiSettings:
    """[ci] of env.toml: what `orchestrator pipeline` writes into the workflow for this environment."""

    role_arn: str  # the role CI jobs assume by OIDC (no stored secret)
    plan_role_arn: str = ""  # optional narrower role for preflight, plan and smoke jobs (they change nothing in AWS)
    runs_on: str = "ubuntu-latest"  # GitHub runner label
    gitlab_image: str = "python:3.12"  # any image with Python >= 3.11; terraform is fetched into it


ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::([0-9]{12}):role/[A-Za-z0-9+=,.@_/-]{1,512}$")


def load_ci(data: dict, path: Path, account_id: str) -> CiSettings | None:
    raw = data.get("ci")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: [ci] must be a table")
    unknown = sorted(set(raw) - {"role_arn", "plan_role_arn", "runs_on", "gitlab_image"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join('ci.' + u for u in unknown)} (known: role_arn, plan_role_arn, runs_on, gitlab_image)"
        )
    for key in ("role_arn", "plan_role_arn"):
        if key not in raw and key == "plan_role_arn":
            continue
        role = _require(raw, key, "string", path, "ci.")
        m = ROLE_ARN_RE.match(role)
        if not m:
            raise ConfigError(f"{path}: setting 'ci.{key}' must be an IAM role ARN, got {role!r}")
        if m.group(1) != account_id:
            raise ConfigError(
                f"{path}: setting 'ci.{key}' is in account {m.group(1)}, not the environment's {account_id}"
            )
    extra = {k: raw[k] for k in ("plan_role_arn",) if k in raw}
    extra.update({k: _require(raw, k, "string", path, "ci.") for k in ("runs_on", "gitlab_image") if k in raw})
    return CiSettings(role_arn=raw["role_arn"], **extra)


@dataclass(frozen=True)
class Environment:
    name: str
    path: Path
    region: str
    account_id: str
    name_prefix: str
    project: str
    repository: str
    owner: str
    protected: bool
    backend: BackendSettings
    settings: dict[str, Any]
    suffix: str = ""
    ci: CiSettings | None = None
    audit: AuditSettings | None = None
    notify: NotifySettings = NotifySettings()

    @property
    def env_id(self) -> str:
        """<env>[-<suffix>]: the state key folder and the environment_suffix variable."""
        return f"{self.name}-{self.suffix}" if self.suffix else self.name

    @property
    def cli_args(self) -> str:
        """How a command names this environment: --env E [--suffix S] (for hints in messages)."""
        return f"--env {self.name}" + (f" --suffix {self.suffix}" if self.suffix else "")

    def refuse_unless_confirmed(
        self, what: str, allow_protected: bool, confirm_name: str | None, nothing: str = "nothing was changed"
    ) -> None:
        """A protected environment (prod) is changed by `what` only with --allow-protected and
        --confirm <its name>: the one place that words the refusal."""
        if self.protected and not (allow_protected and confirm_name == self.name):
            from orchestrator.errors import ProtectedEnvironmentError

            raise ProtectedEnvironmentError(
                f"environment {self.name} is protected: {what} needs --allow-protected and --confirm {self.name} "
                f"({nothing})"
            )

    def with_suffix(self, suffix: str | None) -> Environment:
        if not suffix:
            return self
        validate_suffix(suffix)
        from dataclasses import replace

        return replace(self, suffix=suffix)

    def with_account(self, account_id: str) -> Environment:
        from dataclasses import replace

        return replace(self, account_id=account_id)

    def with_settings(self, overrides: dict[str, Any]) -> Environment:
        from dataclasses import replace

        return replace(self, settings={**self.settings, **overrides})

    def common_variables(self, emulator_endpoint: str = "") -> dict[str, Any]:
        return {
            "region": self.region,
            "account_id": self.account_id,
            "environment": self.name,
            "environment_suffix": self.env_id,
            "name_prefix": self.name_prefix,
            "project": self.project,
            "repository": self.repository,
            "owner": self.owner,
            "emulator_endpoint": emulator_endpoint,
        }


def validate_suffix(suffix: str) -> str:
    if not SUFFIX_RE.match(suffix):
        raise ConfigError(
            f"invalid suffix {suffix!r}: 1-10 characters, a lowercase letter first, then a-z or 0-9 (e.g. pr42)"
        )
    return suffix


SECRET_ENV_PREFIX = "ORCHESTRATOR_SECRET_"
MIN_SUPPLIED_SECRET = 12


def supplied_secrets(environ: dict[str, str], stack: Stack) -> dict[str, str]:
    """Generated secrets an operator supplies instead (ORCHESTRATOR_SECRET_<NAME>), e.g. a known
    initial master password. Errors name the variable, never the value."""
    declared = {name for unit in stack.units.values() for name in unit.generated_secrets}
    supplied = {}
    for key, value in environ.items():
        if not key.startswith(SECRET_ENV_PREFIX):
            continue
        name = key[len(SECRET_ENV_PREFIX) :].lower()
        if name not in declared:
            known = ", ".join(SECRET_ENV_PREFIX + n.upper() for n in sorted(declared)) or "none"
            raise ConfigError(f"{key}: no unit generates a secret {name!r} (known: {known})")
        if len(value) < MIN_SUPPLIED_SECRET:
            raise ConfigError(f"{key}: a supplied secret needs at least {MIN_SUPPLIED_SECRET} characters")
        supplied[name] = value
    return supplied


def known_environments(environments_dir: Path) -> list[str]:
    if not environments_dir.is_dir():
        return []
    return sorted(p.name for p in environments_dir.iterdir() if (p / "env.toml").is_file())


def _require(data: dict, key: str, type_name: str, path: Path, where: str = "") -> Any:
    label = f"{where}{key}"
    if key not in data:
        raise ConfigError(f"{path}: missing setting {label!r} ({type_name})")
    value = data[key]
    if not check_type(value, type_name):
        raise ConfigError(f"{path}: setting {label!r} must be {type_name}, got {type(value).__name__} {value!r}")
    return value


def load_environment(environments_dir: Path, name: str, stack: Stack) -> Environment:
    known = known_environments(environments_dir)
    if name not in known:
        raise ConfigError(f"unknown environment {name!r} (known: {', '.join(known) or f'none in {environments_dir}'})")
    path = environments_dir / name / "env.toml"
    data = read_toml(path)
    reject_unknown(path, data, ENVIRONMENT_KEYS)
    reject_unknown(path, data.get("backend"), BACKEND_KEYS, "backend.")
    region = _require(data, "region", "string", path)
    account_id = _require(data, "account_id", "string", path)
    if not ACCOUNT_RE.match(account_id):
        raise ConfigError(f"{path}: setting 'account_id' must be 12 digits, got {account_id!r}")
    name_prefix = _require(data, "name_prefix", "string", path)
    if not NAME_PREFIX_RE.match(name_prefix):
        raise ConfigError(
            f"{path}: setting 'name_prefix' must be 2-10 characters, a lowercase letter first, then a-z or 0-9, "
            f"got {name_prefix!r}"
        )
    protected = _require(data, "protected", "bool", path)

    raw_backend = data.get("backend")
    if not isinstance(raw_backend, dict):
        raise ConfigError(f"{path}: missing [backend] table")
    locking = raw_backend.get("locking", "lockfile")
    if locking not in ("lockfile", "dynamodb"):
        raise ConfigError(f'{path}: setting \'backend.locking\' must be "lockfile" or "dynamodb", got {locking!r}')
    backend = BackendSettings(
        bucket=_require(raw_backend, "bucket", "string", path, "backend."),
        key_prefix=_require(raw_backend, "key_prefix", "string", path, "backend."),
        region=_require(raw_backend, "region", "string", path, "backend."),
        kms_alias=_require(raw_backend, "kms_alias", "string", path, "backend."),
        locking=locking,
        dynamodb_table=raw_backend.get("dynamodb_table", ""),
        access_log_bucket=raw_backend.get("access_log_bucket", ""),
        noncurrent_version_days=raw_backend.get("noncurrent_version_days", 90),
    )
    if locking == "dynamodb" and not backend.dynamodb_table:
        raise ConfigError(f'{path}: backend.locking = "dynamodb" needs backend.dynamodb_table')
    if not backend.kms_alias.startswith("alias/"):
        raise ConfigError(f"{path}: setting 'backend.kms_alias' must start with 'alias/'")

    raw_settings = data.get("settings")
    if not isinstance(raw_settings, dict):
        raise ConfigError(f"{path}: missing [settings] table")
    settings: dict[str, Any] = {}
    for key, type_name in stack.settings_schema.items():
        settings[key] = _require(raw_settings, key, type_name, path, "settings.")
    unknown = sorted(set(raw_settings) - set(stack.settings_schema))
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join('settings.' + u for u in unknown)} (not declared in {stack.manifest_path})"
        )
    return Environment(
        name=name,
        path=path,
        region=region,
        account_id=account_id,
        name_prefix=name_prefix,
        project=_require(data, "project", "string", path),
        repository=_require(data, "repository", "string", path),
        owner=_require(data, "owner", "string", path),
        protected=protected,
        backend=backend,
        settings=settings,
        ci=load_ci(data, path, account_id),
        audit=load_audit(data, path, backend),
        notify=_notify_in(load_notify(data, path), stack, path),
    )


def load_emulator_overrides(environments_dir: Path, stack: Stack) -> dict[str, Any]:
    """environments/emulator.toml: settings replaced in local-emulator mode only."""
    path = environments_dir / "emulator.toml"
    if not path.exists():
        return {}
    data = read_toml(path)
    reject_unknown(path, data, ("settings",))
    raw = data.get("settings", {})
    out = {}
    for key in raw:
        if key not in stack.settings_schema:
            raise ConfigError(f"{path}: unknown setting 'settings.{key}' (not declared in {stack.manifest_path})")
        out[key] = _require(raw, key, stack.settings_schema[key], path, "settings.")
    return out


def unit_variables(unit_dir: Path) -> dict[str, VariableDecl]:
    """Variable declarations of a unit, read from its .tf files (no terraform call)."""
    return read_module(unit_dir).variables


def unit_outputs(unit_dir: Path) -> list[str]:
    """Output names a unit declares, read from its .tf files (no terraform call)."""
    return list(read_module(unit_dir).outputs)


@dataclass(frozen=True)
class Project:
    """Where the project's files are."""

    root: Path

    @property
    def terraform_dir(self) -> Path:
        return self.root / "terraform"

    @property
    def environments_dir(self) -> Path:
        return self.root / "environments"

    @property
    def bootstrap_dir(self) -> Path:
        return self.root / "bootstrap"

    def backend_file(self, name: str) -> Path:
        """One of the backend's definition files: the project's bootstrap/<name> when present,
        else the default that ships with the package."""
        own = self.bootstrap_dir / name
        return own if own.is_file() else Path(__file__).parents[1] / "backend_defaults" / name

    @classmethod
    def find(cls, explicit: str | None = None) -> Project:
        if explicit:
            root = Path(explicit).resolve()
        elif os.environ.get("ORCHESTRATOR_PROJECT_DIR"):
            root = Path(os.environ["ORCHESTRATOR_PROJECT_DIR"]).resolve()
        else:
            root = Path.cwd().resolve()
            for candidate in (root, *root.parents):
                if (candidate / "terraform" / "stack.toml").is_file():
                    root = candidate
                    break
        if not (root / "terraform" / "stack.toml").is_file():
            raise ConfigError(f"no terraform/stack.toml under {root} (run from the project, or set --project-dir)")
        return cls(root)
