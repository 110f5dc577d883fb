"""One unit planned or applied alone, by a CI job that shares nothing with the other jobs but
the state bucket (`orchestrator unit plan` / `orchestrator unit apply`).

plan: the upstream outputs read from their state objects, a saved plan made in a fresh working
copy, and the plan file put into the state bucket under the run's id (SSE-KMS, beside a record
of what it was made against: each upstream unit's outputs, the other values, the unit's files,
the state's lineage and serial).

apply: that plan fetched and applied exactly. Refused (exit 1, one line, nothing applied) when
an upstream output, a setting or the unit's files differ from the plan's, or when the unit's
state moved since the plan and a fresh plan would still change something. A state that moved
with nothing left to change is the mark of an earlier attempt of the same job that applied the
plan and died before it said so: the unit is done. The apply job then runs the unit's hooks,
records the unit in the journal (a conditional write: jobs record side by side) and deletes the
saved plan.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.ci.prcomment import job_url
from orchestrator.core import changes
from orchestrator.core.context import RunContext
from orchestrator.core.runner import Status, UnitResult
from orchestrator.core.units import Units
from orchestrator.errors import ConfigError, PolicyDenied, StalePlan, TerraformError
from orchestrator.policy import policies
from orchestrator.state.audit import sha256_file
from orchestrator.state.journal import who
from orchestrator.state.locks import StateLock
from orchestrator.state.runlock import RENEW_EVERY, RunLockedError, current_holder, force_release
from orchestrator.state.statestore import outputs_of, plan_key
from orchestrator.tf import events as tf_events

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PLAN_VERSION = 1


def check_run_id(run_id: str | None) -> str:
    if not run_id:
        raise ConfigError("unit plan/apply need --run-id (or ORCHESTRATOR_RUN_ID): the id plan and apply share")
    if not RUN_ID_RE.match(run_id):
        raise ConfigError(f"invalid run id {run_id!r}: 1-64 characters, letters, digits, '.', '_' or '-'")
    return run_id


def recorded_reviews(store, graph, env_id: str, run_id: str) -> list[dict]:
    """The plan summaries `unit plan` recorded for a run, in graph order (`report`'s page)."""
    order = {u: i for i, u in enumerate(graph.order())}
    records = sorted(store.reviews(run_id), key=lambda r: order.get(r["unit"], len(order)))
    if not records:
        raise ConfigError(f"no plan of run {run_id} recorded for {env_id} (`unit plan` records one per unit)")
    return records


@dataclass
class JobReport:
    """What one `unit plan` or `unit apply` did (the `unit` document of docs/report-schema.json)."""

    action: str
    environment: str
    unit: str
    run_id: str
    result: UnitResult
    plan_key: str = ""

    @property
    def refused(self) -> list[str]:
        """One line per violation a deny policy refuses (policies.Verdict.line)."""
        return [v.line() for v in self.result.policies if v.denied]

    @property
    def status(self) -> str:
        """plan: "changes" or "no changes"; apply: the unit's result (succeeded, no changes)."""
        if self.action == "plan":
            return "changes" if self.result.status is Status.SUCCEEDED else "no changes"
        return self.result.status.value

    def to_dict(self) -> dict:
        r = self.result
        return {
            "schema_version": 1,
            "command": "unit",
            "action": self.action,
            "environment": self.environment,
            "unit": self.unit,
            "run_id": self.run_id,
            "status": self.status,
            "detail": r.detail,
            "add": r.add,
            "change": r.change,
            "destroy": r.destroy,
            "replace": r.replace,
            "changes": [c["address"] for c in r.changes],
            "refused": self.refused,
            "policies": [v.to_dict() for v in r.policies],
            "hooks": r.hooks,
            "retries": r.retries,
            "plan_key": self.plan_key,
            "log": r.log_path,
            **({"preview": True} if r.preview else {}),
        }


def review_record(report: JobReport, job: str | None = None) -> dict:
    """What `orchestrator report` shows of one unit's plan in a pipeline run (no plan values:
    addresses, actions, counts, verdicts), and where the job's full output is."""
    r = report.result
    return {
        "unit": report.unit,
        "environment": report.environment,
        "run_id": report.run_id,
        "status": report.status,
        "detail": r.detail,
        "add": r.add,
        "change": r.change,
        "destroy": r.destroy,
        "replace": r.replace,
        "changes": [{"address": c["address"], "actions": list(c.get("actions", []))} for c in r.changes],
        "policies": [v.to_dict() for v in r.policies],
        "preview": r.preview,
        "plan_sha256": r.plan_digest,
        **({"job_url": job} if job else {}),
    }


def _ci_approval() -> str:
    """Who let a pipeline's apply job run: its actor, and the deployment environment whose
    protection rules (required reviewers) gate it, as the CI system says."""
    import os

    actor = os.environ.get("GITHUB_ACTOR") or os.environ.get("GITLAB_USER_LOGIN") or "unknown actor"
    gate = os.environ.get("GITHUB_ENVIRONMENT") or os.environ.get("CI_ENVIRONMENT_NAME")
    return f"CI ({actor})" + (f", through environment {gate}'s protection rules" if gate else "")


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def made_against(ctx: RunContext, unit: str, values: dict) -> dict:
    """What a plan depends on, in parts that name what moved: each upstream unit's outputs as the
    unit takes them, every other value (settings, identity, artifacts by content), its files.
    An artifact's path differs between machines; its name carries its content's digest."""
    spec = ctx.stack.units[unit]
    same = {k: (Path(v).name if k in spec.artifacts and v else v) for k, v in values.items()}
    upstream: dict[str, dict] = {}
    for name, (up, _out) in spec.inputs.items():
        if name in same:
            upstream.setdefault(up, {})[name] = same[name]
    return {
        "upstream": {u: _digest(v) for u, v in sorted(upstream.items())},
        "values": _digest({k: v for k, v in same.items() if k not in spec.inputs}),
        "source": changes.source_digest(spec.path),
    }


def what_moved(then: dict, now: dict) -> list[str]:
    moved = [
        f"the outputs of upstream unit {u} changed"
        for u in sorted(set(then["upstream"]) | set(now["upstream"]))
        if then["upstream"].get(u) != now["upstream"].get(u)
    ]
    if then["values"] != now["values"]:
        moved.append("settings (or another value it takes) changed")
    if then["source"] != now["source"]:
        moved.append("its terraform files differ (another commit?)")
    return moved


class UnitJobs:
    def __init__(self, ctx: RunContext, lock_wait: float = 0.0):
        self.ctx = ctx
        self.units = Units(ctx)
        self.run_id = check_run_id(ctx.run_id)  # the pipeline's: every job of one run shares it
        self.lock_wait = lock_wait

    # ---- what every job checks first --------------------------------------------
    def _replan_hint(self, unit: str) -> str:
        return f"orchestrator unit plan {self.ctx.env.cli_args} --run-id {self.run_id} {unit}"

    def _values(self, unit: str) -> dict:
        return self.units.deployed_values(unit, then="its apply job must run first")

    def _wait_for_locks(self, unit: str) -> None:
        """Another run holding the environment (a deploy from a laptop, another pipeline), or a
        state lock on the unit (an earlier attempt's terraform still finishing): waited for up to
        --lock-timeout, then one line naming the holder and the command that clears it."""
        ctx, s3 = self.ctx, self.ctx.aws.client("s3", self.ctx.env.backend.region)
        deadline = time.monotonic() + self.lock_wait
        said = set()
        while True:
            holder = current_holder(s3, ctx.env)
            if holder is not None and holder.run_id != self.run_id:
                dead = holder.proven_dead(time.time(), RENEW_EVERY)
                if dead is not None and dead.after == 0:
                    with contextlib.suppress(ConfigError):  # another job released it first
                        force_release(ctx.aws, ctx.env, holder.run_id)
                    ctx.say(f"[orchestrator] releasing the run lock of run {holder.run_id}: {dead.reason}")
                    continue
                if dead is not None:  # proven gone: waited for until two renewals are missed
                    deadline = max(deadline, time.monotonic() + dead.after)
                if time.monotonic() >= deadline:
                    raise RunLockedError(
                        f"environment {ctx.env.env_id} is busy: {holder.describe(time.time())} holds its run lock; "
                        "this job waits for it with --lock-timeout (e.g. 30m)"
                    )
                if "run" not in said:
                    ctx.say(f"[orchestrator] waiting for {holder.describe(time.time())} to finish")
                    said.add("run")
                time.sleep(2.0)
                continue
            lock = ctx.store.lock(unit)
            if lock is None:
                return
            held = StateLock.from_info(unit, lock)
            if time.monotonic() >= deadline:
                raise RunLockedError(
                    f"{held.describe()}; if no job runs for it any more (a runner that died), release it: "
                    f"{held.release_command(ctx.env.cli_args)}"
                )
            if "state" not in said:
                ctx.say(f"[orchestrator] {held.describe()}: waiting for it (up to --lock-timeout)")
                said.add("state")
            time.sleep(2.0)

    def _report(self, action: str, unit: str, result: UnitResult) -> JobReport:
        return JobReport(
            action, self.ctx.env.env_id, unit, self.run_id, result, plan_key(self.ctx.env, self.run_id, unit, "tfplan")
        )

    # ---- unit plan ------------------------------------------------------------------
    def plan(self, unit: str) -> JobReport:
        ctx = self.ctx
        result = UnitResult(unit, log_path=str(self.units.workspace(unit).log_path))
        report = self._report("plan", unit, result)
        ctx.store.key_arn()
        self._wait_for_locks(unit)
        upstream = self.units.upstream_outputs(unit)
        absent = [u for u, outputs in upstream.items() if outputs is None]
        if absent and ctx.store.outputs(unit) is None:
            return self._preview(unit, upstream, absent, result, report)
        values = self._values(unit)
        state = ctx.store.state_version(unit)  # the plan is made against at most this state
        ws = self.units.prepare(unit, values, result)
        try:
            plan = self.units.plan(unit, result)
            result.status = Status.SUCCEEDED if plan.changed else Status.NO_CHANGES
            if plan.changed:
                result.take_counts(plan.summary)
                result.changes = list(plan.summary.resources)
                result.diff = plan.text
                result.policies = self.units.verdicts(unit)
            result.detail = plan.summary.describe() if plan.changed else "no changes"
            meta = {
                "version": PLAN_VERSION,
                "unit": unit,
                "environment": ctx.env.env_id,
                "run_id": self.run_id,
                "changed": plan.changed,
                "counts": {"add": result.add, "change": result.change, "destroy": result.destroy},
                "made_against": made_against(ctx, unit, values),
                "state": list(state) if state else None,
                "artifacts": {k: values[k] for k in ctx.stack.units[unit].artifacts if values.get(k)},
                "who": who(),
                "created": time.time(),
            }
            result.plan_digest = sha256_file(ws.plan_path) if plan.changed else None
            ctx.store.put_plan(self.run_id, unit, ws.plan_path if plan.changed else None, meta)
            ctx.store.put_review(self.run_id, unit, ctx.redactor.redact_obj(review_record(report, job_url())))
        finally:
            ws.plan_path.unlink(missing_ok=True)
        return report

    def _preview(self, unit, upstream, absent, result, report) -> JobReport:
        """A unit whose upstream has no state yet (a job run before its upstream's apply): its
        preview (orchestrator.core.preview) in the summary, and a record that says so, with no plan
        file: `unit apply` refuses it."""
        ctx = self.ctx
        result.preview = True
        plan = self.units.preview(unit, upstream, result)
        result.status = Status.SUCCEEDED if plan.changed else Status.NO_CHANGES
        if plan.changed:
            result.take_counts(plan.summary)
            result.changes = list(plan.summary.resources)
            result.diff = plan.text
        waits = f"{', '.join(absent)} not deployed yet"
        result.detail = f"preview ({waits}): {plan.summary.describe() if plan.changed else 'no changes'}"
        meta = {
            "version": PLAN_VERSION,
            "unit": unit,
            "environment": ctx.env.env_id,
            "run_id": self.run_id,
            "preview": True,
            "waits_for": absent,
            "changed": plan.changed,
            "counts": {"add": result.add, "change": result.change, "destroy": result.destroy},
            "who": who(),
            "created": time.time(),
        }
        ctx.store.put_plan(self.run_id, unit, None, meta)
        ctx.store.put_review(self.run_id, unit, ctx.redactor.redact_obj(review_record(report, job_url())))
        return report

    # ---- unit apply -----------------------------------------------------------------
    def apply(self, unit: str, overrides=()) -> JobReport:
        ctx = self.ctx
        result = UnitResult(unit, log_path=str(self.units.workspace(unit).log_path))
        report = self._report("apply", unit, result)
        ctx.store.key_arn()
        meta = ctx.store.plan_meta(self.run_id, unit)
        if meta is None:
            raise StalePlan(
                f"no saved plan of unit {unit} for run {self.run_id} in {ctx.env.backend.bucket} "
                f"(applied already, expired, or never made): {self._replan_hint(unit)}"
            )
        if meta.get("preview"):
            raise StalePlan(
                f"the plan of unit {unit} (run {self.run_id}) is a preview, made before "
                f"{', '.join(meta.get('waits_for') or ['its upstream'])} existed: a preview is never applied; "
                f"nothing was applied; plan it again: {self._replan_hint(unit)}"
            )
        self._wait_for_locks(unit)
        values = self._values(unit)
        moved = what_moved(meta["made_against"], made_against(ctx, unit, values))
        if moved:
            raise StalePlan(
                f"the saved plan of unit {unit} (run {self.run_id}) is stale: since it was made {'; '.join(moved)}; "
                f"nothing was applied; plan it again: {self._replan_hint(unit)}"
            )
        journal = ctx.journal(self.run_id)
        spec = ctx.stack.units[unit]
        fp = changes.fingerprint(values, spec.path, spec.artifacts, spec.generated_secrets)
        journal.record_job(unit, command="deploy", status="running", fp=None, outputs=None)
        try:
            self._apply_checked(unit, meta, values, result, report, tuple(overrides))
            state = ctx.store.state(unit)
            result.outputs = outputs_of(state) or {}
            digests = changes.record(values, spec.path, state, spec.artifacts, spec.generated_secrets)
            self.units.run_hooks(unit, result.outputs, result)
        except Exception as exc:
            detail = ctx.redactor.redact(str(exc))
            journal.record_job(unit, command="deploy", status="failed", fp=None, outputs=None, detail=detail)
            raise
        journal.record_job(
            unit,
            command="deploy",
            status=result.status.value,
            fp=fp,
            outputs=result.outputs,
            detail=result.detail,
            digests=digests,
        )
        ctx.store.delete_plan(self.run_id, unit)
        return report

    def _apply_checked(self, unit, meta, values, result, report, overrides) -> None:
        ctx, units = self.ctx, self.units
        state = ctx.store.state_version(unit)
        planned_state = tuple(meta["state"]) if meta.get("state") else None
        ws = units.prepare(unit, values, result)
        if state != planned_state:
            return self._moved(unit, planned_state, result)
        if not meta["changed"]:
            result.status, result.detail = Status.NO_CHANGES, "no changes"
            return
        self._place_artifacts(meta, values)
        try:
            ctx.store.get_plan(self.run_id, unit, ws.plan_path)
            result.plan_digest = sha256_file(ws.plan_path)
            result.confirmed_by = _ci_approval()
            result.policies = units.verdicts(unit, overrides=overrides)
            if report.refused:
                raise PolicyDenied(policies.denied_message(unit, result.policies))
            counts = meta["counts"]
            result.add, result.change, result.destroy = counts["add"], counts["change"], counts["destroy"]
            try:
                units.apply(unit, result)
            except TerraformError as exc:
                # terraform's own check, under the state lock: the state moved between ours and its
                # (the terraform of a killed attempt still finishing). Nothing was applied.
                if tf_events.STALE_PLAN not in exc.summaries():
                    raise
                result.add = result.change = result.destroy = 0
                return self._moved(unit, planned_state, result)
        finally:
            ws.plan_path.unlink(missing_ok=True)
        result.status = Status.SUCCEEDED
        result.detail = f"applied the saved plan of run {self.run_id}"

    def _moved(self, unit: str, planned_state, result: UnitResult) -> None:
        """The unit's state moved since the plan. An earlier attempt of this job that applied the
        plan and died leaves exactly this: a fresh plan with nothing to do. Anything else: refused."""
        state = self.ctx.store.state_version(unit)
        fresh = self.units.plan(unit, result)
        self.units.workspace(unit).plan_path.unlink(missing_ok=True)
        serials = f"state serial {planned_state[1] if planned_state else 'none'}, now {state[1] if state else 'none'}"
        if fresh.changed:
            raise StalePlan(
                f"the saved plan of unit {unit} (run {self.run_id}) is stale: it was made against {serials}, "
                f"and a fresh plan changes {fresh.summary.text()}; nothing was applied; plan it again: "
                f"{self._replan_hint(unit)}"
            )
        result.status = Status.NO_CHANGES
        result.detail = f"already applied ({serials}; a fresh plan changes nothing)"

    @staticmethod
    def _place_artifacts(meta: dict, values: dict) -> None:
        """A plan names its artifacts by the path they had where it was made, and terraform reads
        them there during the apply: the same file (same name, same digest) is put there when
        this machine's is elsewhere."""
        for var, planned in (meta.get("artifacts") or {}).items():
            here, there = Path(values[var]), Path(planned)
            if here == there or there.exists():
                continue
            try:
                there.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(here, there)
            except OSError as exc:
                raise ConfigError(
                    f"the saved plan reads artifact {var} at {there}, which this machine cannot write "
                    f"({exc.strerror}): run plan and apply jobs with the same checkout path"
                ) from None
