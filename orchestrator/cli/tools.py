"""Commands around terraform itself: lock, init-project, tf, force-unlock."""

from __future__ import annotations

import contextlib
import os
from typing import Optional

import typer

from orchestrator.cli.app import (
    EnvOpt,
    Guard,
    SuffixOpt,
    app,
    engine_for,
    err,
    global_options,
    open_session_,
    run_locked,
)
from orchestrator.errors import (
    ConfigError,
)


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
    with Guard():
        from orchestrator.cli.session import build_terraform, mirror_for, work_root
        from orchestrator.model.config import Project, load_stack
        from orchestrator.redact import Redactor
        from orchestrator.tf.providers import LOCK_FILE, host_platform, write_lock_file
        from orchestrator.tf.terraform import Workspace

        opts = global_options(ctx)
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
    with Guard():
        from pathlib import Path

        from orchestrator.cli.scaffold import write_project

        target = Path(directory)
        for path in write_project(target, name_prefix=name_prefix, account_id=account_id, region=region):
            err(f"wrote {path}")
        err(
            f"next: cd {target} && orchestrator lock && orchestrator bootstrap --env dev && orchestrator deploy --env dev"
        )


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
    with Guard() as guard:
        from orchestrator.core.units import writes
        from orchestrator.errors import TerraformExit

        args = list(ctx.args)
        if not args:
            raise ConfigError(
                "nothing to run: orchestrator tf --env E UNIT -- <terraform arguments>, e.g. -- state list"
            )
        writing = writes(args)
        with open_session_(ctx, env, suffix) as s:
            s.stack.graph.require(unit)
            if writing:
                s.env.refuse_unless_confirmed(
                    f"terraform {' '.join(args[:2])}", allow_protected, confirm_name, "nothing was run"
                )
            engine = engine_for(s, guard, lock_for="tf" if writing else None)
            ws, args = engine.units.by_hand(unit, args)
            with run_locked(engine) if writing else contextlib.nullcontext():
                r = engine.ctx.tf.run(
                    ws, args, ok_codes=tuple(range(256)), extra_env=engine.units.secret_env(unit), on_line=typer.echo,
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
    with Guard() as guard, open_session_(ctx, env, suffix) as s:
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
        s.stack.graph.require(unit)
        engine = engine_for(s, guard)
        from orchestrator.core.runner import UnitResult

        ws = engine.units.workspace(unit)
        engine.units.ensure_init(unit, ws, UnitResult(unit))
        engine.ctx.tf.force_unlock(ws, lock_id)
        typer.echo(f"released lock {lock_id} on {unit}")
