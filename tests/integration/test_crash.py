"""A run that dies hard loses nothing. The orchestrator runs as a child process
(signals need a real process) on the fixture stack plus a slow unit (its apply and its destroy
wait at a gate the test opens: a window to die in), against moto.

- `kill -9` mid-apply: terraform finishes the apply on its own, writes state and
  releases its lock; the next plain deploy takes the run lock over by itself (its
  holder's death is proven: this host, its process gone), never a holder in
  another pid namespace;
  the next deploy changes nothing and `orphans` finds nothing (and finds exactly
  the one resource made behind the stack's back).
- two runs on one environment: the second fails at once, naming the first; the
  journal holds only the first run's records.
- `kill -9` while early plans run; `kill -9` mid-teardown (the next teardown
  finishes); SIGHUP from a closed terminal (a pseudo-terminal whose master is closed).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import subprocess
import termios
import threading
import time
from pathlib import Path

import boto3
import pytest

from orchestrator.tf import events as tf_events
from tests.integration.test_interrupt import CANARY, Gate, Interruptible, slow_project, terraform_processes

BUCKET = "fixture-tfstate-dev-123456789012"


def client(moto_url, service):
    return boto3.client(
        service, endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )


def keys(moto_url, prefix):
    listing = client(moto_url, "s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for o in listing.get("Contents", [])]


def wait_for(what: str, condition, timeout: float = 240.0, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for: {what}")


def journal(moto_url, env_id: str) -> dict:
    try:
        body = client(moto_url, "s3").get_object(Bucket=BUCKET, Key=f"fixture/_runs/{env_id}/journal.json")["Body"]
    except client(moto_url, "s3").exceptions.NoSuchKey:
        return {"units": {}, "runs": []}
    return json.loads(body.read())


def markers(work: Path, env_id: str) -> list[dict]:
    """tfshim.py's running.json of every unit: the terraform commands still running."""
    out = []
    for path in (work / "envs" / env_id).glob("*/running.json"):
        try:
            out.append({"unit": path.parent.name, **json.loads(path.read_text())})
        except (OSError, ValueError):
            pass
    return out


def text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


class Crashable(Interruptible):
    def start(self, *args: str, **kw) -> subprocess.Popen:
        kw = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kw}
        return subprocess.Popen([*self.base, *args], text=True, env=self.env, **kw)

    def kill_9_when(self, args: list[str], ready) -> subprocess.Popen:
        proc = self.start(*args)
        try:
            wait_for(f"the moment to kill {args}", lambda: ready() or proc.poll() is not None)
            assert proc.poll() is None, proc.communicate()
        except BaseException:
            proc.kill()
            raise
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        self.texts += [out, err]
        assert proc.returncode == -signal.SIGKILL
        return proc


