"""The deploy engine on the small fixture stack: real terraform, real S3 backend on moto.

base (a log group) -> mid -> leaf, base -> side. Cheap enough to run many times.
"""

from __future__ import annotations

import json
import shutil

import jsonschema
import pytest

from tests.helpers import FIXTURE_STACK, Cli, deployed, fixture_without_aws


@pytest.fixture(scope="module")
def cli(moto_url, mirror, tmp_path_factory):
    """The fixture stack, its base without the aws provider: these tests are about the run (order,
    outputs, journal, copies, previews), not about an AWS resource. Those that are (drift, the
    acceptance script's leftovers check) deploy the fixture stack itself."""
    project = fixture_without_aws(tmp_path_factory.mktemp("stack") / "p")
    c = Cli(project, tmp_path_factory.mktemp("work"), moto_url, mirror)
    for env in ("dev", "staging"):
        r = c("bootstrap", "--env", env)
        assert r.exit_code == 0, r.output
    return c


@pytest.fixture(scope="module")
def deployed_dev(cli):
    r = cli("deploy", "--env", "dev", "--yes", "--no-smoke", "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def unit_status(report):
    return {u["unit"]: u["status"] for u in report["units"]}


def outputs(cli, env, *extra):
    r = cli("outputs", "--env", env, "--json", *extra)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["outputs"]


def test_json_report_validates_against_its_schema(deployed_dev):
    import jsonschema

    from tests.helpers import ROOT

    jsonschema.validate(deployed_dev, json.loads((ROOT / "docs" / "report-schema.json").read_text()))


def test_events_stream_ndjson(cli, deployed_dev):
    # plan reads only: base and mid plan side by side (each against what is deployed).
    r = cli("plan", "--env", "dev", "--only", "base,mid", "--events")
    assert r.exit_code == 0, r.output
    events = [json.loads(line) for line in r.stdout.splitlines()]
    pairs = [(e["event"], e["unit"]) for e in events]
    assert sorted(pairs) == sorted(
        [("unit_started", "base"), ("unit_finished", "base"), ("unit_started", "mid"), ("unit_finished", "mid")]
    )
    for unit in ("base", "mid"):
        assert pairs.index(("unit_started", unit)) < pairs.index(("unit_finished", unit))
    finished = [e for e in events if e["event"] == "unit_finished"]
    assert all(e["status"] == "no changes" and e["add"] == 0 for e in finished)


def test_deploy_applies_in_order_and_wires_outputs(cli, deployed_dev):
    assert unit_status(deployed_dev) == {
        "base": "succeeded",
        "mid": "succeeded",
        "side": "succeeded",
        "leaf": "succeeded",
    }
    assert [u["unit"] for u in deployed_dev["units"]][0] == "base"
    out = outputs(cli, "dev")
    assert out["base"]["log_group_name"] == "/fixture/fixture-base-dev"
    assert out["mid"]["message"] == "hello dev from /fixture/fixture-base-dev"
    assert out["leaf"]["value"] == "leaf of hello dev from /fixture/fixture-base-dev"
    assert out["side"]["value"] == "leaf of /fixture/fixture-base-dev"


def test_state_is_encrypted_with_the_state_key_and_locking_is_on(cli, deployed_dev, aws):
    key = aws("kms").describe_key(KeyId="alias/fixture-tfstate-dev")["KeyMetadata"]["Arn"]
    head = aws("s3").head_object(Bucket="fixture-tfstate-dev-123456789012", Key="fixture/dev/base.tfstate")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key
    backend = json.loads((cli.work / "envs" / "dev" / "base" / ".terraform" / "terraform.tfstate").read_text())
    conf = backend["backend"]["config"]
    assert conf["encrypt"] is True and conf["kms_key_id"] == key
    assert conf["use_lockfile"] is True
    assert conf["key"] == "fixture/dev/base.tfstate"


def test_second_deploy_changes_nothing_and_reuses_working_copies(cli, deployed_dev):
    r = cli("deploy", "--env", "dev", "--yes", "--no-smoke", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert set(unit_status(report).values()) == {"no changes"}
    assert report["result"] == "ok"
    log = (cli.work / "envs" / "dev" / "base" / "terraform.log").read_text()
    assert log.count("$ terraform init") == 1  # initialised once, reused


def test_two_environments_side_by_side(cli, deployed_dev, aws):
    before = aws("s3").head_object(Bucket="fixture-tfstate-dev-123456789012", Key="fixture/dev/base.tfstate")["ETag"]
    r = cli("deploy", "--env", "staging", "--yes", "--no-smoke")
    assert r.exit_code == 0, r.output
    assert outputs(cli, "staging")["mid"]["message"] == "hello staging from /fixture/fixture-base-staging"
    assert outputs(cli, "dev")["mid"]["message"] == "hello dev from /fixture/fixture-base-dev"
    after = aws("s3").head_object(Bucket="fixture-tfstate-dev-123456789012", Key="fixture/dev/base.tfstate")["ETag"]
    assert before == after
    staging_backend = json.loads(
        (cli.work / "envs" / "staging" / "base" / ".terraform" / "terraform.tfstate").read_text()
    )
    assert staging_backend["backend"]["config"]["dynamodb_table"] == "fixture-tfstate-locks-staging"
    assert (cli.work / "envs" / "dev" / "base" / ".terraform") != (
        cli.work / "envs" / "staging" / "base" / ".terraform"
    )


def test_only_applies_the_unit_alone_and_with_upstream_brings_what_it_needs(cli, deployed_dev):
    r = cli("deploy", "--env", "dev", "--only", "mid", "--yes", "--json")
    assert r.exit_code == 0, r.output
    assert set(unit_status(json.loads(r.stdout))) == {"mid"}  # base read from its state, not applied
    r = cli("deploy", "--env", "dev", "--only", "mid", "--with-upstream", "--yes", "--json")
    assert r.exit_code == 0, r.output
    assert set(unit_status(json.loads(r.stdout))) == {"base", "mid"}


def test_only_with_unknown_unit_is_an_error(cli):
    r = cli("deploy", "--env", "dev", "--only", "nope", "--yes")
    assert r.exit_code == 1
    assert r.stderr.strip() == "error: unknown unit(s): nope (known: base, leaf, mid, side)"


def test_failed_unit_skips_exactly_its_dependents(cli, moto_url, mirror, tmp_path):
    project = tmp_path / "p"
    fixture_without_aws(project)
    env_file = project / "environments" / "dev" / "env.toml"
    env_file.write_text(env_file.read_text().replace('greeting = "hello dev"', 'greeting = "fail"'))
    broken = Cli(project, cli.work, moto_url, mirror)
    r = broken("deploy", "--env", "dev", "--suffix", "broken", "--yes", "--no-smoke", "--json")
    assert r.exit_code == 7
    status = {u["unit"]: (u["status"], u["detail"]) for u in json.loads(r.stdout)["units"]}
    assert status["base"][0] == "succeeded" and status["side"][0] == "succeeded"
    assert status["mid"][0] == "failed" and "greeting must not be" in r.stderr
    assert status["leaf"] == ("skipped", "mid failed")
    assert "--- mid failed (full log:" in r.stderr
    r = broken("teardown", "--env", "dev", "--suffix", "broken", "--yes")
    assert r.exit_code == 0, r.output


def test_suffix_copy_envs_and_teardown(cli, deployed_dev, aws):
    r = cli("deploy", "--env", "dev", "--suffix", "pr1", "--yes", "--no-smoke")
    assert r.exit_code == 0, r.output
    listed = cli("envs", "--env", "dev", "--json")
    found = deployed(listed.stdout)
    assert found["dev"] == ["base", "leaf", "mid", "side"] and found["dev-pr1"] == ["base", "leaf", "mid", "side"]
    r = cli("teardown", "--env", "dev", "--suffix", "pr1", "--yes", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    order = [u["unit"] for u in report["units"]]
    assert order.index("leaf") < order.index("mid") < order.index("base")
    assert all(u["status"] == "succeeded" and u["destroy"] >= 1 for u in report["units"]), report["units"]
    assert "dev-pr1" not in deployed(cli("envs", "--env", "dev", "--json").stdout)  # the copy's state is gone
    assert outputs(cli, "dev")["base"]["log_group_name"] == "/fixture/fixture-base-dev"  # dev's stays


def test_protected_environment_teardown_is_refused_and_changes_nothing(cli, aws):
    r = cli("deploy", "--env", "staging", "--yes", "--no-smoke")
    assert r.exit_code == 0
    before = aws("s3").list_object_versions(Bucket="fixture-tfstate-staging-123456789012")["Versions"]
    for args in ([], ["--allow-protected"], ["--allow-protected", "--confirm", "dev"], ["--confirm", "staging"]):
        r = cli("teardown", "--env", "staging", "--yes", *args)
        assert r.exit_code == 8, (args, r.output)
        assert r.stderr.strip() == (
            "error: environment staging is protected: teardown needs --allow-protected and --confirm staging (nothing was changed)"
        )
    after = aws("s3").list_object_versions(Bucket="fixture-tfstate-staging-123456789012")["Versions"]
    assert before == after  # no state written: nothing destroyed


def plan_count(work, env_id, unit, command="plan"):
    log = work / "envs" / env_id / unit / "terraform.log"
    return log.read_text().count(f"$ terraform {command}") if log.exists() else 0


def test_resume_skips_units_that_succeeded_with_unchanged_inputs(cli, moto_url, mirror, tmp_path):
    project = tmp_path / "p"
    fixture_without_aws(project)
    env_file = project / "environments" / "dev" / "env.toml"
    good = env_file.read_text()
    env_file.write_text(good.replace('greeting = "hello dev"', 'greeting = "fail"'))
    c = Cli(project, tmp_path / "w", moto_url, mirror)
    r = c("deploy", "--env", "dev", "--suffix", "resume", "--yes", "--no-smoke")
    assert r.exit_code == 7
    env_file.write_text(good)  # the cause, fixed
    before = {u: plan_count(c.work, "dev-resume", u) for u in ("base", "side", "mid", "leaf")}
    r = c("deploy", "--env", "dev", "--suffix", "resume", "--yes", "--no-smoke", "--resume", "--json")
    assert r.exit_code == 0, r.output
    units = {u["unit"]: u for u in json.loads(r.stdout)["units"]}
    for u in ("base", "side"):
        assert units[u]["status"] == "no changes" and units[u]["detail"].startswith("resumed: unchanged since run")
        assert plan_count(c.work, "dev-resume", u) == before[u]  # not planned again
    assert units["mid"]["status"] == "succeeded" and units["leaf"]["status"] == "succeeded"
    assert (
        outputs(c, "dev", "--suffix", "resume")["leaf"]["value"]
        == "leaf of hello dev from /fixture/fixture-base-dev-resume"
    )
    status = c("status", "--env", "dev", "--suffix", "resume", "--json")
    doc = json.loads(status.stdout)
    assert {u: rec["status"] for u, rec in doc["units"].items()} == {
        "base": "resumed",
        "side": "resumed",
        "mid": "succeeded",
        "leaf": "succeeded",
    }
    first_run = doc["runs"][0]["run_id"]
    assert doc["units"]["base"]["detail"] == f"resumed: unchanged since run {first_run}"
    assert [run["result"] for run in doc["runs"]] == ["failed", "ok"]
    plain = c("status", "--env", "dev", "--suffix", "resume").stdout
    assert "resumed     " in plain and f"resumed: unchanged since run {first_run}" in plain, plain
    r = c("teardown", "--env", "dev", "--suffix", "resume", "--yes")
    assert r.exit_code == 0, r.output


EARLY = "planned early (upstream unchanged)"


def runs(work, env_id):
    """terraform plan / apply commands each unit's log holds so far."""
    return {u: (plan_count(work, env_id, u), plan_count(work, env_id, u, "apply")) for u in UNITS}


UNITS = ("base", "mid", "leaf", "side")


def test_no_op_deploy_plans_every_unit_early_and_once(cli, deployed_dev):
    """Every unit is deployed, so all of them, base included, plan at the start of the run side by
    side; base ends "no changes", so the plans below it are used: one plan per unit, nothing applied."""
    before = runs(cli.work, "dev")
    r = cli("deploy", "--env", "dev", "--yes", "--no-smoke", "--json")
    assert r.exit_code == 0, r.output
    units = {u["unit"]: u for u in json.loads(r.stdout)["units"]}
    assert {u["status"] for u in units.values()} == {"no changes"}
    for u in UNITS:
        assert units[u]["detail"] == EARLY, units[u]
    after = runs(cli.work, "dev")
    delta = {u: (after[u][0] - before[u][0], after[u][1] - before[u][1]) for u in UNITS}
    assert delta == {"base": (1, 0), "mid": (1, 0), "leaf": (1, 0), "side": (1, 0)}


def test_an_applied_upstream_change_makes_downstream_units_plan_again(cli, moto_url, mirror, tmp_path):
    """base changes (log retention): the early plans of everything below it are thrown away and the
    units run again after base's apply, so nothing is applied from a plan made before its upstream moved."""
    project = tmp_path / "p"
    fixture_without_aws(project)
    c = Cli(project, tmp_path / "w", moto_url, mirror)
    r = c("deploy", "--env", "dev", "--suffix", "early", "--yes", "--no-smoke")
    assert r.exit_code == 0, r.output
    env_file = project / "environments" / "dev" / "env.toml"
    env_file.write_text(env_file.read_text().replace("retention_days = 7", "retention_days = 14"))
    before = runs(c.work, "dev-early")
    r = c("deploy", "--env", "dev", "--suffix", "early", "--yes", "--no-smoke", "--json")
    assert r.exit_code == 0, r.output
    units = {u["unit"]: u for u in json.loads(r.stdout)["units"]}
    assert units["base"]["status"] == "succeeded" and units["base"]["change"] == 1
    after = runs(c.work, "dev-early")
    delta = {u: (after[u][0] - before[u][0], after[u][1] - before[u][1]) for u in UNITS}
    for u in ("mid", "leaf", "side"):
        assert units[u]["status"] == "no changes" and units[u]["detail"] != EARLY, units[u]
    # base: its early plan applied; below it: the early plan, thrown away, then the unit's own run after base
    assert delta == {"base": (1, 1), "mid": (1, 1), "leaf": (1, 1), "side": (1, 1)}
    assert not list((c.work / "envs" / "dev-early").glob("*/tfplan"))  # no saved plan left behind
    assert c("teardown", "--env", "dev", "--suffix", "early", "--yes").exit_code == 0


def test_journal_is_encrypted_in_the_state_bucket(cli, deployed_dev, aws):
    head = aws("s3").head_object(Bucket="fixture-tfstate-dev-123456789012", Key="fixture/_runs/dev/journal.json")
    assert head["ServerSideEncryption"] == "aws:kms"


def test_errored_state_is_pushed_back_before_the_unit_runs(cli, deployed_dev, aws):
    s3 = aws("s3")
    bucket, key = "fixture-tfstate-dev-123456789012", "fixture/dev/base.tfstate"
    current = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert current["resources"]
    # A failed state write: terraform kept the newer state locally as errored.tfstate,
    # while the remote one still predates the apply.
    errored = dict(current, serial=current["serial"] + 5)
    older = dict(current, serial=current["serial"] + 1, resources=[], outputs={})
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(older).encode(), ServerSideEncryption="aws:kms")
    (cli.work / "envs" / "dev" / "base" / "errored.tfstate").write_text(json.dumps(errored))
    r = cli("deploy", "--env", "dev", "--yes", "--no-smoke", "--json")
    assert r.exit_code == 0, r.output
    base = next(u for u in json.loads(r.stdout)["units"] if u["unit"] == "base")
    assert base["status"] == "no changes"  # not a second base
    assert "recovered errored.tfstate" in base["hooks"]
    assert not (cli.work / "envs" / "dev" / "base" / "errored.tfstate").exists()
    restored = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert restored["resources"] and restored["serial"] >= errored["serial"]


def test_tf_log_is_refused_unless_allowed(cli, deployed_dev):
    r = cli("plan", "--env", "dev", env={"TF_LOG": "DEBUG"})
    assert r.exit_code == 3
    assert r.stderr.strip().startswith("error: TF_LOG is set: terraform debug logs can hold secrets")
    r = cli("plan", "--env", "dev", "--only", "base", env={"TF_LOG": "DEBUG", "ORCHESTRATOR_ALLOW_TF_LOG": "1"})
    assert r.exit_code == 0, r.output
    debug = cli.work / "terraform-debug.log"
    assert debug.stat().st_size > 0 and oct(debug.stat().st_mode & 0o777) == "0o600"
    assert "[DEBUG]" not in r.stderr


def test_drift_is_what_moved_in_aws_not_an_unapplied_setting(cli, moto_url, mirror, tmp_path, aws):
    """drift: a retention changed in AWS is drift, named by resource and attribute; a settings change
    nobody applied yet is not drift (plan shows it); an unmanaged attribute the next apply reverts is."""
    project = tmp_path / "p"
    shutil.copytree(FIXTURE_STACK, project)
    c = Cli(project, tmp_path / "w", moto_url, mirror)
    assert c("deploy", "--env", "dev", "--suffix", "drift", "--only", "base", "--yes", "--no-smoke").exit_code == 0
    env_file = project / "environments" / "dev" / "env.toml"
    env_file.write_text(env_file.read_text().replace("retention_days = 7", "retention_days = 14"))
    r = c("drift", "--env", "dev", "--suffix", "drift", "--only", "base", "--json")
    assert r.exit_code == 0, r.output  # the unapplied setting is not drift
    r = c("plan", "--env", "dev", "--suffix", "drift", "--only", "base", "--json", "--show")
    assert r.exit_code == 2, r.output  # ... but it is what a deploy would change
    schema = json.loads((FIXTURE_STACK.parents[2] / "docs" / "report-schema.json").read_text())
    jsonschema.validate(json.loads(r.stdout), schema)
    (unit,) = json.loads(r.stdout)["units"]
    assert unit["resources"] == [{"address": "aws_cloudwatch_log_group.base", "actions": ["update"]}]
    shown = r.stderr.split("--- base: plan (full log: ", 1)[1]
    assert "~ retention_in_days = 7 -> 14" in shown and "Plan: 0 to add, 1 to change, 0 to destroy." in shown
    aws("logs").put_retention_policy(logGroupName="/fixture/fixture-base-dev-drift", retentionInDays=1)
    r = c("drift", "--env", "dev", "--suffix", "drift", "--only", "base", "--json")
    assert r.exit_code == 2, r.output
    jsonschema.validate(json.loads(r.stdout), schema)
    (unit,) = json.loads(r.stdout)["units"]
    assert (unit["change"], unit["destroy"]) == (1, 0)
    assert unit["detail"] == "aws_cloudwatch_log_group.base (retention_in_days)", unit
    assert unit["resources"][0]["attributes"] == ["retention_in_days"]
    # A tag set outside terraform on a resource whose configuration sets none: not an attribute
    # terraform manages, but the next apply takes it off again, so drift names it.
    assert c("deploy", "--env", "dev", "--suffix", "drift", "--only", "base", "--yes", "--no-smoke").exit_code == 0
    aws("logs").tag_log_group(logGroupName="/fixture/fixture-base-dev-drift", tags={"hacked": "yes"})
    r = c("drift", "--env", "dev", "--suffix", "drift", "--only", "base", "--json")
    assert r.exit_code == 2, r.output
    (unit,) = json.loads(r.stdout)["units"]
    assert "tags" in unit["resources"][0]["reverts"], unit
    assert "unmanaged attribute(s) the next apply reverts: " in unit["detail"], unit
    assert c("teardown", "--env", "dev", "--suffix", "drift", "--yes").exit_code == 0


def test_one_output_raw_for_scripts(cli, deployed_dev):
    r = cli("outputs", "--env", "dev", "base", "log_group_name", "--raw")
    assert r.exit_code == 0 and r.stdout == "/fixture/fixture-base-dev\n", r.output
    r = cli("outputs", "--env", "dev", "base", "nope", "--raw")
    assert r.exit_code == 1
    assert r.stderr.strip() == "error: unit base has no output 'nope' (it has: log_group_name)"


def test_tf_runs_terraform_in_a_units_working_copy(cli, deployed_dev):
    r = cli("tf", "--env", "dev", "base", "--", "state", "list")
    assert r.exit_code == 0, r.output
    assert "terraform_data.base" in r.stdout.splitlines()
    r = cli("tf", "--env", "dev", "mid", "--", "plan", "-detailed-exitcode")  # the variables file is wired
    assert r.exit_code == 0, r.output
    r = cli("tf", "--env", "dev", "base", "--", "state", "show", "aws_sqs_queue.nope")
    assert r.exit_code == 1  # terraform's own code: it said why
    r = cli("tf", "--env", "staging", "base", "--", "state", "rm", "terraform_data.base")
    assert r.exit_code == 8, r.output
    assert r.stderr.strip() == (
        "error: environment staging is protected: terraform state rm needs --allow-protected and --confirm staging "
        "(nothing was run)"
    )


def test_every_read_only_json_follows_its_schema(cli, deployed_dev):
    """Each command's --json on a real deployment: validated by Cli against docs/report-schema.json,
    and its `command` names the shape."""
    for args in (
        ("status", "--env", "dev"),
        ("outputs", "--env", "dev"),
        ("smoke", "--env", "dev"),
        ("envs", "--env", "dev"),
        ("envs",),
        ("doctor", "--env", "dev"),
        ("preflight", "--env", "dev"),
        ("orphans", "--env", "dev"),
    ):
        r = cli(*args, "--json")
        assert r.stdout.strip(), (args, r.output)
        assert json.loads(r.stdout)["command"] == args[0]


def test_envs_shows_a_copy_with_only_a_failed_run_and_a_lock_and_how_to_release_it(cli, deployed_dev, aws):
    """A copy whose first deploy failed before any state, and whose state lock was left by a
    dead run: envs lists it, with its last run and the lock, and status names the lock and
    the force-unlock command."""
    s3 = aws("s3")
    bucket, prefix = "fixture-tfstate-dev-123456789012", "fixture"
    journal = {
        "version": 1,
        "units": {"base": {"status": "failed", "command": "deploy", "fingerprint": None, "outputs": {},
                           "detail": "boom", "run_id": "r1", "who": "ci@runner", "at": 1.0}},
        "runs": [{"run_id": "r1", "command": "deploy", "who": "ci@runner", "started": 1.0, "result": "failed",
                  "ended": 2.0}],
    }  # fmt: skip
    lock = {"ID": "4f1c-dead", "Operation": "OperationTypeApply", "Who": "ci@runner", "Created": "2026-11-29T10:00:00Z"}
    s3.put_object(Bucket=bucket, Key=f"{prefix}/_runs/dev-failed/journal.json", Body=json.dumps(journal).encode())
    s3.put_object(Bucket=bucket, Key=f"{prefix}/dev-failed/base.tfstate.tflock", Body=json.dumps(lock).encode())
    try:
        r = cli("envs", "--env", "dev", "--json")
        copies = {c["environment"]: c for c in json.loads(r.stdout)["copies"]}
        failed = copies["dev-failed"]
        assert failed["units"] == [] and failed["last_run"]["result"] == "failed"
        assert failed["state_locks"] == {"base": lock}
        plain = cli("envs", "--env", "dev").stdout
        hint = "orchestrator force-unlock --env dev --suffix failed --unit base 4f1c-dead"
        assert "dev-failed" in plain and "deploy failed" in plain and hint in plain, plain
        status = cli("status", "--env", "dev", "--suffix", "failed")
        assert status.exit_code == 0 and hint in status.stdout, status.output
        assert cli("status", "--env", "dev", "--suffix", "failed", "--json").exit_code == 0
    finally:
        s3.delete_object(Bucket=bucket, Key=f"{prefix}/_runs/dev-failed/journal.json")
        s3.delete_object(Bucket=bucket, Key=f"{prefix}/dev-failed/base.tfstate.tflock")
    assert "dev-failed" not in cli("envs", "--env", "dev").stdout


def test_envs_without_env_lists_every_environments_copies(cli, deployed_dev):
    r = cli("envs", "--json")
    assert r.exit_code == 0, r.output
    found = deployed(r.stdout)
    assert found["dev"] == ["base", "leaf", "mid", "side"]
    assert set(found) >= set(deployed(cli("envs", "--env", "dev", "--json").stdout))


def test_acceptance_suite_deploys_a_copy_beside_dev_and_leaves_nothing(cli, deployed_dev, tmp_path):
    """`make test-aws`'s code path (scripts/acceptance.py) on the emulator, on the fixture stack:
    a copy deployed beside dev, smoke checks, outputs, envs, teardown, and no live resource
    tagged with the copy afterwards. (The platform's own copy: test_pipeline.py.)"""
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT

    report_file = tmp_path / "acceptance.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "acceptance.py"),
            "--project-dir",
            str(FIXTURE_STACK),
            "--emulator-url",
            cli.emulator,
            "--suffix",
            "acc1",
            "--report",
            str(report_file),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "ORCHESTRATOR_PROVIDER_MIRROR": cli.mirror},
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(report_file.read_text())
    steps = ["bootstrap", "seed", "deploy", "smoke", "outputs", "envs", "teardown"]
    assert [s["step"] for s in report["steps"]] == steps
    assert all(s["exit"] == 0 for s in report["steps"]), report["steps"]
    assert report["leftovers"] == [] and report["result"] == "passed"
    assert report["outputs"]["base"]["log_group_name"] == "/fixture/fixture-base-dev-acc1"
    assert {"dev", "dev-acc1"} <= set(report["envs"])
    assert "dev-acc1" not in deployed(cli("envs", "--env", "dev", "--json").stdout)
    assert "dev" in deployed(cli("envs", "--env", "dev", "--json").stdout)


def test_a_renamed_unit_strands_its_state_teardown_refuses_and_the_named_fix_works(moto_url, mirror, tmp_path, aws):
    """[units.mid] renamed [units.middle]: plan says whose state is stranded and how to move it;
    teardown refuses before destroying anything (mid may depend on any unit); after the state is
    moved as the line says, the renamed unit plans clean and teardown goes through."""
    project = fixture_without_aws(tmp_path / "p")
    c = Cli(project, tmp_path / "w", moto_url, mirror)
    assert c("bootstrap", "--env", "dev").exit_code == 0
    assert c("deploy", "--env", "dev", "--suffix", "rn", "--yes", "--no-smoke").exit_code == 0
    manifest = project / "terraform" / "stack.toml"
    text = manifest.read_text().replace("[units.mid]", "[units.middle]").replace('"mid.message"', '"middle.message"')
    manifest.write_text(text)

    r = c("plan", "--env", "dev", "--suffix", "rn")
    assert r.exit_code == 2, r.output  # middle has no state: it would be created
    bucket, prefix = "fixture-tfstate-dev-123456789012", "fixture/dev-rn"
    warning = next(line for line in r.stderr.splitlines() if line.startswith("warning: state of unit(s) mid "))
    assert f"aws s3 mv s3://{bucket}/{prefix}/mid.tfstate s3://{bucket}/{prefix}/<new name>.tfstate" in warning
    assert "orchestrator teardown --env dev --suffix rn --only mid" in warning

    r = c("teardown", "--env", "dev", "--suffix", "rn", "--yes")
    assert r.exit_code == 1, r.output
    assert (
        r.stderr.strip()
        .splitlines()[-1]
        .startswith("error: teardown refused (nothing destroyed): state of unit(s) mid")
    )
    s3 = aws("s3")
    assert s3.get_object(Bucket=bucket, Key=f"{prefix}/base.tfstate")["Body"].read().count(b'"terraform_data"')

    # The fix the line names (aws s3 mv: a copy, then the old key deleted).
    s3.copy_object(
        Bucket=bucket, Key=f"{prefix}/middle.tfstate", CopySource={"Bucket": bucket, "Key": f"{prefix}/mid.tfstate"}
    )
    s3.delete_object(Bucket=bucket, Key=f"{prefix}/mid.tfstate")
    r = c("plan", "--env", "dev", "--suffix", "rn")
    assert r.exit_code == 0 and "warning:" not in r.stderr, r.output
    assert c("teardown", "--env", "dev", "--suffix", "rn", "--yes").exit_code == 0


def test_deploy_changed_runs_exactly_what_moved_and_says_why(cli, moto_url, mirror, tmp_path):
    """--changed: a unit whose files, inputs and state are as at its last apply runs no terraform
    command; a changed upstream output re-runs exactly its consumers; a state written behind the
    journal's back and a file edited in a module the unit calls are both seen."""
    project = tmp_path / "p"
    fixture_without_aws(project)
    module = project / "terraform" / "modules" / "label"
    module.mkdir(parents=True)
    (module / "main.tf").write_text('output "text" {\n  value = "label one"\n}\n')
    leaf_main = project / "terraform" / "leaf" / "main.tf"
    leaf_main.write_text(leaf_main.read_text() + '\nmodule "label" {\n  source = "../modules/label"\n}\n')
    env_file = project / "environments" / "dev" / "env.toml"
    c = Cli(project, tmp_path / "w", moto_url, mirror)
    copy = ("--env", "dev", "--suffix", "chg")
    r = c("deploy", *copy, "--yes", "--no-smoke")
    assert r.exit_code == 0, r.output

    def changed_deploy():
        before = runs(c.work, "dev-chg")
        r = c("deploy", *copy, "--yes", "--no-smoke", "--changed", "--json")
        assert r.exit_code == 0, r.output
        after = runs(c.work, "dev-chg")
        ran = {u for u in UNITS if after[u] != before[u]}
        return {u["unit"]: u for u in json.loads(r.stdout)["units"]}, ran

    units, ran = changed_deploy()  # nothing moved: no terraform command at all
    assert ran == set()
    assert {u["status"] for u in units.values()} == {"no changes"}
    assert all(u["why"].startswith("unchanged since run ") for u in units.values()), units

    env_file.write_text(env_file.read_text().replace("retention_days = 7", "retention_days = 14"))
    units, ran = changed_deploy()  # base's input moved, its outputs did not: base alone
    assert ran == {"base"} and units["base"]["change"] == 1
    assert units["base"]["why"] == "input changed: retention_days"

    env_file.write_text(env_file.read_text().replace('greeting = "hello dev"', 'greeting = "hi dev"'))
    units, ran = changed_deploy()  # mid's input moved, and with it the output leaf consumes
    assert ran == {"mid", "leaf"}, units
    assert units["mid"]["why"] == "input changed: greeting" and units["leaf"]["why"] == "input changed: upstream"
    assert outputs(c, "dev", "--suffix", "chg")["leaf"]["value"] == "leaf of hi dev from /fixture/fixture-base-dev-chg"

    r = c("tf", *copy, "side", "--", "state", "rm", "terraform_data.leaf")  # behind the journal's back
    assert r.exit_code == 0, r.output
    units, ran = changed_deploy()
    assert ran == {"side"} and units["side"]["add"] == 1
    assert units["side"]["why"].startswith("its state was written since its last apply (serial ")

    (module / "main.tf").write_text('output "text" {\n  value = "label two"\n}\n')  # a module leaf and side call
    units, ran = changed_deploy()
    assert ran == {"leaf", "side"}
    assert units["leaf"]["why"] == units["side"]["why"] == "its files changed"

    r = c("plan", *copy, "--changed")  # nothing moved since: the plan runs no terraform either
    assert r.exit_code == 0, r.output
    assert c("deploy", *copy, "--yes", "--changed", "--resume").exit_code == 1
    assert c("teardown", *copy, "--yes").exit_code == 0


def test_plan_of_a_copy_never_deployed_previews_every_unit_with_the_deploys_counts(cli, moto_url, mirror, tmp_path):
    """base has nothing upstream: a real plan. mid (base -> mid), leaf (base -> mid -> leaf) and side
    have no upstream state: previews, their upstream's outputs known after apply, never applied.
    The deploy that follows creates exactly what each preview said."""
    copy = ("--env", "dev", "--suffix", "pv")
    r = cli("plan", *copy, "--json")
    assert r.exit_code == 2, r.output
    planned = {u["unit"]: u for u in json.loads(r.stdout)["units"]}
    assert "preview" not in planned["base"]
    for u in ("mid", "leaf", "side"):
        assert planned[u]["preview"] is True and planned[u]["status"] == "succeeded", planned[u]
        assert planned[u]["detail"].startswith("preview (base"), planned[u]
    assert planned["leaf"]["detail"].startswith("preview (base, mid not deployed yet): terraform_data.leaf")
    assert not list((cli.work / "envs" / "dev-pv").glob("**/tfplan"))  # nothing left that could be applied
    # the three previews planned together: one composed root, one plan (base composed once, not thrice)
    shared = cli.work / "envs" / "dev-pv" / "_previews" / "terraform.log"
    assert shared.read_text().count("$ terraform plan") == 1
    assert {planned[u]["log"] for u in ("mid", "leaf", "side")} == {str(shared)}
    assert not list((cli.work / "envs" / "dev-pv").glob("*/preview"))
    text = cli("plan", *copy, "--show")
    assert text.exit_code == 2 and "known after apply" in text.stdout + text.stderr
    r = cli("deploy", *copy, "--yes", "--no-smoke", "--json")
    assert r.exit_code == 0, r.output
    deployed = {u["unit"]: u for u in json.loads(r.stdout)["units"]}
    counts = ("add", "change", "destroy", "replace")
    assert {u: [planned[u][k] for k in counts] for u in UNITS} == {u: [deployed[u][k] for k in counts] for u in UNITS}
    assert all(deployed[u]["add"] >= 1 for u in UNITS)
    assert cli("teardown", *copy, "--yes").exit_code == 0


def test_a_preview_says_when_a_count_waits_for_an_upstream_output(cli, moto_url, mirror, tmp_path):
    """leaf's count depends on mid's output: no number is guessed, the unit says why it waits. side's
    count depends on base's log group name, which the plan knows (it is configured): counted."""
    project = tmp_path / "p"
    fixture_without_aws(project)
    leaf = project / "terraform" / "leaf" / "main.tf"
    leaf.write_text(
        leaf.read_text() + '\nresource "terraform_data" "per_word" {\n  count = length(split(" ", var.upstream))\n}\n'
    )
    c = Cli(project, tmp_path / "w", moto_url, mirror)
    r = c("plan", "--env", "dev", "--suffix", "pc", "--json")
    assert r.exit_code == 2, r.output
    units = {u["unit"]: u for u in json.loads(r.stdout)["units"]}
    assert units["mid"]["preview"] is True and units["mid"]["add"] == 1
    assert units["leaf"]["status"] == "skipped" and units["leaf"]["preview"] is True
    assert units["leaf"]["detail"] == (
        "preview: cannot be planned before base, mid not deployed yet: Invalid count argument"
    ), units["leaf"]
    assert units["side"]["status"] == "succeeded" and units["side"]["add"] == 2  # the leaf and one word
