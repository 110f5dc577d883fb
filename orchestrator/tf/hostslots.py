"""How many terraform commands this machine runs at once, across every run on it.

Each terraform with its aws provider holds about 0.7 GiB and a good part of a
core. `--parallelism auto` (the default) sizes one run from the machine; the
host-wide slots keep several runs on one machine (four PR copies deployed at
once on one CI runner) inside the same budget: a terraform command holds one
slot, a lock file in a directory every run on the host shares.

The slots are `flock` locks: the kernel drops them when their process dies, so a
run killed with SIGKILL never leaves a slot taken.
"""

from __future__ import annotations

import fcntl
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import ConfigError, Interrupted

GIB = 1024**3
TERRAFORM_BYTES = int(0.7 * GIB)  # one terraform + aws provider, measured (docs/benchmarks.md)
MEMORY_SHARE = 0.7  # of the machine's memory, for terraform
MAX_AUTO = 8


@dataclass(frozen=True)
class Budget:
    slots: int
    why: str


def memory_total() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def budget(cpus: int | None = None, memory: int | None = None, override: str | None = None) -> Budget:
    """The machine's terraform commands at once: 2 per CPU, and as many as 70 % of the memory
    holds at 0.7 GiB each, at most 8. ORCHESTRATOR_HOST_SLOTS=N sets it."""
    override = os.environ.get("ORCHESTRATOR_HOST_SLOTS") if override is None else override
    if override:
        if not override.isdigit() or int(override) < 1:
            raise ConfigError(f"ORCHESTRATOR_HOST_SLOTS={override!r}: a whole number of at least 1")
        return Budget(int(override), f"ORCHESTRATOR_HOST_SLOTS={override}")
    cpus = cpu_count() if cpus is None else cpus
    memory = memory_total() if memory is None else memory
    by_cpu = 2 * cpus
    by_memory = max(1, int(memory * MEMORY_SHARE // TERRAFORM_BYTES)) if memory else by_cpu
    slots = max(1, min(by_cpu, by_memory, MAX_AUTO))
    mem = f"{memory / GIB:.1f} GiB RAM -> {by_memory}" if memory else "memory unknown"
    return Budget(slots, f"{cpus} CPU(s) -> {by_cpu}; {mem} at 0.7 GiB per terraform; at most {MAX_AUTO}")


def parse_parallelism(value: str) -> int | None:
    """`auto` -> None (the machine's budget); a number 1..16 as it is; anything else one clear line."""
    if value == "auto":
        return None
    if value.isdigit() and 1 <= int(value) <= 16:
        return int(value)
    raise ConfigError(f"--parallelism {value!r}: auto or a number from 1 to 16")


def default_dir() -> Path:
    base = os.environ.get("ORCHESTRATOR_SLOTS_DIR") or os.path.join(
        os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir(), f"orchestrator-slots-{os.getuid()}"
    )
    return Path(base)


class HostSlots:
    """`count` slot files in `directory`; a slot is held while its file is flock-ed."""

    def __init__(self, directory: Path, count: int, poll: float = 0.1):
        self.directory = directory
        self.count = count
        self.poll = poll
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, i: int) -> Path:
        return self.directory / f"slot-{i}"

    def try_acquire(self) -> int | None:
        """A free slot's open file descriptor, or None when all are taken."""
        start = random.randrange(self.count)
        for k in range(self.count):
            fd = os.open(self._path((start + k) % self.count), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                os.close(fd)
        return None

    def acquire(self, stopped: Callable[[], bool] = lambda: False) -> int:
        while True:
            fd = self.try_acquire()
            if fd is not None:
                return fd
            if stopped():
                raise Interrupted("stopped while waiting for a terraform slot on this host")
            time.sleep(self.poll)

    @staticmethod
    def release(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def in_use(self) -> int:
        """How many slots other runs on this host hold now."""
        held = 0
        for i in range(self.count):
            fd = os.open(self._path(i), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
            except BlockingIOError:
                held += 1
            finally:
                os.close(fd)
        return held


class Slots:
    """A run's terraform commands at once: at most `parallelism` of its own, each also holding
    one of the host's slots. Used as `with slots:` around every terraform command of a run."""

    def __init__(self, parallelism: int, host: HostSlots | None, stopped: Callable[[], bool] = lambda: False):
        self._own = threading.BoundedSemaphore(parallelism)
        self._host = host
        self._fds = threading.local()
        self.stopped = stopped

    def __enter__(self) -> Slots:
        self._own.acquire()
        if self._host is not None:
            try:
                fd = self._host.acquire(self.stopped)
            except BaseException:
                self._own.release()
                raise
            stack = getattr(self._fds, "stack", None) or []
            stack.append(fd)
            self._fds.stack = stack
        return self

    def __exit__(self, *exc) -> None:
        if self._host is not None:
            self._host.release(self._fds.stack.pop())
        self._own.release()
