"""Typer commands: parse, call one core function, render, exit.

Prompts, --yes and --json live here only. Heavy imports (boto3, the
terraform layer) happen inside the commands that need them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Optional

import typer
from typer.core import TyperGroup

from orchestrator.errors import (
    BackendError,
    ConfigError,
    HealthProblems,
    NotRunning,
    OrchestratorError,
    PrerequisiteError,
    ProblemsFound,
    RunFailed,
)
from orchestrator.report.views import confirm_factory, finish, narrow, orphan_lines, progress


def _usage_error_class():
    """click's UsageError as the click typer runs on (typer may carry a click of its own)."""
    import importlib

    base = next(c for c in TyperGroup.__mro__[1:] if c.__module__.endswith(".core"))
    return importlib.import_module(base.__module__.rsplit(".", 1)[0] + ".exceptions").UsageError


class _Commands(TyperGroup):
    """click exits 2 on a usage error (an unknown option, a missing argument); here 2 means
    "differences found" only, so a usage error exits as any bad input does (ConfigError)."""

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except _usage_error_class() as exc:
            exc.exit_code = ConfigError.exit_code
            raise

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _usage_error_class() as exc:
            exc.exit_code = ConfigError.exit_code
            raise


app = typer.Typer(
    cls=_Commands,
    no_args_is_help=True,
    help="Deploy a stack's Terraform units to AWS, in dependency order (the manifest: terraform/stack.toml).",
    pretty_exceptions_enable=False,
    # Plain click help: rich's help formatter alone costs ~0.3 s of imports.
    rich_markup_mode=None,
)
local_app = typer.Typer(
    no_args_is_help=True, help="Keep one local emulator (moto server) running between commands.", rich_markup_mode=None
)
app.add_typer(local_app, name="local")

EnvOpt = typer.Option(..., "--env", "-e", help="Environment: a folder under environments/.")
SuffixOpt = typer.Option(None, "--suffix", "-s", help="Copy of the environment beside it, e.g. pr42.")
ParallelismOpt = typer.Option(
    "auto",
    "--parallelism",
    "-p",
    help="terraform commands at once: auto (from the CPUs and memory, shared by every run on this host; "
    "doctor shows it) or 1-16.",
)
JsonOpt = typer.Option(
    False, "--json", help="Write the result as JSON on stdout (schema: docs/report-schema.json, by `command`)."
)
EventsOpt = typer.Option(False, "--events", help="Stream NDJSON events on stdout as units start and finish.")
TakeOverOpt = typer.Option(
    False,
    "--take-over-stale-lock",
    help="Take over the environment's run lock if its holder is gone (dead process on this host, or not renewed).",
)


def _opts(ctx: typer.Context):
    """The global options, with the command being run (e.g. "unit plan"): it goes into every
    AWS request's User-Agent (orchestrator.permissions)."""
    from dataclasses import replace

    names, c = [], ctx
    while c is not None and c.parent is not None:
        names.append(c.info_name or "")
        c = c.parent
    return replace(ctx.obj, command=" ".join(reversed(names)))


def err(message: str) -> None:
    typer.echo(message, err=True)


def abort(exc: OrchestratorError) -> None:
    """The one place an error becomes an exit code: its line (unless already reported), its code."""
    for line in exc.message.splitlines():
        err(f"error: {line}")
    if exc.hint:
        err(f"hint: {exc.hint}")
    raise typer.Exit(exc.exit_code)


def _detach_from_terminal() -> None:
    """After a hang-up the terminal is gone and every write to it fails (EIO): what is
    still said goes nowhere instead of ending the graceful stop with an error."""
    import stat

    devnull = os.open(os.devnull, os.O_WRONLY)
    null_dev = os.fstat(devnull).st_rdev
    for fd in (1, 2):
        try:
            # isatty() is already false on a hung-up terminal: any character device but
            # /dev/null is the terminal (pipes and files keep their output).
            st = os.fstat(fd)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev != null_dev:
                os.dup2(devnull, fd)
        except OSError:
            pass
    os.close(devnull)


class _Guard:
    """Runs a command body: library errors become one line and their exit code;
    SIGINT, SIGTERM and SIGHUP (a closed terminal) are forwarded once to terraform as
    SIGINT and end the run as interrupted."""

    def __init__(self):
        self.signum: int | None = None
        self.engine = None

    def handler(self, signum, frame):
        from orchestrator.tf.terraform import REGISTRY

        first = self.signum is None
        self.signum = signum
        if signum == signal.SIGHUP:
            _detach_from_terminal()
        if first:
            err(f"\n[orchestrator] {signal.Signals(signum).name}: stopping terraform gracefully (no new units start)")
        if self.engine is not None and self.engine.queue is not None:
            self.engine.queue.interrupt()
        threading.Thread(target=REGISTRY.interrupt_all, args=(signum,), daemon=True).start()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self.handler) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        return self

    def __exit__(self, et, ev, tb):
        if threading.current_thread() is threading.main_thread():
            for s, h in self._old.items():
                signal.signal(s, h)
        if self.signum is not None and (ev is None or isinstance(ev, (typer.Exit, OrchestratorError))):
            err(f"run interrupted by {signal.Signals(self.signum).name}")
            raise typer.Exit(128 + self.signum)
        if ev is None or isinstance(ev, typer.Exit):
            return False
        if isinstance(ev, OrchestratorError):
            abort(ev)
        if isinstance(ev, KeyboardInterrupt):
            err("interrupted")
            raise typer.Exit(130)
        return False


def _print_version(asked: bool) -> None:
    if asked:
        from orchestrator import __version__

        typer.echo(f"orchestrator {__version__}")
        raise typer.Exit()


def _global(default, flag: str, var: str, text: str):
    """A global option, also read from the environment variable `var`."""
    return typer.Option(default, flag, envvar=var, help=text)


@app.callback()
def main(
    ctx: typer.Context,
    local: bool = _global(
        False,
        "--local",
        "ORCHESTRATOR_LOCAL",
        "Run against the local emulator `orchestrator local up` started for this project.",
    ),
    emulator_url: Optional[str] = _global(
        None, "--emulator-url", "ORCHESTRATOR_EMULATOR_URL", "Use the emulator at this URL (implies --local)."
    ),
    project_dir: Optional[str] = _global(
        None, "--project-dir", "ORCHESTRATOR_PROJECT_DIR", "Folder holding terraform/ and environments/."
    ),
    work_dir: Optional[str] = _global(
        None,
        "--work-dir",
        "ORCHESTRATOR_WORK_DIR",
        "Working copies, logs and the plugin cache (default: <project>/.orchestrator).",
    ),
    provider_mirror: Optional[str] = _global(
        None, "--provider-mirror", "ORCHESTRATOR_PROVIDER_MIRROR", "Terraform filesystem mirror holding hashicorp/aws."
    ),
    terraform_timeout: float = _global(
        3600.0,
        "--terraform-timeout",
        "ORCHESTRATOR_TERRAFORM_TIMEOUT",
        "Seconds before one terraform command is stopped.",
    ),
    terraform_retries: int = _global(
        2,
        "--terraform-retries",
        "ORCHESTRATOR_TERRAFORM_RETRIES",
        "Re-runs of a terraform command on a transient error.",
    ),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=lambda v: _print_version(v), help="Print the version and exit."
    ),
):
    """Example: orchestrator --local deploy --env dev --yes"""
    from orchestrator.cli.session import Options

    ctx.obj = Options(
        local=local,
        emulator_url=emulator_url,
        project_dir=project_dir,
        work_dir=work_dir,
        provider_mirror=provider_mirror,
        terraform_timeout=terraform_timeout,
        terraform_retries=terraform_retries,
    )


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
    with _Guard():
        from orchestrator.aws.bootstrap import DRIFT
        from orchestrator.cli.session import open_session
        from orchestrator.errors import BackendError

        with open_session(_opts(ctx), env) as s:
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


