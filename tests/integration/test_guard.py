"""Guarded plans in a protected environment: a plan that replaces a stateful
resource is refused, naming the address, with nothing applied; the operator's
--allow-replace ADDRESS lets exactly that one through. On the fixture stack,
whose staging is protected and whose base unit holds a log group (stateful)."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.helpers import FIXTURE_STACK, Cli

ADDRESS = "aws_cloudwatch_log_group.base"


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    for d in ("terraform", "environments"):
        shutil.copytree(FIXTURE_STACK / d, root / d)  # the shared .tf files copied, not linked
    return root


def log_groups(aws, prefix):
    return [g["logGroupName"] for g in aws("logs").describe_log_groups(logGroupNamePrefix=prefix)["logGroups"]]


def test_replacing_a_stateful_resource_in_a_protected_environment_needs_its_address(
    project, tmp_path, moto_url, mirror, aws
):
    cli = Cli(project, tmp_path / "work", moto_url, mirror)
    assert cli("bootstrap", "--env", "staging").exit_code == 0
    deploy = ("deploy", "--env", "staging", "--suffix", "guard", "--only", "base", "--yes", "--json")
    r = cli(*deploy)
    assert r.exit_code == 0, r.output
    old = "/fixture/fixture-base-staging-guard"
    assert log_groups(aws, old) == [old]

    # A new name forces the log group's replacement.
    env_file = project / "environments" / "staging" / "env.toml"
    env_file.write_text(env_file.read_text().replace('name_prefix = "fixture"', 'name_prefix = "fixturex"'))
    new = "/fixture/fixturex-base-staging-guard"
    r = cli(*deploy)
    assert r.exit_code == 7, r.output
    (unit,) = json.loads(r.stdout)["units"]
    assert unit["status"] == "failed" and unit["replace"] == 1
    assert unit["detail"].startswith("refused: in protected environment staging the plan deletes or replaces")
    assert f"--allow-replace {ADDRESS}" in unit["detail"] and f"--allow-replace {ADDRESS}" in r.stderr
    assert log_groups(aws, old) == [old] and log_groups(aws, new) == []  # nothing applied
    assert not (tmp_path / "work" / "envs" / "staging-guard" / "base" / "tfplan").exists()

    # Naming another address does not help; naming this one does.
    r = cli(*deploy, "--allow-replace", "aws_cloudwatch_log_group.other")
    assert r.exit_code == 7, r.output
    r = cli(*deploy, "--allow-replace", ADDRESS)
    assert r.exit_code == 0, r.output
    assert log_groups(aws, old) == [] and log_groups(aws, new) == [new]

    r = cli("teardown", "--env", "staging", "--suffix", "guard", "--allow-protected", "--confirm", "staging", "--yes")
    assert r.exit_code == 0, r.output
    assert log_groups(aws, new) == []


def test_a_pipeline_apply_of_a_replacing_plan_is_refused_until_the_address_is_named(
    project, tmp_path, moto_url, mirror, aws
):
    """`unit apply` in a protected environment: the same guard, on the saved plan it fetched."""
    jobs = iter(range(100))

    def job(*args):  # every job in a work dir of its own
        return Cli(project, tmp_path / f"job{next(jobs)}", moto_url, mirror)(*args)

    def unit(action, run_id, *extra):
        return job("unit", action, "base", "--env", "staging", "--suffix", "ujg", "--run-id", run_id, *extra)

    assert job("bootstrap", "--env", "staging").exit_code == 0
    assert unit("plan", "g1").exit_code == 0 and unit("apply", "g1").exit_code == 0
    old, new = "/fixture/fixture-base-staging-ujg", "/fixture/fixturey-base-staging-ujg"
    env_file = project / "environments" / "staging" / "env.toml"
    env_file.write_text(env_file.read_text().replace('name_prefix = "fixture"', 'name_prefix = "fixturey"'))

    summary = tmp_path / "summary.md"
    r = unit("plan", "g2", "--json", "--summary", str(summary))
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["replace"] == 1 and doc["refused"] and ADDRESS in doc["refused"][0]
    assert "refused in a protected environment" in summary.read_text()  # what the reviewer reads

    r = unit("apply", "g2")
    assert r.exit_code == 8, r.output
    (line,) = r.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: refused: in protected environment staging the plan of unit base deletes or replaces")
    assert line.endswith("nothing was applied")
    assert log_groups(aws, old) == [old] and log_groups(aws, new) == []

    r = unit("apply", "g2", "--allow-replace", ADDRESS)  # the same saved plan, its address named
    assert r.exit_code == 0, r.output
    assert log_groups(aws, old) == [] and log_groups(aws, new) == [new]
