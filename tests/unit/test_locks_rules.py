"""The lock rules without AWS: when a run lock is stale, when a state lock is the
failed command's own, terraform's time format, durations."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from orchestrator.state.runlock import Holder, pid_alive, process_start
from orchestrator.tf.terraform import lock_created, own_lost_lock, terraform_identity


def holder(pid: int, *, host: str | None = None, renewed_ago: float = 5.0, pid_start: str | None = None) -> Holder:
    now = time.time()
    return Holder(
        "abc123", "deploy", "me@here", host or socket.gethostname(), pid, pid_start, now - 60, now - renewed_ago
    )


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_holder_on_this_host_is_not_stale():
    me = os.getpid()
    assert holder(me, pid_start=process_start(me)).stale_reason(time.time()) is None


def test_a_holder_whose_process_is_gone_is_stale():
    pid = dead_pid()
    assert holder(pid).stale_reason(time.time()) == f"its process {pid} on this host is gone"


def test_a_reused_pid_does_not_keep_a_lock_alive():
    me = os.getpid()
    assert not pid_alive(me, "1")  # same pid, another start time: another process
    assert holder(me, pid_start="1").stale_reason(time.time()) == f"its process {me} on this host is gone"


def test_a_holder_on_another_host_is_stale_only_when_not_renewed():
    far = holder(1, host="elsewhere", renewed_ago=60)
    assert far.stale_reason(time.time()) is None
    assert holder(1, host="elsewhere", renewed_ago=900).stale_reason(time.time()) == "not renewed for 15 min"


def test_terraform_lock_times_parse():
    """As the backend holds them: Go's RFC 3339 with nanoseconds (the lock file's, DynamoDB's Info)."""
    assert lock_created("2026-11-29T16:20:18.097311031Z") == pytest.approx(1795969218.097311)
    assert lock_created("2026-11-29T17:20:18+01:00") == pytest.approx(1795969218.0)
    assert lock_created("2026-11-29T16:20:18.5Z") == pytest.approx(1795969218.5)
    assert lock_created("unknown time") is None


def info(**kw):
    base = {"ID": "1a2b", "Who": terraform_identity(), "Operation": "OperationTypePlan", "Created": ""}
    return {**base, **kw}


def go_time(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z"


def test_a_lock_is_the_commands_own_only_if_ours_of_the_same_operation_and_newer_than_the_command():
    started = time.time() - 2
    assert own_lost_lock(info(Created=go_time(started + 0.5)), "plan", started)
    assert not own_lost_lock(info(Created=go_time(started - 30)), "plan", started)  # older: someone's earlier run
    assert not own_lost_lock(info(Created=go_time(started + 0.5), Who="ci@runner-7"), "plan", started)
    assert not own_lost_lock(info(Created=go_time(started + 0.5)), "apply", started)  # another operation
    assert own_lost_lock(info(Created=go_time(started + 0.5), Operation="OperationTypeApply"), "destroy", started)
    assert not own_lost_lock(info(Created="unknown"), "plan", started)


def test_durations():
    from orchestrator.cli.app import parse_duration
    from orchestrator.errors import ConfigError

    assert parse_duration("0s") == 0 and parse_duration("90s") == 90 and parse_duration("1h30m") == 5400
    with pytest.raises(ConfigError, match="invalid duration 'soon'"):
        parse_duration("soon")


# ---- taking over by itself: only when the holder's death is proven ------------------

from dataclasses import replace  # noqa: E402

from orchestrator.state.runlock import HostIdentity, host_identity  # noqa: E402

RENEW = 30.0


def here_holder(pid: int, *, renewed_ago: float, pid_start: str | None = None, **identity) -> Holder:
    me = host_identity()
    h = replace(
        holder(pid, renewed_ago=renewed_ago, pid_start=pid_start),
        machine_id=me.machine_id,
        boot_id=me.boot_id,
        pid_ns=me.pid_ns,
    )
    return replace(h, **identity)


def test_this_host_has_a_complete_identity():
    me = host_identity()
    assert me.complete, me
    assert me.pid_ns.startswith("pid:[")


def test_a_live_holder_is_never_taken_over():
    me = os.getpid()
    for renewed_ago in (1.0, 1000.0):
        assert (
            here_holder(me, renewed_ago=renewed_ago, pid_start=process_start(me)).proven_dead(time.time(), RENEW)
            is None
        )


def test_a_dead_holder_here_is_taken_over_once_two_renewals_are_missed():
    pid = dead_pid()
    now = time.time()
    soon = here_holder(pid, renewed_ago=5.0).proven_dead(now, RENEW)
    assert soon is not None and soon.reason == f"its process {pid} on this host is gone"
    assert soon.after == pytest.approx(2 * RENEW - 5.0, abs=0.5)
    late = here_holder(pid, renewed_ago=2 * RENEW + 1).proven_dead(now, RENEW)
    assert late is not None and late.after == 0


def test_a_reused_pid_counts_as_dead():
    me = os.getpid()  # same number, another start time: the holder's process is gone
    taken = here_holder(me, renewed_ago=100.0, pid_start="1").proven_dead(time.time(), RENEW)
    assert taken is not None and taken.after == 0


@pytest.mark.parametrize(
    "other",
    [
        {"machine_id": "another-machine"},
        {"boot_id": "another-boot"},
        {"pid_ns": "pid:[1]"},  # another container on the same kernel (no real namespace has inode 1)
        {"machine_id": None, "boot_id": None, "pid_ns": None},  # a record from before identities
    ],
)
def test_a_holder_elsewhere_or_unidentified_is_never_taken_over_by_itself(other):
    pid = dead_pid()
    h = here_holder(pid, renewed_ago=1000.0, **other)
    assert h.proven_dead(time.time(), RENEW) is None
    # ... and another container's dead pid says nothing about it: not stale until unrenewed
    if other.get("pid_ns") or other.get("machine_id") or other.get("boot_id"):
        assert replace(h, renewed=time.time()).stale_reason(time.time()) is None


def test_an_incomplete_identity_here_proves_nothing():
    pid = dead_pid()
    h = here_holder(pid, renewed_ago=1000.0)
    assert h.proven_dead(time.time(), RENEW, here=HostIdentity(h.machine_id, h.boot_id, None)) is None


def test_a_state_lock_words_itself_and_its_release_once():
    """Every message about a held state lock (deploy, a CI job, recovery, status) is made here."""
    from orchestrator.state.locks import StateLock

    lock = StateLock.from_info("db", {"ID": "4f1c", "Who": "ci@runner-7", "Created": "2026-12-07", "Operation": "Op"})
    assert lock.describe() == "state of unit db is locked by ci@runner-7 since 2026-12-07 (lock id 4f1c, Op)"
    assert (
        lock.release_command("--env dev --suffix pr1")
        == "orchestrator force-unlock --env dev --suffix pr1 --unit db 4f1c"
    )
    bare = StateLock.from_info("db", {"ID": "4f1c"})  # what terraform's error may leave out is said as unknown
    assert bare.describe() == "state of unit db is locked by ? since ? (lock id 4f1c)"
    assert bare.release_command("") == "orchestrator force-unlock --unit db 4f1c"
