"""The core: plan, deploy and tear down an environment's units.

Data flows one way: config -> graph -> ready-queue -> (terraform | aws) ->
results. The CLI builds a RunContext (session.run_context), makes an Engine,
calls one method and renders the RunReport. Each unit goes through one
sequence, `_converge`: a saved plan (or an early one still valid), the policies,
the operator's confirmation, exactly that plan applied, the plan file gone.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time

from orchestrator.core import changes, preview
from orchestrator.core.context import RunContext
from orchestrator.core.earlyplans import EarlyPlans
from orchestrator.core.graph import UnitGraph
from orchestrator.core.recovery import recover
from orchestrator.core.runner import ReadyQueue, RunReport, Status, UnitResult
from orchestrator.core.units import Units
from orchestrator.errors import ConfigError, Interrupted, PolicyDenied, TerraformError
from orchestrator.policy import policies
from orchestrator.state.audit import sha256_file
from orchestrator.state.statestore import outputs_of, stranded_message
from orchestrator.tf import providers
from orchestrator.tf.hostslots import Slots
from orchestrator.tf.terraform import error_summary, names_a_gone_resource

# The journal's status of a unit --resume took as done by an earlier run (its report says "no changes").
RESUMED = "resumed"


class Engine:
    def __init__(
        self,
        ctx: RunContext,
        *,
        resume: bool = False,
        changed: bool = False,
        overrides=(),
        plan_early: bool = True,
        plan_text: bool = False,
    ):
        """resume: skip units the journal says finished with the same inputs; changed: skip units
        whose files, inputs and state did not move since their last apply; overrides: the policy
        violations the operator accepted by name, with a reason (policies.Override); plan_early:
        plan ahead of the queue; plan_text: a plan or drift run keeps each changed unit's plan as
        terraform words it (`--show`, `--summary`: one `terraform show` per changed unit)."""
        if resume and changed:
            raise ConfigError("--changed and --resume: choose one (--changed also skips what the last run finished)")
        self.ctx = ctx
        self.units = Units(ctx)
        self.resume = resume
        self.changed = changed
        self.plan_early = plan_early
        self.plan_text = plan_text
        self.overrides: tuple = tuple(overrides)
        self.run_id = ctx.run_id
        self.queue: ReadyQueue | None = None
        self.notes: list[str] = []  # what recovery found, for the summary
        self._together: _Together | None = None  # a plan's previews planned in one root
        self._outputs: dict[str, dict | None] = {}  # a plan's: every unit's outputs, read once
        # At most `parallelism` terraform commands at once, early plans included, each also
        # holding one of the host's slots (shared with every other run on this machine).
        self._slots = Slots(ctx.parallelism, ctx.host_slots, stopped=lambda: self._stopped())
        self._confirm_lock = threading.Lock()
        self._outputs: dict[str, dict] = {}
        self._outputs_lock = threading.Lock()
        self._previous: dict[str, dict] = {}  # the journal's unit records as this run found them
        self._early: EarlyPlans | None = None
        self._journal = None
        self._command = ""
        self._ran: set[str] = set()  # units the queue ran (the rest it skipped)
        self._digests: dict[str, dict] = {}  # deploy: per unit applied, what the next --changed compares

    def interrupt(self) -> None:
        """No new unit starts (an operator's signal); what runs finishes or is told by terraform."""
        if self.queue is not None:
            self.queue.interrupt()

    def _stopped(self) -> bool:
        return self.queue is not None and self.queue.stop.is_set()

    @property
    def journal(self):
        if self._journal is None:
            self._journal = self.ctx.journal(self.run_id)
            # Only the holder of the environment's run lock writes the journal.
            self._journal.writable = lambda: self.ctx.run_lock is None or self.ctx.run_lock.held
        return self._journal

    def key_arn(self) -> str:
        return self.ctx.store.key_arn()

    def graph(self, only: list[str] | None = None, *, with_upstream: bool = False) -> UnitGraph:
        """The units a command acts on (--only: those alone, or with everything they need); unknown
        names and missing lock files refused before anything runs."""
        full = self.ctx.stack.graph
        g = (full.subset(only) if with_upstream else full.exactly(only)) if only else full
        providers.require_lock_files(self.ctx.stack, g.units)
        return g

    # ---- the queue, the journal, the outputs ---------------------------------------
    def _guarded(self, action):
        """Every unit's outcome recorded (a failure keeps its log path, counts and retries)."""

        def run(unit: str) -> UnitResult:
            self._ran.add(unit)
            result = UnitResult(unit, log_path=str(self.units.workspace(unit).log_path))
            # Until the unit's own record replaces it: a run that dies here leaves "running",
            # and the next run knows this unit's last command never finished.
            self._record(unit, "running")
            try:
                result = action(unit, result)
            except Interrupted as exc:
                # One word everywhere (status, envs, the summary), and the next step.
                result.status, result.cause = Status.FAILED, Interrupted
                result.detail = f"{exc}: run the same command again to finish it" + (
                    " (--resume skips the units that finished)" if self._command == "deploy" else ""
                )
            except Exception as exc:  # noqa: BLE001 - every failure becomes a status
                result.status = Status.FAILED
                result.cause = type(exc)
                result.detail = self.ctx.redactor.redact(str(exc))
                result.error = self.ctx.redactor.redact(getattr(exc, "stderr_tail", "") or "")
            fp = result.fingerprint if self._command == "deploy" else None
            journaled = (
                RESUMED
                if result.resumed
                else ("interrupted" if result.failed_with(Interrupted) else result.status.value)
            )
            digests = self._digests.get(unit) if result.status.ok else None
            self._record(unit, journaled, result.detail, fp=fp, outputs=result.outputs, digests=digests)
            return result

        return run

    def _run(self, command: str, graph: UnitGraph, action) -> RunReport:
        """The queue over `graph`; deploy and teardown are journaled (plan and drift only read)."""
        self._command = command
        journaled = command in ("deploy", "teardown")
        if journaled:
            self.journal.start(command)
        report = RunReport(command, self.ctx.env.env_id, {}, time.time(), notes=self.notes)
        try:
            run = self._guarded(action)
            self.queue = ReadyQueue(
                graph, run, parallelism=self.ctx.parallelism, on_start=self.ctx.on_start, on_finish=self._finished
            )
            report.units = self.queue.run()
        finally:
            report.ended = time.time()
            if journaled:
                stopped = self.queue is not None and self.queue.stop.is_set()
                self.journal.finish(
                    "interrupted"
                    if stopped
                    else ("failed" if report.failed else ("declined" if report.declined else "ok"))
                )
        return report

    def _finished(self, result: UnitResult) -> None:
        """A unit the queue skipped (an upstream failed or was declined) is journaled with its cause."""
        if result.status is Status.SKIPPED and result.unit not in self._ran:
            self._record(result.unit, result.status.value, result.detail)
        if self.ctx.on_finish is not None:
            self.ctx.on_finish(result)

    def _record(self, unit: str, status: str, detail: str = "", *, fp=None, outputs=None, digests=None) -> None:
        if self._command in ("deploy", "teardown"):  # plan and drift only read
            self.journal.record(
                unit, command=self._command, status=status, fp=fp, outputs=outputs, detail=detail, digests=digests
            )

    def _record_outputs(self, unit: str, outputs: dict) -> None:
        with self._outputs_lock:
            self._outputs[unit] = outputs

    def _upstream(self) -> dict[str, dict]:
        with self._outputs_lock:
            return dict(self._outputs)

    def _recover(self, graph: UnitGraph) -> None:
        self._previous = {u: dict(r) for u, r in self.journal.load()["units"].items()}
        recover(self.units, graph, self._previous, self.ctx.tf.timeout, self.notes)

    # ---- one sequence for every unit ------------------------------------------------
    def _converge(self, unit, result, *, destroy=False, apply=True, ask=True, drift=False, early=None) -> UnitResult:
        """Plan (or take the early plan), then, when it changes something: the environment's
        policies, the operator's confirmation, and exactly that saved plan applied. The plan file
        never outlives this."""
        try:
            plan = early.plan if early is not None else self.units.plan(unit, result, destroy=destroy, drift=drift)
            if not plan.changed:
                result.status = Status.NO_CHANGES
                return result
            result.take_counts(plan.summary)
            result.changes = list(plan.summary.resources)
            if not drift:
                result.policies = self.units.verdicts(unit, destroy=destroy, overrides=self.overrides)
            if not apply:
                result.status, result.detail = Status.SUCCEEDED, plan.summary.describe()
                result.diff = plan.text if self.plan_text else ""
                return result
            denied = [v for v in result.policies if v.denied]
            if denied:
                result.status, result.cause = Status.FAILED, PolicyDenied
                result.detail = policies.denied_detail(denied)
                return result
            if ask and not self._confirmed(unit, plan, result):
                return result
            result.plan_digest = sha256_file(self.units.workspace(unit).plan_path)
            result.confirmed_by = result.confirmed_by or self._not_asked()
            try:
                self.units.apply(unit, result)
            except TerraformError as exc:
                if not (destroy and names_a_gone_resource(exc.stderr_tail)):
                    raise
                self._destroy_again(unit, result)
            result.status = Status.SUCCEEDED
            return result
        finally:
            self.units.workspace(unit).plan_path.unlink(missing_ok=True)

    def _destroy_again(self, unit: str, result: UnitResult) -> None:
        """A destroy that failed on an object already gone (a delete retried by the SDK after its
        reply was lost): planned once more, refreshed, so the plan holds only what still exists,
        and applied. Once: a second failure is the unit's failure."""
        self.units.note(unit, "destroy failed on an object already gone: planning the destroy again (once)")
        result.retries += 1
        if self.units.plan(unit, result, destroy=True).changed:
            self.units.apply(unit, result)

    def _confirmed(self, unit: str, plan, result: UnitResult) -> bool:
        """The operator's answer to the plan (always yes when nobody is asked); no: skipped, with its dependents."""
        if self.ctx.confirm is None:
            return True
        with self._confirm_lock:
            # The attribute changes (redacted), not only the addresses: what the operator decides on.
            shown = dataclasses.replace(plan.summary, diff=self.ctx.redactor.redact(plan.text))
            if self.ctx.confirm(unit, shown, str(self.units.workspace(unit).log_path)):
                result.confirmed_by = "the operator, at the prompt"
                return True
        result.status, result.detail, result.declined = Status.SKIPPED, "declined at the prompt", True
        return False

    def _not_asked(self) -> str:
        """Who let a plan through when nobody was asked."""
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            actor = os.environ.get("GITHUB_ACTOR") or os.environ.get("GITLAB_USER_LOGIN")
            return f"CI ({actor})" if actor else "CI"
        return "not asked (--yes)"

    # ---- deploy ---------------------------------------------------------------------
    def deploy(self, only: list[str] | None = None, *, with_upstream: bool = False) -> RunReport:
        """--only U applies U alone, its upstream read from state (it must be deployed);
        with_upstream applies U and everything it needs, as a full deploy does."""
        graph = self.graph(only, with_upstream=with_upstream)
        self.key_arn()
        self._warn_stranded()
        self._recover(graph)
        outside = {a for u in graph.units for a in self.ctx.stack.graph.ancestors(u)} - set(graph.units)
        for unit in sorted(outside):
            outputs = self.ctx.store.outputs(unit)
            if outputs is None:
                raise ConfigError(
                    f"unit {unit}, upstream of {', '.join(only or [])}, is not deployed: add --with-upstream"
                )
            self._record_outputs(unit, outputs)
        self._early = EarlyPlans(self.units, self.ctx.stack.graph, self._slots, self._stopped)
        if self.plan_early and not self.resume:
            known = {**self._upstream(), **{u: self.ctx.store.outputs(u) for u in graph.units}}
            early = graph
            if self.changed:
                # Only a unit that moved below another that moved is worth planning ahead: the rest
                # are skipped without terraform (or plan after an upstream's apply changes what they
                # consume), and a moved unit below unmoved ones has its turn at once, where plan and
                # apply are one terraform run when nobody confirms.
                moved = set(self._moved(graph, known))
                ahead = [u for u in moved if moved & self.ctx.stack.graph.ancestors(u)]
                early = graph.exactly(ahead)
            self._early.start(early, known, self.ctx.parallelism)
        try:
            return self._run("deploy", graph, self._deploy_unit)
        finally:
            self._early.close()

    def _moved(self, graph: UnitGraph, known: dict[str, dict | None]) -> list[str]:
        """--changed, at the start: the units whose files, inputs (upstream outputs as deployed now)
        or state moved since their last apply."""
        moved = []
        for unit in graph.order():
            try:
                values = self.units.variables_for(unit, {a: known.get(a) or {} for a in self._ancestors(unit)})
            except ConfigError:
                moved.append(unit)  # its turn reports it
                continue
            if self._why(unit, values)[0] is not None:
                moved.append(unit)
        return moved

    def _ancestors(self, unit: str) -> set[str]:
        return self.ctx.stack.graph.ancestors(unit)

    def _why(self, unit: str, values: dict) -> tuple[str | None, dict, dict | None]:
        """(why the unit runs, or None when nothing moved since its last apply; what is recorded
        of it now; its state)."""
        spec = self.ctx.stack.units[unit]
        state = self.ctx.store.state(unit)
        now = changes.record(values, spec.path, state, spec.artifacts, spec.generated_secrets)
        return changes.why_run(self._previous.get(unit), now), now, state

    def _unchanged(self, unit: str, result: UnitResult, values: dict) -> bool:
        """--changed: a unit nothing moved for is done without a terraform command; otherwise the
        reason it runs goes into its result."""
        why, now, state = self._why(unit, values)
        if why is not None:
            result.why = why
            return False
        last = self._previous[unit]
        since = (last.get("digests") or {}).get("applied_in") or last.get("run_id")
        result.status, result.why = Status.NO_CHANGES, f"unchanged since run {since} (files, inputs, state)"
        result.outputs = outputs_of(state) or {}
        self._digests[unit] = {**now, "applied_in": since}
        return True

    def _deploy_unit(self, unit: str, result: UnitResult) -> UnitResult:
        values = self.units.variables_for(unit, self._upstream())
        spec = self.ctx.stack.units[unit]
        result.fingerprint = changes.fingerprint(values, spec.path, spec.artifacts, spec.generated_secrets)
        if self.changed and self._unchanged(unit, result, values):
            self._record_outputs(unit, result.outputs)
            return result
        last = self._previous.get(unit) if self.resume else None
        done = (Status.SUCCEEDED.value, Status.NO_CHANGES.value, RESUMED)
        if last and last["status"] in done and last.get("fingerprint") == result.fingerprint:
            result.status, result.resumed = Status.NO_CHANGES, True
            since = last["detail"] if last["status"] == RESUMED else f"resumed: unchanged since run {last['run_id']}"
            result.detail = result.why = since  # the summary's note says it, as `status` does
            result.outputs = last.get("outputs") or {}
            if last.get("digests"):
                self._digests[unit] = last["digests"]
            self._record_outputs(unit, result.outputs)
            return result
        early = self._early.take(unit, values, self.queue.results if self.queue else {})
        with self._slots:
            if early is not None:
                early.merge_into(result)
                self._converge(unit, result, early=early)
            else:
                self.units.prepare(unit, values, result)
                if self.ctx.confirm is None and not self.ctx.env.protected and not self.units.policy_rules():
                    # Nobody looks at this plan: plan and apply in one terraform run. A protected
                    # environment, or one with policies, always applies exactly a saved plan.
                    self.units.apply_auto(unit, result)
                    result.confirmed_by = self._not_asked() + "; planned and applied in one terraform run"
                else:
                    self._converge(unit, result)
        if result.status in (Status.SUCCEEDED, Status.NO_CHANGES):
            state = self.ctx.store.state(unit)
            result.outputs = outputs_of(state) or {}
            self._record_outputs(unit, result.outputs)
            self._digests[unit] = {
                **changes.record(values, spec.path, state, spec.artifacts, spec.generated_secrets),
                "applied_in": self.run_id,
            }
            self.units.run_hooks(unit, result.outputs, result)
        return result

    # ---- plan / drift -------------------------------------------------------------------
    def plan(self, only: list[str] | None = None, command: str = "plan") -> RunReport:
        graph = self.graph(only)
        self._warn_stranded()
        self.key_arn()
        if self.changed:
            self._previous = {u: dict(r) for u, r in self.journal.load()["units"].items()}
        # Every unit's outputs, read once for the run (each read is a state object from S3).
        self._outputs = {u: self.ctx.store.outputs(u) for u in self.ctx.stack.graph.units}
        self._together = self._previews_together(graph) if command == "plan" else None
        # Plans only read: each unit plans against its upstream's deployed outputs, so none waits for another.
        return self._run(command, UnitGraph({u: () for u in graph.units}), self._plan_unit)

    def _previews_together(self, graph: UnitGraph) -> _Together | None:
        """The units of a `plan` that will be previews (no state, an upstream without state), when
        there are several: planned in one composed root, not one root each (a copy never deployed
        plans its upstream units once, not once per dependent)."""
        outputs = self._outputs
        units = [
            u
            for u in graph.order()
            if outputs[u] is None and any(outputs[a] is None for a in self.units.upstream_of(u))
        ]
        return _Together(units, outputs) if len(units) > 1 else None

    def _plan_unit(self, unit: str, result: UnitResult) -> UnitResult:
        upstream = self.units.upstream_outputs(unit, self._outputs)
        absent = [u for u, outputs in upstream.items() if outputs is None]
        if absent and self._command == "plan" and self._outputs[unit] is None:
            return self._preview_unit(unit, upstream, absent, result)
        if absent:
            result.status, result.waits_for = Status.SKIPPED, tuple(absent)
            result.detail = f"upstream {absent[0]} is not deployed"
            return result
        values = self.units.variables_for(unit, upstream)
        if self.changed and self._unchanged(unit, result, values):
            return result
        self.units.prepare(unit, values, result)
        return self._converge(unit, result, apply=False, drift=self._command == "drift")

    def _preview_unit(self, unit: str, upstream: dict, absent: list[str], result: UnitResult) -> UnitResult:
        """A unit whose upstream has no state yet: what it would create, planned with the upstream's
        outputs unknown (orchestrator.core.preview); never applied."""
        result.preview = True
        result.log_path = str(self.units.preview_workspace(unit).log_path)
        waits = f"{', '.join(absent)} not deployed yet"
        try:
            plan = self._shared_preview(unit, result)
            if plan is None:
                plan = self.units.preview(unit, upstream, result)
        except TerraformError as exc:
            if error_summary(exc) not in preview.CANNOT_COUNT:
                raise
            result.status, result.waits_for = Status.SKIPPED, tuple(absent)
            result.detail = f"preview: cannot be planned before {waits}: {error_summary(exc)}"
            return result
        if not plan.changed:
            result.status, result.detail = Status.NO_CHANGES, f"preview ({waits}): no changes"
            return result
        result.take_counts(plan.summary)
        result.changes = list(plan.summary.resources)
        result.status, result.diff = Status.SUCCEEDED, plan.text
        result.detail = f"preview ({waits}): {plan.summary.describe()}"
        return result

    def _shared_preview(self, unit: str, result: UnitResult):
        """The unit's share of the previews planned together (the first unit to need them plans
        them, the others wait for it); None when the unit is not one of them, or the shared plan
        failed (each unit then previews alone, so an error is its own unit's)."""
        together = self._together
        if together is None or unit not in together.units:
            return None
        with together.lock:
            if together.plans is None:
                try:
                    together.plans = self.units.previews(together.units, together.outputs, result)
                except TerraformError as exc:
                    together.plans = {}
                    self.units.note(unit, f"previews planned together failed ({error_summary(exc)}): each alone")
        plan = together.plans.get(unit)
        if plan is not None:
            result.log_path = str(self.units.shared_preview_workspace().log_path)
        return plan

    def _warn_stranded(self) -> None:
        """State the manifest no longer names (a renamed or removed unit): said in the summary."""
        stranded = self.ctx.store.stranded(self.ctx.stack.units)
        if stranded:
            message = f"warning: {stranded_message(self.ctx.env, stranded)}"
            self.ctx.say(message)
            self.notes.append(message)

    # ---- teardown -------------------------------------------------------------------------
    def teardown(
        self, only: list[str] | None = None, *, allow_protected: bool = False, confirm_name: str | None = None
    ) -> RunReport:
        self.ctx.env.refuse_unless_confirmed("teardown", allow_protected, confirm_name)
        self.key_arn()
        stranded = self.ctx.store.stranded(self.ctx.stack.units)
        if stranded:
            # Their upstream is unknown (the manifest no longer names them): destroying any unit
            # could pull a resource out from under them.
            raise ConfigError("teardown refused (nothing destroyed): " + stranded_message(self.ctx.env, stranded))
        self._recover(self.ctx.stack.graph)
        # Every unit's outputs, read once before anything is destroyed.
        for unit in self.ctx.stack.units:
            outputs = self.ctx.store.outputs(unit)
            if outputs is not None:
                self._record_outputs(unit, outputs)
        graph = self.graph(only, with_upstream=False)
        for unit in graph.units:  # --only: a unit goes only after every deployed unit that needs it
            kept = sorted(d for d in self.ctx.stack.graph.descendants(unit) - set(graph.units) if d in self._upstream())
            if kept:
                raise ConfigError(f"unit {unit} is needed by {', '.join(kept)}, still deployed: include them in --only")
        self._early = EarlyPlans(self.units, self.ctx.stack.graph, self._slots, self._stopped)
        if self.plan_early:
            # Every unit with state whose destroy needs no settings applied first: planned now, in the
            # order the units go (the first unit's plan is the head of the critical path), at most one
            # CPU's worth at a time: a plan needed in minutes must not slow the one needed now (on 2
            # cores, four plans side by side made the first 19.5 s instead of about 7 s).
            early = [u for u in graph.reversed().order() if u in self._upstream() and not self._lifts(u)]
            width = self.ctx.early_destroy_width or min(self.ctx.parallelism, max(1, (os.cpu_count() or 2) // 2))
            self._early.start_destroys(early, lambda u: self.units.variables_for(u, self._upstream()), width)
        try:
            report = self._run("teardown", graph.reversed(), self._destroy_unit)
        finally:
            self._early.close()
        if not only and not report.failed:  # the copy is gone: so are its pipelines' plans and summaries
            self.ctx.store.delete_reviews()
            gone = self.ctx.store.delete_plans()
            if gone:
                report.notes.append(f"deleted {gone} saved plan object(s) of {self.ctx.env.env_id} never applied")
        return report

    def _lifted(self, values: dict) -> dict:
        """The unit's variables with [teardown.settings] in place (equal to `values` when it lifts none)."""
        overrides = self.ctx.stack.teardown_overrides(self.ctx.env.protected)
        return {k: overrides.get(k, v) for k, v in values.items()}

    def _lifts(self, unit: str) -> bool:
        """Whether the unit's destroy needs [teardown.settings] applied first or keeps a resource
        (then it plans in its turn)."""
        try:
            values = self.units.variables_for(unit, self._upstream())
        except ConfigError:
            return True  # its turn reports it
        return self._lifted(values) != values or bool(self.units.keeps(unit))

    def _destroy_unit(self, unit: str, result: UnitResult) -> UnitResult:
        if unit not in self._upstream():
            result.status = Status.NO_CHANGES
            result.detail = "no state"
            return result
        values = self.units.variables_for(unit, self._upstream())
        early = self._early.take_destroy(unit, values) if self._early is not None else None
        with self._slots:
            if early is not None:
                early.merge_into(result, "destroy planned early")
                self.units.keep(unit, result)  # (nothing to take out of state here: only records)
                return self._converge(unit, result, destroy=True, early=early)
            return self._destroy_in_turn(unit, values, result)

    def _destroy_in_turn(self, unit: str, values: dict, result: UnitResult) -> UnitResult:
        lifted = self._lifted(values)
        keeps = self.units.keeps(unit)
        self.units.prepare(unit, lifted, result)
        if lifted != values or keeps:
            if self.ctx.confirm is not None:
                # Asked before anything changes: the destroy plan shown, then the settings lifted.
                for k in keeps:
                    self.units.note(unit, f"[orchestrator] teardown keeps {k.address} (not destroyed): {k.why}")
                plan = self.units.plan(unit, result, destroy=True)
                self.units.workspace(unit).plan_path.unlink(missing_ok=True)
                if plan.changed and not self._confirmed(unit, plan, result):
                    return result
            if lifted != values:
                # e.g. deletion protection off, no recovery window: applied first, or the
                # destroy would fail (or block a re-create under the same names).
                self.units.apply_auto(unit, result)  # its status and counts give way to the destroy's
                result.hooks.append(
                    f"before destroy: applied {', '.join(k for k in sorted(lifted) if lifted[k] != values[k])}"
                )
            # Out of state after the settings applied (applied with it in state, never re-created).
            self.units.keep(unit, result)
            return self._converge(unit, result, destroy=True, ask=False)
        return self._converge(unit, result, destroy=True)


@dataclasses.dataclass
class _Together:
    """Previews planned in one composed root: the units, every unit's outputs (None: no state),
    and, once planned, each unit's share."""

    units: list[str]
    outputs: dict
    plans: dict | None = None
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
