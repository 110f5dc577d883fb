import pytest
from typer.testing import CliRunner

from orchestrator import __version__
from orchestrator.cli import app
from orchestrator.views import ci, confirm_factory


@pytest.mark.parametrize(
    "value, unattended",
    [("true", True), ("1", True), ("YES", True), ("false", False), ("0", False), ("", False), ("no", False)],
)
def test_ci_is_read_as_a_boolean(monkeypatch, value, unattended):
    monkeypatch.setenv("CI", value)
    assert ci() is unattended
    if unattended:
        assert confirm_factory(yes=False) is None  # nobody is asked


def test_version():
    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.strip() == f"orchestrator {__version__}"
