"""The command line's frame: the typer app, the global options, the guard that turns an error into
one line and its exit code, and the helpers every command family shares.
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
    ConfigError,
    OrchestratorError,
)
from orchestrator.report.views import progress


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


def global_options(ctx: typer.Context):
    """The global options, with the command being run (e.g. "unit plan"): it goes into every
    AWS request's User-Agent (orchestrator.aws.permissions)."""
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


class Guard:
    """Runs a command body: library errors become one line and their exit code;
    SIGINT, SIGTERM and SIGHUP (a closed terminal) are forwarded once to terraform as
    SIGINT and end the run as interrupted."""

    def __init__(self):
        self.signum: int | None = None
        self._stops: list = []  # what a signal stops besides terraform (a run's queue)

    def stops(self, stop) -> None:
        """A signal also calls `stop` (no new units start; terraform is told by the guard itself)."""
        self._stops.append(stop)

    def handler(self, signum, frame):
        from orchestrator.tf.terraform import REGISTRY

        first = self.signum is None
        self.signum = signum
        if signum == signal.SIGHUP:
            _detach_from_terminal()
        if first:
            err(f"\n[orchestrator] {signal.Signals(signum).name}: stopping terraform gracefully (no new units start)")
        for stop in self._stops:
            stop()
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


# ---- engine commands -----------------------------------------------------------
def engine_for(
    s,
    guard,
    *,
    lock_for=None,
    parallelism="auto",
    lock_timeout="0s",
    confirm=None,
    events=False,
    json_out=False,
    **options,
):
    """The run's engine, built whole; lock_for: the command the copy's run lock is for (taken with
    run_locked before the run starts), none for a read-only one; `options` are Engine's (resume,
    changed, overrides)."""
    from orchestrator.core.engine import Engine
    from orchestrator.tf.hostslots import parse_parallelism

    if events and json_out:
        raise ConfigError(
            "--events and --json both write to stdout: choose one (every run's report is also in reports/)"
        )
    on_start, on_finish = progress(events, s.stack.graph.order())
    ctx = s.run_context(
        lock_for=lock_for,
        parallelism=parse_parallelism(str(parallelism)),
        lock_timeout=lock_timeout,
        confirm=confirm,
        on_start=on_start,
        on_finish=on_finish,
        say=err,
    )
    engine = Engine(ctx, **options)
    guard.stops(engine.interrupt)
    return engine


def parse_only(only: str | None) -> list[str] | None:
    """`--only a,b`: the units named, in their order (None: every unit)."""
    return [u.strip() for u in only.split(",") if u.strip()] if only else None


def parse_duration(text: str) -> float:
    """terraform-style durations: 90s, 10m, 1h, 1h30m."""
    import re

    if not re.fullmatch(r"(?:\d+[hms])+", text or ""):
        raise ConfigError(f"invalid duration {text!r}: e.g. 30s, 10m, 1h")
    return float(sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in re.findall(r"(\d+)([hms])", text)))


@contextlib.contextmanager
def run_locked(engine, lock_timeout: str = "0s", take_over: bool = False):
    """One run per environment: the run lock is held around everything the run does."""
    lock = engine.ctx.run_lock
    lock.acquire(
        timeout=parse_duration(lock_timeout), take_over=take_over, on_wait=lambda m: err(f"[orchestrator] {m}")
    )
    if lock.taken_over is not None and lock.takeover_reason:
        err(f"[orchestrator] taking over the run lock of run {lock.taken_over.run_id}: {lock.takeover_reason}")
    elif lock.taken_over is not None:
        err(f"[orchestrator] took over the stale run lock of run {lock.taken_over.run_id}")
    with lock:
        yield lock


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


ChangedOpt = typer.Option(
    False,
    "--changed",
    help="Only units whose files, inputs or state moved since their last apply (the journal's record); "
    "the rest are skipped without terraform. Not drift: `drift` looks at AWS.",
)


def command_doc(command: str, environment: str | None, **body) -> dict:
    """A read-only command's --json document: schema_version and command first (docs/report-schema.json)."""
    head = {"schema_version": 1, "command": command}
    return {**head, **({"environment": environment} if environment is not None else {}), **body}


def smoke_waits(name: str, reason: str, waited: float) -> None:
    err(f"smoke: {name}: not settled after {waited:.0f}s ({reason}); waiting")


def say_stranded(s) -> None:
    """State of units the manifest no longer names: one warning with the commands that fix it."""
    from orchestrator.state.statestore import stranded_message, stranded_units

    stranded = stranded_units(s.aws, s.env, s.stack.units)
    if stranded:
        err(f"warning: {stranded_message(s.env, stranded)}")


def check_context(s):
    from orchestrator.model.plugins import Context

    return Context(s.aws, s.env.settings, s.redactor)


def open_session_(ctx, env, suffix):
    from orchestrator.cli.session import open_session

    return open_session(global_options(ctx), env, suffix)


def read_only_session(ctx, env, suffix):
    """A session for commands that only read: ORCHESTRATOR_SECRET_* masked, not judged."""
    from orchestrator.cli.session import open_session

    return open_session(global_options(ctx), env, suffix, read_only=True)


RunIdOpt = typer.Option(
    None, "--run-id", envvar="ORCHESTRATOR_RUN_ID", help="The id plan and apply share, e.g. the CI pipeline's id."
)
ReportOpt = typer.Option(None, "--report", help="Write GitLab's terraform report (create/update/delete) to this file.")
JobLockOpt = typer.Option(
    "0s", "--lock-timeout", help="How long to wait for another run of the environment or a state lock, e.g. 20m."
)


def run() -> None:
    app()
