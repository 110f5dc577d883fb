"""Commands that run units: bootstrap, deploy, preflight, plan, drift, health, smoke, teardown."""

from __future__ import annotations

import contextlib
from typing import Optional

import typer

from orchestrator.cli.app import (
    AllowReplaceOpt,
    ChangedOpt,
    EnvOpt,
    EventsOpt,
    Guard,
    JsonOpt,
    OverrideOpt,
    ParallelismOpt,
    ReasonOpt,
    SuffixOpt,
    SummaryOpt,
    TakeOverOpt,
    app,
    check_context,
    command_doc,
    engine_for,
    err,
    global_options,
    open_session_,
    parse_only,
    read_only_session,
    run_locked,
    smoke_waits,
)
from orchestrator.errors import (
    ConfigError,
    HealthProblems,
    ProblemsFound,
    RunFailed,
)
from orchestrator.report.views import confirm_factory, finish, narrow, orphan_lines


# ---- bootstrap ---------------------------------------------------------------
@app.command()
def bootstrap(
    ctx: typer.Context,
    env: str = EnvOpt,
    repair: bool = typer.Option(False, "--repair", help="Fix settings found weaker than wanted."),
    verify: bool = typer.Option(False, "--verify", help="Only check the posture; exit non-zero on drift."),
):
    """Create (or check) the state backend: KMS key, S3 bucket, lock. Never prompts.

    Example: orchestrator bootstrap --env prod --verify
    """
    with Guard():
        from orchestrator.aws.bootstrap import DRIFT
        from orchestrator.cli.session import open_session
        from orchestrator.errors import BackendError

        with open_session(global_options(ctx), env) as s:
            result = s.bootstrapper(repair=repair, verify_only=verify).run()
            for step in result.steps:
                mark = "!" if step.status == DRIFT else "-"
                typer.echo(f"{mark} {step.piece:<20} {step.status}{': ' + step.detail if step.detail else ''}")
            typer.echo(f"mutating AWS calls: {len(result.mutating_calls)}")
            if result.drift:
                raise BackendError(
                    f"{len(result.drift)} backend setting(s) drifted: {', '.join(d.piece for d in result.drift)}"
                    + ("" if verify else "; run again with --repair to fix")
                )


@contextlib.contextmanager
def _locked_run(s, engine, command: str, params: dict, lock_timeout: str, take_over: bool):
    """The copy's run lock, and under it the run's audit trail: its start record, the end of any
    earlier run of this copy that never wrote one, and an end record whatever happens (the caller
    writes the normal one with the report)."""
    from orchestrator.errors import Interrupted

    with run_locked(engine, lock_timeout, take_over):
        trail = s.audit_trail(engine.ctx.store)
        trail.start(
            engine.run_id, command, [f"{k}={v}" for k, v in sorted(params.items()) if v not in (None, False, [], ())]
        )
        for run_id in trail.recover():
            engine.notes.append(f"audit: run {run_id} never finished; its end record is written now")
        try:
            yield trail
        except BaseException as exc:
            word = "interrupted" if isinstance(exc, (Interrupted, KeyboardInterrupt)) else "error"
            try:
                trail.finish(word, error=str(exc) or type(exc).__name__)
            except Exception as also:  # noqa: BLE001 - the run's own error is the one to report
                err(
                    f"[orchestrator] the audit trail's end record was not written ({type(also).__name__}); "
                    "the next run writes it"
                )
            raise


def _in_order(s, report, backwards: bool = False) -> list[str]:
    """The report's units in the stack's order (a teardown's: backwards)."""
    order = s.stack.graph.order()
    return [u for u in (reversed(order) if backwards else order) if u in report.units]


def _smoke_after(s, report) -> list:
    """The smoke checks of the units the deploy ran, on their outputs."""
    from orchestrator.core.smoke import calls_for, run_smoke

    outputs = {u: r.outputs for u, r in report.units.items()}
    return run_smoke(check_context(s), calls_for(s.stack, report.units), outputs, on_wait=smoke_waits)


