"""The terraform runner's process handling, with a fake terraform (a shell script):
transient-error retries from the allow-list only, lock errors, interrupts, redaction."""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from pathlib import Path

import pytest

from orchestrator.errors import Interrupted, StateLockedError, TerraformError
from orchestrator.redact import Redactor
from orchestrator.tf.terraform import ProcessRegistry, Terraform, Workspace


def fake(tmp_path: Path, script: str) -> str:
    path = tmp_path / "terraform"
    path.write_text("#!/bin/bash\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def runner(binary, tmp_path, registry=None, redactor=None):
    return Terraform(
        binary,
        cli_config=tmp_path / "rc",
        base_env={"PATH": os.environ["PATH"]},
        redactor=redactor or Redactor(),
        max_retries=2,
        retry_delay=0.01,
        registry=registry or ProcessRegistry(),
    )


@pytest.fixture(autouse=True)
def sigint_caught():
    """As in the CLI (its guard catches SIGINT): a caught signal is reset to default in a child on exec,
    an ignored one stays ignored, and bash cannot trap an ignored signal. Without this, the suite run as a
    background job of a script (SIGINT ignored from the start) would make the fake terraforms deaf to it."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def ws(tmp_path):
    src = tmp_path / "unit"
    src.mkdir()
    return Workspace("network", src, tmp_path / "work")


FLAKY = """
n=$(cat "$COUNTER" 2>/dev/null || echo 0); echo $((n+1)) > "$COUNTER"
if [ "$n" -lt "$FAILS" ]; then echo "Error: ThrottlingException: Rate exceeded" >&2; exit 1; fi
echo "ok after $n failures"
"""


def test_transient_error_is_retried_and_counted(tmp_path, ws):
    tf = runner(fake(tmp_path, FLAKY), tmp_path)
    r = tf.run(ws, ["plan"], extra_env={"COUNTER": str(tmp_path / "c"), "FAILS": "2"})
    assert r.attempts == 3 and "ok after 2 failures" in r.stdout


def test_transient_retries_are_bounded(tmp_path, ws):
    tf = runner(fake(tmp_path, FLAKY), tmp_path)
    with pytest.raises(TerraformError) as exc:
        tf.run(ws, ["plan"], extra_env={"COUNTER": str(tmp_path / "c"), "FAILS": "9"})
    assert (tmp_path / "c").read_text().strip() == "3"  # 1 + max_retries
    assert "ThrottlingException" in exc.value.stderr_tail


def test_other_errors_are_not_retried_and_carry_command_and_stderr(tmp_path, ws):
    tf = runner(fake(tmp_path, 'echo "│ Error: Invalid value for variable" >&2; echo "│ more" >&2; exit 1'), tmp_path)
    with pytest.raises(TerraformError) as exc:
        tf.run(ws, ["plan", "-input=false"])
    assert str(exc.value) == "terraform plan failed for unit network (exit 1): Invalid value for variable"
    assert exc.value.command[-2:] == ["plan", "-input=false"]
    assert "more" in exc.value.stderr_tail


LOCKED = r"""
echo '{"@level":"info","@message":"Terraform 1.11.4","type":"version","terraform":"1.11.4","ui":"1.2"}'
echo '{"@level":"error","@message":"Error: Error acquiring the state lock","type":"diagnostic","diagnostic":{"severity":"error","summary":"Error acquiring the state lock","detail":"Error message: resource temporarily unavailable\nLock Info:\n  ID: (not read)"}}'
exit 1"""

HELD = {
    "ID": "5c1f4a0e-1111-2222-3333-444455556666",
    "Operation": "OperationTypeApply",
    "Who": "runner@ci-17",
    "Version": "1.11.4",
    "Created": "2026-11-29T04:00:00.1Z",
}


def test_lock_error_names_the_holder_the_backend_holds_and_the_unlock_command(tmp_path, ws):
    """The lock is read from the backend (read_lock), never from the error's text."""
    asked = []
    tf = runner(fake(tmp_path, LOCKED), tmp_path)
    tf.read_lock = lambda unit: asked.append(unit) or HELD
    with pytest.raises(StateLockedError) as exc:
        tf.run(ws, ["apply", "-json"])
    assert asked == ["network"]
    assert str(exc.value) == (
        "state of unit network is locked by runner@ci-17 since 2026-11-29T04:00:00.1Z "
        "(lock id 5c1f4a0e-1111-2222-3333-444455556666, OperationTypeApply); if that run is dead: "
        "orchestrator force-unlock --unit network 5c1f4a0e-1111-2222-3333-444455556666 (with the same --env/--suffix)"
    )
    # the log reads as terraform's human output would: the error and its detail under it
    log = ws.log_path.read_text()
    assert "Error: Error acquiring the state lock\n\n  Error message: resource temporarily unavailable" in log
    assert '"@level"' not in log


def test_a_lock_released_before_it_is_read_says_so(tmp_path, ws):
    tf = runner(fake(tmp_path, LOCKED), tmp_path)
    tf.read_lock = lambda unit: None
    with pytest.raises(StateLockedError) as exc:
        tf.run(ws, ["apply", "-json"])
    assert (
        str(exc.value) == "state of unit network was locked by another command, released since; run the command again"
    )


EVENTS = r"""
echo 'a line on stderr before the UI starts' >&2
echo '{"@level":"info","@message":"aws_db.main: Plan to create","type":"planned_change","change":{"resource":{"addr":"aws_db.main"},"action":"create"}}'
echo '{"@level":"info","@message":"aws_db.main: Creating... password=hunter2-canary-value","type":"apply_start","hook":{"resource":{"addr":"aws_db.main"},"action":"create"}}'
echo '{"@level":"info","@message":"Outputs: 1","type":"outputs","outputs":{"master_password":{"sensitive":false,"value":"hunter2-canary-value"}}}'
echo '{"@level":"info","@message":"Apply complete! Resources: 1 added, 0 changed, 0 destroyed.","type":"change_summary","changes":{"add":1,"change":0,"remove":0,"import":0,"operation":"apply"}}'
"""


def test_a_json_command_gives_its_events_redacted_and_a_log_a_person_reads(tmp_path, ws):
    redactor = Redactor()
    redactor.add("hunter2-canary-value")
    tf = runner(fake(tmp_path, EVENTS), tmp_path, redactor=redactor)
    lines = []
    first = tf.run(ws, ["apply", "-json"], on_line=lines.append)
    second = tf.run(ws, ["apply", "-json"])
    assert [e["type"] for e in first.events] == ["planned_change", "apply_start", "outputs", "change_summary"]
    assert second.events == first.events  # each command reads its own events, not the earlier ones
    assert "aws_db.main: Creating... password=***" in lines
    assert "Apply complete! Resources: 1 added, 0 changed, 0 destroyed." in lines
    assert "a line on stderr before the UI starts" in lines
    for text in (ws.log_path.read_text(), ws.events_path.read_text(), repr(first.events)):
        assert "hunter2-canary-value" not in text
    assert '"@message"' not in ws.log_path.read_text()


def test_output_is_redacted_in_the_log(tmp_path, ws):
    redactor = Redactor()
    redactor.add("hunter2-canary-value")
    tf = runner(
        fake(tmp_path, 'echo "password is hunter2-canary-value"; echo "key AKIAIOSFODNN7EXAMPLE" >&2'),
        tmp_path,
        redactor=redactor,
    )
    lines = []
    tf.run(ws, ["apply"], on_line=lines.append)
    log = ws.log_path.read_text()
    assert "hunter2-canary-value" not in log and "AKIAIOSFODNN7EXAMPLE" not in log
    assert "hunter2-canary-value" not in "".join(lines)


GRACEFUL = """
trap 'echo "Interrupt received. Gracefully shutting down..." >&2; sleep 1; exit 130' INT
echo started > "$STARTED"
sleep 30 &
wait
"""


def test_interrupt_forwards_one_sigint_and_leaves_no_process(tmp_path, ws):
    registry = ProcessRegistry()
    tf = runner(fake(tmp_path, GRACEFUL), tmp_path, registry=registry)
    started = tmp_path / "started"
    errors = []

    def run():
        try:
            tf.run(ws, ["apply"], extra_env={"STARTED": str(started)})
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 10
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert registry.live() == 1
    registry.interrupt_all(signal.SIGINT, grace=10)
    t.join(10)
    assert registry.live() == 0
    assert type(errors[0]).__name__ == "Interrupted" and errors[0].exit_code == 130
    assert "Gracefully shutting down" in ws.log_path.read_text()


def test_interrupt_kills_after_the_grace_period(tmp_path, ws):
    registry = ProcessRegistry()
    tf = runner(
        fake(tmp_path, 'trap "" INT\necho started > "$STARTED"\nwhile true; do sleep 0.1; done'),
        tmp_path,
        registry=registry,
    )
    started = tmp_path / "started"
    outcome: list[BaseException | None] = []

    def run():
        # The outcome is recorded and asserted in the test's own thread, after join.
        try:
            tf.run(ws, ["apply"], extra_env={"STARTED": str(started)})
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001
            outcome.append(exc)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 10
    while not started.exists():
        assert time.monotonic() < deadline, "the fake terraform never started"
        time.sleep(0.05)
    t0 = time.monotonic()
    registry.interrupt_all(signal.SIGINT, grace=1)
    t.join(10)
    assert not t.is_alive(), "tf.run did not return after the kill"
    assert registry.live() == 0 and time.monotonic() - t0 < 5
    assert len(outcome) == 1 and isinstance(outcome[0], Interrupted), outcome


def test_terraform_runs_with_a_lazier_garbage_collector_unless_the_operator_set_one(tmp_path, ws):
    """GOGC=400 for terraform and the providers it starts (bench/gogc.py: about 18 % less CPU per
    command); an operator's own GOGC is theirs."""
    binary = fake(tmp_path, 'echo "gogc=$GOGC"\n')
    assert "gogc=400" in runner(binary, tmp_path).run(ws, ["version"]).stdout
    mine = Terraform(binary, cli_config=tmp_path / "rc", base_env={"PATH": os.environ["PATH"], "GOGC": "150"},
                     redactor=Redactor())  # fmt: skip
    assert "gogc=150" in mine.run(ws, ["version"]).stdout
