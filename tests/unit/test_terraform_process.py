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


def test_lock_error_names_holder_and_unlock_command(tmp_path, ws):
    script = """cat >&2 <<'E'
│ Error: Error acquiring the state lock
│ Lock Info:
│   ID:        5c1f4a0e-1111-2222-3333-444455556666
│   Who:       runner@ci-17
│   Created:   2026-11-29 04:00:00 +0000 UTC
E
exit 1"""
    tf = runner(fake(tmp_path, script), tmp_path)
    with pytest.raises(StateLockedError) as exc:
        tf.run(ws, ["apply"])
    assert str(exc.value) == (
        "state of unit network is locked by runner@ci-17 since 2026-11-29 04:00:00 +0000 UTC "
        "(lock id 5c1f4a0e-1111-2222-3333-444455556666); if that run is dead: orchestrator force-unlock "
        "--unit network 5c1f4a0e-1111-2222-3333-444455556666 (with the same --env/--suffix)"
    )


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