def parse_overrides(override: list[str], reason: Optional[str], allow_replace: list[str]):
    from orchestrator.policy import policies

    return policies.overrides(override, reason, allow_replace)


@app.command()
def deploy(
    ctx: typer.Context,
    env: str = EnvOpt,
    suffix: Optional[str] = SuffixOpt,
    only: Optional[str] = typer.Option(
        None, "--only", help="Comma-separated units, applied alone: their upstream is read from state, not applied."
    ),
    with_upstream: bool = typer.Option(
        False, "--with-upstream", help="With --only: also plan and apply every unit the named ones need."
    ),
    parallelism: str = ParallelismOpt,
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking (implied when CI is true, 1 or yes)."),
    lock_timeout: str = typer.Option("0s", "--lock-timeout", help="How long to wait for a state lock, e.g. 2m."),
    smoke_checks: bool = typer.Option(
        True, "--smoke/--no-smoke", help="Run the smoke checks of the units deployed (all, or those of --only)."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Skip units that succeeded in the journal with the same inputs (after a failure)."
    ),
    changed: bool = ChangedOpt,
    skip_preflight: bool = typer.Option(
        False, "--skip-preflight", help="Do not run the preflight checks first (the summary says so)."
    ),
    override: list[str] = OverrideOpt,
    reason: Optional[str] = ReasonOpt,
    allow_replace: list[str] = AllowReplaceOpt,
    take_over: bool = TakeOverOpt,
    json_out: bool = JsonOpt,
    events: bool = EventsOpt,
):
    """Preflight checks, then plan and apply every unit in dependency order, then smoke checks.

    Example: orchestrator deploy --env dev --suffix pr42 --yes
    """
    with Guard() as guard:
        from orchestrator.cli.session import open_session

        only_list, accepted = parse_only(only), parse_overrides(override, reason, allow_replace)
        confirm = confirm_factory(yes)  # no terminal to ask on: said before anything
        with open_session(global_options(ctx), env, suffix) as s:
            engine = engine_for(
                s,
                guard,
                lock_for="deploy",
                parallelism=parallelism,
                lock_timeout=lock_timeout,
                confirm=confirm,
                events=events,
                json_out=json_out,
                resume=resume,
                changed=changed,
                overrides=accepted,
            )
            narrow(engine.graph(only_list, with_upstream=with_upstream).units)  # unknown units, lock files: first
            with _locked_run(s, engine, "deploy", ctx.params, lock_timeout, take_over) as trail:
                preflight = _preflight(s, skip_preflight)
                report = engine.deploy(only_list, with_upstream=with_upstream)
                report.preflight = preflight
                if smoke_checks and not report.failed and guard.signum is None:
                    report.smoke = _smoke_after(s, report)
                order = _in_order(s, report)
                trail.finish(report.result, [report.units[u] for u in order], report.smoke, preflight["summary"])
            finish(report, s, json_out, order)


def _report_orphans(s, report) -> list:
    """After a teardown that went through: what is still tagged for the environment and in no state."""
    from orchestrator.aws import orphans as orphans_mod

    if report.failed or not s.stack.ownership_tags:
        return []
    found = orphans_mod.find(s.aws, s.env, s.stack)
    kept = orphans_mod.kept_live(s.aws, s.env)
    for k in kept:
        report.notes.append(f"kept on purpose (keep_on_teardown): {k['address']} {k['arn'] or k['id']}: {k['why']}")
    report.notes.append(
        f"teardown left {len(found)} live resource(s) tagged for {s.env.env_id} in no state file "
        f"(orchestrator orphans {s.env.cli_args})"
        if found
        else f"teardown left nothing{' else' if kept else ''}: no live resource is tagged for {s.env.env_id}"
    )
    report.notes.extend(orphan_lines(found))
    return found


