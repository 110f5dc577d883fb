"""The `orchestrator` command: the typer app with every command family registered.

Typer commands: parse, call one core function, render, exit. Prompts, --yes and --json live in
the command modules only. Heavy imports (boto3, the terraform layer) happen inside the commands
that need them.
"""

# Each module registers its commands on import, in the order `orchestrator --help` lists them.
# isort: off
from orchestrator.cli import runs  # noqa: F401
from orchestrator.cli import inspect  # noqa: F401
from orchestrator.cli import tools  # noqa: F401
from orchestrator.cli import policy  # noqa: F401
from orchestrator.cli import jobs  # noqa: F401
from orchestrator.cli import emulator  # noqa: F401

# isort: on
from orchestrator.cli.app import app, run

__all__ = ["app", "run"]
