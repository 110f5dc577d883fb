"""The local emulator: moto server as a child process on 127.0.0.1.

`with emulator(...)` starts one for a command and stops it at exit;
`local up` / `local down` keep one running between commands (its address in
<work>/local/local.json), so several commands work on the same emulated account.
moto has no snapshot of its own: replaying its request recorder after a restart
did not bring KMS key ids back (aliases then point nowhere), so the emulated
account lives as long as the server does.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import PrerequisiteError

EMULATOR_ACCOUNT_ID = "123456789012"
SEED = 4242


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 2.0) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
        return resp.status


def _post(url: str, timeout: float = 600.0) -> int:
    req = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback only
        return resp.status


def is_up(url: str) -> bool:
    try:
        return _get(f"{url}/moto-api/") == 200
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class MotoServer:
    url: str
    pid: int
    proc: subprocess.Popen | None = None

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)


# The emulator is moto server, which the package's `local` extra brings.
LOCAL_EXTRA = "the emulator needs moto server: pip install 'terraform-unit-orchestrator[local]'"


def moto_env(*, like_aws: bool = False, timing: dict[str, str] | None = None) -> dict[str, str]:
    """The emulator's environment; timing: ORCHESTRATOR_LIKE_AWS_* delays (orchestrator/emulator.py)."""
    env = dict(os.environ)
    env.update(timing or {})
    env.update(
        MOTO_IAM_LOAD_MANAGED_POLICIES="true",
        MOTO_ALLOW_NONEXISTENT_REGION="true",
    )
    env["ORCHESTRATOR_LIKE_AWS"] = "1" if like_aws else "0"  # orchestrator/emulator.py
    return env


def start(
    *,
    port: int | None = None,
    log_path: Path | None = None,
    timeout: float = 60.0,
    like_aws: bool = False,
    timing: dict[str, str] | None = None,
) -> MotoServer:
    import importlib.util

    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        raise PrerequisiteError(f"no local emulator: {LOCAL_EXTRA}")
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.aws.emulator", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=moto_env(like_aws=like_aws, timing=timing),
            start_new_session=True,
        )
    except FileNotFoundError:
        raise PrerequisiteError(f"cannot start the local emulator: {LOCAL_EXTRA}") from None
    finally:
        if log_path:
            log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PrerequisiteError(
                f"moto server exited at start (code {proc.returncode}); see {log_path or 'its output'}"
            )
        if is_up(url):
            _post(f"{url}/moto-api/seed?a={SEED}")
            return MotoServer(url=url, pid=proc.pid, proc=proc)
        time.sleep(0.2)
    MotoServer(url, proc.pid, proc).stop()
    raise PrerequisiteError(f"moto server did not answer on {url} within {timeout:.0f}s")


@contextlib.contextmanager
def emulator(url: str | None = None, *, log_path: Path | None = None):
    """Yields an emulator URL: the given one (must answer), else a fresh child process."""
    if url:
        if not is_up(url):
            raise PrerequisiteError(f"no local emulator answers at {url}")
        yield url
        return
    server = start(log_path=log_path)
    try:
        yield server.url
    finally:
        server.stop()


# ---- local up / down -------------------------------------------------------
# `local up` records where its emulator answers in the work dir's local/ folder and in a folder
# of the project's own under the user's state directory, so that a later `--local` command finds
# it whatever --work-dir it is given; `--local` never starts an emulator of its own (one that
# would vanish with the command, taking what was bootstrapped into it along).
def info_path(state_dir: Path) -> Path:
    return state_dir / "local.json"


def project_state_dir(project_root: Path) -> Path:
    """The project's folder under $XDG_STATE_HOME (default ~/.local/state)."""
    import hashlib

    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    key = hashlib.sha256(str(Path(project_root).resolve()).encode()).hexdigest()[:16]
    return base / "orchestrator" / "local" / key


def running(*state_dirs: Path) -> str | None:
    """The URL of the emulator recorded in the first of these folders that has a live one."""
    for state_dir in state_dirs:
        path = info_path(state_dir)
        if not path.exists():
            continue
        info = json.loads(path.read_text())
        if is_up(info["url"]):
            return info["url"]
    return None


def up(
    state_dir: Path, port: int | None = None, *, like_aws: bool = False, also: tuple[Path, ...] = ()
) -> tuple[str, bool]:
    """Start the shared emulator, or find the running one. Returns (url, started_now)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    url = running(state_dir, *also)
    if url:
        return url, False
    server = start(port=port, log_path=state_dir / "moto.log", like_aws=like_aws)
    # Detach: the server outlives this command.
    for d in (state_dir, *also):
        d.mkdir(parents=True, exist_ok=True)
        info_path(d).write_text(json.dumps({"url": server.url, "pid": server.pid}))
    return server.url, True


def down(state_dir: Path, *, also: tuple[Path, ...] = ()) -> bool:
    stopped = False
    for d in (state_dir, *also):
        path = info_path(d)
        if not path.exists():
            continue
        info = json.loads(path.read_text())
        if not stopped:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(info["pid"], signal.SIGTERM)
            stopped = True
        path.unlink()
    return stopped
