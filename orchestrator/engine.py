"""The core: plan, deploy and tear down an environment's units.

Data flows one way: config -> graph -> ready-queue -> (terraform | aws) ->
results. The CLI builds an Engine, calls one method, renders the RunReport.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import guard, providers, statestore
from orchestrator.artifacts import build_zip
from orchestrator.aws import Aws
from orchestrator.config import Environment, Project, Stack, unit_variables
from orchestrator.errors import ConfigError, HookError, ProtectedEnvironmentError
from orchestrator.graph import UnitGraph
from orchestrator.journal import fingerprint, new_run_id
from orchestrator.plugins import Context
from orchestrator.redact import Redactor
from orchestrator.runlock import RunLockedError, pid_alive
from orchestrator.runner import ReadyQueue, Status, UnitResult
from orchestrator.terraform import PlanSummary, Terraform, Workspace, error_block

Confirm = Callable[[str, PlanSummary], bool]


# terraform's line when a plan (or the plan inside an apply) finds nothing to do
_NO_CHANGES_RE = re.compile(r"^No changes\. ", re.M)


@dataclass
class EarlyPlan:
    values: dict
    changed: bool
    result: object  # the plan's CommandResult
    scratch: UnitResult  # its counts, retries and hooks (e.g. a recovered errored.tfstate)


@dataclass
class RunReport:
    command: str
    env_id: str
    units: dict[str, UnitResult]
    started: float
    ended: float = 0.0
    smoke: list = field(default_factory=list)
    interrupted: bool = False
    preflight: dict | None = None  # deploy: findings, or skipped
    notes: list[str] = field(default_factory=list)  # what a previous run that died left behind

    def _not_deployed(self, r: UnitResult) -> bool:
        # plan/drift of a unit whose upstream has no state yet: everything differs
        return self.command in ("plan", "drift") and r.status is Status.SKIPPED and r.detail.startswith("upstream ")

    @property
    def failed(self) -> bool:
        return (
            any(r.status is Status.FAILED for r in self.units.values())
            or any(not c.passed for c in self.smoke)
            or any(r.status is Status.SKIPPED and not self._not_deployed(r) for r in self.units.values())
        )

    @property
    def changed(self) -> bool:
        return any(r.add or r.change or r.destroy or r.replace or self._not_deployed(r) for r in self.units.values())


class Engine:
    def __init__(
        self,
        *,
        project: Project,
        stack: Stack,
        env: Environment,
        aws: Aws,
        terraform: Terraform,
        redactor: Redactor,
        work_root: Path,
        emulator_url: str | None = None,
        supplied_secrets: dict[str, str] | None = None,
        parallelism: int = 4,
        lock_timeout: str = "0s",
        confirm: Confirm | None = None,
        on_start: Callable[[str], None] | None = None,
        on_finish: Callable[[UnitResult], None] | None = None,
        on_line: Callable[[str, str], None] | None = None,
        resume: bool = False,
        plan_early: bool = True,
    ):
        self.project = project
        self.stack = stack
        self.env = env
        self.aws = aws
        self.tf = terraform
        self.redactor = redactor
        self.work_root = work_root
        self.emulator_url = emulator_url
        # One value per generated secret per run (plan and apply see the same one); an operator's wins.
        self._secrets: dict[str, str] = dict(supplied_secrets or {})
        self._secrets_lock = threading.Lock()
        for value in self._secrets.values():
            redactor.add(value)
        self.parallelism = parallelism
        self.lock_timeout = lock_timeout
        self.confirm = confirm
        self.on_start = on_start
        self.on_finish = on_finish
        self.on_line = on_line
        self._key_arn: str | None = None
        self._command = ""
        self._outputs: dict[str, dict] = {}
        self._outputs_lock = threading.Lock()
        self._confirm_lock = threading.Lock()
        # terraform's plugin cache is not safe under concurrent installs: one init at a time
        # (with a mirror an init is 1-3 s; only the first fills the cache).
        self._init_lock = threading.Lock()
        self.queue: ReadyQueue | None = None
        self.resume = resume
        self.plan_early = plan_early
        # addresses of stateful resources a protected environment may delete or replace this run
        self.allow_replace: set[str] = set()
        # At most `parallelism` terraform commands at once, early plans included.
        self._slots = threading.BoundedSemaphore(parallelism)
        self._early: dict[str, Future] = {}
        self._journal = None
        self.run_id = new_run_id()
        self.tf.run_id = self.run_id
        self.run_lock = None  # the environment's run lock, once the CLI took it
        self.say: Callable[[str], None] = lambda text: None  # a line for the operator
        self.notes: list[str] = []  # what recover() found, for the summary
        self._previous: dict[str, dict] = {}  # the journal's unit records as this run found them

    @property
    def journal(self):
        if self._journal is None:
            from orchestrator.journal import Journal

            self._journal = Journal(self.aws, self.env, self.key_arn(), self.redactor, self.run_id)
            # Only the holder of the environment's run lock writes the journal.
            self._journal.writable = lambda: self.run_lock is None or self.run_lock.held
        return self._journal

    # ---- shared pieces -----------------------------------------------------
    @property
    def env_dir(self) -> Path:
        return self.work_root / "envs" / self.env.env_id

    def workspace(self, unit: str) -> Workspace:
        return Workspace(unit, self.stack.units[unit].path, self.env_dir / unit)

    def key_arn(self) -> str:
        if self._key_arn is None:
            statestore.require_bucket(self.aws, self.env)
            self._key_arn = statestore.resolve_key_arn(self.aws, self.env)
        return self._key_arn

    def graph(self, only: list[str] | None = None) -> UnitGraph:
        g = self.stack.graph.subset(only) if only else self.stack.graph
        missing = providers.missing_lock_files(self.stack, g.units)
        if missing:
            raise ConfigError(
                f"unit(s) {', '.join(missing)} have no {providers.LOCK_FILE}: run `orchestrator lock` "
                "to write one per unit (from the provider mirror when one is set)"
            )
        return g

    def variables_for(self, unit: str, upstream: dict[str, dict]) -> dict:
        """Every value the unit's variables get: identity, settings, wired outputs, artifacts.
        Raises ConfigError naming a required variable nobody provides."""
        spec = self.stack.units[unit]
        declared = unit_variables(spec.path)
        values = {}
        common = self.env.common_variables(self.emulator_url or "")
        for name in declared:
            if name in common:
                values[name] = common[name]
            elif name in spec.inputs:
                up, out = spec.inputs[name]
                outputs = upstream.get(up)
                if outputs is None or out not in outputs:
                    raise ConfigError(
                        f"unit {unit}: input {name} needs output {out!r} of unit {up}, which it does not have"
                    )
                values[name] = outputs[out]
            elif name in self.env.settings:
                values[name] = self.env.settings[name]
        for var, rel in spec.artifacts.items():
            switch = self.stack.artifact_switches.get(var)
            if var in declared and (switch is None or self.env.settings.get(switch)):
                values[var] = str(build_zip(spec.path / rel, self.work_root / "artifacts"))
        missing = [
            n for n, d in declared.items() if n not in values and not d.has_default and n not in spec.generated_secrets
        ]
        if missing:
            raise ConfigError(
                f"unit {unit}: variable(s) {', '.join(sorted(missing))} have no value: not in [settings] of "
                f"{self.env.path} nor wired in {self.stack.manifest_path}"
            )
        return values

    def secret_env(self, unit: str) -> dict[str, str]:
        """Generated ephemeral secrets, passed as TF_VAR_ (never in a file, never in state)."""
        env = {}
        for name in self.stack.units[unit].generated_secrets:
            with self._secrets_lock:
                if name not in self._secrets:
                    self._secrets[name] = secrets.token_urlsafe(24)
                    self.redactor.add(self._secrets[name])
                env[f"TF_VAR_{name}"] = self._secrets[name]
        return env

    def _fingerprint(self, ws: Workspace, conf: dict) -> str:
        lock = ws.source_dir / ".terraform.lock.hcl"
        h = hashlib.sha256(json.dumps(conf, sort_keys=True).encode())
        h.update(lock.read_bytes() if lock.exists() else b"")
        h.update(self.tf.cli_config.read_bytes() if self.tf.cli_config else b"")
        return h.hexdigest()

    def ensure_init(self, unit: str, ws: Workspace, result: UnitResult) -> None:
        """init only when the backend, lock file or CLI config changed since the last one."""
        conf = statestore.backend_config(self.env, unit, self.key_arn(), self.emulator_url)
        fp = self._fingerprint(ws, conf)
        marker = ws.work_dir / "init.fingerprint"
        if marker.exists() and marker.read_text() == fp and (ws.data_dir / "terraform.tfstate").exists():
            return
        with self._init_lock:
            r = self.tf.init(ws, conf, reconfigure=True, on_line=self._line(unit))
        result.count(r)
        marker.write_text(fp)

    def recover_errored_state(self, unit: str, ws: Workspace, result: UnitResult) -> None:
        """Init, then push back a state that a failed write left behind (errored.tfstate)
        before anything else runs for the unit."""
        self.ensure_init(unit, ws, result)
        errored = ws.work_dir / "errored.tfstate"
        if errored.exists():
            if self.on_line:
                self.on_line(unit, f"[orchestrator] pushing back {errored} left by a failed state write")
            self.tf.state_push(ws, errored, on_line=self._line(unit))
            errored.rename(ws.work_dir / f"errored.tfstate.pushed-{int(time.time())}")
            result.hooks.append("recovered errored.tfstate")

    def _line(self, unit: str):
        if not self.on_line:
            return None
        return lambda line: self.on_line(unit, line)

    def _write_vars(self, ws: Workspace, values: dict) -> None:
        ws.work_dir.mkdir(parents=True, exist_ok=True)
        ws.var_file.write_text(json.dumps(values, indent=2, sort_keys=True))

    def _guarded(self, action):
        """Keeps what a unit got to (log path, counts, retries) when it fails."""

        def run(unit: str) -> UnitResult:
            result = UnitResult(unit, log_path=str(self.workspace(unit).log_path))
            if self._command in ("deploy", "teardown"):
                # Until the unit's own record replaces it: a run that dies here leaves "running",
                # and the next run knows this unit's last command never finished.
                self.journal.record(unit, command=self._command, status="running", fp=None, outputs=None)
            try:
                result = action(unit, result)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a status
                result.status = Status.FAILED
                result.detail = self.redactor.redact(str(exc))
                result.error = self.redactor.redact(getattr(exc, "stderr_tail", "") or "")
            if self._command in ("deploy", "teardown"):
                self.journal.record(
                    unit,
                    command=self._command,
                    status=result.status.value,
                    fp=result.fingerprint if self._command == "deploy" else None,
                    outputs=result.outputs,
                    detail=result.detail,
                )
            return result

        return run

    def _run_queue(self, graph: UnitGraph, action) -> dict[str, UnitResult]:
        self.queue = ReadyQueue(
            graph, self._guarded(action), parallelism=self.parallelism, on_start=self.on_start, on_finish=self.on_finish
        )
        return self.queue.run()

    def _record_outputs(self, unit: str, outputs: dict) -> None:
        with self._outputs_lock:
            self._outputs[unit] = outputs

    def _upstream(self) -> dict[str, dict]:
        with self._outputs_lock:
            return dict(self._outputs)

    def _state_outputs(self, unit: str) -> dict | None:
        return statestore.read_state_outputs(self.aws, self.env, unit)

    # ---- after a crash ----------------------------------------------------------
    def recover(self, graph: UnitGraph) -> None:
        """What a previous run that died left behind, found before this one touches anything:
        a terraform still running (waited for), a state lock whose terraform is gone (named, with
        the command that releases it), a unit whose last command never finished (planned again:
        its journal record says "running", so --resume never skips it)."""
        deadline = time.monotonic() + self.tf.timeout
        self._previous = {u: dict(r) for u, r in self.journal.load()["units"].items()}
        for unit in graph.order():
            ws = self.workspace(unit)
            marker = _read_json(ws.marker_path)
            if marker and pid_alive(marker.get("pid", 0), None):
                self._note(
                    f"{unit}: terraform {marker.get('command')} of run {marker.get('run_id') or '?'} "
                    f"(pid {marker['pid']}) is still running: waiting for it to finish"
                )
                while ws.marker_path.exists() and pid_alive(marker["pid"], None):
                    if time.monotonic() > deadline:
                        raise RunLockedError(
                            f"terraform {marker.get('command')} of unit {unit} (pid {marker['pid']}) is still "
                            f"running after {int(self.tf.timeout)} s; nothing was changed"
                        )
                    time.sleep(0.5)
            elif marker:
                ws.marker_path.unlink(missing_ok=True)
                self._note(f"{unit}: terraform {marker.get('command')} of run {marker.get('run_id') or '?'} was killed")
            lock = statestore.read_state_lock(self.aws, self.env, unit)
            if lock and str(lock.get("Who", "")).rpartition("@")[2] == socket.gethostname():
                raise RunLockedError(
                    f"state of unit {unit} is locked by {lock.get('Who')} since {lock.get('Created')} "
                    f"(lock id {lock.get('ID')}, {lock.get('Operation')}), and no terraform runs for it on this "
                    f"host any more; release it: orchestrator force-unlock {self.env.cli_args} --unit {unit} {lock.get('ID')}"
                )
            last = self._previous.get(unit)
            if last and last.get("status") == "running":
                self._note(
                    f"{unit}: the last {last.get('command')} (run {last.get('run_id')}) never finished: "
                    "it is planned again"
                )

    def _note(self, text: str) -> None:
        self.notes.append(f"previous run: {text}")
        self.say(f"[orchestrator] previous run: {text}")

    # ---- deploy ------------------------------------------------------------
    def _journaled(self, command: str, graph: UnitGraph, action) -> RunReport:
        self._command = command
        self.journal.start(command)
        started = time.time()
        report = RunReport(command, self.env.env_id, {}, started, notes=self.notes)
        try:
            report.units = self._run_queue(graph, action)
        finally:
            report.ended = time.time()
            result = (
                "interrupted"
                if self.queue is not None and self.queue.stop.is_set()
                else ("failed" if report.failed else "ok")
            )
            self.journal.finish(result)
        return report

    def deploy(self, only: list[str] | None = None) -> RunReport:
        graph = self.graph(only)
        self.key_arn()
        self.recover(graph)
        pool = self._start_early_plans(graph)
        try:
            return self._journaled("deploy", graph, self._deploy_unit)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            for unit in self._early:  # plans nobody used (a unit skipped or interrupted)
                self.workspace(unit).plan_path.unlink(missing_ok=True)
            self._early = {}

    # ---- early plans -----------------------------------------------------------
    # A unit whose upstream units are all deployed can be planned at the start of
    # the run with their current outputs, while the queue works on the upstream.
    # The plan is used only if every ancestor then ends "no changes" in this run
    # (nothing was applied above it, so nothing it reads can have moved) and its
    # inputs are exactly the ones planned with; otherwise the unit plans again.
    # A no-op deploy or an image change in a leaf costs about one plan, not a
    # chain of them.
    def _start_early_plans(self, graph: UnitGraph) -> ThreadPoolExecutor | None:
        if not self.plan_early or self.resume:
            return None
        known = {u: self._state_outputs(u) for u in graph.units}
        candidates = [
            u
            for u in graph.order()
            if graph.dependencies(u) and all(known[a] is not None for a in self.stack.graph.ancestors(u))
        ]
        if not candidates:
            return None
        pool = ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="early")
        for unit in candidates:
            upstream = {a: known[a] for a in self.stack.graph.ancestors(unit)}
            self._early[unit] = pool.submit(self._early_plan, unit, upstream)
        return pool

    def _early_plan(self, unit: str, upstream: dict[str, dict]) -> EarlyPlan | None:
        """A plan made ahead of the queue; None when it could not be made (the unit then plans normally,
        where an error is reported properly)."""
        with self._slots:
            if self.queue is not None and self.queue.stop.is_set():
                return None
            try:
                ws = self.workspace(unit)
                values = self.variables_for(unit, upstream)
                scratch = UnitResult(unit)
                self._write_vars(ws, values)
                self.recover_errored_state(unit, ws, scratch)
                if self.on_line:
                    self.on_line(unit, "[orchestrator] planning early: every upstream unit is deployed")
                changed, r = self.tf.plan(
                    ws, lock_timeout=self.lock_timeout, extra_env=self.secret_env(unit), on_line=self._line(unit)
                )
                scratch.count(r)
                return EarlyPlan(values, changed, r, scratch)
            except Exception:  # noqa: BLE001 - the unit's own turn plans again and reports the error
                return None

    def _take_early_plan(self, unit: str, values: dict) -> EarlyPlan | None:
        future = self._early.pop(unit, None)
        if future is None:
            return None
        early = future.result()
        results = self.queue.results if self.queue is not None else {}
        usable = (
            early is not None
            and early.values == values
            and all(
                (r := results.get(a)) is not None and r.status is Status.NO_CHANGES
                for a in self.stack.graph.ancestors(unit)
            )
        )
        if not usable:
            self.workspace(unit).plan_path.unlink(missing_ok=True)  # never applied by mistake
            return None
        return early

    def _deploy_unit(self, unit: str, result: UnitResult) -> UnitResult:
        ws = self.workspace(unit)
        values = self.variables_for(unit, self._upstream())
        result.fingerprint = fingerprint(values, self.stack.units[unit].path)
        if self.resume:
            last = self._previous.get(unit)
            if (
                last
                and last["status"] in (Status.SUCCEEDED.value, Status.NO_CHANGES.value)
                and (last.get("fingerprint") == result.fingerprint)
            ):
                result.status = Status.NO_CHANGES
                result.detail = f"resumed: unchanged since run {last['run_id']}"
                result.outputs = last.get("outputs") or {}
                self._record_outputs(unit, result.outputs)
                return result
        early = self._take_early_plan(unit, values)
        with self._slots:
            return self._plan_and_apply(unit, ws, values, early, result)

    def _plan_and_apply(
        self, unit: str, ws: Workspace, values: dict, early: EarlyPlan | None, result: UnitResult
    ) -> UnitResult:
        extra = self.secret_env(unit)
        if early is not None:
            changed, r = early.changed, early.result
            result.retries += early.scratch.retries
            result.timings.update(early.scratch.timings)
            result.hooks.extend(early.scratch.hooks)
            result.detail = "planned early (upstream unchanged)"
        else:
            self._write_vars(ws, values)
            self.recover_errored_state(unit, ws, result)
            if self.confirm is None and not self.env.protected:
                # Nobody looks at this plan: plan and apply in one terraform run. A protected
                # environment always applies exactly a saved plan.
                r = self.tf.apply_auto(ws, lock_timeout=self.lock_timeout, extra_env=extra, on_line=self._line(unit))
                result.count(r)
                result.take_counts(PlanSummary.from_plan_text(r.stdout))
                result.status = Status.NO_CHANGES if _NO_CHANGES_RE.search(r.stdout) else Status.SUCCEEDED
                return self._after_apply(unit, result)
            changed, r = self.tf.plan(ws, lock_timeout=self.lock_timeout, extra_env=extra, on_line=self._line(unit))
            result.count(r)
        if changed:
            summary = PlanSummary.from_plan_text(r.stdout)
            result.take_counts(summary)
            refused = self._refused(ws)
            if refused:
                ws.plan_path.unlink(missing_ok=True)  # never applied
                result.status = Status.FAILED
                result.detail = (
                    f"refused: in protected environment {self.env.name} the plan {'; '.join(refused)}; "
                    "nothing was applied"
                )
                return result
            if self.confirm is not None:
                with self._confirm_lock:
                    ok = self.confirm(unit, summary)
                if not ok:
                    ws.plan_path.unlink(missing_ok=True)
                    result.status = Status.SKIPPED
                    result.detail = "not confirmed"
                    return result
            # Exactly the saved plan that was shown.
            r = self.tf.apply(ws, lock_timeout=self.lock_timeout, extra_env=extra, on_line=self._line(unit))
            result.count(r)
            result.status = Status.SUCCEEDED
        else:
            result.status = Status.NO_CHANGES
        ws.plan_path.unlink(missing_ok=True)
        return self._after_apply(unit, result)

    def _refused(self, ws: Workspace) -> list[str]:
        """In a protected environment, what the saved plan must not do (orchestrator.guard),
        read from the plan file itself, unless the operator named the address (--allow-replace)."""
        if not self.env.protected:
            return []
        return guard.refusals(
            self.tf.show_plan(ws),
            stateful_types=self.stack.stateful_types,
            public_groups=self.stack.public_security_groups,
            allowed=self.allow_replace,
        )

    def _after_apply(self, unit: str, result: UnitResult) -> UnitResult:
        """Outputs read once from the state in S3, then the unit's post-apply hooks."""
        outputs = self._state_outputs(unit) or {}
        self._record_outputs(unit, outputs)
        result.outputs = outputs
        ctx = Context(self.aws, self.env.settings, self.redactor)
        for hook in self.stack.units[unit].post_apply:
            if not hook.enabled(self.env.settings):
                continue
            retries_before = self.aws.call_log.retries
            try:
                hr = hook(ctx, outputs)
            except KeyError as exc:
                raise HookError(f"{hook.label}: the state of unit {unit} has no {exc.args[0]}") from None
            aws_retries = self.aws.call_log.retries - retries_before
            result.retries += aws_retries
            note = f", {aws_retries} AWS retries" if aws_retries else ""
            result.hooks.append(f"{hr.name}: {'changed' if hr.changed else 'unchanged'} ({hr.detail}{note})")
            if hr.changed and result.status is Status.NO_CHANGES:
                result.status = Status.SUCCEEDED
        return result

    # ---- plan / drift --------------------------------------------------------
    def plan(self, only: list[str] | None = None, command: str = "plan") -> RunReport:
        graph = self.graph(only)
        self.key_arn()
        started = time.time()
        # Plans only read: each unit plans against its upstream's deployed outputs, so none waits for another.
        flat = UnitGraph({u: () for u in graph.units})
        results = self._run_queue(flat, self._plan_unit)
        return RunReport(command, self.env.env_id, results, started, time.time())

    def _plan_unit(self, unit: str, result: UnitResult) -> UnitResult:
        ws = self.workspace(unit)
        upstream = {}
        for dep in self.stack.graph.ancestors(unit) | self.stack.units[unit].depends_on:
            outputs = self._state_outputs(dep)
            if outputs is None:
                result.status = Status.SKIPPED
                result.detail = f"upstream {dep} is not deployed"
                return result
            upstream[dep] = outputs
        values = self.variables_for(unit, upstream)
        self._write_vars(ws, values)
        self.recover_errored_state(unit, ws, result)
        changed, r = self.tf.plan(
            ws, lock_timeout=self.lock_timeout, extra_env=self.secret_env(unit), on_line=self._line(unit)
        )
        result.count(r)
        if changed:
            summary = PlanSummary.from_plan_text(r.stdout)
            result.take_counts(summary)
            result.detail = ", ".join(c["address"] for c in summary.resources[:5])
        result.status = Status.SUCCEEDED if changed else Status.NO_CHANGES
        ws.plan_path.unlink(missing_ok=True)
        return result

    # ---- teardown ------------------------------------------------------------
    def teardown(self, *, allow_protected: bool = False, confirm_name: str | None = None) -> RunReport:
        if self.env.protected and not (allow_protected and confirm_name == self.env.name):
            raise ProtectedEnvironmentError(
                f"environment {self.env.name} is protected: teardown needs --allow-protected and "
                f"--confirm {self.env.name} (nothing was changed)"
            )
        self.key_arn()
        self.recover(self.stack.graph)
        # Every unit's outputs, read once before anything is destroyed.
        for unit in self.stack.units:
            outputs = self._state_outputs(unit)
            if outputs is not None:
                self._record_outputs(unit, outputs)
        return self._journaled("teardown", self.stack.graph.reversed(), self._destroy_unit)

    def _teardown_values(self, unit: str, values: dict) -> dict:
        """The unit's variables with the manifest's teardown settings applied."""
        overrides = self.stack.teardown_overrides(self.env.protected)
        return {k: overrides.get(k, v) for k, v in values.items()}

    def _destroy_unit(self, unit: str, result: UnitResult) -> UnitResult:
        ws = self.workspace(unit)
        if unit not in self._upstream():
            result.status = Status.NO_CHANGES
            result.detail = "no state"
            return result
        values = self.variables_for(unit, self._upstream())
        self.recover_errored_state(unit, ws, result)
        extra = self.secret_env(unit)
        lifted = self._teardown_values(unit, values)
        if lifted != values:
            # e.g. deletion protection off, no recovery window: applied first, or the
            # destroy would fail (or block a re-create under the same names).
            names = sorted(k for k in lifted if lifted[k] != values[k])
            self._write_vars(ws, lifted)
            r = self.tf.apply_auto(ws, lock_timeout=self.lock_timeout, extra_env=extra, on_line=self._line(unit))
            result.count(r)
            result.hooks.append(f"before destroy: applied {', '.join(names)}")
            values = lifted
        self._write_vars(ws, values)
        changed, r = self.tf.plan(
            ws, destroy=True, lock_timeout=self.lock_timeout, extra_env=extra, on_line=self._line(unit)
        )
        result.count(r)
        if changed:
            summary = PlanSummary.from_plan_text(r.stdout)
            result.destroy = summary.destroy
            r = self.tf.apply(ws, lock_timeout=self.lock_timeout, extra_env=extra, on_line=self._line(unit))
            result.count(r)
            result.status = Status.SUCCEEDED
        else:
            result.status = Status.NO_CHANGES
        ws.plan_path.unlink(missing_ok=True)
        return result


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def failure_block(result: UnitResult) -> str:
    return error_block(result.error) if result.error else result.detail