def _preflight(s, skip: bool) -> dict:
    """Before the first terraform command: every failure one line, exit 10, nothing changed."""
    from orchestrator.aws import preflight

    if skip:
        return {"skipped": True, "summary": "skipped (--skip-preflight)", "findings": []}
    findings = preflight.check(preflight.Context(s.env, s.aws, s.project.root, tuple(s.stack.units)), s.stack.preflight)
    ok = sum(f.status == "ok" for f in findings)
    skipped = sum(f.status == "skip" for f in findings)
    return {
        "skipped": False,
        "summary": f"{ok} checks passed, {skipped} not applicable" if findings else "none declared in the manifest",
        "findings": [{"check": f.check, "status": f.status, "message": f.message} for f in findings],
    }


@app.command("preflight")
def preflight_command(
    ctx: typer.Context, env: str = EnvOpt, suffix: Optional[str] = SuffixOpt, json_out: bool = JsonOpt
):
    """Check in seconds what would fail minutes into an apply: names, image, zone, certificate, quotas, ...

    Exit 0: every check passed; 10: at least one failed (one line each). Nothing is changed.
    Example: orchestrator preflight --env prod
    """
    with Guard():
        from orchestrator.aws import preflight
        from orchestrator.cli.session import open_session
        from orchestrator.report.render import to_json

        with open_session(global_options(ctx), env, suffix) as s:
            findings = preflight.run(
                preflight.Context(s.env, s.aws, s.project.root, tuple(s.stack.units)), s.stack.preflight
            )
        for f in findings:
            line = f"{f.status.upper():4} {f.check}: {f.message}"
            err(f"error: preflight: {f.message}" if f.failed else line)
        if json_out:
            checks = [{"check": f.check, "status": f.status, "message": f.message} for f in findings]
            typer.echo(to_json(command_doc("preflight", s.env.env_id, checks=checks)))
        if any(f.failed for f in findings):
            raise ProblemsFound("")


def _plan_command(ctx, env, suffix, only, json_out, command, events=False, show=False, changed=False, summary=None):
    with Guard() as guard:
        from pathlib import Path

        from orchestrator.cli.session import open_session
        from orchestrator.report.views import plan_markdown

        only_list = parse_only(only)
        if summary and not Path(summary).parent.is_dir():
            raise ConfigError(f"{summary}: directory {Path(summary).parent} does not exist")
        with open_session(global_options(ctx), env, suffix) as s:
            engine = engine_for(
                s,
                guard,
                lock_for=command,
                events=events,
                json_out=json_out,
                changed=changed,
                plan_text=show or bool(summary),
            )
            narrow(engine.graph(only_list).units)
            with run_locked(engine):
                report = engine.plan(only_list, command=command)
            order = [u for u in s.stack.graph.order() if u in report.units]
            if summary:
                with open(summary, "a", encoding="utf-8") as f:
                    f.write(plan_markdown(report, order, s.redactor))
            finish(report, s, json_out, order, exit_changed=True, show=show)


OnlyUnitsOpt = typer.Option(
    None,
    "--only",
    help="Comma-separated units, those alone (as deploy --only), against their upstream's deployed outputs.",
)


