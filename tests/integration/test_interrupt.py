"""SIGINT in the middle of an apply on moto (the fixture stack plus a slow unit whose apply waits
at a gate the test opens): exit 130, no terraform left running,
no lock left behind, the run recorded as interrupted, the next deploy succeeds.
A teardown interrupted halfway finishes when run again. Throughout, a canary
secret (supplied as ORCHESTRATOR_SECRET_CANARY, printed in clear by terraform's
plan) appears in no output, log, report or journal."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from orchestrator.tf import events as tf_events
from tests.helpers import FIXTURE_STACK

CANARY = "canary-Zq8vN3xW7kLp2Rt"

# The slow unit: terraform_data only (no provider to start). Its apply and its destroy each wait
# for a file of the gate (Gate below) the test opens when its moment has come: a window to
# interrupt or kill in that is as long as the test needs and no longer (each wait gives up
# after 10 minutes, so a test that never opens its gate fails instead of hanging).
SLOW_UNIT = """
variable "upstream" {
  type = string
}

# Deliberately not sensitive: terraform prints it in the plan; the orchestrator must mask it.
variable "canary" {
  type = string
}

resource "terraform_data" "canary" {
  input = var.canary
}

output "canary_echo" {
  value = terraform_data.canary.output
}

resource "terraform_data" "slow" {
  input = var.upstream

  provisioner "local-exec" {
    command = "i=0; while [ ! -e '@GATE@/apply' ] && [ $i -lt 6000 ]; do sleep 0.1; i=$((i+1)); done; [ -e '@GATE@/apply' ]"
  }

  provisioner "local-exec" {
    when    = destroy
    command = "i=0; while [ ! -e '@GATE@/destroy' ] && [ $i -lt 6000 ]; do sleep 0.1; i=$((i+1)); done; [ -e '@GATE@/destroy' ]"
  }
}

output "slow" {
  value = terraform_data.slow.output
}
"""


class Gate:
    """The files the slow unit's apply and destroy wait for (SLOW_UNIT)."""

    def __init__(self, path: Path):
        path.mkdir(parents=True, exist_ok=True)
        self.path = path

    def open(self, step: str) -> None:
        (self.path / step).touch()

    def close(self, step: str) -> None:
        (self.path / step).unlink(missing_ok=True)

    def waiting(self) -> list[int]:
        """The processes still waiting at the gate (terraform's local-exec shells)."""
        return processes_naming(str(self.path))


def processes_naming(*markers: str) -> list[int]:
    """The processes (but this one) whose command line holds every one of `markers`. (Not "every
    process without 'pytest' in its command line": under pytest's own temporary directory, every
    path a marker names holds it.)"""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if all(m in cmd for m in markers):
            pids.append(int(p.name))
    return pids


def terraform_processes(marker: str) -> list[int]:
    return processes_naming(marker, "terraform")


BUCKET = "fixture-tfstate-dev-123456789012"


