"""One unit's working copy and the terraform steps on it, each written once.

prepare (variables file, init when needed, a failed state write pushed back),
plan (saved, counted, summarised), apply (exactly the saved plan), apply_auto
(plan and apply in one terraform run), the policies' verdicts, and the unit's
post-apply hooks. The engine decides which steps run, in what order.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable

from orchestrator.core import preview
from orchestrator.core.context import RunContext
from orchestrator.core.runner import Status, UnitResult
from orchestrator.errors import ConfigError, HookError, NotDeployed
from orchestrator.model.artifacts import build_zip
from orchestrator.model.config import unit_variables
from orchestrator.model.hcl import module_calls
from orchestrator.model.plugins import Context, MissingOutput
from orchestrator.policy import firewall, policies
from orchestrator.tf import events as tf_events
from orchestrator.tf.terraform import PlanSummary, Workspace

# terraform commands typed by hand (`orchestrator tf`): those that change state or AWS (a protected
# environment needs the typed confirmation; they run under the environment's run lock), and those
# that read the unit's variables.
TF_WRITES = {"apply", "destroy", "import", "taint", "untaint", "force-unlock", "refresh"}
TF_STATE_WRITES = {"mv", "rm", "push", "replace-provider"}
TF_WITH_VARS = {"plan", "apply", "destroy", "import", "refresh", "console"}


def writes(args: list[str]) -> bool:
    """Whether terraform `args` typed by hand change state or AWS."""
    return args[0] in TF_WRITES or (args[0] == "state" and len(args) > 1 and args[1] in TF_STATE_WRITES)


class Plan:
    """A saved plan: whether it changes anything, its counts, and its text for a person (terraform's
    own wording of each attribute's change), read from the plan file only when someone reads it."""

    def __init__(self, changed: bool, summary: PlanSummary, text: str | Callable[[], str] = ""):
        self.changed = changed
        self.summary = summary
        self._text = text

    @property
    def text(self) -> str:
        if callable(self._text):
            self._text = self._text()
        return self._text


def _instances(state: dict, address: str) -> list[tuple[str, str]]:
    """(arn, id) of every instance of a resource address in a state document."""
    *modules, rtype, name = address.split(".")
    module = ".".join(modules)
    found = []
    for r in state.get("resources", []):
        if r.get("mode") != "managed" or r.get("type") != rtype or r.get("name") != name:
            continue
        if r.get("module", "") != module:
            continue
        for inst in r.get("instances", []):
            attrs = inst.get("attributes") or {}
            found.append((str(attrs.get("arn") or ""), str(attrs.get("id") or "")))
    return found


# Resource types whose destroy takes a final snapshot unless skip_final_snapshot: (snapshot ARN kind)
_FINAL_SNAPSHOTS = {"aws_rds_cluster": "cluster-snapshot", "aws_db_instance": "snapshot"}


def _final_snapshots(state: dict, env) -> list[tuple[str, str, str, str]]:
    """(address, arn, id, why) of each final snapshot the destroy of the state's databases takes."""
    found = []
    for r in state.get("resources", []):
        kind = _FINAL_SNAPSHOTS.get(r.get("type", ""))
        if r.get("mode") != "managed" or kind is None:
            continue
        address = ".".join(filter(None, (r.get("module", ""), r["type"], r["name"])))
        for inst in r.get("instances", []):
            attrs = inst.get("attributes") or {}
            name = attrs.get("final_snapshot_identifier")
            if name and not attrs.get("skip_final_snapshot"):
                arn = f"arn:aws:rds:{env.region}:{env.account_id}:{kind}:{name}"
                found.append((f"{address} final snapshot", arn, name, f"taken by the destroy of {address}"))
    return found


class Units:
    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        # One value per generated secret per run (plan and apply see the same one); an operator's wins.
        self._secrets: dict[str, str] = dict(ctx.supplied_secrets)
        for value in self._secrets.values():
            ctx.redactor.add(value)
        self._secrets_lock = threading.Lock()
        # terraform's plugin cache is not safe under concurrent installs: one init at a time
        # (with a mirror an init is 1-3 s; only the first fills the cache).
        self._init_lock = threading.Lock()

    # ---- the working copy ------------------------------------------------------
    def workspace(self, unit: str) -> Workspace:
        return Workspace(
            unit, self.ctx.stack.units[unit].path, self.ctx.work_root / "envs" / self.ctx.env.env_id / unit
        )

    def variables_for(self, unit: str, upstream: dict[str, dict]) -> dict:
        """Every value the unit's variables get: identity, settings, wired outputs, artifacts.
        Raises ConfigError naming a required variable nobody provides."""
        ctx, spec = self.ctx, self.ctx.stack.units[unit]
        declared = unit_variables(spec.path)
        common = ctx.env.common_variables(ctx.emulator_url or "")
        values = {}
        for name in declared:
            if name in common:
                values[name] = common[name]
            elif name in spec.inputs:
                up, out = spec.inputs[name]
                if out not in (upstream.get(up) or {}):
                    raise ConfigError(
                        f"unit {unit}: input {name} needs output {out!r} of unit {up}, which it does not have"
                    )
                values[name] = upstream[up][out]
            elif name in ctx.env.settings:
                values[name] = ctx.env.settings[name]
        for var, rel in spec.artifacts.items():
            switch = ctx.stack.artifact_switches.get(var)
            if var in declared and (switch is None or ctx.env.settings.get(switch)):
                values[var] = str(build_zip(spec.path / rel, ctx.work_root / "artifacts"))
        missing = [
            n for n, d in declared.items() if n not in values and not d.has_default and n not in spec.generated_secrets
        ]
        if missing:
            raise ConfigError(
                f"unit {unit}: variable(s) {', '.join(sorted(missing))} have no value: not in [settings] of "
                f"{ctx.env.path} nor wired in {ctx.stack.manifest_path}"
            )
        return values

    def deployed_upstream(self, unit: str) -> dict[str, dict] | str:
        """Every upstream unit's outputs from its state; the name of the first one not deployed instead."""
        upstream = {}
        for dep in sorted(self.ctx.stack.graph.ancestors(unit) | self.ctx.stack.units[unit].depends_on):
            outputs = self.ctx.store.outputs(dep)
            if outputs is None:
                return dep
            upstream[dep] = outputs
        return upstream

    def by_hand(self, unit: str, args: list[str]) -> tuple[Workspace, list[str]]:
        """The unit's working copy for terraform `args` typed by hand, its deployed upstream's
        outputs as its variables; the args with the variables file where the command reads them
        (not for a saved plan, which carries its own, nor when the caller names a file)."""
        ws = self.prepare(unit, self.deployed_values(unit), UnitResult(unit))
        saved_plan = args[0] == "apply" and [a for a in args[1:] if not a.startswith("-")]
        if args[0] in TF_WITH_VARS and not saved_plan and not any(a.startswith("-var-file") for a in args):
            args = [args[0], f"-var-file={ws.var_file}", *args[1:]]
        return ws, args

    def deployed_values(self, unit: str, then: str = "") -> dict:
        """The unit's variables with every upstream unit's outputs read from its state; NotDeployed
        naming the first upstream unit that is not deployed (`then`: what to do about it)."""
        upstream = self.deployed_upstream(unit)
        if isinstance(upstream, str):
            raise NotDeployed(
                f"unit {upstream}, upstream of {unit}, is not deployed in {self.ctx.env.env_id}{then and ': ' + then}"
            )
        return self.variables_for(unit, upstream)

    def upstream_of(self, unit: str) -> list[str]:
        """Every unit this one needs: its ancestors in the graph and its depends_on."""
        return sorted(self.ctx.stack.graph.ancestors(unit) | self.ctx.stack.units[unit].depends_on)

    def upstream_outputs(self, unit: str, outputs: dict[str, dict | None] | None = None) -> dict[str, dict | None]:
        """Each upstream unit's outputs from its state (None: not deployed); `outputs`: every
        unit's, read once already."""
        read = outputs.get if outputs is not None else self.ctx.store.outputs
        return {dep: read(dep) for dep in self.upstream_of(unit)}

    def preview(self, unit: str, upstream: dict[str, dict | None], result: UnitResult) -> Plan:
        """The unit planned with every upstream that has no state composed beside it (their outputs
        known after apply): see orchestrator.core.preview. The plan file is read and deleted at once."""
        return self.previews([unit], upstream, result, self.preview_workspace(unit))[unit]

    def previews(
        self, units: list[str], outputs: dict[str, dict | None], result: UnitResult, ws: Workspace | None = None
    ) -> dict[str, Plan]:
        """Several units' previews from one composed root (one init, one plan, one `show -json`):
        the units, and every upstream of theirs that has no state, as modules of one configuration;
        each unit's preview is its share of that plan. `outputs`: deployed units' outputs (None: no
        state). The plan file is read and deleted at once."""
        graph, stack = self.ctx.stack.graph, self.ctx.stack
        wanted = set(units)
        for unit in units:
            wanted |= {a for a in self.upstream_of(unit) if outputs.get(a, {}) is None}
        order = [u for u in graph.order() if u in wanted]
        known: dict[str, dict] = {u: o for u, o in outputs.items() if o is not None and u not in wanted}
        known.update({u: preview.Unknown(u, stack.units[u].path) for u in order})
        modules, secret_env = {}, {}
        for u in order:
            spec = stack.units[u]
            values = self.variables_for(u, {a: known[a] for a in graph.ancestors(u) if a in known})
            declared = unit_variables(spec.path)
            names = tuple(n for n in spec.generated_secrets if n in declared)
            modules[u] = (spec.path, values, names)
            secret_env.update(self.secret_env(u))
        ws = ws or self.shared_preview_workspace()
        line = self.line(units[0])
        digest = preview.write_root(
            ws.source_dir,
            preview.compose(ws.source_dir, modules),
            preview.merged_lock_file([stack.units[u].path for u in modules]),
        )
        cli_config = getattr(self.ctx.tf, "cli_config", None)
        digest += hashlib.sha256(cli_config.read_bytes() if cli_config else b"").hexdigest()
        marker = ws.work_dir / "init.fingerprint"
        with self._init_lock:
            if not (marker.exists() and marker.read_text() == digest):
                result.count(self.ctx.tf.init(ws, {}, reconfigure=True, on_line=line))
                marker.write_text(digest)
        kw = {"lock_timeout": self.ctx.lock_timeout, "extra_env": secret_env, "on_line": line}
        try:
            _, r = self.ctx.tf.plan(ws, var_file=False, **kw)
            result.count(r)
            plan = self.ctx.tf.show_plan(ws)
        finally:
            ws.plan_path.unlink(missing_ok=True)  # never applied
        shares = {u: preview.unit_share(plan, u) for u in units}
        return {u: Plan(s.has_changes, s, preview.diff_text(s)) for u, s in shares.items()}

    def shared_preview_workspace(self) -> Workspace:
        """The throwaway root of the previews a run makes together, in the copy's work dir."""
        root = self.ctx.work_root / "envs" / self.ctx.env.env_id / "_previews"
        return Workspace("_previews", root, root)

    def preview_workspace(self, unit: str) -> Workspace:
        """The throwaway root of the unit's preview, inside its work dir (its own log and .terraform)."""
        root = self.workspace(unit).work_dir / "preview"
        return Workspace(unit, root, root)

    def secret_env(self, unit: str) -> dict[str, str]:
        """Generated ephemeral secrets, passed as TF_VAR_ (never in a file, never in state)."""
        env = {}
        for name in self.ctx.stack.units[unit].generated_secrets:
            with self._secrets_lock:
                if name not in self._secrets:
                    self._secrets[name] = self._kept(unit, name) or secrets.token_urlsafe(24)
                    self.ctx.redactor.add(self._secrets[name])
                env[f"TF_VAR_{name}"] = self._secrets[name]
        return env

    def _kept(self, unit: str, name: str) -> str | None:
        """The value the stack already keeps for a generated secret (its `secret_sources` entry),
        if any: a first apply that stopped after the secret took one password but before the
        database did is finished with that same password, never a second one."""
        source = self.ctx.stack.units[unit].secret_sources.get(name)
        if source is None:
            return None
        template, key = source
        env = self.ctx.env
        secret_id = template.format(name_prefix=env.name_prefix, env_id=env.env_id, **env.settings)
        try:
            current = self.ctx.aws.client("secretsmanager").get_secret_value(
                SecretId=secret_id, VersionStage="AWSCURRENT"
            )
            value = json.loads(current["SecretString"]).get(key)
        except Exception:  # noqa: BLE001 - not there yet (or not readable by this role): a fresh value
            return None
        return value if isinstance(value, str) and value else None

    def line(self, unit: str):
        on_line = self.ctx.on_line
        return None if on_line is None else (lambda text: on_line(unit, text))

    def note(self, unit: str, text: str) -> None:
        if self.ctx.on_line:
            self.ctx.on_line(unit, f"[orchestrator] {text}")

    def write_vars(self, ws: Workspace, values: dict) -> None:
        ws.work_dir.mkdir(parents=True, exist_ok=True)
        ws.var_file.write_text(json.dumps(values, indent=2, sort_keys=True))

    # ---- init and recovery -------------------------------------------------------
    def ensure_init(self, unit: str, ws: Workspace, result: UnitResult) -> None:
        """init only when the backend, lock file, CLI config or module blocks changed since the last one."""
        conf = self.ctx.store.backend_config(unit)
        h = hashlib.sha256(json.dumps(conf, sort_keys=True).encode())
        lock = ws.source_dir / ".terraform.lock.hcl"
        h.update(lock.read_bytes() if lock.exists() else b"")
        cli_config = getattr(self.ctx.tf, "cli_config", None)
        h.update(cli_config.read_bytes() if cli_config else b"")
        h.update(json.dumps(module_calls(ws.source_dir)).encode())  # a module added or moved: init installs it
        marker = ws.work_dir / "init.fingerprint"

        def current() -> bool:
            return (
                marker.exists() and marker.read_text() == h.hexdigest() and (ws.data_dir / "terraform.tfstate").exists()
            )

        if current():
            return
        with self._init_lock:
            if current():  # initialised ahead (earlyplans) while this waited
                return
            ws.work_dir.mkdir(parents=True, exist_ok=True)
            result.count(self.ctx.tf.init(ws, conf, reconfigure=True, on_line=self.line(unit)))
            marker.write_text(h.hexdigest())

    def prepare(self, unit: str, values: dict, result: UnitResult) -> Workspace:
        """The variables file written, init done, and a state that a failed write left behind
        (errored.tfstate) pushed back before anything else runs for the unit."""
        ws = self.workspace(unit)
        self.write_vars(ws, values)
        self.ensure_init(unit, ws, result)
        errored = ws.work_dir / "errored.tfstate"
        if errored.exists():
            self.note(unit, f"pushing back {errored} left by a failed state write")
            self.ctx.tf.state_push(ws, errored, on_line=self.line(unit))
            errored.rename(ws.work_dir / f"errored.tfstate.pushed-{int(time.time())}")
            result.hooks.append("recovered errored.tfstate")
        return ws

    # ---- terraform steps -------------------------------------------------------------
    def _kw(self, unit: str) -> dict:
        return {"lock_timeout": self.ctx.lock_timeout, "extra_env": self.secret_env(unit), "on_line": self.line(unit)}

    def plan(self, unit: str, result: UnitResult, *, destroy: bool = False, drift: bool = False) -> Plan:
        """A saved plan (the unit's tfplan), counted into the result; drift: judged on the plan's JSON
        (what moved in AWS behind the state, and what of it the next apply would put back)."""
        ws = self.workspace(unit)
        changed, r = self.ctx.tf.plan(ws, destroy=destroy, **self._kw(unit))
        result.count(r)

        def text() -> str:
            return self.ctx.tf.show_plan_text(ws) if ws.plan_path.exists() else ""

        if not drift:
            if not changed:
                return Plan(False, PlanSummary())
            return Plan(True, PlanSummary.from_events(r.events), text)
        # What moved, judged on the plan itself: only attributes the configuration sets count. Read
        # even from a plan without changes when its refresh found something moved, or read security
        # group rules: a rule opened by hand changes no plan (the rules are separate resources) and
        # says nothing in terraform's output; the refreshed state in the plan holds it
        # (orchestrator.policy.firewall). Otherwise nothing moved, and no `show` is paid for.
        if (
            not changed
            and not tf_events.drifted(r.events)
            and not tf_events.refreshed_types(r.events) & set(firewall.RULE_TYPES)
        ):
            return Plan(False, PlanSummary())
        summary = PlanSummary.from_drift_json(self.ctx.tf.show_plan(ws))
        return Plan(summary.has_changes, summary, text)

    def apply(self, unit: str, result: UnitResult) -> None:
        """Exactly the saved plan, nothing else."""
        result.count(self.ctx.tf.apply(self.workspace(unit), **self._kw(unit)))

    def apply_auto(self, unit: str, result: UnitResult) -> None:
        """Plan and apply in one terraform run (one provider start instead of two), for a plan nobody reads."""
        r = self.ctx.tf.apply_auto(self.workspace(unit), **self._kw(unit))
        result.count(r)
        planned = PlanSummary.from_events(r.events)
        result.take_counts(planned)
        changed = planned.has_changes or tf_events.changes_outputs(r.events)
        result.status = Status.SUCCEEDED if changed else Status.NO_CHANGES

    # ---- what teardown keeps ----------------------------------------------------------
    def keeps(self, unit: str) -> tuple:
        """The unit's keep_on_teardown entries that apply in this environment."""
        return self.ctx.stack.units[unit].keeps(self.ctx.env.settings)

    def keep(self, unit: str, result: UnitResult) -> None:
        """Before the unit's destroy: what outlives it, recorded in the state bucket and named in
        the result. The unit's keep_on_teardown resources are then taken out of its state (so the
        destroy leaves them in AWS); the final snapshots its databases' destroy will take are only
        recorded (AWS creates them)."""
        state = self.ctx.store.state(unit) or {}
        entries = [
            self._kept_entry(unit, k.address, arn, rid, k.why)
            for k in self.keeps(unit)
            for arn, rid in _instances(state, k.address)
        ]
        removed = list(dict.fromkeys(e["address"] for e in entries))
        entries += [self._kept_entry(unit, *snap) for snap in _final_snapshots(state, self.ctx.env)]
        if not entries:
            return
        self.ctx.store.add_kept(entries)  # first: a run dying next leaves a record, never an unrecorded resource
        if removed:
            self.note(unit, f"[orchestrator] keeping (out of state, left in AWS): {', '.join(removed)}")
            self.ctx.tf.state_rm(self.workspace(unit), removed, **self._kw(unit))
        for e in entries:
            result.hooks.append(f"kept {e['address']} ({e['arn'] or e['id']}): {e['why']}")

    def _kept_entry(self, unit: str, address: str, arn: str, rid: str, why: str) -> dict:
        return {
            "unit": unit,
            "address": address,
            "arn": arn,
            "id": rid,
            "why": why,
            "run_id": self.ctx.tf.run_id,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def policy_rules(self) -> tuple:
        """The manifest's policies that apply to this environment (orchestrator.policies)."""
        return policies.Policies(self.ctx.stack.policies).for_environment(self.ctx.env.name, self.ctx.env.protected)

    def verdicts(self, unit: str, *, destroy: bool = False, overrides=()) -> list[policies.Verdict]:
        """The environment's policies on the unit's saved plan, read from the plan file itself."""
        rules = self.policy_rules()
        if not rules:
            return []
        plan = self.ctx.tf.show_plan(self.workspace(unit))
        facts = policies.facts_for(self.ctx.stack, self.ctx.env, destroy=destroy)
        return policies.Policies(rules, tuple(overrides)).evaluate(plan, facts)

    def run_hooks(self, unit: str, outputs: dict, result: UnitResult) -> None:
        """The unit's post-apply hooks, in manifest order; one that changed something makes
        a "no changes" unit "succeeded"."""
        ctx = self.ctx
        hook_ctx = Context(ctx.aws, ctx.env.settings, ctx.redactor)
        for hook in ctx.stack.units[unit].post_apply:
            if not hook.enabled(ctx.env.settings):
                continue
            retries_before = ctx.aws.call_log.retries
            try:
                hr = hook(hook_ctx, outputs)
            except MissingOutput as exc:
                raise HookError(f"{hook.label}: the state of unit {unit} has no {exc.args[0]}") from None
            except (KeyError, TypeError, ValueError, IndexError) as exc:  # a bug or an unexpected reply in the hook
                raise HookError(f"{hook.label} failed: {type(exc).__name__}: {exc}") from None
            aws_retries = ctx.aws.call_log.retries - retries_before
            result.retries += aws_retries
            note = f", {aws_retries} AWS retries" if aws_retries else ""
            result.hooks.append(f"{hook.label}: {'changed' if hr.changed else 'unchanged'} ({hr.detail}{note})")
            if hr.changed and result.status is Status.NO_CHANGES:
                result.status = Status.SUCCEEDED