def _plan_like(command: str, doc: str) -> None:
    """`plan` and `drift`: the same options, the same run, their own meaning of a difference."""

    def run(
        ctx: typer.Context,
        env: str = EnvOpt,
        suffix: Optional[str] = SuffixOpt,
        only: Optional[str] = OnlyUnitsOpt,
        json_out: bool = JsonOpt,
        events: bool = EventsOpt,
        show: bool = typer.Option(False, "--show", help="Print each changed unit's plan in full (redacted)."),
        summary: Optional[str] = SummaryOpt,
    ):
        _plan_command(ctx, env, suffix, only, json_out, command, events, show, summary=summary)

    def run_plan(
        ctx: typer.Context,
        env: str = EnvOpt,
        suffix: Optional[str] = SuffixOpt,
        only: Optional[str] = OnlyUnitsOpt,
        changed: bool = ChangedOpt,
        json_out: bool = JsonOpt,
        events: bool = EventsOpt,
        show: bool = typer.Option(False, "--show", help="Print each changed unit's plan in full (redacted)."),
        summary: Optional[str] = SummaryOpt,
    ):
        _plan_command(ctx, env, suffix, only, json_out, command, events, show, changed, summary)

    chosen = run_plan if command == "plan" else run  # drift looks at AWS: --changed cannot see it
    chosen.__doc__ = doc
    app.command(command)(chosen)


_plan_like(
    "plan",
    """Plan every deployed unit (with refresh). Exit 0: no differences; 2: differences.

    Example: orchestrator plan --env staging
    """,
)
_plan_like(
    "drift",
    """Detect drift between state and AWS. Exit 0: none; 2: drift found.

    Example: orchestrator drift --env prod --json
    """,
)


@app.command()
def health(
    ctx: typer.Context,
    env: str = EnvOpt,
    suffix: Optional[str] = SuffixOpt,
    lock_timeout: str = typer.Option(
        "0s", "--lock-timeout", help="How long to wait for another run of the environment (a deploy), e.g. 20m."
    ),
    json_out: bool = JsonOpt,
):
    """Drift (every unit, read-only) and the smoke checks in one run, under the environment's run
    lock like `drift`; the result kept in the journal (`status` shows it) and, when the state
    changed since the last health, sent to [notify]'s targets. Exit 0 healthy, 2 drift found, 13
    smoke checks failing, 14 both.

    Example: orchestrator health --env prod
    """
    with Guard() as guard:
        from orchestrator.cli.session import open_session
        from orchestrator.core import health as health_mod
        from orchestrator.core.smoke import calls_for, run_smoke
        from orchestrator.state.statestore import require_deployed

        with open_session(global_options(ctx), env, suffix) as s:
            engine = engine_for(s, guard, lock_for="health", json_out=json_out)
            outputs = require_deployed(s.aws, s.env, s.stack.graph.order())
            with run_locked(engine, lock_timeout):
                report = engine.plan(None, command="drift")
                results = run_smoke(check_context(s), calls_for(s.stack, s.stack.units), outputs, on_wait=smoke_waits)
                now = health_mod.judge(s.env.env_id, engine.run_id, report, results)
                previous = engine.journal.load().get("health")
                engine.journal.record_health(now.record())
            sent = health_mod.tell(s.aws, s.env.notify, outputs, previous, now, s.redactor)
            _render_health(s, report, results, now, previous, sent, json_out)
            if now.exit_code:
                raise HealthProblems(now.exit_code)


def _render_health(s, report, results, now, previous, sent, json_out: bool) -> None:
    """`health`'s summary on stderr (drift lines, checks, notifications, the verdict), its JSON on stdout."""
    from orchestrator.report.render import report_dict, smoke_dict, to_json

    order = [u for u in s.stack.graph.order() if u in report.units]
    for unit in order:
        for line in now.drifted.get(unit, []):
            err(s.redactor.redact(f"drift {unit}: {line}"))
    for c in results:
        err(f"smoke {'PASS' if c.passed else 'FAIL'} {c.name}: {c.reason}")
    for n in sent:
        err(s.redactor.redact(f"notification {n.target}: {'sent' if n.ok else 'FAILED: ' + n.detail}"))
    was = (previous or {}).get("state", "unknown")
    err(f"health of {s.env.env_id}: {now.state} (was {was}){'' if sent else '; no notification (no change)'}")
    if json_out:
        doc = command_doc(
            "health",
            s.env.env_id,
            state=now.state,
            was=was,
            drifted=now.drifted,
            failing=now.failing,
            drift=report_dict(report, order, s.redactor)["units"],
            smoke=[smoke_dict(c) for c in results],
            notifications=[{"target": n.target, "sent": n.ok, "detail": n.detail} for n in sent],
        )
        typer.echo(to_json(s.redactor.redact_obj(doc)))