# ---- engine commands -----------------------------------------------------------
def _engine(s, guard, *, parallelism="auto", lock_timeout="0s", confirm=None, events=False, json_out=False, **options):
    """The run's engine; `options` are Engine's (resume, changed, overrides)."""
    from orchestrator.core.engine import Engine
    from orchestrator.tf.hostslots import parse_parallelism

    if events and json_out:
        raise ConfigError(
            "--events and --json both write to stdout: choose one (every run's report is also in reports/)"
        )
    on_start, on_finish = progress(events, s.stack.graph.order())
    ctx = s.run_context(
        parallelism=parse_parallelism(str(parallelism)),
        lock_timeout=lock_timeout,
        confirm=confirm,
        on_start=on_start,
        on_finish=on_finish,
        say=err,
    )
    engine = Engine(ctx, **options)
    guard.engine = engine
    return engine


def _duration(text: str) -> float:
    """terraform-style durations: 90s, 10m, 1h, 1h30m."""
    import re

    if not re.fullmatch(r"(?:\d+[hms])+", text or ""):
        raise ConfigError(f"invalid duration {text!r}: e.g. 30s, 10m, 1h")
    return float(sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in re.findall(r"(\d+)([hms])", text)))


@contextlib.contextmanager
def _run_locked(s, engine, command: str, lock_timeout: str = "0s", take_over: bool = False):
    """One run per environment: the run lock is held around everything the run does."""
    lock = s.run_lock(engine.run_id, command)
    lock.acquire(timeout=_duration(lock_timeout), take_over=take_over, on_wait=lambda m: err(f"[orchestrator] {m}"))
    if lock.taken_over is not None and lock.takeover_reason:
        err(f"[orchestrator] taking over the run lock of run {lock.taken_over.run_id}: {lock.takeover_reason}")
    elif lock.taken_over is not None:
        err(f"[orchestrator] took over the stale run lock of run {lock.taken_over.run_id}")
    engine.run_lock = lock
    with lock:
        yield lock


@contextlib.contextmanager
def _audited(s, engine, command: str, params: dict):
    """The run's audit trail, under the run lock: its start record, the end of any earlier run of
    this copy that never wrote one, and an end record whatever happens (the caller writes the
    normal one with the report)."""
    from orchestrator.errors import Interrupted

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
                f"[orchestrator] the audit trail's end record was not written ({type(also).__name__}); the next run writes it"
            )
        raise


SummaryOpt = typer.Option(
    None,
    "--summary",
    metavar="FILE",
    help='Append a Markdown summary to this file (GitHub: "$GITHUB_STEP_SUMMARY").',
)

OverrideOpt = typer.Option(
    [],
    "--override",
    metavar="POLICY:ADDRESS",
    help="Accept one policy violation by name (repeatable); needs --reason, recorded with the run.",
)
ReasonOpt = typer.Option(None, "--reason", metavar="TEXT", help="Why the --override violations are accepted.")
AllowReplaceOpt = typer.Option(
    [],
    "--allow-replace",
    metavar="ADDRESS",
    help="Alias of --override for the guard policies (stateful_replace, open_to_internet) at this address.",
)


def _overrides(override: list[str], reason: Optional[str], allow_replace: list[str]):
    from orchestrator.policy import policies

    return policies.overrides(override, reason, allow_replace)


ChangedOpt = typer.Option(
    False,
    "--changed",
    help="Only units whose files, inputs or state moved since their last apply (the journal's record); "
    "the rest are skipped without terraform. Not drift: `drift` looks at AWS.",
)


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
    with _Guard() as guard:
        from orchestrator.cli.session import open_session
        from orchestrator.core.smoke import calls_for, run_smoke

        only_list = [u.strip() for u in only.split(",") if u.strip()] if only else None
        accepted = _overrides(override, reason, allow_replace)
        confirm = confirm_factory(yes)
        with open_session(_opts(ctx), env, suffix) as s:
            engine = _engine(
                s,
                guard,
                parallelism=parallelism,
                lock_timeout=lock_timeout,
                confirm=confirm,
                events=events,
                json_out=json_out,
                resume=resume,
                changed=changed,
                overrides=accepted,
            )
            narrow(
                engine.graph(only_list, with_upstream=with_upstream).units
            )  # unknown units, lock files: before anything
            with (
                _run_locked(s, engine, "deploy", lock_timeout, take_over),
                _audited(s, engine, "deploy", ctx.params) as trail,
            ):
                preflight = _preflight(s, skip_preflight)
                report = engine.deploy(only_list, with_upstream=with_upstream)
                report.preflight = preflight
                order = [u for u in s.stack.graph.order() if u in report.units]
                if smoke_checks and not report.failed and guard.signum is None:
                    outputs = {u: r.outputs for u, r in report.units.items()}
                    report.smoke = run_smoke(
                        _check_context(s), calls_for(s.stack, report.units), outputs, on_wait=_smoke_waits
                    )
                trail.finish(
                    report.result,
                    [report.units[u] for u in order],
                    report.smoke,
                    (preflight or {}).get("summary"),
                )
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
    with _Guard():
        from orchestrator.aws import preflight
        from orchestrator.cli.session import open_session
        from orchestrator.report.render import to_json

        with open_session(_opts(ctx), env, suffix) as s:
            findings = preflight.run(
                preflight.Context(s.env, s.aws, s.project.root, tuple(s.stack.units)), s.stack.preflight
            )
        for f in findings:
            line = f"{f.status.upper():4} {f.check}: {f.message}"
            err(f"error: preflight: {f.message}" if f.failed else line)
        if json_out:
            checks = [{"check": f.check, "status": f.status, "message": f.message} for f in findings]
            typer.echo(to_json(_doc("preflight", s.env.env_id, checks=checks)))
        if any(f.failed for f in findings):
            raise ProblemsFound("")


