"""`unit plan` / `unit apply` on the fixture stack: each command in a work dir of its own (two
machines that share only the state bucket), a stale plan refused with one line and exit 1, a plan
an earlier attempt already applied taken as done, and journal records of jobs side by side."""

from __future__ import annotations

import itertools
import json
import os
import threading

import pytest

from tests.helpers import FIXTURE_STACK, ROOT, Cli, CommentsApi, fixture_without_aws, github_env

BUCKET = "fixture-tfstate-dev-123456789012"
_jobs = itertools.count()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The fixture with a base that holds no AWS resource: these tests are about the jobs (the S3
    backend, saved plans in S3 under KMS, the journal, run locks); the pipeline's test runs the
    jobs on the fixture as it is (tests/integration/test_pipeline.py)."""
    return fixture_without_aws(tmp_path_factory.mktemp("unit-jobs") / "project")


@pytest.fixture(scope="module")
def job(project, moto_url, mirror, tmp_path_factory):
    """A CLI whose every call runs in a fresh work dir: nothing survives between two jobs."""
    base = tmp_path_factory.mktemp("jobs")

    def run(*args: str, env: dict | None = None):
        return Cli(project, base / f"job{next(_jobs)}", moto_url, mirror)(*args, env=env)

    r = run("bootstrap", "--env", "dev")
    assert r.exit_code == 0, r.output
    return run


def settings(project, **values) -> None:
    path = project / "environments" / "dev" / "env.toml"
    text = path.read_text()
    for key, value in values.items():
        lines = [f"{key} = {json.dumps(value)}" if ln.startswith(f"{key} =") else ln for ln in text.splitlines()]
        text = "\n".join(lines) + "\n"
    path.write_text(text)


def plan(job, unit, run_id, suffix="uj"):
    r = job("unit", "plan", unit, "--env", "dev", "--suffix", suffix, "--run-id", run_id, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def apply(job, unit, run_id, suffix="uj"):
    return job("unit", "apply", unit, "--env", "dev", "--suffix", suffix, "--run-id", run_id, "--json")


def test_plan_then_apply_on_other_machines_in_graph_order(job, aws):
    for unit in ("base", "mid"):
        doc = plan(job, unit, "r1")
        assert doc["status"] == "changes" and doc["add"] >= 1
        meta = aws("s3").head_object(Bucket=BUCKET, Key=f"fixture/_plans/dev-uj/r1/{unit}.tfplan")
        assert meta["ServerSideEncryption"] == "aws:kms"
        r = apply(job, unit, "r1")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["status"] == "succeeded"
        # applied: the plan and its record are gone, every version
        left = aws("s3").list_object_versions(Bucket=BUCKET, Prefix=f"fixture/_plans/dev-uj/r1/{unit}.")
        assert not left.get("Versions") and not left.get("DeleteMarkers")
    # nothing to change: the record alone is kept (no plan file), and applying it changes nothing
    assert plan(job, "base", "r1b")["status"] == "no changes"
    kept = aws("s3").list_objects_v2(Bucket=BUCKET, Prefix="fixture/_plans/dev-uj/r1b/").get("Contents", [])
    assert [o["Key"] for o in kept] == ["fixture/_plans/dev-uj/r1b/base.json"]
    r = apply(job, "base", "r1b")
    assert r.exit_code == 0 and json.loads(r.stdout)["status"] == "no changes", r.output
    out = json.loads(job("outputs", "--env", "dev", "--suffix", "uj", "--json").stdout)["outputs"]
    assert out["mid"]["message"] == "hello dev from /fixture/fixture-base-dev-uj"
    status = json.loads(job("status", "--env", "dev", "--suffix", "uj", "--json").stdout)
    assert status["units"]["mid"]["status"] == "succeeded" and status["units"]["mid"]["run_id"] == "r1"
    assert status["runs"][-1]["command"] == "pipeline" and status["runs"][-1]["result"] == "ok"


def test_the_review_page_of_a_run_is_the_golden_file(job, tmp_path):
    """`report --format markdown`: every unit's plan of the run, previews marked, as recorded by
    the plan jobs (a new copy: base planned for real, the three below it previewed)."""
    for unit in ("base", "mid", "side", "leaf"):
        plan(job, unit, "rv1", suffix="rv")
    out = tmp_path / "review.md"
    r = job("report", "--env", "dev", "--suffix", "rv", "--run-id", "rv1", "--format", "markdown", "--output", str(out))
    assert r.exit_code == 0, r.output
    golden = ROOT / "tests" / "golden" / "review.md"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(out.read_text())
    assert out.read_text() == golden.read_text()
    r = job("report", "--env", "dev", "--suffix", "rv", "--run-id", "never", "--format", "markdown")
    assert r.exit_code == 1 and r.stderr.startswith("error: no plan of run never recorded for dev-rv")

    # The pipeline's review job: the page as the pull request's one comment, edited on each push.
    api = CommentsApi(["LGTM", "<!-- orchestrator-review:dev-other -->\nanother copy's page"])
    try:
        gh = github_env(tmp_path, api.url)
        post = ("report", "--env", "dev", "--suffix", "rv", "--run-id", "rv1", "--post")
        first, second = job(*post, env=gh), job(*post, env=gh)
        assert (first.exit_code, second.exit_code) == (0, 0), first.output + second.output
        assert first.stderr.startswith("review comment created on GitHub pull request 7 (")
        assert second.stderr.startswith("review comment updated on GitHub pull request 7 (")
        assert [c["body"] for c in api.comments] == [
            "LGTM",
            "<!-- orchestrator-review:dev-other -->\nanother copy's page",
            golden.read_text(),
        ]
        assert "SECRETTOKEN" not in first.output + second.output and first.stdout == ""
        api.refuse = 403
        refused = job(*post, env=gh)
        assert refused.exit_code == 15 and refused.stderr.strip().splitlines() == [
            "error: cannot post the review comment on GitHub pull request 7: GitHub answered 403 "
            "(Resource not accessible by integration) (the token may not write to the request)"
        ]
        main = job(*post, env=github_env(tmp_path, api.url, number=None))  # a push to main: no request
        assert main.exit_code == 0 and "nothing to post" in main.stderr
    finally:
        api.close()


def test_apply_without_a_saved_plan_is_one_line_and_exit_1(job):
    r = apply(job, "base", "never-planned")
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines() == [
        "error: no saved plan of unit base for run never-planned in fixture-tfstate-dev-123456789012 "
        "(applied already, expired, or never made): orchestrator unit plan --env dev --suffix uj "
        "--run-id never-planned base"
    ]


def test_a_plan_made_against_other_upstream_outputs_is_refused(job, project):
    """mid planned; then base's output changes (another name, by a new setting): mid's plan is stale."""
    plan(job, "base", "r2")
    assert plan(job, "mid", "r2")["status"] == "no changes"
    settings(project, name_prefix="fixturb")
    try:
        plan(job, "base", "r3")
        assert apply(job, "base", "r3").exit_code == 0
        r = apply(job, "mid", "r2")
        assert r.exit_code == 1
        (line,) = r.stderr.strip().splitlines()[-1:]
        assert line.startswith("error: the saved plan of unit mid (run r2) is stale: since it was made ")
        assert "the outputs of upstream unit base changed" in line and "nothing was applied" in line
        assert line.endswith("orchestrator unit plan --env dev --suffix uj --run-id r2 mid")
    finally:
        settings(project, name_prefix="fixture")
        plan(job, "base", "r4")
        assert apply(job, "base", "r4").exit_code == 0


def test_a_plan_made_against_an_older_state_is_refused_unless_nothing_is_left_to_do(job, project):
    # planned (retention 7 -> 14), then the state moves under it by another route with other values
    settings(project, retention_days=14)
    plan(job, "base", "r5")
    settings(project, retention_days=30)
    assert job("deploy", "--env", "dev", "--suffix", "uj", "--only", "base", "--yes").exit_code == 0
    settings(project, retention_days=14)
    r = apply(job, "base", "r5")
    assert r.exit_code == 1, r.output
    line = r.stderr.strip().splitlines()[-1]
    assert "is stale: it was made against state serial" in line and "a fresh plan changes +0 ~1" in line
    assert "nothing was applied" in line
    # planned again (30 -> 14); the same change applied by another route: the plan's work is done
    plan(job, "base", "r6")
    assert job("deploy", "--env", "dev", "--suffix", "uj", "--only", "base", "--yes").exit_code == 0
    r = apply(job, "base", "r6")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["status"] == "no changes" and doc["detail"].startswith("already applied (state serial")
    settings(project, retention_days=7)


def test_bad_run_id_and_unknown_unit_are_one_line_each(job):
    r = job("unit", "plan", "base", "--env", "dev", "--run-id", "no spaces")
    assert r.exit_code == 1 and r.stderr.strip().splitlines()[-1].startswith("error: invalid run id 'no spaces'")
    r = job("unit", "plan", "nope", "--env", "dev", "--run-id", "r7")
    assert r.exit_code == 1 and r.stderr.strip().startswith("error: unknown unit(s): nope (known: ")
    r = job("unit", "apply", "base", "--env", "dev")
    assert r.exit_code == 1 and "need --run-id" in r.stderr


def test_jobs_recording_side_by_side_lose_no_record(job, moto_url):
    """Journal writes of jobs on different machines (no run lock): conditional, nothing lost."""
    from orchestrator.aws.clients import Aws
    from orchestrator.model.config import Project, load_environment, load_stack
    from orchestrator.redact import Redactor
    from orchestrator.state.journal import Journal
    from orchestrator.state.statestore import resolve_key_arn

    project = Project.find(str(FIXTURE_STACK))
    env = load_environment(project.environments_dir, "dev", load_stack(project.terraform_dir)).with_suffix("jr")
    aws = Aws(env.region, endpoint_url=moto_url)
    key = resolve_key_arn(aws, env)
    errors = []

    def writer(n: int) -> None:
        try:
            journal = Journal(aws, env, key, Redactor(), f"run{n}")
            for i in range(8):
                journal.record_job(f"u{n}-{i}", command="deploy", status="succeeded", fp=None, outputs=None)
        except Exception as exc:  # noqa: BLE001 - reported below, after the join
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads) and errors == []
    doc = Journal(aws, env, key, Redactor(), "reader").load()
    assert sorted(doc["units"]) == sorted(f"u{n}-{i}" for n in range(3) for i in range(8))
    assert sorted(r["run_id"] for r in doc["runs"]) == ["run0", "run1", "run2"]


def test_a_copys_teardown_deletes_its_plans_never_applied(job, aws):
    plan(job, "base", "left-over")  # planned, never applied (its apply job skipped or cancelled)
    prefix = "fixture/_plans/dev-uj/"
    assert aws("s3").list_object_versions(Bucket=BUCKET, Prefix=prefix).get("Versions")
    r = job("teardown", "--env", "dev", "--suffix", "uj", "--yes")
    assert r.exit_code == 0, r.output
    assert "saved plan object(s) of dev-uj never applied" in r.stderr
    left = aws("s3").list_object_versions(Bucket=BUCKET, Prefix=prefix)
    assert not left.get("Versions") and not left.get("DeleteMarkers")


def test_a_job_re_run_on_the_same_runner_releases_a_dead_runs_lock(job, aws):
    """A cancelled job (or deploy) on this runner left the run lock; its holder's death is proven
    (this host's machine, boot and pid namespace, its process gone, two renewals missed): the
    next job releases it and goes on, naming it. A holder in another pid namespace is waited for."""
    import subprocess
    import sys
    import time

    from orchestrator.state.runlock import host_identity

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    me = host_identity()
    record = {
        "run_id": "deadbeef0001",
        "command": "deploy",
        "who": "ci@runner",
        "host": "runner",
        "pid": gone.pid,
        "pid_start": None,
        "started": time.time() - 600,
        "renewed": time.time() - 300,
        "machine_id": me.machine_id,
        "boot_id": me.boot_id,
        "pid_ns": me.pid_ns,
        "renew_every": 30.0,
    }
    key = "fixture/_runs/dev-ujlock/run.lock"
    s3 = aws("s3")
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({**record, "pid_ns": "pid:[1]"}).encode())
    held = job("unit", "plan", "base", "--env", "dev", "--suffix", "ujlock", "--run-id", "j1")
    assert held.exit_code == 9, held.output
    assert held.stderr.strip().startswith("error: environment dev-ujlock is busy: run deadbeef0001 ")

    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(record).encode())
    r = job("unit", "plan", "base", "--env", "dev", "--suffix", "ujlock", "--run-id", "j1", "--json")
    assert r.exit_code == 0, r.output
    assert f"releasing the run lock of run deadbeef0001: its process {gone.pid} on this host is gone" in r.stderr
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=key).get("KeyCount", 0) == 0


def test_a_plan_job_before_its_upstream_exists_is_a_preview_that_apply_refuses(job, aws):
    """mid planned on a copy where base was never applied: a preview (base's log group name known
    after apply), no plan file kept; after base's apply, that preview is still never applied."""
    doc = plan(job, "mid", "pv1", suffix="ujpv")
    assert doc["preview"] is True and doc["status"] == "changes" and doc["add"] == 1
    assert doc["detail"] == "preview (base not deployed yet): terraform_data.mid"
    kept = aws("s3").list_objects_v2(Bucket=BUCKET, Prefix="fixture/_plans/dev-ujpv/pv1/").get("Contents", [])
    assert [o["Key"] for o in kept] == ["fixture/_plans/dev-ujpv/pv1/mid.json"]  # the record, no plan
    assert plan(job, "base", "pv1", suffix="ujpv")["status"] == "changes"
    assert apply(job, "base", "pv1", suffix="ujpv").exit_code == 0
    r = apply(job, "mid", "pv1", suffix="ujpv")
    assert r.exit_code == 1
    assert r.stderr.strip() == (
        "error: the plan of unit mid (run pv1) is a preview, made before base existed: a preview is never applied; "
        "nothing was applied; plan it again: orchestrator unit plan --env dev --suffix ujpv --run-id pv1 mid"
    )
    assert json.loads(job("outputs", "--env", "dev", "--suffix", "ujpv", "--json").stdout)["outputs"]["mid"] is None
    assert job("teardown", "--env", "dev", "--suffix", "ujpv", "--yes").exit_code == 0