def s3_client(moto_url):
    return boto3.client(
        "s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )


def state_keys(moto_url) -> list[str]:
    listing = s3_client(moto_url).list_objects_v2(Bucket=BUCKET, Prefix="fixture/dev-int/")
    return [o["Key"] for o in listing.get("Contents", [])]


def journal(moto_url) -> dict:
    body = s3_client(moto_url).get_object(Bucket=BUCKET, Key="fixture/_runs/dev-int/journal.json")["Body"].read()
    return json.loads(body)


def log_groups(moto_url) -> list[str]:
    logs = boto3.client(
        "logs", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    groups = logs.describe_log_groups(logGroupNamePrefix="/fixture/fixture-base-dev-int")["logGroups"]
    return [g["logGroupName"] for g in groups]


class Interruptible:
    """The CLI as a child process (signals need a real process), with the canary supplied."""

    def __init__(self, project: Path, work: Path, moto_url: str, mirror: str):
        self.base = [
            sys.executable,
            "-m",
            "orchestrator",
            "--project-dir",
            str(project),
            "--work-dir",
            str(work),
            "--emulator-url",
            moto_url,
            "--provider-mirror",
            mirror,
        ]
        self.env = {k: v for k, v in os.environ.items() if k != "CI"}
        self.env["ORCHESTRATOR_SECRET_CANARY"] = CANARY
        self.texts: list[str] = []  # every stdout/stderr seen, for the canary check

    def interrupt_when(self, args: list[str], ready) -> subprocess.CompletedProcess:
        proc = subprocess.Popen(
            [*self.base, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env
        )
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if ready():
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.5)
        else:
            proc.kill()
            raise AssertionError(f"{args}: the moment to interrupt never came")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=180)
        self.texts += [out, err]
        return subprocess.CompletedProcess(args, proc.returncode, out, err)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([*self.base, *args], capture_output=True, text=True, env=self.env, timeout=600)
        self.texts += [done.stdout, done.stderr]
        return done


def slow_project(tmp_path: Path, gate: Gate) -> Path:
    """A copy of the fixture stack with the slow unit (and its canary) added below base."""
    project = tmp_path / "p"
    shutil.copytree(FIXTURE_STACK, project)
    slow = project / "terraform" / "slow"
    slow.mkdir()
    shutil.copy(project / "terraform" / "mid" / "backend.tf", slow / "backend.tf")
    (slow / "main.tf").write_text(SLOW_UNIT.replace("@GATE@", str(gate.path)))
    manifest = project / "terraform" / "stack.toml"
    manifest.write_text(
        manifest.read_text()
        + '\n[units.slow]\npath = "slow"\ninputs = { upstream = "base.log_group_name" }\n'
        + 'generated_secrets = ["canary"]\n'
    )
    return project


@pytest.fixture(scope="module")
def interrupted(moto_url, mirror, tmp_path_factory):
    """An interrupted deploy of a fixture copy with a slow unit, then the deploy run again."""
    tmp_path = tmp_path_factory.mktemp("interrupt")
    gate = Gate(tmp_path / "gate")
    gate.open("destroy")  # only the apply is held here
    project = slow_project(tmp_path, gate)
    work = tmp_path / "w"
    cli = Interruptible(project, work, moto_url, mirror)
    assert cli.run("bootstrap", "--env", "dev").returncode == 0

    log = work / "envs" / "dev-int" / "slow" / "terraform.log"

    def slow_apply_waiting_at_the_gate():
        return log.exists() and "terraform_data.slow: Creating..." in log.read_text() and gate.waiting() != []

    deploy = ["deploy", "--env", "dev", "--suffix", "int", "--yes", "--no-smoke"]
    first = cli.interrupt_when(deploy, slow_apply_waiting_at_the_gate)
    after = {
        "processes": terraform_processes(str(work)),
        "at the gate": gate.waiting(),
        "keys": state_keys(moto_url),
        "journal": journal(moto_url),
    }
    gate.open("apply")
    again = cli.run(*deploy, "--json")
    return {"cli": cli, "work": work, "first": first, "after": after, "again": again}


def test_sigint_during_apply(interrupted):
    first, after = interrupted["first"], interrupted["after"]
    assert first.returncode == 130, first.stderr[-3000:]
    assert "SIGINT: stopping terraform gracefully" in first.stderr
    assert "Traceback" not in first.stderr
    assert after["processes"] == []
    assert after["at the gate"] == []  # terraform stopped the slow apply's provisioner too
    assert not [k for k in after["keys"] if k.endswith(".tflock")], after["keys"]
    assert after["journal"]["runs"][-1]["result"] == "interrupted"
    # the unit cut off says the same word, and the next step
    cut = [u for u, rec in after["journal"]["units"].items() if rec["status"] == "interrupted"]
    assert "slow" in cut, after["journal"]["units"]
    assert all("run the same command again to finish it" in after["journal"]["units"][u]["detail"] for u in cut), after[
        "journal"
    ]["units"]

    again = interrupted["again"]
    assert again.returncode == 0, again.stderr[-3000:]
    units = {u["unit"]: u for u in json.loads(again.stdout)["units"]}
    assert {u["status"] for u in units.values()} <= {"succeeded", "no changes"}
    assert set(units) == {"base", "mid", "side", "leaf", "slow"}


def test_interrupted_teardown_finishes_when_run_again(interrupted, moto_url):
    cli, work = interrupted["cli"], interrupted["work"]
    assert log_groups(moto_url) == ["/fixture/fixture-base-dev-int"]
    leaf_log = work / "envs" / "dev-int" / "leaf" / "terraform.log"
    seen = len(leaf_log.read_text())

    def leaf_destroyed():
        # leaf goes first (nothing depends on it); then mid, then base: interrupt in between.
        return re.search(r"[1-9][0-9]* destroyed\.", leaf_log.read_text()[seen:]) is not None

    down = ["teardown", "--env", "dev", "--suffix", "int", "--yes"]
    first = cli.interrupt_when(down, leaf_destroyed)
    assert first.returncode == 130, first.stderr[-3000:]
    assert "Traceback" not in first.stderr
    assert terraform_processes(str(work)) == []
    assert not [k for k in state_keys(moto_url) if k.endswith(".tflock")]
    assert journal(moto_url)["runs"][-1]["result"] == "interrupted"
    assert log_groups(moto_url) == ["/fixture/fixture-base-dev-int"]  # halfway: base is still there

    again = cli.run(*down, "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    statuses = {u["unit"]: u["status"] for u in json.loads(again.stdout)["units"]}
    assert set(statuses) == {"base", "mid", "side", "leaf", "slow"}
    assert statuses["base"] == "succeeded" and statuses["leaf"] in {"succeeded", "no changes"}
    assert log_groups(moto_url) == []
    assert journal(moto_url)["runs"][-1]["result"] == "ok"
    # Nothing left to destroy: a third teardown changes nothing.
    third = cli.run(*down, "--json")
    assert third.returncode == 0, third.stderr[-3000:]
    assert all(u["status"] != "succeeded" for u in json.loads(third.stdout)["units"])


def test_canary_secret_appears_nowhere(interrupted, moto_url):
    """After interrupted and finished deploys and teardowns: every stdout/stderr, every file the
    orchestrator wrote (logs, reports, var files) and every journal version hold the canary 0 times.
    The plan in the log did print the variable (masked), so the check is not vacuous."""
    cli, work = interrupted["cli"], interrupted["work"]
    # the apply's outputs event carried the canary (canary_echo), masked in the unit's events
    slow_events = ((work / "envs" / "dev-int" / "slow") / "terraform.events.jsonl").read_text()
    echoed = [e["outputs"].get("canary_echo", {}) for e in tf_events.read(slow_events) if e["type"] == "outputs"]
    assert any(o.get("value") == "***" for o in echoed), "terraform did not print the canary at all"
    texts = list(cli.texts)
    for f in work.rglob("*"):
        if f.is_file() and ".terraform" not in f.parts and f.stat().st_size < 20_000_000:
            texts.append(f.read_bytes().decode(errors="replace"))
    s3 = s3_client(moto_url)
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="fixture/_runs/dev-int/").get("Versions", [])
    assert versions
    for v in versions:
        texts.append(s3.get_object(Bucket=BUCKET, Key=v["Key"], VersionId=v["VersionId"])["Body"].read().decode())
    assert sum(t.count(CANARY) for t in texts) == 0
