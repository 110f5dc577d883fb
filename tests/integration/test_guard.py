"""Policies on real plans in a protected environment: a plan that replaces a stateful
resource is denied (the guard's stateful_replace), naming the address, with nothing applied;
`--override POLICY:ADDRESS --reason` (or the alias `--allow-replace ADDRESS`) lets exactly that
one through, and the reason is in the report; a warn policy is shown and recorded. On the
fixture stack, whose staging is protected and whose base unit holds a log group (stateful,
and without a KMS key: encrypted_storage, declared here at level warn, says so)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil

import pytest
from botocore.exceptions import ClientError

from orchestrator.policy import policies
from tests.helpers import FIXTURE_STACK, Cli

ADDRESS = "aws_cloudwatch_log_group.base"
BUCKET = "fixture-tfstate-staging-123456789012"
AUDIT = f"{BUCKET}-audit"


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    for d in ("terraform", "environments"):
        shutil.copytree(FIXTURE_STACK / d, root / d)  # the shared .tf files copied, not linked
    manifest = root / "terraform" / "stack.toml"
    manifest.write_text(manifest.read_text() + WARN)
    return root


WARN = """
[[policies]]
policy = "stateful_replace"
environments = ["protected"]

[[policies]]
policy = "encrypted_storage"
level = "warn"
environments = ["staging"]
"""
REASON = "CHG-42 the prefix is renamed; the old group's logs are exported"


def log_groups(aws, prefix):
    return [g["logGroupName"] for g in aws("logs").describe_log_groups(logGroupNamePrefix=prefix)["logGroups"]]


def no_destroy(plan, facts):
    """A project's policy (as an entry point would give it): nothing of the environment is destroyed."""
    return [(c["address"], "destroys it") for c in plan["resource_changes"] if "delete" in c["change"]["actions"]]


def test_replacing_a_stateful_resource_in_a_protected_environment_needs_its_address(
    project, tmp_path, moto_url, mirror, aws, monkeypatch
):
    cli = Cli(project, tmp_path / "work", moto_url, mirror)
    assert cli("bootstrap", "--env", "staging").exit_code == 0
    deploy = ("deploy", "--env", "staging", "--suffix", "guard", "--only", "base", "--yes", "--json")
    r = cli(*deploy)
    assert r.exit_code == 0, r.output
    old = "/fixture/fixture-base-staging-guard"
    assert log_groups(aws, old) == [old]
    (unit,) = json.loads(r.stdout)["units"]  # warned, recorded, applied
    assert unit["policies"] == [
        {"policy": "encrypted_storage", "level": "warn", "address": ADDRESS, "why": "no kms_key_id", "override": None}
    ]
    assert f"base: policy encrypted_storage (warn): {ADDRESS}: no kms_key_id" in r.stderr

    # A new name forces the log group's replacement.
    env_file = project / "environments" / "staging" / "env.toml"
    env_file.write_text(env_file.read_text().replace('name_prefix = "fixture"', 'name_prefix = "fixturex"'))
    new = "/fixture/fixturex-base-staging-guard"
    r = cli(*deploy)
    assert r.exit_code == 12, r.output
    (unit,) = json.loads(r.stdout)["units"]
    assert unit["status"] == "failed" and unit["replace"] == 1
    assert unit["detail"] == f"denied by policy: stateful_replace at {ADDRESS}; nothing was applied"
    assert (
        f"policy stateful_replace (deny): {ADDRESS}: deletes or replaces a stateful resource "
        f'(to accept: --override stateful_replace:{ADDRESS} --reason "...")'
    ) in r.stderr.splitlines()
    assert log_groups(aws, old) == [old] and log_groups(aws, new) == []  # nothing applied
    assert not (tmp_path / "work" / "envs" / "staging-guard" / "base" / "tfplan").exists()

    # Naming another address does not help; naming this one, with a reason, does.
    r = cli(*deploy, "--override", "stateful_replace:aws_cloudwatch_log_group.other", "--reason", REASON)
    assert r.exit_code == 12, r.output
    r = cli(*deploy, "--override", f"stateful_replace:{ADDRESS}", "--reason", REASON)
    assert r.exit_code == 0, r.output
    assert log_groups(aws, old) == [] and log_groups(aws, new) == [new]
    (unit,) = json.loads(r.stdout)["units"]
    assert {(p["policy"], p["override"]) for p in unit["policies"]} == {
        ("stateful_replace", REASON),
        ("encrypted_storage", None),
    }

    # A destroy plan is a plan: a project's policy denying destroys refuses the teardown, nothing
    # destroyed; accepted by name with a reason, it goes through.
    monkeypatch.setitem(policies.BUILTIN, "no_destroy", no_destroy)
    manifest = project / "terraform" / "stack.toml"
    manifest.write_text(manifest.read_text() + '\n[[policies]]\npolicy = "no_destroy"\nenvironments = ["staging"]\n')
    teardown = (
        "teardown",
        "--env",
        "staging",
        "--suffix",
        "guard",
        "--allow-protected",
        "--confirm",
        "staging",
        "--yes",
    )
    r = cli(*teardown)
    assert r.exit_code == 12, r.output
    assert f"policy no_destroy (deny): {ADDRESS}: destroys it" in r.stderr
    assert log_groups(aws, new) == [new]
    r = cli(*teardown, "--override", f"no_destroy:{ADDRESS}", "--reason", "CHG-43 decommissioned")
    assert r.exit_code == 0, r.output
    assert log_groups(aws, new) == []


