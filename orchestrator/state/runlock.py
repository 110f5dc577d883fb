"""One run per environment: a lock object in the state bucket.

Taken with a conditional write (``If-None-Match: *``: S3 creates the object only
if nobody holds it), before a run touches anything. It names its holder (run id,
command, user@host, pid, start time) and is renewed while the run lasts, with
``If-Match`` on the ETag it last wrote, so a run that lost its lock notices
instead of overwriting the new holder's. Released when the run ends, however it
ends, short of a hard kill; then it stays, and is *stale*:

- its holder ran on this host and that process is gone (the pid is checked
  together with the process's start time, so a reused pid does not count), or
- it was not renewed for ``STALE_AFTER`` seconds (a holder on another machine
  that died).

A run takes a lock over **by itself** when the holder's death is proven: the
holder's record names this very host (machine id, boot id and pid namespace,
which a hostname alone cannot: two containers can share one), its process is
gone or the pid now belongs to another process (other start time), and it has
not renewed the lock for two renewal periods (waited for, at most that long).
Any other stale lock is reported with the two commands that clear it, and
taken over only when asked (``--take-over-stale-lock``).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from botocore.exceptions import ClientError

from orchestrator.aws.clients import CONDITION_FAILED, Aws
from orchestrator.errors import ConfigError, OrchestratorError, error_code
from orchestrator.model.config import Environment
from orchestrator.state.statestore import RUN_LOCK_NAME, put_run_record, run_key

LOCK_NAME = RUN_LOCK_NAME


# How often a run renews its lock (a dead holder on this host is taken over after two missed
# renewals). ORCHESTRATOR_RUN_LOCK_RENEW_SECONDS tunes it (e.g. lower in tests).
def _renew_every(default: float = 30.0) -> float:
    try:
        value = float(os.environ.get("ORCHESTRATOR_RUN_LOCK_RENEW_SECONDS") or default)
    except ValueError:
        return default
    return value if value > 0 else default


RENEW_EVERY = _renew_every()
STALE_AFTER = 600.0


class RunLockedError(OrchestratorError):
    """Another run holds the environment's run lock."""

    exit_code = 9


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks after boot (Linux), to tell a reused pid apart."""
    try:
        stat = open(f"/proc/{pid}/stat", encoding="ascii", errors="replace").read()  # noqa: SIM115
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def pid_alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = process_start(pid)
    return started is None or now is None or now == started


def _read_id(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="ascii", errors="replace").strip() or None
    except OSError:
        return None


@dataclass(frozen=True)
class HostIdentity:
    """What tells this host's processes apart from every other's. A hostname does not: two
    containers can share one. The machine id names the installation, the boot id the kernel
    run (a reboot frees every pid), the pid namespace the container (same image, same host:
    same machine and boot id, another pid namespace)."""

    machine_id: str | None
    boot_id: str | None
    pid_ns: str | None

    @property
    def complete(self) -> bool:
        return None not in (self.machine_id, self.boot_id, self.pid_ns)


@cache
def host_identity() -> HostIdentity:
    try:
        pid_ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pid_ns = None
    return HostIdentity(
        _read_id("/etc/machine-id") or _read_id("/var/lib/dbus/machine-id"),
        _read_id("/proc/sys/kernel/random/boot_id"),
        pid_ns,
    )


@dataclass(frozen=True)
class Takeover:
    """A holder proven dead: taken over ``after`` seconds from now (0: at once)."""

    reason: str
    after: float


@dataclass(frozen=True)
class Holder:
    run_id: str
    command: str
    who: str
    host: str
    pid: int
    pid_start: str | None
    started: float
    renewed: float
    # Absent in records written before they existed: such a holder is never proven dead.
    machine_id: str | None = None
    boot_id: str | None = None
    pid_ns: str | None = None
    renew_every: float | None = None  # the holder's own renewal period

    @classmethod
    def from_doc(cls, doc: dict) -> Holder:
        return cls(**{k: doc.get(k) for k in cls.__dataclass_fields__})

    @property
    def identity(self) -> HostIdentity:
        return HostIdentity(self.machine_id, self.boot_id, self.pid_ns)

    def proven_dead(self, now: float, renew_every: float, here: HostIdentity | None = None) -> Takeover | None:
        """A Takeover when this holder's death is proven from here: same host identity (all
        three parts known and equal), its process gone or its pid reused, and (after the
        returned wait) not renewed for two renewal periods. None when anything is unproven."""
        here = here or host_identity()
        if not here.complete or self.identity != here:
            return None
        if pid_alive(self.pid, self.pid_start):
            return None
        period = self.renew_every or renew_every
        return Takeover(f"its process {self.pid} on this host is gone", max(0.0, self.renewed + 2 * period - now))

    def describe(self, now: float) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started))
        return (
            f"run {self.run_id} ({self.command} by {self.who}, pid {self.pid}, since {since}, "
            f"renewed {max(0, int(now - self.renewed))} s ago)"
        )

    def release_command(self, where: str) -> str:
        """`where`: the copy's --env/--suffix options."""
        return f"orchestrator force-unlock {where} --run {self.run_id}"

    def stale_reason(self, now: float, stale_after: float = STALE_AFTER) -> str | None:
        here = host_identity()
        if self.identity.complete and here.complete:
            same_host = self.identity == here
        else:  # a record from before host identities: the hostname is all there is
            same_host = self.host == socket.gethostname()
        if same_host and not pid_alive(self.pid, self.pid_start):
            return f"its process {self.pid} on this host is gone"
        if now - self.renewed > stale_after:
            return f"not renewed for {int((now - self.renewed) // 60)} min"
        return None


