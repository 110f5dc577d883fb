"""`policy test`: the manifest's policies on fixture plans, offline."""

from __future__ import annotations

import typer

from orchestrator.cli.app import Guard, app, err, global_options
from orchestrator.errors import (
    ConfigError,
)

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
    with Guard():
        from pathlib import Path

        from orchestrator.errors import ProblemsFound
        from orchestrator.model.config import Project, load_environment, load_stack
        from orchestrator.policy import policies

        project = Project.find(global_options(ctx).project_dir)
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
