"""Read-only views through the CLI: graph (text, mermaid, svg via graphviz), help examples."""

from __future__ import annotations

import pytest

from tests.helpers import ROOT, Cli

UNITS = ("network", "security", "database", "edge", "observability", "app")


@pytest.fixture
def cli(tmp_path):
    return Cli(ROOT, tmp_path / "work")


def test_graph_text(cli):
    r = cli("graph")
    assert r.exit_code == 0
    assert r.stdout.splitlines()[0] == "network  (after: -)"
    assert r.stdout.splitlines()[-1] == "      app  (after: database, edge, network, observability, security)"


def test_graph_svg_with_graphviz(cli, tmp_path):
    out = tmp_path / "units.svg"
    r = cli("graph", "--format", "svg", "--output", str(out))
    assert r.exit_code == 0, r.output
    svg = out.read_text()
    assert svg.lstrip().startswith(("<?xml", "<svg", "<!DOCTYPE")) and "<svg" in svg
    for unit in UNITS:
        assert f">{unit}<" in svg


@pytest.mark.parametrize(
    "command",
    [
        "bootstrap",
        "deploy",
        "plan",
        "drift",
        "smoke",
        "teardown",
        "envs",
        "outputs",
        "status",
        "doctor",
        "graph",
        "force-unlock",
    ],
)
def test_every_command_help_has_an_example(cli, command):
    r = cli(command, "--help")
    assert r.exit_code == 0
    assert "Example: orchestrator" in r.stdout