class RunLock:
    def __init__(
        self,
        aws: Aws,
        env: Environment,
        key_arn: Callable[[], str],
        *,
        run_id: str,
        command: str,
        who: str,
        renew_every: float = RENEW_EVERY,
        stale_after: float = STALE_AFTER,
    ):
        self.s3 = aws.client("s3", env.backend.region)
        self.env = env
        self.bucket = env.backend.bucket
        self.key = run_key(env, LOCK_NAME)
        self.key_arn = key_arn  # the backend's key, asked for when the lock is first written
        self.run_id = run_id
        self.command = command
        self.who = who
        self.renew_every = renew_every
        self.stale_after = stale_after
        self._etag: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost = False  # someone took the lock over while this run held it
        self.taken_over: Holder | None = None
        self.takeover_reason: str | None = None  # set when the holder was proven dead (no flag needed)

    # ---- reading -------------------------------------------------------------
    def holder(self) -> Holder | None:
        return current_holder(self.s3, self.env)

    def _doc(self, started: float) -> bytes:
        now = time.time()
        here = host_identity()
        return json.dumps(
            asdict(
                Holder(
                    self.run_id,
                    self.command,
                    self.who,
                    socket.gethostname(),
                    os.getpid(),
                    process_start(os.getpid()),
                    started,
                    now,
                    here.machine_id,
                    here.boot_id,
                    here.pid_ns,
                    self.renew_every,
                )
            )
        ).encode()

    def _put(self, body: bytes, **condition) -> str:
        return put_run_record(self.s3, self.env, self.key, body, self.key_arn(), **condition)

    # ---- taking and releasing ------------------------------------------------------
    def acquire(self, *, timeout: float = 0.0, take_over: bool = False, on_wait=None) -> None:
        deadline = time.monotonic() + timeout
        self._started = time.time()
        announced = False
        first_renewal: dict[str, float] = {}
        while True:
            try:
                self._etag = self._put(self._doc(self._started), IfNoneMatch="*")
                break
            except ClientError as exc:
                if error_code(exc) not in CONDITION_FAILED:
                    raise
            holder = self.holder()
            if holder is None:
                continue  # released between our write and our read
            now = time.time()
            stale = holder.stale_reason(now, self.stale_after)
            if stale and take_over:  # asked: at once
                self.s3.delete_object(Bucket=self.bucket, Key=self.key)
                self.taken_over, self.takeover_reason = holder, None
                continue
            dead = holder.proven_dead(now, self.renew_every)
            if holder.renewed != first_renewal.setdefault(holder.run_id, holder.renewed):
                dead = None  # renewed while we waited: alive after all, whatever its pid says
            if dead is not None:
                if dead.after > 0:  # proven gone: one more look once two renewals are missed
                    if on_wait and not announced:
                        on_wait(
                            f"{holder.describe(now)}: {dead.reason}; taking its run lock over in {dead.after:.0f} s"
                        )
                        announced = True
                    time.sleep(min(dead.after, self.stale_after))
                    continue
                self.s3.delete_object(Bucket=self.bucket, Key=self.key)
                self.taken_over, self.takeover_reason = holder, dead.reason
                continue
            if not stale and time.monotonic() < deadline:
                if on_wait and not announced:
                    on_wait(f"waiting for {holder.describe(now)} to finish")
                    announced = True
                time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))
                continue
            raise RunLockedError(self._held_message(holder, stale, now))
        self._renewer = threading.Thread(target=self._renew, name="run-lock", daemon=True)
        self._renewer.start()

    def _held_message(self, holder: Holder, stale: str | None, now: float) -> str:
        where = self.env.cli_args
        if stale:
            return (
                f"environment {self.env.env_id} is locked by {holder.describe(now)}, which is stale: {stale}; "
                f"take it over: orchestrator {self.command} {where} --take-over-stale-lock, "
                f"or release it: {holder.release_command(where)}"
            )
        return (
            f"environment {self.env.env_id} is busy: {holder.describe(now)} holds its run lock; "
            f"wait for it, or pass --lock-timeout (e.g. --lock-timeout 30m)"
        )

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_every):
            try:
                self._etag = self._put(self._doc(self._started), IfMatch=self._etag)
            except ClientError as exc:
                if error_code(exc) in CONDITION_FAILED or error_code(exc) in ("NoSuchKey", "404"):
                    self.lost = True
                    return
            except Exception:  # noqa: BLE001 - a network blip: the next renewal tries again
                continue

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=30)
        if self._etag is None or self.lost:
            return
        holder = self.holder()
        if holder is not None and holder.run_id == self.run_id:
            self.s3.delete_object(Bucket=self.bucket, Key=self.key)
        self._etag = None

    @property
    def held(self) -> bool:
        return self._etag is not None and not self.lost

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def current_holder(s3, env: Environment) -> Holder | None:
    """Who holds the environment's run lock, if anyone."""
    try:
        body = s3.get_object(Bucket=env.backend.bucket, Key=run_key(env, LOCK_NAME))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return Holder.from_doc(json.loads(body))


def refuse_while_running(aws: Aws, env: Environment, then: str, clock=time.time) -> None:
    """Refuses (RunLockedError) while a live run holds the copy's run lock (a stale holder does
    not count); `then` tells what to do instead."""
    holder = current_holder(aws.client("s3", env.backend.region), env)
    if holder is not None and not holder.stale_reason(clock()):
        raise RunLockedError(f"environment {env.env_id} is busy: {holder.describe(clock())} holds its run lock; {then}")


def force_release(aws: Aws, env: Environment, run_id: str) -> Holder:
    """Removes the run lock if ``run_id`` holds it (force-unlock --run)."""
    s3 = aws.client("s3", env.backend.region)
    holder = current_holder(s3, env)
    if holder is None or holder.run_id != run_id:
        current = f"it is held by run {holder.run_id}" if holder else "nobody holds it"
        raise ConfigError(f"run {run_id} does not hold the run lock of {env.env_id}: {current} (nothing was changed)")
    s3.delete_object(Bucket=env.backend.bucket, Key=run_key(env, LOCK_NAME))
    return holder
