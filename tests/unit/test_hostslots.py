"""The machine's terraform budget and the host-wide slots every run on it shares."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from orchestrator.errors import ConfigError, Interrupted
from orchestrator.tf.hostslots import GIB, HostSlots, Slots, budget, parse_parallelism


def test_auto_is_two_per_cpu_within_what_the_memory_holds_at_most_eight():
    assert budget(cpus=2, memory=24 * GIB, override="").slots == 4  # this machine: CPUs decide
    assert budget(cpus=8, memory=4 * GIB, override="").slots == 4  # 2.8 GiB / 0.7: memory decides
    assert budget(cpus=1, memory=1 * GIB, override="").slots == 1
    assert budget(cpus=32, memory=256 * GIB, override="").slots == 8
    why = budget(cpus=2, memory=24 * GIB, override="").why
    assert "2 CPU(s) -> 4" in why and "24.0 GiB RAM -> 24" in why
    assert budget(override="3").slots == 3
    with pytest.raises(ConfigError):
        budget(override="lots")


def test_parallelism_is_auto_or_one_to_sixteen():
    assert parse_parallelism("auto") is None and parse_parallelism("1") == 1 and parse_parallelism("16") == 16
    for bad in ("0", "17", "-1", "four", ""):
        with pytest.raises(ConfigError, match="auto or a number from 1 to 16"):
            parse_parallelism(bad)


def test_two_runs_share_the_hosts_slots(tmp_path):
    run_a, run_b = HostSlots(tmp_path, 2), HostSlots(tmp_path, 2)
    first, second = run_a.try_acquire(), run_b.try_acquire()
    assert first is not None and second is not None
    assert run_a.try_acquire() is None and run_b.in_use() == 2  # the host's budget is spent
    HostSlots.release(first)
    third = run_a.try_acquire()
    assert third is not None
    for fd in (second, third):
        HostSlots.release(fd)
    assert run_a.in_use() == 0


def test_a_slot_held_by_a_process_killed_with_sigkill_is_free_again(tmp_path):
    holder = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(os.getcwd())!r})
        from pathlib import Path
        from orchestrator.tf.hostslots import HostSlots
        slots = HostSlots(Path({str(tmp_path)!r}), 1)
        assert slots.try_acquire() is not None
        print("held", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert HostSlots(tmp_path, 1).try_acquire() is None
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    fd = HostSlots(tmp_path, 1).try_acquire()
    assert fd is not None  # the kernel dropped the dead run's lock
    HostSlots.release(fd)


def test_a_runs_commands_wait_for_a_host_slot_and_stop_waiting_when_the_run_stops(tmp_path):
    other_run = HostSlots(tmp_path, 1)
    held = other_run.try_acquire()
    stop = threading.Event()
    slots = Slots(4, HostSlots(tmp_path, 1, poll=0.01), stopped=stop.is_set)
    outcome = []

    def command():
        try:
            with slots:
                outcome.append("ran")
        except Interrupted as exc:
            outcome.append(str(exc))

    t = threading.Thread(target=command)
    t.start()
    time.sleep(0.2)
    assert outcome == []  # waiting: the other run holds the host's only slot
    HostSlots.release(held)
    t.join(timeout=10)
    assert not t.is_alive() and outcome == ["ran"]

    held = other_run.try_acquire()
    outcome.clear()
    t = threading.Thread(target=command)
    t.start()
    stop.set()
    t.join(timeout=10)
    assert not t.is_alive() and outcome == ["stopped while waiting for a terraform slot on this host"]
    HostSlots.release(held)
