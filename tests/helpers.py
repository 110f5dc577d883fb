"""Running the real CLI in-process (typer's CliRunner), against a real moto server."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jsonschema
from typer.testing import CliRunner

from orchestrator.cli import app

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_STACK = ROOT / "tests" / "fixtures" / "stack"


@cache
def _schema() -> dict:
    return json.loads((ROOT / "docs" / "report-schema.json").read_text())


def check_json(stdout: str) -> dict:
    """A --json output, validated against docs/report-schema.json (its `command` picks the shape)."""
    doc = json.loads(stdout)
    jsonschema.validate(doc, _schema())
    return doc


def deployed(envs_stdout: str) -> dict[str, list[str]]:
    """envs --json as {copy: units with state}, for copies that have state."""
    return {c["environment"]: c["units"] for c in check_json(envs_stdout)["copies"] if c["units"]}


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
        if "--json" in args and result.stdout.strip():
            check_json(result.stdout)  # every --json output of every test run follows the schema
        return result
