"""A state lock left by a dead run: detected and reported (who, since when, the
exact unlock command), --lock-timeout waits for it, force-unlock releases it."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.helpers import Cli, fixture_without_aws

BUCKET = "fixture-tfstate-dev-123456789012"
LOCK_KEY = "fixture/dev-lock/base.tfstate.tflock"
LOCK_ID = "6f0c7c6e-2b1d-4f1e-9c55-0d4e1a2b3c4d"


@pytest.fixture(scope="module")
def cli(moto_url, mirror, tmp_path_factory):
    project = fixture_without_aws(tmp_path_factory.mktemp("locks-project") / "p")  # the locks are what is tested
    c = Cli(project, tmp_path_factory.mktemp("locks"), moto_url, mirror)
    assert c("bootstrap", "--env", "dev").exit_code == 0
    r = c("deploy", "--env", "dev", "--suffix", "lock", "--yes", "--no-smoke")
    assert r.exit_code == 0, r.output
    yield c
    c("teardown", "--env", "dev", "--suffix", "lock", "--yes")


def plant_lock(aws, who="ghost@dead-runner"):
    info = {
        "ID": LOCK_ID,
        "Operation": "OperationTypeApply",
        "Info": "",
        "Who": who,
        "Version": "1.11.4",
        "Created": "2026-11-29T01:02:03.000000Z",
        "Path": f"{BUCKET}/{LOCK_KEY[:-7]}",
    }
    aws("s3").put_object(Bucket=BUCKET, Key=LOCK_KEY, Body=json.dumps(info).encode())


def lock_exists(aws):
    return any(
        o["Key"] == LOCK_KEY
        for o in aws("s3").list_objects_v2(Bucket=BUCKET, Prefix="fixture/dev-lock/").get("Contents", [])
    )


def test_a_held_lock_is_reported_with_holder_and_unlock_command(cli, aws):
    plant_lock(aws)
    r = cli("deploy", "--env", "dev", "--suffix", "lock", "--yes", "--no-smoke", "--json")
    assert r.exit_code == 7
    units = {u["unit"]: u for u in json.loads(r.stdout)["units"]}
    assert units["base"]["status"] == "failed"
    assert units["base"]["detail"] == (
        f"state of unit base is locked by ghost@dead-runner since 2026-11-29T01:02:03.000000Z "
        f"(lock id {LOCK_ID}, OperationTypeApply); "
        f"if that run is dead: orchestrator force-unlock --env dev --suffix lock --unit base {LOCK_ID}"
    )
    assert units["mid"]["detail"] == "base failed"
    assert lock_exists(aws)  # someone else's lock is never removed behind their back


def test_lock_timeout_waits_for_the_lock(cli, aws):
    plant_lock(aws)
    remover = threading.Timer(4.0, lambda: aws("s3").delete_object(Bucket=BUCKET, Key=LOCK_KEY))
    remover.start()
    t0 = time.monotonic()
    r = cli("deploy", "--env", "dev", "--suffix", "lock", "--only", "base", "--yes", "--lock-timeout", "60s")
    remover.join()
    assert r.exit_code == 0, r.output
    assert time.monotonic() - t0 >= 4.0


def test_force_unlock_releases_a_dead_runs_lock(cli, aws):
    plant_lock(aws)
    r = cli("force-unlock", "--env", "dev", "--suffix", "lock", "--unit", "base", LOCK_ID)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == f"released lock {LOCK_ID} on base"
    assert not lock_exists(aws)
    r = cli("deploy", "--env", "dev", "--suffix", "lock", "--yes", "--no-smoke")
    assert r.exit_code == 0, r.output


def test_a_lock_left_on_this_host_by_a_terraform_that_is_gone_stops_the_run_before_anything(cli, aws):
    """Its holder ran here and no terraform runs for the unit any more: the run names the lock and
    the command that releases it, before any terraform command, and leaves the lock alone."""
    from orchestrator.tf.terraform import terraform_identity

    plant_lock(aws, who=terraform_identity())
    log = cli.work / "envs" / "dev-lock" / "base" / "terraform.log"
    before = log.read_text()
    r = cli("deploy", "--env", "dev", "--suffix", "lock", "--yes", "--no-smoke")
    assert r.exit_code == 9, r.output
    assert r.stderr.strip() == (
        f"error: state of unit base is locked by {terraform_identity()} since 2026-11-29T01:02:03.000000Z "
        f"(lock id {LOCK_ID}, OperationTypeApply), and no terraform runs for it on this host any more; "
        f"release it: orchestrator force-unlock --env dev --suffix lock --unit base {LOCK_ID}"
    )
    assert log.read_text() == before  # no terraform command ran
    assert lock_exists(aws)
    assert "fixture/_runs/dev-lock/run.lock" not in [
        o["Key"] for o in aws("s3").list_objects_v2(Bucket=BUCKET, Prefix="fixture/_runs/").get("Contents", [])
    ]
    assert cli("force-unlock", "--env", "dev", "--suffix", "lock", "--unit", "base", LOCK_ID).exit_code == 0
