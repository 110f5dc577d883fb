"""Static gates on terraform/: validate with the mirrored provider, and the custom checkov
checks (each shown to fail on the flawed version). `terraform fmt -check` is `make lint`'s, which
`make test` runs first."""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from orchestrator.tf.terraform import cli_setup
from tests.helpers import ROOT

UNITS = ("network", "security", "database", "edge", "observability", "app")


def test_every_unit_validates_with_the_mirrored_provider(mirror, tmp_path):
    config, cli_env = cli_setup(tmp_path, mirror)

    def env_of(unit):
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "TF_CLI_CONFIG_FILE": str(config),
            "TF_DATA_DIR": str(tmp_path / unit),
            "TF_IN_AUTOMATION": "1",
            "HOME": str(tmp_path),
            **cli_env,
        }

    # One init at a time: terraform's plugin cache is not safe under concurrent installs.
    for unit in UNITS:
        init = subprocess.run(
            [
                "terraform",
                f"-chdir=terraform/{unit}",
                "init",
                "-backend=false",
                "-input=false",
                "-lockfile=readonly",
                "-no-color",
            ],
            cwd=ROOT,
            env=env_of(unit),
            capture_output=True,
            text=True,
        )
        assert init.returncode == 0, init.stderr

    def validate(unit):
        out = subprocess.run(
            ["terraform", f"-chdir=terraform/{unit}", "validate", "-json"],
            cwd=ROOT,
            env=env_of(unit),
            capture_output=True,
            text=True,
        )
        return unit, json.loads(out.stdout)

    with ThreadPoolExecutor(3) as pool:
        for unit, result in pool.map(validate, UNITS):
            assert result["valid"], (unit, result["diagnostics"])
            assert result["error_count"] == 0


def test_only_the_aws_provider_is_required():
    for lock in (ROOT / "terraform").glob("*/.terraform.lock.hcl"):
        providers = [line for line in lock.read_text().splitlines() if line.startswith("provider ")]
        assert providers == ['provider "registry.terraform.io/hashicorp/aws" {'], lock
    for tf in (ROOT / "terraform").rglob("*.tf"):
        text = tf.read_text()
        for banned in ('"null_resource"', "local-exec", "hashicorp/random", "hashicorp/null", "hashicorp/archive"):
            assert banned not in text, (tf, banned)


def run_checkov(checkov, directory, checks):
    out = subprocess.run(
        [
            checkov,
            "-d",
            str(directory),
            "--framework",
            "terraform",
            "--skip-download",
            "--external-checks-dir",
            str(ROOT / "checks"),
            "--check",
            ",".join(checks),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
    )
    data = json.loads(out.stdout)
    data = data[0] if isinstance(data, list) else data
    results = data.get("results", {})
    return {(c["check_id"], c["resource"]) for c in results.get("failed_checks", [])}, {
        (c["check_id"], c["resource"]) for c in results.get("passed_checks", [])
    }


CUSTOM = ("CKV2_PAY_1", "CKV_PAY_2", "CKV_PAY_3")


def test_custom_checks_fail_on_the_flawed_version(checkov):
    failed, _ = run_checkov(checkov, ROOT / "tests" / "fixtures" / "flawed", CUSTOM)
    assert {c for c, _ in failed} == set(CUSTOM), failed
    assert ("CKV2_PAY_1", "aws_route_table.private[0]") in failed


def test_custom_checks_pass_on_the_platform(checkov):
    failed, passed = run_checkov(checkov, ROOT / "terraform", CUSTOM)
    assert failed == set()
    # backup_retention_period is a variable in HCL (validated >= 7): CKV_PAY_2 judges
    # it on the real plans (test_review_items), where the value is known.
    assert {c for c, _ in passed} == {"CKV2_PAY_1", "CKV_PAY_3"}


@pytest.mark.parametrize("mutation", ["igw_route", "no_route"])
def test_nat_check_catches_a_private_route_table_without_nat(checkov, tmp_path, mutation):
    unit = tmp_path / "network"
    shutil.copytree(ROOT / "terraform" / "network", unit)
    main = unit / "main.tf"
    text = main.read_text()
    old = "  nat_gateway_id         = aws_nat_gateway.main[var.single_nat_gateway ? 0 : count.index].id\n"
    assert old in text
    if mutation == "igw_route":
        text = text.replace(old, "  gateway_id             = aws_internet_gateway.main.id\n")
    else:
        start = text.index('resource "aws_route" "private_nat"')
        end = text.index('resource "aws_route_table_association" "private"')
        text = text[:start] + text[end:]
    main.write_text(text)
    failed, _ = run_checkov(checkov, unit, ["CKV2_PAY_1"])
    assert ("CKV2_PAY_1", "aws_route_table.private") in failed