def _plan_command(ctx, env, suffix, only, json_out, command, events=False, show=False, changed=False, summary=None):
    with _Guard() as guard:
        from pathlib import Path

        from orchestrator.cli.session import open_session
        from orchestrator.report.views import plan_markdown

        only_list = [u.strip() for u in only.split(",") if u.strip()] if only else None
        if summary and not Path(summary).parent.is_dir():
            raise ConfigError(f"{summary}: directory {Path(summary).parent} does not exist")
        with open_session(_opts(ctx), env, suffix) as s:
            engine = _engine(s, guard, events=events, json_out=json_out, changed=changed)
            narrow(engine.graph(only_list).units)
            with _run_locked(s, engine, command):
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
    with _Guard() as guard:
        import os

        from orchestrator.cli.session import open_session
        from orchestrator.core import health as health_mod
        from orchestrator.core.smoke import calls_for, run_smoke
        from orchestrator.report.render import report_dict, smoke_dict, to_json
        from orchestrator.state.statestore import require_deployed

        with open_session(_opts(ctx), env, suffix) as s:
            engine = _engine(s, guard, json_out=json_out)
            outputs = require_deployed(s.aws, s.env, s.stack.graph.order())
            with _run_locked(s, engine, "health", lock_timeout):
                report = engine.plan(None, command="drift")
                results = run_smoke(_check_context(s), calls_for(s.stack, s.stack.units), outputs, on_wait=_smoke_waits)
                now = health_mod.judge(s.env.env_id, engine.run_id, report, results)
                previous = engine.journal.load().get("health")
                engine.journal.record_health(now.record())
            notify = s.env.notify
            topic = notify.sns_topic
            if topic and not topic.startswith("arn:"):
                unit, name = topic.split(".")
                topic = (outputs.get(unit) or {}).get(name)
            url = os.environ.get(notify.webhook_url_env) if notify.webhook_url_env else None
            if url:
                s.redactor.add(url)  # a webhook URL is a credential
            sent = []
            if health_mod.changed(previous, now):
                notifier = health_mod.Notifier(s.aws, topic, url, notify.webhook_timeout_seconds)
                sent = notifier.send(s.redactor.redact_obj(health_mod.message(now, previous)))
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
                doc = _doc(
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
            if now.exit_code:
                raise HealthProblems(now.exit_code)


@app.command()
def smoke(ctx: typer.Context, env: str = EnvOpt, suffix: Optional[str] = SuffixOpt, json_out: bool = JsonOpt):
    """Run the smoke checks against what is deployed.

    Example: orchestrator smoke --env dev
    """
    with _Guard():
        from orchestrator.core.smoke import calls_for, run_smoke
        from orchestrator.report.render import smoke_dict, to_json
        from orchestrator.state.statestore import require_deployed

        with _read_only(ctx, env, suffix) as s:
            outputs = require_deployed(s.aws, s.env, s.stack.graph.order())
            results = run_smoke(_check_context(s), calls_for(s.stack, s.stack.units), outputs, on_wait=_smoke_waits)
            for c in results:
                err(f"{'PASS' if c.passed else 'FAIL'} {c.name}: {c.reason}")
            if json_out:
                typer.echo(to_json(_doc("smoke", s.env.env_id, smoke=[smoke_dict(c) for c in results])))
            if not all(c.passed for c in results):
                raise RunFailed("")


def _doc(command: str, environment: str | None, **body) -> dict:
    """A read-only command's --json document: schema_version and command first (docs/report-schema.json)."""
    head = {"schema_version": 1, "command": command}
    return {**head, **({"environment": environment} if environment is not None else {}), **body}


def _smoke_waits(name: str, reason: str, waited: float) -> None:
    err(f"smoke: {name}: not settled after {waited:.0f}s ({reason}); waiting")


def _say_stranded(s) -> None:
    """State of units the manifest no longer names: one warning with the commands that fix it."""
    from orchestrator.state.statestore import stranded_message, stranded_units

    stranded = stranded_units(s.aws, s.env, s.stack.units)
    if stranded:
        err(f"warning: {stranded_message(s.env, stranded)}")


def _check_context(s):
    from orchestrator.model.plugins import Context

    return Context(s.aws, s.env.settings, s.redactor)


def open_session_(ctx, env, suffix):
    from orchestrator.cli.session import open_session

    return open_session(_opts(ctx), env, suffix)


def _one_output(data: dict, unit: str | None, name: str | None):
    if not unit or not name:
        # the example from this stack's own outputs, not the platform's
        example = next(((u, next(iter(v))) for u, v in data.items() if v), ("UNIT", "NAME"))
        raise ConfigError(f"--raw needs UNIT NAME, e.g. orchestrator outputs ... {example[0]} {example[1]} --raw")
    if data[unit] is None:
        raise ConfigError(f"unit {unit} is not deployed")
    if name not in data[unit]:
        raise ConfigError(f"unit {unit} has no output {name!r} (it has: {', '.join(sorted(data[unit])) or 'none'})")
    return data[unit][name]


def _read_only(ctx, env, suffix):
    """A session for commands that only read: ORCHESTRATOR_SECRET_* masked, not judged."""
    from orchestrator.cli.session import open_session

    return open_session(_opts(ctx), env, suffix, read_only=True)


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
    with _Guard() as guard:
        from orchestrator.errors import ProtectedEnvironmentError
        from orchestrator.model.config import Project, load_environment, load_stack

        # Refuse a protected environment before touching AWS at all.
        project = Project.find(_opts(ctx).project_dir)
        env_cfg = load_environment(project.environments_dir, env, load_stack(project.terraform_dir))
        if env_cfg.protected and not (allow_protected and confirm_name == env):
            raise ProtectedEnvironmentError(
                f"environment {env} is protected: teardown needs --allow-protected and --confirm {env} (nothing was changed)"
            )
        accepted = _overrides(override, reason, ())
        confirm = confirm_factory(yes)  # each unit's destroy plan shown and confirmed, unless --yes or CI
        with open_session_(ctx, env, suffix) as s:
            engine = _engine(
                s,
                guard,
                parallelism=parallelism,
                events=events,
                confirm=confirm,
                json_out=json_out,
                overrides=accepted,
            )
            only_list = [u.strip() for u in only.split(",") if u.strip()] if only else None
            narrow(engine.graph(only_list, with_upstream=False).units)
            with (
                _run_locked(s, engine, "teardown", lock_timeout, take_over),
                _audited(s, engine, "teardown", ctx.params) as trail,
            ):
                report = engine.teardown(only_list, allow_protected=allow_protected, confirm_name=confirm_name)
                trail.finish(
                    report.result, [report.units[u] for u in reversed(s.stack.graph.order()) if u in report.units]
                )
                if not only_list and not report.failed:
                    engine.ctx.store.delete_reviews()  # its pipelines' plan summaries
                    gone = engine.ctx.store.delete_plans()  # a pipeline's plans of a copy that is gone
                    if gone:
                        report.notes.append(f"deleted {gone} saved plan object(s) of {s.env.env_id} never applied")
            left = _report_orphans(s, report) if not only_list else []
            order = [u for u in reversed(s.stack.graph.order()) if u in report.units]
            finish(report, s, json_out, order)
            if left:
                raise ProblemsFound("")  # the teardown went through, and left live resources behind


@app.command()
def orphans(ctx: typer.Context, env: str = EnvOpt, suffix: Optional[str] = SuffixOpt, json_out: bool = JsonOpt):
    """Live resources tagged with the environment that no state file holds (left by a run that died).

    Exit 0: none; 10: some found (listed with type, id, creation time). Nothing is changed.
    Example: orchestrator orphans --env dev --suffix pr42
    """
    with _Guard():
        from orchestrator.aws import orphans as orphans_mod
        from orchestrator.report.render import to_json

        with open_session_(ctx, env, suffix) as s:
            import time as _time

            from orchestrator.state.runlock import RunLockedError, current_holder
            from orchestrator.state.statestore import require_bucket

            require_bucket(s.aws, s.env)
            holder = current_holder(s.aws.client("s3", s.env.backend.region), s.env)
            if holder is not None and not holder.stale_reason(_time.time()):
                # What a live run is creating is not in state yet: it would all look orphaned.
                raise RunLockedError(
                    f"environment {s.env.env_id} is busy: {holder.describe(_time.time())} holds its run lock; "
                    "run orphans when it has finished"
                )
            found = orphans_mod.find(s.aws, s.env, s.stack)
            _say_stranded(s)
        if json_out:
            typer.echo(to_json(_doc("orphans", s.env.env_id, orphans=[o.as_dict() for o in found])))
        if not found:
            err(f"no orphans: every live resource tagged for {s.env.env_id} is in a state file")
            return
        err(f"{len(found)} live resource(s) tagged for {s.env.env_id} that no state file holds:")
        for line in orphan_lines(found):
            err(line)
        raise ProblemsFound("")


@app.command()
def envs(
    ctx: typer.Context,
    env: Optional[str] = typer.Option(None, "--env", "-e", help="One environment; every one when omitted."),
    json_out: bool = JsonOpt,
):
    """List the copies of an environment found in the state bucket: those with state, a run recorded
    or a lock, with their units, last run and locks; without --env, of every environment whose
    backend these credentials reach. A copy torn down cleanly is not listed.

    Example: orchestrator envs --env dev; orchestrator envs
    """
    with _Guard():
        from orchestrator.errors import BackendError, PrerequisiteError
        from orchestrator.model.config import Project, known_environments
        from orchestrator.report.render import to_json
        from orchestrator.report.views import health_line, last_run_text, lock_lines
        from orchestrator.state.statestore import inventory, require_bucket

        names = [env] if env else known_environments(Project.find(_opts(ctx).project_dir).environments_dir)
        found: list[tuple[str, dict]] = []
        for name in names:
            try:
                with _read_only(ctx, name, None) as s:
                    require_bucket(s.aws, s.env)
                    found += [(name, c) for c in s.redactor.redact_obj(inventory(s.aws, s.env))]
            except (BackendError, PrerequisiteError) as exc:
                if env:
                    raise
                err(f"{name}: {exc.message}")  # another account's, or not bootstrapped: the others still count
        if json_out:
            typer.echo(to_json(_doc("envs", None, copies=[c for _, c in found])))
            return
        if not found:
            typer.echo(f"no copy of {env or 'any environment'} has state, a run or a lock")
            return
        typer.echo(f"{'COPY':<20} {'LAST RUN':<44} UNITS")
        for name, c in found:
            units = ", ".join(c["units"]) or "(no state)"
            typer.echo(f"{c['environment']:<20} {last_run_text(c['last_run']):<44} {units}")
            if c.get("health"):
                typer.echo(f"{'':<20} {health_line(c['health'])}")
            for line in lock_lines(c, name):
                typer.echo(f"{'':<20} {line}")


@app.command()
def outputs(
    ctx: typer.Context,
    env: str = EnvOpt,
    unit: Optional[str] = typer.Argument(None, help="One unit; all when omitted."),
    name: Optional[str] = typer.Argument(None, help="One output of that unit."),
    suffix: Optional[str] = SuffixOpt,
    raw: bool = typer.Option(False, "--raw", help="Only the value of UNIT NAME (a string as it is), for scripts."),
    json_out: bool = JsonOpt,
):
    """Show the units' outputs, read from their state.

    Example: orchestrator outputs --env dev network; orchestrator outputs --env dev network vpc_id --raw
    """
    with _Guard():
        from orchestrator.report.render import to_json
        from orchestrator.state.statestore import require_deployed

        with _read_only(ctx, env, suffix) as s:
            units = [unit] if unit else s.stack.graph.order()
            if unit and unit not in s.stack.units:
                raise ConfigError(f"unknown unit {unit!r} (known: {', '.join(s.stack.graph.units)})")
            deployed = require_deployed(s.aws, s.env, s.stack.graph.order())
            data = s.redactor.redact_obj({u: deployed[u] for u in units})
            if name or raw:
                value = _one_output(data, unit, name)
                typer.echo(value if isinstance(value, str) else to_json(value).replace("\n", " "))
                return
            if json_out:
                typer.echo(to_json(_doc("outputs", s.env.env_id, outputs=data)))
                return
            for u, outs in data.items():
                typer.echo(f"{u}:" + ("" if outs is not None else " (not deployed)"))
                for k, v in (outs or {}).items():
                    typer.echo(f"  {k} = {v if isinstance(v, str) else to_json(v).replace(chr(10), ' ')}")


@app.command()
def audit(
    ctx: typer.Context,
    env: str = EnvOpt,
    suffix: Optional[str] = typer.Option(None, "--suffix", "-s", help="Only this copy's runs (default: every copy)."),
    since: Optional[str] = typer.Option(None, "--since", metavar="YYYY-MM-DD", help="From this day (UTC) on."),
    until: Optional[str] = typer.Option(None, "--until", metavar="YYYY-MM-DD", help="Up to this day (UTC), included."),
    unit: Optional[str] = typer.Option(None, "--unit", help="Only runs that planned or applied this unit."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json or csv (one row per unit of each run)."),
):
    """What changed in an environment, by whom, with which plan and verdicts: the audit trail's
    records (written once, under S3 Object Lock; docs/operations.md, "Audit trail").

    Example: orchestrator audit --env prod --since 2026-01-01 --format csv > prod-audit.csv
    """
    with _Guard():
        import datetime as _dt

        from orchestrator.report.render import to_json
        from orchestrator.state import audit as audit_mod
        from orchestrator.state.statestore import parse_audit_key

        if fmt not in ("table", "json", "csv"):
            raise ConfigError(f"unknown format {fmt!r}: table, json or csv")
        for name, day in (("--since", since), ("--until", until)):
            if day is not None:
                try:
                    _dt.date.fromisoformat(day)
                except ValueError:
                    raise ConfigError(f"{name} {day!r}: a day as YYYY-MM-DD") from None
        with _read_only(ctx, env, None) as s:
            store = s.store
            if unit is not None and unit not in s.stack.units:
                raise ConfigError(f"unknown unit {unit!r} (known: {', '.join(s.stack.graph.units)})")
            records = []
            for key in store.audit_keys():
                where = parse_audit_key(s.env, key)
                if not where or (since and where["day"] < since) or (until and where["day"] > until):
                    continue
                if suffix and where["copy"] != s.env.with_suffix(suffix).env_id:
                    continue
                rec = store.get_audit(key)
                part = where["part"]
                rec["_part"] = "" if part in ("start", "end") else part.rsplit("-", 1)[0]
                records.append(rec)
            joined = audit_mod.runs(records)
            table = audit_mod.rows(joined, unit)
            if fmt == "json":
                runs = [
                    r for r in joined if not unit or any(u["unit"] == unit for u in (r["end"] or {}).get("units", []))
                ]
                typer.echo(to_json(_doc("audit", s.env.name, runs=runs)))
            elif fmt == "csv":
                typer.echo(audit_mod.to_csv(table), nl=False)
            else:
                typer.echo(
                    f"{'STARTED (UTC)':<21} {'COPY':<12} {'RUN':<13} {'COMMAND':<12} {'UNIT':<14} {'STATUS':<11} {'PLAN':<14} BY"
                )
                for row in table:
                    typer.echo(
                        f"{row['started']:<21} {row['copy']:<12} {row['run_id']:<13} {row['command']:<12} "
                        f"{row['unit'] or '-':<14} {row['status'] or row['result']:<11} "
                        f"{(row['plan_sha256'] or '-')[:12]:<14} {row['identity']}"
                    )
                if not table:
                    typer.echo(f"no audit record for {s.env.name} in that range")


@app.command()
def status(ctx: typer.Context, env: str = EnvOpt, suffix: Optional[str] = SuffixOpt, json_out: bool = JsonOpt):
    """Last run of each unit from the journal: result, when, by whom.

    Example: orchestrator status --env prod
    """
    with _Guard():
        import time as _time

        from orchestrator.report.render import to_json
        from orchestrator.report.views import health_line, lock_lines
        from orchestrator.state.journal import Journal
        from orchestrator.state.statestore import inventory, require_deployed

        with _read_only(ctx, env, suffix) as s:
            doc = Journal.of(s.store, s.redactor, run_id="").load()
            (copy,) = inventory(s.aws, s.env, s.env.env_id) or [{"run_lock": None, "state_locks": {}}]
            locks = {"run_lock": copy["run_lock"], "state_locks": copy["state_locks"]}
            _say_stranded(s)
            if not doc["units"] and not copy["run_lock"] and not copy["state_locks"]:
                require_deployed(s.aws, s.env, s.stack.graph.order())  # a copy nobody ran: not deployed
            if json_out:
                journal = {k: doc.get(k) for k in ("runs", "units", "health") if k != "health" or doc.get(k)}
                typer.echo(to_json(_doc("status", s.env.env_id, **journal, **s.redactor.redact_obj(locks))))
                return
            for line in lock_lines({"environment": s.env.env_id, **locks}, s.env.name):
                typer.echo(s.redactor.redact(line))
            if doc.get("health"):
                typer.echo(s.redactor.redact(health_line(doc["health"])))
            if not doc["units"]:
                typer.echo(f"no run recorded for {s.env.env_id}")
                return
            typer.echo(f"{'UNIT':<14} {'LAST':<9} {'STATUS':<11} {'WHEN (UTC)':<20} {'BY':<24} RUN")
            for unit in s.stack.graph.order():
                rec = doc["units"].get(unit)
                if not rec:
                    typer.echo(f"{unit:<14} -")
                    continue
                when = _time.strftime("%Y-%m-%d %H:%M:%S", _time.gmtime(rec["at"]))
                cause = f"  {rec['detail']}" if rec.get("detail") else ""
                typer.echo(
                    f"{unit:<14} {rec['command']:<9} {rec['status']:<11} {when:<20} {rec['who']:<24} {rec['run_id']}"
                    + cause
                )


@app.command()
def doctor(ctx: typer.Context, env: str = EnvOpt, json_out: bool = JsonOpt):
    """Check the machine and the environment: terraform, where each provider comes from, credentials and account,
    backend posture.

    Example: orchestrator doctor --env dev
    """
    with _Guard():
        import json as _json

        from orchestrator.cli.doctor import run_checks

        checks = run_checks(_opts(ctx), env)
        if json_out:
            typer.echo(_json.dumps(_doc("doctor", env, checks=checks), indent=2))
        else:
            for c in checks:
                typer.echo(f"{'ok  ' if c['ok'] else 'FAIL'} {c['check']:<24} {c['detail']}")
        failing = [c["check"] for c in checks if not c["ok"]]
        if failing and set(failing) == {"backend posture"}:
            # as every other command: a backend missing or drifted is exit 4, with the command that fixes it
            raise BackendError(
                f"the state backend of {env} is missing or drifted; run: orchestrator bootstrap --env {env}"
            )
        if failing:
            raise PrerequisiteError("")


@app.command()
def graph(
    ctx: typer.Context,
    fmt: str = typer.Option("text", "--format", "-f", help="text, dot, mermaid, or png/svg (needs graphviz)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write to this file (needed for png/svg)."),
):
    """Show the unit graph.

    Example: orchestrator graph --format mermaid; orchestrator graph -f svg -o units.svg
    """
    with _Guard():
        import shutil
        import subprocess
        from pathlib import Path

        from orchestrator.model.config import Project, load_stack
        from orchestrator.report.render import graph_dot, graph_mermaid, graph_text

        stack = load_stack(Project.find(_opts(ctx).project_dir).terraform_dir)
        g = stack.graph
        renderers = {"dot": graph_dot, "mermaid": graph_mermaid, "text": graph_text}
        if fmt not in (*renderers, "png", "svg"):
            raise ConfigError(f"unknown format {fmt!r}: text, dot, mermaid, png or svg")
        if output and not Path(output).parent.is_dir():
            raise ConfigError(f"--output {output}: directory {Path(output).parent} does not exist")
        if fmt in renderers:
            if output:
                Path(output).write_text(renderers[fmt](g) + "\n")
                typer.echo(output)
            else:
                typer.echo(renderers[fmt](g))
            return
        dot = shutil.which("dot")
        if not dot:
            raise ConfigError(f"--format {fmt} needs graphviz's 'dot' (apt-get install graphviz)")
        if not output:
            raise ConfigError(f"--format {fmt} needs --output FILE")
        r = subprocess.run([dot, f"-T{fmt}", "-o", output], input=graph_dot(g), text=True, capture_output=True)
        if r.returncode != 0:
            raise ConfigError(f"graphviz could not write {output}: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
        typer.echo(output)


@app.command()
def lock(
    ctx: typer.Context,
    platform: list[str] = typer.Option(
        [],
        "--platform",
        help="Platform to record (repeatable), e.g. linux_amd64, darwin_arm64; default: the manifest's "
        "[terraform] lock_platforms, else this machine's.",
    ),
    upgrade: bool = typer.Option(
        False, "--upgrade", help="Choose again the newest version each constraint allows (after a constraint changed)."
    ),
):
    """Write each unit's .terraform.lock.hcl (terraform providers lock), from the provider mirror when one is set.

    Example: orchestrator lock --platform linux_amd64 --platform darwin_arm64
    """
    with _Guard():
        from orchestrator.cli.session import build_terraform, mirror_for, work_root
        from orchestrator.model.config import Project, load_stack
        from orchestrator.redact import Redactor
        from orchestrator.tf.providers import LOCK_FILE, host_platform, write_lock_file
        from orchestrator.tf.terraform import Workspace

        opts = _opts(ctx)
        project = Project.find(opts.project_dir)
        stack = load_stack(project.terraform_dir)
        root = work_root(project, opts)
        mirror = mirror_for(opts, stack)
        tf = build_terraform(opts, mirror, root, Redactor(), dict(os.environ))
        platforms = platform or list(stack.lock_platforms) or [host_platform()]
        done: set = set()
        for unit in stack.graph.order():
            path = stack.units[unit].path
            if path in done:
                continue
            done.add(path)
            write_lock_file(tf, Workspace(unit, path, root / "lock" / unit), platforms, mirror, upgrade=upgrade)
            err(f"{path / LOCK_FILE}: {', '.join(platforms)}" + (f" (from {mirror})" if mirror else ""))


@app.command("init-project")
def init_project(
    directory: str = typer.Argument(..., help="Folder for the new project (created if missing)."),
    name_prefix: str = typer.Option("demo", "--name-prefix", help="Prefix of every name (2-10 characters)."),
    account_id: str = typer.Option("123456789012", "--account-id", help="AWS account of the dev environment."),
    region: str = typer.Option("us-east-1", "--region", help="AWS region of the dev environment."),
):
    """Write a minimal working project: one unit, the dev environment, the manifest.

    Example: orchestrator init-project ./my-stack --name-prefix acme --account-id 111122223333
    """
    with _Guard():
        from pathlib import Path

        from orchestrator.cli.scaffold import write_project

        target = Path(directory)
        for path in write_project(target, name_prefix=name_prefix, account_id=account_id, region=region):
            err(f"wrote {path}")
        err(
            f"next: cd {target} && orchestrator lock && orchestrator bootstrap --env dev && orchestrator deploy --env dev"
        )


# terraform commands that change state or AWS: protected environments need --allow-protected
# --confirm E, and they run under the environment's run lock
_TF_WRITES = {"apply", "destroy", "import", "taint", "untaint", "force-unlock", "refresh"}
_TF_STATE_WRITES = {"mv", "rm", "push", "replace-provider"}
_TF_WITH_VARS = {"plan", "apply", "destroy", "import", "refresh", "console"}


@app.command("tf", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def tf_command(
    ctx: typer.Context,
    unit: str = typer.Argument(..., help="The unit whose working copy terraform runs in."),
    env: str = EnvOpt,
    suffix: Optional[str] = SuffixOpt,
    allow_protected: bool = typer.Option(False, "--allow-protected", help="Needed to change a protected environment."),
    confirm_name: Optional[str] = typer.Option(None, "--confirm", help="The environment's name, typed back."),
):
    """Run terraform in one unit's working copy: backend, CLI config, variables and work dir wired,
    output redacted. Everything after -- goes to terraform.

    Example: orchestrator tf --env dev network -- state list
    """
    with _Guard() as guard:
        from orchestrator.core.runner import UnitResult
        from orchestrator.errors import NotDeployed, ProtectedEnvironmentError, TerraformExit

        args = list(ctx.args)
        if not args:
            raise ConfigError(
                "nothing to run: orchestrator tf --env E UNIT -- <terraform arguments>, e.g. -- state list"
            )
        writes = args[0] in _TF_WRITES or (args[0] == "state" and len(args) > 1 and args[1] in _TF_STATE_WRITES)
        with open_session_(ctx, env, suffix) as s:
            if unit not in s.stack.units:
                raise ConfigError(f"unknown unit {unit!r} (known: {', '.join(s.stack.graph.units)})")
            if writes and s.env.protected and not (allow_protected and confirm_name == env):
                raise ProtectedEnvironmentError(
                    f"environment {env} is protected: terraform {' '.join(args[:2])} needs --allow-protected and "
                    f"--confirm {env} (nothing was run)"
                )
            engine = _engine(s, guard)
            units = engine.units
            upstream = units.deployed_upstream(unit)
            if isinstance(upstream, str):
                raise NotDeployed(f"unit {upstream}, upstream of {unit}, is not deployed in {s.env.env_id}")
            ws = units.prepare(unit, units.variables_for(unit, upstream), UnitResult(unit))
            positional = [a for a in args[1:] if not a.startswith("-")]
            # a saved plan carries its own variables
            saved_plan = args[0] == "apply" and positional
            if args[0] in _TF_WITH_VARS and not saved_plan and not any(a.startswith("-var-file") for a in args):
                args.insert(1, f"-var-file={ws.var_file}")
            locked = _run_locked(s, engine, "tf") if writes else contextlib.nullcontext()
            with locked:
                r = engine.ctx.tf.run(
                    ws, args, ok_codes=tuple(range(256)), extra_env=units.secret_env(unit), on_line=typer.echo,
                    retry_transient=False,
                )  # fmt: skip
            if r.returncode:
                raise TerraformExit(r.returncode)


@app.command("force-unlock")
def force_unlock(
    ctx: typer.Context,
    lock_id: Optional[str] = typer.Argument(None, help="The state lock id from the lock error (with --unit)."),
    env: str = EnvOpt,
    unit: Optional[str] = typer.Option(None, "--unit", help="The unit whose state is locked."),
    run_id: Optional[str] = typer.Option(None, "--run", help="Release the environment's run lock held by this run."),
    suffix: Optional[str] = SuffixOpt,
):
    """Release a state lock (--unit U LOCK_ID) or the environment's run lock (--run RUN_ID) left by a dead run.

    Example: orchestrator force-unlock --env dev --unit network 3f2a...
    """
    with _Guard() as guard, open_session_(ctx, env, suffix) as s:
        if run_id:
            import time as _time

            from orchestrator.state.runlock import force_release
            from orchestrator.state.statestore import require_bucket

            require_bucket(s.aws, s.env)
            holder = force_release(s.aws, s.env, run_id)
            typer.echo(f"released the run lock of {s.env.env_id} held by {holder.describe(_time.time())}")
            return
        if not unit or not lock_id:
            raise ConfigError("force-unlock needs --unit UNIT LOCK_ID (a state lock) or --run RUN_ID (the run lock)")
        if unit not in s.stack.units:
            raise ConfigError(f"unknown unit {unit!r} (known: {', '.join(s.stack.graph.units)})")
        engine = _engine(s, guard)
        from orchestrator.core.runner import UnitResult

        ws = engine.units.workspace(unit)
        engine.units.ensure_init(unit, ws, UnitResult(unit))
        engine.ctx.tf.force_unlock(ws, lock_id)
        typer.echo(f"released lock {lock_id} on {unit}")


# ---- policies ----------------------------------------------------------------------
policy_app = typer.Typer(
    no_args_is_help=True, help="The manifest's [[policies]], tested offline.", rich_markup_mode=None
)
app.add_typer(policy_app, name="policy")


@policy_app.command("test")
def policy_test(
    ctx: typer.Context,
    directory: str = typer.Option(
        "policies/tests", "--dir", help="Fixture plans with their expected verdicts (*.json), under the project."
    ),
):
    """Run the manifest's policies on fixture plans and compare with their expected verdicts: no
    AWS, no terraform (docs/operations.md, "Policies"). Exit 10 when one does not match.

    Example: orchestrator policy test
    """
    with _Guard():
        from pathlib import Path

        from orchestrator.errors import ProblemsFound
        from orchestrator.model.config import Project, load_environment, load_stack
        from orchestrator.policy import policies

        project = Project.find(_opts(ctx).project_dir)
        stack = load_stack(project.terraform_dir)
        folder = Path(directory) if Path(directory).is_absolute() else project.root / directory
        files = sorted(folder.glob("*.json"))
        if not files:
            raise ConfigError(f"no policy tests in {folder} (*.json: a plan and its expected verdicts)")
        results = [
            policies.run_case(f, stack, lambda name: load_environment(project.environments_dir, name, stack))
            for f in files
        ]
        for r in results:
            err(r.line())
        failed = [r for r in results if not r.passed]
        err(f"{len(results) - len(failed)} of {len(results)} policy test(s) passed")
        if failed:
            raise ProblemsFound("")


# ---- one unit, one CI job --------------------------------------------------------
unit_app = typer.Typer(
    no_args_is_help=True,
    help="Plan or apply one unit alone, as a CI job does: nothing is kept on this machine between the two.",
    rich_markup_mode=None,
)
app.add_typer(unit_app, name="unit")

RunIdOpt = typer.Option(
    None, "--run-id", envvar="ORCHESTRATOR_RUN_ID", help="The id plan and apply share, e.g. the CI pipeline's id."
)
ReportOpt = typer.Option(None, "--report", help="Write GitLab's terraform report (create/update/delete) to this file.")
JobLockOpt = typer.Option(
    "0s", "--lock-timeout", help="How long to wait for another run of the environment or a state lock, e.g. 20m."
)


def _unit_job(ctx, env, suffix, unit, run_id, lock_timeout, json_out, summary, report_file, act, step_output=None):
    """Both unit commands: the session, the job, its line, its summary, its report, its step output."""
    with _Guard():
        import json as _json
        from pathlib import Path

        from orchestrator.ci.unitjobs import UnitJobs, check_run_id
        from orchestrator.report.render import to_json
        from orchestrator.report.views import job_gitlab_report, job_line, job_markdown
        from orchestrator.tf import providers

        check_run_id(run_id)
        wait = _duration(lock_timeout)
        for path in (summary, report_file, step_output):
            if path and not Path(path).parent.is_dir():
                raise ConfigError(f"{path}: directory {Path(path).parent} does not exist")
        with open_session_(ctx, env, suffix) as s:
            if unit not in s.stack.units:
                raise ConfigError(f"unknown unit {unit!r} (known: {', '.join(s.stack.graph.units)})")
            providers.require_lock_files(s.stack, [unit])
            run_ctx = s.run_context(parallelism=1, lock_timeout=lock_timeout, on_line=lambda _u, t: err(t), say=err)
            trail = s.audit_trail(run_ctx.store)
            action = _opts(ctx).command.split()[-1]  # plan or apply
            trail.start(run_id, f"unit {action}", [f"unit={unit}"], part=f"job-{action}-{unit}")
            try:
                report = act(UnitJobs(run_ctx, run_id, lock_wait=wait))
            except BaseException as exc:
                trail.finish("error", error=str(exc) or type(exc).__name__)
                raise
            trail.finish(report.status, [report.result])
            err(s.redactor.redact(job_line(report)))
            if summary:
                with open(summary, "a", encoding="utf-8") as f:
                    f.write(job_markdown(report, s.redactor))
            if report_file:
                Path(report_file).write_text(_json.dumps(job_gitlab_report(report)) + "\n")
            if step_output:
                with open(step_output, "a", encoding="utf-8") as f:
                    f.write(f"changed={'true' if report.status == 'changes' else 'false'}\n")
            if json_out:
                typer.echo(to_json(s.redactor.redact_obj(report.to_dict())))


@unit_app.command("plan")
def unit_plan(
    ctx: typer.Context,
    unit: str = typer.Argument(..., help="The unit to plan."),
    env: str = EnvOpt,
    suffix: Optional[str] = SuffixOpt,
    run_id: Optional[str] = RunIdOpt,
    lock_timeout: str = JobLockOpt,
    summary: Optional[str] = SummaryOpt,
    report_file: Optional[str] = ReportOpt,
    step_output: Optional[str] = typer.Option(
        None, "--step-output", help='Append changed=true|false to this file (GitHub: "$GITHUB_OUTPUT").'
    ),
    json_out: bool = JsonOpt,
):
    """Plan one unit against its upstream's deployed outputs and keep the saved plan in the state
    bucket under the run id (SSE-KMS), for `unit apply` on any machine. Exit 0 with or without changes.

    Example: orchestrator unit plan --env dev --run-id 4242 network --summary "$GITHUB_STEP_SUMMARY"
    """
    _unit_job(
        ctx, env, suffix, unit, run_id, lock_timeout, json_out, summary, report_file, lambda j: j.plan(unit),
        step_output,
    )  # fmt: skip


@unit_app.command("apply")
def unit_apply(
    ctx: typer.Context,
    unit: str = typer.Argument(..., help="The unit to apply."),
    env: str = EnvOpt,
    suffix: Optional[str] = SuffixOpt,
    run_id: Optional[str] = RunIdOpt,
    lock_timeout: str = JobLockOpt,
    override: list[str] = OverrideOpt,
    reason: Optional[str] = ReasonOpt,
    allow_replace: list[str] = AllowReplaceOpt,
    summary: Optional[str] = SummaryOpt,
    report_file: Optional[str] = ReportOpt,
    json_out: bool = JsonOpt,
):
    """Apply exactly the plan `unit plan` saved for this run, then the unit's hooks; record it in the
    journal. A plan made against other upstream outputs, settings or files, or an older state, is
    refused (exit 1, nothing applied); one a deny policy refuses: exit 12, nothing applied.

    Example: orchestrator unit apply --env dev --run-id 4242 network
    """
    accepted = _overrides(override, reason, allow_replace)
    _unit_job(
        ctx, env, suffix, unit, run_id, lock_timeout, json_out, summary, report_file,
        lambda j: j.apply(unit, accepted),
    )  # fmt: skip


@app.command()
def report(
    ctx: typer.Context,
    env: str = EnvOpt,
    suffix: Optional[str] = SuffixOpt,
    run_id: Optional[str] = RunIdOpt,
    fmt: str = typer.Option("markdown", "--format", "-f", help="markdown (the only one)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write it to this file; default: print."),
    limit: int = typer.Option(65_000, "--limit", help="At most this many characters (GitHub: 65,536 a comment)."),
    post_comment: bool = typer.Option(
        False,
        "--post",
        help="Post it as the pull/merge request's review comment, editing the one posted before (docs/ci.md).",
    ),
):
    """One review page of a pipeline run: every unit's plan summary that `unit plan` recorded
    (counts; replaced and deleted addresses first; policy verdicts; previews marked), cut per unit
    to fit a pull request comment, never mid-line.

    Example: orchestrator report --env dev --suffix pr42 --run-id 4242 --format markdown
    """
    with _Guard():
        from pathlib import Path

        from orchestrator.ci import prcomment
        from orchestrator.ci.unitjobs import check_run_id
        from orchestrator.report.views import review_markdown, review_marker

        check_run_id(run_id)
        if fmt != "markdown":
            raise ConfigError(f"unknown format {fmt!r}: markdown")
        if output and not Path(output).parent.is_dir():
            raise ConfigError(f"{output}: directory {Path(output).parent} does not exist")
        request = prcomment.request_of() if post_comment else None
        if post_comment and request is None:
            err("report: this job runs for no pull or merge request: nothing to post")
            return
        with _read_only(ctx, env, suffix) as s:
            if request:
                s.redactor.add(request.token)
            order = {u: i for i, u in enumerate(s.stack.graph.order())}
            records = sorted(s.store.reviews(run_id), key=lambda r: order.get(r["unit"], len(order)))
            if not records:
                raise ConfigError(
                    f"no plan of run {run_id} recorded for {s.env.env_id} (`unit plan` records one per unit)"
                )
            limit = min(limit, request.limit) if request else limit
            text = s.redactor.redact(review_markdown(s.env.env_id, run_id, records, limit))
            if output:
                Path(output).write_text(text)
                err(f"wrote {output} ({len(text)} characters, {len(records)} unit(s))")
            elif not request:
                typer.echo(text, nl=False)
            if request:
                done = prcomment.post(request, text, review_marker(s.env.env_id))
                err(f"review comment {done} on {request} ({len(text)} characters, {len(records)} unit(s))")


@app.command()
def pipeline(
    ctx: typer.Context,
    env: str = EnvOpt,
    fmt: str = typer.Option(..., "--format", "-f", help="github (GitHub Actions) or gitlab (GitLab CI)."),
    output_dir: Optional[str] = typer.Option(
        None, "--output-dir", "-o", help="Write the files under this folder (the repository's root); default: print."
    ),
    schedule: Optional[str] = typer.Option(
        None,
        "--schedule",
        metavar="CRON",
        help='Also a scheduled `health` of the environment, e.g. "0 */4 * * *" (UTC): a GitHub workflow, or a GitLab job for a pipeline schedule.',
    ),
):
    """Write the CI pipeline of an environment from the manifest: a plan and an apply job per unit
    in graph order, smoke checks, OIDC credentials ([ci] role_arn of env.toml), one run per copy at
    a time, approvals for protected environments, teardown of request copies. Writing it again
    gives the same bytes.

    Example: orchestrator pipeline --env prod --format github --output-dir .
    """
    with _Guard():
        from pathlib import Path

        from orchestrator.ci import pipeline as pipeline_mod
        from orchestrator.model.config import Project, load_environment, load_stack

        project = Project.find(_opts(ctx).project_dir)
        stack = load_stack(project.terraform_dir)
        environment = load_environment(project.environments_dir, env, stack)
        out = pipeline_mod.files(stack, environment, fmt, schedule)
        if output_dir is None:
            for i, (path, text) in enumerate(out.items()):
                typer.echo(("\n" if i else "") + f"# ---- {path}\n" + text, nl=False)
            return
        root = Path(output_dir)
        if root.exists() and not root.is_dir():
            raise ConfigError(f"--output-dir {output_dir}: not a directory")
        for path, text in out.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            same = target.exists() and target.read_text() == text
            if not same:
                target.write_text(text)
            err(f"{target}{' (unchanged)' if same else ''}")


# ---- local emulator ------------------------------------------------------------
def _local_dirs(ctx) -> tuple:
    """Where `local up` records its emulator: the work dir's local/, then the project's own folder."""
    from orchestrator.aws import local
    from orchestrator.cli.session import work_root
    from orchestrator.model.config import Project

    project = Project.find(_opts(ctx).project_dir)
    return work_root(project, _opts(ctx)) / "local", local.project_state_dir(project.root)


@local_app.command("up")
def local_up(
    ctx: typer.Context,
    port: Optional[int] = typer.Option(None, "--port", help="Port on 127.0.0.1."),
    like_aws: bool = typer.Option(
        False, "--like-aws", help="Reproduce AWS's asynchronous timing where moto answers at once (slower; docs)."
    ),
):
    """Start one emulator that later --local commands share (one emulated account).

    Example: orchestrator local up --like-aws
    """
    with _Guard():
        from orchestrator.aws import local

        here, project = _local_dirs(ctx)
        url, started = local.up(here, port, like_aws=like_aws, also=(project,))
        mode = " (like-AWS timing)" if like_aws else ""
        typer.echo(f"emulator {'started' if started else 'already running'} at {url}{mode if started else ''}")


@local_app.command("down")
def local_down(ctx: typer.Context):
    """Stop the shared emulator (its emulated account goes with it).

    Example: orchestrator local down
    """
    with _Guard():
        from orchestrator.aws import local

        here, project = _local_dirs(ctx)
        stopped = local.down(here, also=(project,))
        typer.echo("emulator stopped" if stopped else "no emulator running")


@local_app.command("seed")
def local_seed(ctx: typer.Context, env: str = EnvOpt, suffix: Optional[str] = SuffixOpt):
    """Emulator only: create the outside prerequisites that preflight checks (hosted zone,
    an issued certificate, the image in ECR), so the environment deploys on the emulator.

    Example: orchestrator local up && orchestrator local seed --env prod
    """
    with _Guard():
        import dataclasses

        from orchestrator.aws import local, preflight
        from orchestrator.cli.session import open_session

        opts = _opts(ctx)
        url = opts.emulator_url or local.running(*_local_dirs(ctx))
        if not url:
            raise ConfigError(
                "local seed needs a running emulator: run `orchestrator local up` (or pass --emulator-url)"
            )
        with open_session(dataclasses.replace(opts, local=True, emulator_url=url), env, suffix) as s:
            made = preflight.seed(preflight.Context(s.env, s.aws, s.project.root), s.stack.preflight)
        for thing in made:
            typer.echo(f"seeded {thing}")
        if not made:
            typer.echo("nothing to seed: every prerequisite exists")


@local_app.command("status")
def local_status(ctx: typer.Context):
    """Show whether the persistent emulator runs.

    Example: orchestrator local status
    """
    with _Guard():
        from orchestrator.aws import local

        url = local.running(*_local_dirs(ctx))
        typer.echo(f"running at {url}" if url else "not running")
        if not url:
            raise NotRunning("")


def run() -> None:
    app()