@pytest.fixture(scope="module")
def crash(moto_url, mirror, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("crash")
    gate = Gate(tmp_path / "gate")
    gate.open("destroy")  # closed by the test that kills a teardown
    project = slow_project(tmp_path, gate)
    work = tmp_path / "w"
    cli = Crashable(project, work, moto_url, mirror)
    # Renewals every 2 s: a dead holder is taken over 4 s after its last renewal, not 60 s.
    cli.env["ORCHESTRATOR_RUN_LOCK_RENEW_SECONDS"] = "2"
    assert cli.run("bootstrap", "--env", "dev").returncode == 0
    cli.project, cli.work, cli.moto_url, cli.gate = project, work, moto_url, gate
    return cli


DEPLOY = ["deploy", "--env", "dev", "--suffix", "crash", "--yes", "--no-smoke"]
TEARDOWN = ["teardown", "--env", "dev", "--suffix", "crash", "--yes"]


def test_kill_9_mid_apply_loses_nothing(crash, moto_url):
    work, logs = crash.work, crash.work / "envs" / "dev-crash"

    def slow_apply_running_and_the_rest_done():
        if "terraform_data.slow: Creating..." not in text(logs / "slow" / "terraform.log") or not crash.gate.waiting():
            return False
        recorded = journal(moto_url, "dev-crash")["units"]
        return all(recorded.get(u, {}).get("status") == "succeeded" for u in ("base", "mid", "side", "leaf"))

    killed = crash.kill_9_when(DEPLOY, slow_apply_running_and_the_rest_done)
    # terraform outlives the orchestrator: still applying (waiting at the closed gate) ...
    running = markers(work, "dev-crash")
    assert [(m["unit"], m["command"]) for m in running] == [("slow", "apply")]

    # ... while the run lock stays. Were its holder in another container (another pid
    # namespace: its pid says nothing here), nothing would take it over by itself.
    s3, lock_key = client(moto_url, "s3"), "fixture/_runs/dev-crash/run.lock"
    original = s3.get_object(Bucket=BUCKET, Key=lock_key)["Body"].read()
    record = json.loads(original)
    assert record["pid"] == killed.pid and record["pid_ns"] and record["boot_id"] and record["machine_id"]
    s3.put_object(Bucket=BUCKET, Key=lock_key, Body=json.dumps({**record, "pid_ns": "pid:[1]"}).encode())
    held = crash.run(*DEPLOY)
    assert held.returncode == 9, held.stderr
    line = held.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: environment dev-crash is busy: run {record['run_id']} "), line
    assert "taking over" not in held.stderr

    # Its own record (this host, its process gone): a plain deploy takes the lock over by
    # itself once two renewals are missed (the fixture renews every 2 s), finds the terraform
    # still running and waits for it; only then does the gate open and that apply end.
    s3.put_object(Bucket=BUCKET, Key=lock_key, Body=original)
    taking = f"taking over the run lock of run {record['run_id']}: its process {killed.pid} on this host is gone"
    waiting = (
        f"previous run: slow: terraform apply of run {running[0]['run_id']} (pid {running[0]['pid']}) "
        "is still running: waiting"
    )
    errors = crash.work.parent / "takeover.stderr"
    with errors.open("w") as sink:
        taker = crash.start(*DEPLOY, "--resume", "--json", stderr=sink)
        try:
            wait_for(
                "the takeover to wait for the killed run's apply",
                lambda: waiting in text(errors) or taker.poll() is not None,
            )
            crash.gate.open("apply")
            out, _ = taker.communicate(timeout=300)
        except BaseException:
            taker.kill()
            raise
    again = subprocess.CompletedProcess(DEPLOY, taker.returncode, out, errors.read_text())
    crash.texts += [again.stdout, again.stderr]
    assert again.returncode == 0, again.stderr[-3000:]
    assert taking in again.stderr
    assert waiting in again.stderr
    assert again.stderr.index(taking) < again.stderr.index(waiting)
    assert "previous run: slow: the last deploy (run " in again.stderr and "never finished" in again.stderr
    # The killed run's apply finished on its own, with success (the later plan found nothing to do).
    assert "Apply complete! Resources: 2 added" in text(logs / "slow" / "terraform.log")
    state = json.loads(
        client(moto_url, "s3").get_object(Bucket=BUCKET, Key="fixture/dev-crash/slow.tfstate")["Body"].read()
    )
    assert {(r["type"], r["name"]) for r in state["resources"]} == {
        ("terraform_data", "canary"),
        ("terraform_data", "slow"),
    }
    units = {u["unit"]: u for u in json.loads(again.stdout)["units"]}
    assert {u: r["status"] for u, r in units.items()} == dict.fromkeys(
        ("base", "mid", "side", "leaf", "slow"), "no changes"
    )
    # --resume skips what the dead run finished, never the unit whose apply it did not see end.
    assert all(units[u]["detail"].startswith("resumed: unchanged since run ") for u in ("base", "mid", "side", "leaf"))
    assert not units["slow"]["detail"].startswith("resumed")
    assert terraform_processes(str(work)) == []
    assert not [k for k in keys(moto_url, "fixture/dev-crash/") if k.endswith(".tflock")]
    assert keys(moto_url, "fixture/_runs/dev-crash/run.lock") == []  # released at the end

    orphans = crash.run("orphans", "--env", "dev", "--suffix", "crash", "--json")
    assert orphans.returncode == 0, orphans.stderr
    assert json.loads(orphans.stdout)["orphans"] == []

    # The audit trail: the killed run's start is there, and its end was written by the run that
    # took over (never by rewriting the start); the refused run (exit 9) wrote nothing.
    trail = crash.run("audit", "--env", "dev", "--suffix", "crash", "--format", "json")
    assert trail.returncode == 0, trail.stderr
    runs = {r["run_id"]: r for r in json.loads(trail.stdout)["runs"]}
    dead = runs[record["run_id"]]
    assert dead["start"]["command"] == "deploy" and dead["end"]["result"] == "never finished"
    took_over = runs[dead["end"]["recovered_by"]]
    assert took_over["end"]["result"] == "ok" and len(runs) == 2


def test_orphans_reports_exactly_a_resource_no_state_holds(crash, moto_url):
    sqs = client(moto_url, "sqs")
    url = sqs.create_queue(
        QueueName="fixture-made-by-hand-dev-crash",
        tags={"EnvironmentSuffix": "dev-crash", "Project": "orchestrator-tests", "ManagedBy": "hand"},
    )["QueueUrl"]
    try:
        r = crash.run("orphans", "--env", "dev", "--suffix", "crash", "--json")
        assert r.returncode == 10, r.stderr
        found = json.loads(r.stdout)["orphans"]
        assert [(o["type"], o["id"]) for o in found] == [("sqs:queue", "fixture-made-by-hand-dev-crash")]
        assert "1 live resource(s) tagged for dev-crash that no state file holds" in r.stderr
        other = crash.run("orphans", "--env", "dev", "--suffix", "other", "--json")
        assert other.returncode == 0 and json.loads(other.stdout)["orphans"] == []
    finally:
        sqs.delete_queue(QueueUrl=url)


def test_a_second_run_on_the_same_environment_fails_at_once_naming_the_first(crash, moto_url):
    s3 = client(moto_url, "s3")
    lock_key = "fixture/_runs/dev-crash/run.lock"
    first = crash.start(*DEPLOY)
    try:
        wait_for("the first run to hold the run lock", lambda: keys(moto_url, lock_key) == [lock_key], timeout=60)
        holder = json.loads(s3.get_object(Bucket=BUCKET, Key=lock_key)["Body"].read())
        second = crash.run(*DEPLOY)
        # What the live run is creating is in no state yet: `orphans` refuses rather than list it.
        orphans = crash.run("orphans", "--env", "dev", "--suffix", "crash")
        # Refused at once, not after waiting for the lock: the first run is still going when the
        # second has already answered (an order of events, no clock).
        first_still_running = first.poll() is None
    finally:
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    assert second.returncode == 9, second.stderr
    assert first_still_running
    line = second.stderr.strip()
    assert line.startswith(f"error: environment dev-crash is busy: run {holder['run_id']} (deploy by ")
    assert f"pid {first.pid}" in line and "--lock-timeout" in line
    assert orphans.returncode == 9, orphans.stderr
    assert (
        orphans.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: environment dev-crash is busy: run {holder['run_id']} ")
    )
    assert orphans.stderr.strip().endswith("holds its run lock; run orphans when it has finished")
    recorded = journal(moto_url, "dev-crash")
    assert recorded["runs"][-1]["run_id"] == holder["run_id"] and recorded["runs"][-1]["result"] == "ok"
    assert {r["run_id"] for r in recorded["units"].values()} == {holder["run_id"]}


def test_kill_9_while_early_plans_run(crash, moto_url):
    env_file = crash.project / "environments" / "dev" / "env.toml"
    original = env_file.read_text()
    env_file.write_text(original.replace("retention_days = 7", "retention_days = 14"))
    assert original != env_file.read_text()
    work = crash.work
    try:
        crash.kill_9_when(
            DEPLOY, lambda: any(m["command"] == "plan" and m["unit"] != "base" for m in markers(work, "dev-crash"))
        )
        # terraform (and the shim around it) end, their locks released, nothing left running
        wait_for(
            "the early plans to finish on their own",
            lambda: not markers(work, "dev-crash") and not terraform_processes(str(work)),
            180,
        )
        assert not [k for k in keys(moto_url, "fixture/dev-crash/") if k.endswith(".tflock")]
        again = crash.run(*DEPLOY, "--take-over-stale-lock", "--json")
        assert again.returncode == 0, again.stderr[-3000:]
        assert {u["unit"]: u["status"] for u in json.loads(again.stdout)["units"]}["base"] == "succeeded"
    finally:
        env_file.write_text(original)
    back = crash.run(*DEPLOY, "--json")
    assert back.returncode == 0, back.stderr[-3000:]


def test_sighup_from_a_closed_terminal_stops_gracefully(crash, moto_url):
    """The orchestrator's terminal goes away (an SSH session drops): SIGHUP is handled like
    SIGTERM, terraform stops gracefully, every lock is released, the next run goes on."""
    deploy = ["deploy", "--env", "dev", "--suffix", "hup", "--yes", "--no-smoke"]
    log = crash.work / "envs" / "dev-hup" / "slow" / "terraform.log"
    crash.gate.close("apply")
    master, slave = pty.openpty()

    def controlling_terminal():
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [*crash.base, *deploy],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=crash.env,
        preexec_fn=controlling_terminal,
        close_fds=True,
    )
    os.close(slave)
    seen: list[bytes] = []

    def drain():
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        wait_for(
            "the slow apply at the gate",
            lambda: (
                ("terraform_data.slow: Creating..." in text(log) and crash.gate.waiting()) or proc.poll() is not None
            ),
        )
        assert proc.poll() is None, b"".join(seen).decode(errors="replace")[-3000:]
    except BaseException:
        proc.kill()
        raise
    os.close(master)  # the terminal closes: the kernel sends SIGHUP to the session
    rc = proc.wait(timeout=180)
    reader.join(timeout=10)
    crash.texts.append(b"".join(seen).decode(errors="replace"))
    assert rc == 128 + signal.SIGHUP
    assert terraform_processes(str(crash.work)) == []
    assert crash.gate.waiting() == []  # terraform stopped the slow apply's provisioner too
    assert not markers(crash.work, "dev-hup")
    assert not [k for k in keys(moto_url, "fixture/dev-hup/") if k.endswith(".tflock")]
    assert keys(moto_url, "fixture/_runs/dev-hup/run.lock") == []
    assert journal(moto_url, "dev-hup")["runs"][-1]["result"] == "interrupted"
    crash.gate.open("apply")
    again = crash.run(*deploy)
    assert again.returncode == 0, again.stderr[-3000:]
    down = crash.run("teardown", "--env", "dev", "--suffix", "hup", "--yes")
    assert down.returncode == 0, down.stderr[-3000:]


