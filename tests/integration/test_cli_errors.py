"""Each bad input: one clear line on stderr, a non-zero exit, nothing changed."""

from __future__ import annotations

import pytest

from tests.helpers import ROOT, Cli


@pytest.fixture
def cli(tmp_path):
    return Cli(ROOT, tmp_path / "work")


# None unsets a variable for the run.
NO_CREDS = {
    "AWS_ACCESS_KEY_ID": None,
    "AWS_SECRET_ACCESS_KEY": None,
    "AWS_SESSION_TOKEN": None,
    "AWS_PROFILE": None,
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
    "AWS_WEB_IDENTITY_TOKEN_FILE": None,
}


def test_profile_that_does_not_exist(cli):
    r = cli("bootstrap", "--env", "dev", env={**NO_CREDS, "AWS_PROFILE": "nope"})
    assert r.exit_code == 3
    assert one_line(r) == "error: AWS profile 'nope' not found (check AWS_PROFILE and ~/.aws/config)"


def one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_unknown_environment_lists_known_ones(cli):
    r = cli("deploy", "--env", "qa", "--yes")
    assert r.exit_code == 2
    assert one_line(r) == "error: unknown environment 'qa' (known: dev, prod, staging)"


def test_invalid_suffix(cli):
    r = cli("deploy", "--env", "dev", "--suffix", "PR-1", "--yes")
    assert r.exit_code == 2
    assert one_line(r).startswith("error: invalid suffix 'PR-1'")


def test_unknown_graph_format(cli):
    r = cli("graph", "--format", "gif")
    assert r.exit_code == 2 and one_line(r) == "error: unknown format 'gif': text, dot, mermaid, png or svg"


def test_missing_credentials(cli):
    r = cli("bootstrap", "--env", "dev", env=NO_CREDS)
    assert r.exit_code == 3
    assert one_line(r).startswith("error: no AWS credentials found")


def test_wrong_account_for_the_environment(cli, moto_url):
    # Not local mode: real-AWS code path, pointed at moto by boto3's own AWS_ENDPOINT_URL.
    env = {**NO_CREDS, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_ENDPOINT_URL": moto_url}
    r = cli("bootstrap", "--env", "prod", env=env)
    assert r.exit_code == 3
    assert one_line(r) == (
        "error: AWS account 123456789012 is not environment prod's account 345678901234; "
        "switch credentials (AWS_PROFILE) before anything changes"
    )


def test_missing_terraform_binary(cli, moto_url, tmp_path):
    c = Cli(ROOT, tmp_path / "w", moto_url)
    r = c("plan", "--env", "dev", env={"ORCHESTRATOR_TERRAFORM": "/nonexistent/terraform"})
    assert r.exit_code == 3
    assert one_line(r) == (
        "error: terraform binary not found ('/nonexistent/terraform' is not on PATH); "
        "install Terraform >= 1.11 or set ORCHESTRATOR_TERRAFORM"
    )


def test_not_bootstrapped(cli, moto_url, tmp_path):
    c = Cli(ROOT, tmp_path / "w", moto_url)
    r = c("plan", "--env", "staging")
    assert r.exit_code == 4
    assert one_line(r) == (
        "error: state bucket acme-payments-tfstate-staging-234567890123 does not exist; "
        "run: orchestrator bootstrap --env staging"
    )


def test_confirmation_needed_without_a_terminal(cli):
    r = cli("deploy", "--env", "dev")
    assert r.exit_code == 2
    assert one_line(r) == "error: changes need confirmation but stdin is not a terminal: pass --yes"