@app.command()
def smoke(ctx: typer.Context, env: str = EnvOpt, suffix: Optional[str] = SuffixOpt, json_out: bool = JsonOpt):
    """Run the smoke checks against what is deployed.

    Example: orchestrator smoke --env dev
    """
    with Guard():
        from orchestrator.core.smoke import calls_for, run_smoke
        from orchestrator.report.render import smoke_dict, to_json
        from orchestrator.state.statestore import require_deployed

        with read_only_session(ctx, env, suffix) as s:
            outputs = require_deployed(s.aws, s.env, s.stack.graph.order())
            results = run_smoke(check_context(s), calls_for(s.stack, s.stack.units), outputs, on_wait=smoke_waits)
            for c in results:
                err(f"{'PASS' if c.passed else 'FAIL'} {c.name}: {c.reason}")
            if json_out:
                typer.echo(to_json(command_doc("smoke", s.env.env_id, smoke=[smoke_dict(c) for c in results])))
            if not all(c.passed for c in results):
                raise RunFailed("")


@app.command()
def teardown(
    ctx: typer.Context,
    env: str = EnvOpt,
    suffix: Optional[str] = SuffixOpt,
    only: Optional[str] = typer.Option(
        None, "--only", help="Comma-separated units to destroy (refused while a unit that needs one stays)."
    ),
    allow_protected: bool = typer.Option(False, "--allow-protected", help="Needed for a protected environment (prod)."),
    confirm_name: Optional[str] = typer.Option(
        None, "--confirm", help="The environment's name, typed back (protected environments)."
    ),
    parallelism: str = ParallelismOpt,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask (implied when CI is true, 1 or yes)."),
    lock_timeout: str = typer.Option(
        "0s", "--lock-timeout", help="How long to wait for another run of the environment, e.g. 10m."
    ),
    override: list[str] = OverrideOpt,
    reason: Optional[str] = ReasonOpt,
    take_over: bool = TakeOverOpt,
    json_out: bool = JsonOpt,
    events: bool = EventsOpt,
):
    """Destroy every unit in reverse dependency order, each unit's destroy plan shown and confirmed
    (without --yes). Protected environments are refused.

    Example: orchestrator teardown --env dev --suffix pr42 --yes
    """
    with Guard() as guard:
        from orchestrator.model.config import Project, load_environment, load_stack

        # Refuse a protected environment before touching AWS at all.
        project = Project.find(global_options(ctx).project_dir)
        env_cfg = load_environment(project.environments_dir, env, load_stack(project.terraform_dir))
        env_cfg.refuse_unless_confirmed("teardown", allow_protected, confirm_name)
        accepted = parse_overrides(override, reason, ())
        confirm = confirm_factory(yes)  # each unit's destroy plan shown and confirmed, unless --yes or CI
        with open_session_(ctx, env, suffix) as s:
            engine = engine_for(
                s,
                guard,
                lock_for="teardown",
                parallelism=parallelism,
                events=events,
                confirm=confirm,
                json_out=json_out,
                overrides=accepted,
            )
            only_list = parse_only(only)
            narrow(engine.graph(only_list, with_upstream=False).units)
            with _locked_run(s, engine, "teardown", ctx.params, lock_timeout, take_over) as trail:
                report = engine.teardown(only_list, allow_protected=allow_protected, confirm_name=confirm_name)
                order = _in_order(s, report, backwards=True)
                trail.finish(report.result, [report.units[u] for u in order])
            left = _report_orphans(s, report) if not only_list else []
            finish(report, s, json_out, order)
            if left:
                raise ProblemsFound("")  # the teardown went through, and left live resources behind
