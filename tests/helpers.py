"""Running the real CLI in-process (typer's CliRunner), against a real moto server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from orchestrator.cli import app

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_STACK = ROOT / "tests" / "fixtures" / "stack"


@dataclass
class Cli:
    project: Path
    work: Path
    emulator: str | None = None
    mirror: str | None = None

    def __call__(self, *args: str, env: dict | None = None, input: str | None = None):
        base = ["--project-dir", str(self.project), "--work-dir", str(self.work)]
        if self.emulator:
            base += ["--emulator-url", self.emulator]
        if self.mirror:
            base += ["--provider-mirror", self.mirror]
        run_env = {"CI": None, "ORCHESTRATOR_LOCAL": None, "ORCHESTRATOR_EMULATOR_URL": None}
        run_env.update(env or {})
        result = CliRunner().invoke(app, [*base, *args], env=run_env, input=input, catch_exceptions=False)
        return result