def test_kill_9_mid_teardown_then_the_next_teardown_finishes(crash, moto_url):
    work = crash.work
    crash.gate.close("destroy")
    crash.kill_9_when(
        TEARDOWN,
        lambda: (
            any(m["command"] == "apply" and m["unit"] == "slow" for m in markers(work, "dev-crash"))
            and crash.gate.waiting()
        ),
    )
    # terraform outlives the orchestrator: the slow unit's destroy still waits at the gate.
    assert ("slow", "apply") in [(m["unit"], m["command"]) for m in markers(work, "dev-crash")]
    crash.gate.open("destroy")
    # terraform (and the shim around it) end, their locks released, nothing left running
    wait_for(
        "the destroy to finish on its own",
        lambda: not markers(work, "dev-crash") and not terraform_processes(str(work)),
        180,
    )
    assert not [k for k in keys(moto_url, "fixture/dev-crash/") if k.endswith(".tflock")]
    # The same rule as deploy: a plain teardown takes the dead run's lock over by itself.
    again = crash.run(*TEARDOWN, "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "taking over the run lock of run " in again.stderr and "on this host is gone" in again.stderr
    assert "teardown left nothing: no live resource is tagged for dev-crash" in again.stderr
    orphans = crash.run("orphans", "--env", "dev", "--suffix", "crash")
    assert orphans.returncode == 0, orphans.stderr
    assert (
        client(moto_url, "logs").describe_log_groups(logGroupNamePrefix="/fixture/fixture-base-dev-crash")["logGroups"]
        == []
    )


def test_no_secret_in_any_log_after_the_crashes(crash, moto_url):
    """The shim masks terraform's output before it reaches the log: the canary, printed in
    clear by terraform's plan, is in no file, no output and no audit record, even of runs that
    were killed."""
    # the apply's outputs event carried the canary (canary_echo), masked in the unit's events
    slow_events = ((crash.work / "envs" / "dev-crash" / "slow") / "terraform.events.jsonl").read_text()
    echoed = [e["outputs"].get("canary_echo", {}) for e in tf_events.read(slow_events) if e["type"] == "outputs"]
    assert any(o.get("value") == "***" for o in echoed), "terraform did not print the canary at all"
    texts = list(crash.texts)
    for f in crash.work.rglob("*"):
        if f.is_file() and ".terraform" not in f.parts and f.stat().st_size < 20_000_000:
            texts.append(f.read_bytes().decode(errors="replace"))
    s3, audit_bucket = client(moto_url, "s3"), f"{BUCKET}-audit"
    records = [o["Key"] for o in s3.list_objects_v2(Bucket=audit_bucket, Prefix="fixture/dev/").get("Contents", [])]
    assert len(records) >= 8  # the runs above: starts, ends
    texts += [s3.get_object(Bucket=audit_bucket, Key=k)["Body"].read().decode() for k in records]
    assert sum(t.count(CANARY) for t in texts) == 0