def test_a_pipeline_apply_of_a_replacing_plan_is_refused_until_the_address_is_named(
    project, tmp_path, moto_url, mirror, aws
):
    """`unit apply` in a protected environment: the same policies, on the saved plan it fetched;
    `--allow-replace`, the guard rules' alias of --override, lets it through."""
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
    assert {(p["policy"], p["level"]) for p in doc["policies"]} == {
        ("stateful_replace", "deny"),
        ("encrypted_storage", "warn"),
    }
    text = summary.read_text()  # what the reviewer reads
    assert f":no_entry: policy stateful_replace (deny): {ADDRESS}" in text
    assert f":warning: policy encrypted_storage (warn): {ADDRESS}" in text

    r = unit("apply", "g2")
    assert r.exit_code == 12, r.output
    lines = r.stderr.strip().splitlines()[-2:]
    assert lines == [
        "error: denied by policy: the plan of unit base, nothing applied:",
        f"error: policy stateful_replace (deny): {ADDRESS}: deletes or replaces a stateful resource "
        f'(to accept: --override stateful_replace:{ADDRESS} --reason "...")',
    ]
    assert log_groups(aws, old) == [old] and log_groups(aws, new) == []

    saved = aws("s3").get_object(Bucket=BUCKET, Key="fixture/_plans/staging-ujg/g2/base.tfplan")["Body"].read()
    r = unit("apply", "g2", "--allow-replace", ADDRESS)  # the same saved plan, its address named
    assert r.exit_code == 0, r.output
    assert log_groups(aws, old) == [] and log_groups(aws, new) == [new]

    # The audit trail: the job's record names the plan that was applied (its sha256), the verdicts
    # and the override with its reason, who ran it; the records cannot be deleted or replaced.
    r = job("audit", "--env", "staging", "--unit", "base", "--format", "csv")
    assert r.exit_code == 0, r.output
    rows = [
        row for row in csv.DictReader(io.StringIO(r.stdout)) if row["run_id"] == "g2" and row["command"] == "unit apply"
    ]
    assert len(rows) == 1, r.stdout
    assert rows[0]["plan_sha256"] == hashlib.sha256(saved).hexdigest()
    assert rows[0]["status"] == "succeeded" and rows[0]["copy"] == "staging-ujg"
    assert f"stateful_replace:{ADDRESS}: named with --allow-replace" in rows[0]["overrides"]
    assert rows[0]["identity"].startswith("arn:aws:")
    s3 = aws("s3")
    lock = s3.get_object_lock_configuration(Bucket=AUDIT)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert (lock["Rule"]["DefaultRetention"]["Mode"], lock["Rule"]["DefaultRetention"]["Days"]) == ("COMPLIANCE", 400)
    key = next(
        o["Key"]
        for o in s3.list_objects_v2(Bucket=AUDIT, Prefix="fixture/staging/")["Contents"]
        if "/g2/job-apply-base-end" in o["Key"]
    )
    head = s3.head_object(Bucket=AUDIT, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE" and head["ServerSideEncryption"] == "aws:kms"
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=AUDIT, Key=key, VersionId=head["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=AUDIT, Key=key, Body=b"{}", IfNoneMatch="*")  # how the trail writes: never over one
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    assert (
        json.loads(s3.get_object(Bucket=AUDIT, Key=key, VersionId=head["VersionId"])["Body"].read())["run_id"] == "g2"
    )
