"""SIGINT in the middle of an apply on moto: exit 130, no terraform left running,
no lock left behind, the run recorded as interrupted, the next deploy succeeds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3

from tests.helpers import FIXTURE_STACK, Cli

SLOW_UNIT = """
variable "upstream" {
  type = string
}

# The aws provider waits ~25 s after creating a queue: a window to interrupt in.
resource "aws_sqs_queue" "slow" {
  name                    = "fixture-slow-${var.environment_suffix}"
  sqs_managed_sse_enabled = true
}

output "queue_url" {
  value = aws_sqs_queue.slow.id
}
"""


def terraform_processes(marker: str) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd and ("terraform" in cmd) and "pytest" not in cmd:
            pids.append(int(p.name))
    return pids


def test_sigint_during_apply(moto_url, mirror, tmp_path):
    project = tmp_path / "p"
    shutil.copytree(FIXTURE_STACK, project)
    slow = project / "terraform" / "slow"
    slow.mkdir()
    for f in ("providers.tf", "common_variables.tf", ".terraform.lock.hcl"):
        shutil.copy(project / "terraform" / "base" / f, slow / f)
    (slow / "main.tf").write_text(SLOW_UNIT)
    manifest = project / "terraform" / "stack.toml"
    manifest.write_text(
        manifest.read_text() + '\n[units.slow]\npath = "slow"\ninputs = { upstream = "base.log_group_name" }\n'
    )
    work = tmp_path / "w"
    cli = Cli(project, work, moto_url, mirror)
    assert cli("bootstrap", "--env", "dev").exit_code == 0

    cmd = [
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
        "deploy",
        "--env",
        "dev",
        "--suffix",
        "int",
        "--yes",
        "--no-smoke",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("CI",)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    log = work / "envs" / "dev-int" / "slow" / "terraform.log"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if log.exists() and "aws_sqs_queue.slow: Creating..." in log.read_text():
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    else:
        proc.kill()
        raise AssertionError("the slow apply never started")
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err[-3000:]
    assert "SIGINT: stopping terraform gracefully" in err
    assert "Traceback" not in err
    assert terraform_processes(str(work)) == []

    s3 = boto3.client(
        "s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket="fixture-tfstate-dev-123456789012", Prefix="fixture/dev-int/").get(
            "Contents", []
        )
    ]
    assert not [k for k in keys if k.endswith(".tflock")], keys
    journal = json.loads(
        s3.get_object(Bucket="fixture-tfstate-dev-123456789012", Key="fixture/_runs/dev-int/journal.json")[
            "Body"
        ].read()
    )
    assert journal["runs"][-1]["result"] == "interrupted"

    r = cli("deploy", "--env", "dev", "--suffix", "int", "--yes", "--no-smoke", "--json")
    assert r.exit_code == 0, r.output
    assert {u["status"] for u in json.loads(r.stdout)["units"]} <= {"succeeded", "no changes"}
    assert cli("teardown", "--env", "dev", "--suffix", "int", "--yes").exit_code == 0
