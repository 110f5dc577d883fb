"""`local up/down/seed/status`: one local emulator between commands."""

from __future__ import annotations

from typing import Optional

import typer

from orchestrator.cli.app import EnvOpt, Guard, SuffixOpt, global_options, local_app
from orchestrator.errors import (
    ConfigError,
    NotRunning,
)


# ---- local emulator ------------------------------------------------------------
def _local_dirs(ctx) -> tuple:
    """Where `local up` records its emulator: the work dir's local/, then the project's own folder."""
    from orchestrator.aws import local
    from orchestrator.cli.session import work_root
    from orchestrator.model.config import Project

    project = Project.find(global_options(ctx).project_dir)
    return work_root(project, global_options(ctx)) / "local", local.project_state_dir(project.root)


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
    with Guard():
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
    with Guard():
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
    with Guard():
        import dataclasses

        from orchestrator.aws import local, preflight
        from orchestrator.cli.session import open_session

        opts = global_options(ctx)
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
    with Guard():
        from orchestrator.aws import local

        url = local.running(*_local_dirs(ctx))
        typer.echo(f"running at {url}" if url else "not running")
        if not url:
            raise NotRunning("")
