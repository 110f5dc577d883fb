"""The only module that runs the terraform binary.

A thin subprocess wrapper (python-terraform and its forks break on Terraform
1.11: see the README's design notes). Every call gets an explicit cwd
(-chdir) and env, -input=false and TF_IN_AUTOMATION=1; output is streamed
line by line to a per-unit log (through the redactor) and a callback; errors
carry the command and the stderr tail. Each terraform runs in its own process
group so an interrupt reaches it exactly once and nothing is left behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import Interrupted, PrerequisiteError, StateLockedError, TerraformError
from orchestrator.policy.firewall import unmanaged_rules
from orchestrator.redact import Redactor
from orchestrator.state.locks import StateLock
from orchestrator.tf import events as tf_events

# terraform and its providers are Go programs, and Go collects garbage each time the heap doubles
# (GOGC=100). The aws provider builds the schema of every resource type each time it starts, so
# that start is most of a command's CPU: with GOGC=400 a command costs about 18 % less CPU for a
# few percent more memory (bench/gogc.py; docs/benchmarks.md). CPU is what a pipeline runner or
# a copy deployed beside others is short of.
GOGC = "400"

# Exit codes each command accepts: plan -detailed-exitcode's 2 means "changes".
PLAN_NO_CHANGES, PLAN_CHANGES = 0, 2  # plan -detailed-exitcode (1: an error)

# Errors worth re-running the whole command for: throttling and network blips
# between terraform and AWS or the registry. Nothing else is retried.
TRANSIENT_PATTERNS = (
    r"ThrottlingException",
    r"Throttling: Rate exceeded",
    r"RequestLimitExceeded",
    r"TooManyRequestsException",
    r"SlowDown",
    r"connection reset by peer",
    r"TLS handshake timeout",
    r"i/o timeout",
    r"net/http: request canceled",
    r"ServiceUnavailable",
    r"503 Service Unavailable",
    r"failed to query available provider packages",
)
_TRANSIENT_RE = re.compile("|".join(TRANSIENT_PATTERNS))

# A delete that failed because the object is already gone (an SDK retry of a delete whose first
# reply was lost, or someone else deleted it): a fresh destroy plan no longer contains it.
_GONE_RE = re.compile(r"\b\w*NotFound\b|\bNoSuch[A-Z]\w*|does not exist|StatusCode: 404\b")


def names_a_gone_resource(stderr: str) -> bool:
    return bool(_GONE_RE.search(stderr or ""))


STDERR_TAIL_LINES = 40


def output_tail(lines: list[str], keep: int = STDERR_TAIL_LINES) -> list[str]:
    """The last `keep` lines, and the first error's block when it is earlier than that: a command
    run under the shim has its stdout and stderr in one log, interleaved as they arrived, so the
    `Error:` a caller classifies (first_error) may sit above a plan and its warnings."""
    first = next((i for i, line in enumerate(lines) if line.strip("│ ").strip().startswith("Error:")), None)
    if first is None or first >= len(lines) - keep:
        return lines[-keep:]
    half = keep // 2
    return [*lines[first : first + half], "...", *lines[-(keep - half) :]]


SHIM = Path(__file__).with_name("tfshim.py")
FOLLOW_INTERVAL = 0.05  # seconds between reads of a unit's log while its terraform runs


def find_binary(explicit: str | None = None) -> str:
    candidate = explicit or os.environ.get("ORCHESTRATOR_TERRAFORM") or "terraform"
    path = shutil.which(candidate)
    if not path:
        raise PrerequisiteError(
            f"terraform binary not found ({candidate!r} is not on PATH); install Terraform >= 1.11 or set ORCHESTRATOR_TERRAFORM"
        )
    return path


def tf_log_env(work_dir: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """TF_LOG writes request bodies (secrets included): refused unless explicitly
    allowed, and then written only to a 0600 file, never to the terminal."""
    environ = os.environ if environ is None else environ
    level = environ.get("TF_LOG", "")
    if not level:
        return {}
    if environ.get("ORCHESTRATOR_ALLOW_TF_LOG") != "1":
        raise PrerequisiteError(
            "TF_LOG is set: terraform debug logs can hold secrets; unset it, or set ORCHESTRATOR_ALLOW_TF_LOG=1 "
            "to write them to a private file"
        )
    path = work_dir / "terraform-debug.log"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
    return {"TF_LOG": level, "TF_LOG_PATH": str(path)}


# Where terraform itself looks for providers when its CLI config names no
# provider_installation (Linux and macOS; XDG_DATA_DIRS adds more).
IMPLICIT_MIRRORS = (
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
)
_REGISTRY_DOWN_RE = re.compile(r"could not connect to ([a-z0-9.-]+)")
_CREDENTIALS_RE = re.compile(r'(?ms)^\s*credentials\s+"([^"]+)"\s*\{(.*?)^\s*\}')
_TOKEN_RE = re.compile(r'token\s*=\s*"([^"]+)"')


def implicit_mirrors(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Terraform's implicit local mirror directories that exist on this machine, in its order."""
    environ = os.environ if environ is None else environ
    dirs = [Path(d).expanduser() for d in IMPLICIT_MIRRORS[:2]]
    if environ.get("XDG_DATA_HOME"):
        dirs[1] = Path(environ["XDG_DATA_HOME"]) / "terraform" / "plugins"
    extra = [Path(d) / "terraform" / "plugins" for d in environ.get("XDG_DATA_DIRS", "").split(":") if d]
    return [d for d in dict.fromkeys([*dirs, *extra, *map(Path, IMPLICIT_MIRRORS[2:])]) if d.is_dir()]


def user_cli_config(environ: Mapping[str, str] | None = None) -> Path | None:
    """The operator's own terraform CLI config: TF_CLI_CONFIG_FILE, else ~/.terraformrc."""
    environ = os.environ if environ is None else environ
    path = Path(environ["TF_CLI_CONFIG_FILE"]) if environ.get("TF_CLI_CONFIG_FILE") else Path("~/.terraformrc")
    path = path.expanduser()
    return path if path.is_file() else None


def cli_config_text(mirror_dir: str, user_text: str = "") -> tuple[str, dict[str, str]]:
    """The CLI config the orchestrator writes when it is given a mirror: the operator's own
    config with a provider_installation block for the mirror added (unless theirs has one,
    which then wins). Their credentials blocks become TF_TOKEN_<host> variables (returned),
    so no token is copied into a file."""
    tokens = {}
    for host, body in _CREDENTIALS_RE.findall(user_text):
        token = _TOKEN_RE.search(body)
        if token:
            tokens["TF_TOKEN_" + host.replace("-", "__").replace(".", "_")] = token.group(1)
    text = _CREDENTIALS_RE.sub("", user_text).strip()
    if "provider_installation" not in text:
        text += "\n".join(
            [
                "\n# Added by the orchestrator: hashicorp/aws from the mirror, everything else as usual.",
                "provider_installation {",
                "  filesystem_mirror {",
                f'    path    = "{mirror_dir}"',
                '    include = ["registry.terraform.io/hashicorp/aws"]',
                "  }",
                "  direct {",
                '    exclude = ["registry.terraform.io/hashicorp/aws"]',
                "  }",
                "}",
            ]
        )
    return text.strip() + "\n", tokens


def cli_setup(work_dir: Path, mirror_dir: str | None) -> tuple[Path | None, dict[str, str]]:
    """(CLI config file for TF_CLI_CONFIG_FILE or None, extra environment). Without a mirror the
    operator's own CLI config is left alone; the plugin cache always goes through
    TF_PLUGIN_CACHE_DIR, never by replacing their file."""
    plugin_cache = work_dir / "plugin-cache"
    plugin_cache.mkdir(parents=True, exist_ok=True)
    env = {"TF_PLUGIN_CACHE_DIR": str(plugin_cache)}
    if not mirror_dir:
        return None, env
    user = user_cli_config()
    text, tokens = cli_config_text(mirror_dir, user.read_text() if user else "")
    path = work_dir / "terraform.rc"
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        tmp.replace(path)
    return path, {**env, **tokens}


def backend_config_args(config: Mapping[str, object]) -> list[str]:
    """-backend-config=key=value, bools lowercased, in a stable order."""
    out = []
    for key in sorted(config):
        value = config[key]
        if isinstance(value, bool):
            value = "true" if value else "false"
        out.append(f"-backend-config={key}={value}")
    return out


def build_args(command: str, *, flags: Iterable[str] = (), options: Mapping[str, object] | None = None) -> list[str]:
    """Pure argument builder: terraform <command> -input=false -no-color [flags] [-k=v]."""
    args = [command]
    if command in ("init", "plan", "apply", "destroy", "import", "refresh"):
        args.append("-input=false")
    args.append("-no-color")
    args.extend(flags)
    for key, value in (options or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        args.append(f"-{key}={value}")
    return args


@dataclass(frozen=True)
class CommandResult:
    command: list[str]
    returncode: int
    stdout: str
    stderr_tail: str
    duration: float
    attempts: int = 1
    events: tuple[dict, ...] = field(default=(), repr=False)  # a `-json` command's UI events

    def first_error(self) -> str:
        return tf_events.first_error(self.events) or first_error(self.stderr_tail)

    def held_lock(self) -> bool:
        """Another holds the state lock (a `-json` command says so in a diagnostic)."""
        if self.events:
            return tf_events.has_error(self.events, tf_events.LOCK_ERROR)
        return first_error(self.stderr_tail) == tf_events.LOCK_ERROR

    @property
    def subcommand(self) -> str:
        """init, plan, apply, ...: the first argument that is not an option (-chdir=...)."""
        return next((a for a in self.command[1:] if not a.startswith("-")), "?")


@dataclass(frozen=True)
class PlanSummary:
    add: int = 0
    change: int = 0
    destroy: int = 0
    replace: int = 0
    resources: tuple[dict, ...] = field(default=(), repr=False)
    # what the operator reads before answering: terraform's plan with each attribute's change
    # (redacted by whoever fills it in)
    diff: str = field(default="", repr=False, compare=False)

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy or self.replace)

    def text(self) -> str:
        return f"+{self.add} ~{self.change} -{self.destroy} ±{self.replace}"

    @classmethod
    def from_events(cls, events) -> PlanSummary:
        """From the `planned_change` events of a `-json` plan (or of the plan inside an apply)."""
        changed = tf_events.planned_changes(events)
        kinds = [c["actions"] for c in changed]
        return cls(
            kinds.count(["create"]),
            kinds.count(["update"]),
            kinds.count(["delete"]),
            kinds.count(["delete", "create"]),
            tuple(changed),
        )

    @classmethod
    def from_drift_json(cls, plan: dict) -> PlanSummary:
        """From `show -json` of a plan: each resource deleted outside terraform, or with an attribute
        its configuration sets that AWS now holds differently. What the configuration does not set
        (read back by the provider: inline policies, attachments, defaults) is not drift, unless
        the next apply would put it back (`display_name = "hacked" -> null`): then it is named
        under "reverts", as the plan's own resource_changes say."""
        managed = _configured_attributes(plan.get("configuration", {}).get("root_module", {}), "")
        planned = {rc.get("address"): rc.get("change", {}) for rc in plan.get("resource_changes", [])}
        found: list[dict] = []
        for rd in plan.get("resource_drift", []):
            change = rd.get("change", {})
            if change.get("actions") == ["delete"] or change.get("after") is None:
                found.append({"address": rd["address"], "actions": ["delete"], "attributes": []})
                continue
            before, after = change.get("before") or {}, change.get("after") or {}
            keys = managed.get(re.sub(r"\[[^\]]*\]", "", rd["address"]), set())
            differs = sorted(
                k for k in before.keys() | after.keys() if _same_value(before.get(k)) != _same_value(after.get(k))
            )
            moved = [k for k in differs if k in keys]
            nxt = planned.get(rd["address"], {})
            unknown = nxt.get("after_unknown") or {}
            then = nxt.get("after") or {}
            reverts = [
                k
                for k in differs
                if k not in keys
                and "update" in (nxt.get("actions") or [])
                and not unknown.get(k)
                and _same_value(then.get(k)) != _same_value(after.get(k))
            ]
            if moved or reverts:
                entry = {"address": rd["address"], "actions": ["update"], "attributes": moved}
                if reverts:
                    entry["reverts"] = reverts
                found.append(entry)
        by_address = {f["address"]: f for f in found}
        for rules in unmanaged_rules(plan):  # rules added by hand: the refresh alone cannot name them
            if rules["address"] in by_address:
                by_address[rules["address"]]["unmanaged"] = rules["unmanaged"]
            else:
                found.append(rules)
        changed = sum(f["actions"] == ["update"] for f in found)
        return cls(0, changed, len(found) - changed, 0, tuple(found))

    def describe(self) -> str:
        """The addresses (first five), with the attributes that moved when known."""
        more = len(self.resources) - 5
        return "; ".join(describe_change(c) for c in self.resources[:5]) + (f"; and {more} more" if more > 0 else "")

    @classmethod
    def from_plan_json(cls, plan: dict) -> PlanSummary:
        add = change = destroy = replace = 0
        changed = []
        for rc in plan.get("resource_changes", []):
            actions = rc.get("change", {}).get("actions", [])
            if actions in (["no-op"], ["read"]):
                continue
            if "create" in actions and "delete" in actions:
                replace += 1
            elif actions == ["create"]:
                add += 1
            elif actions == ["update"]:
                change += 1
            elif actions == ["delete"]:
                destroy += 1
            else:
                continue
            changed.append({"address": rc.get("address"), "actions": actions})
        return cls(add, change, destroy, replace, tuple(changed))


def describe_change(c: dict) -> str:
    """One drifted resource: its address, and what moved (attributes its configuration sets,
    unmanaged ones the next apply reverts, security group rules no resource declares)."""
    gone = c.get("actions") == ["delete"] and "attributes" in c
    said = list(c.get("attributes") or [])
    if c.get("reverts"):
        said.append(f"{len(c['reverts'])} unmanaged attribute(s) the next apply reverts: {', '.join(c['reverts'])}")
    if c.get("unmanaged"):
        said.append(f"{len(c['unmanaged'])} rule(s) no resource declares: {', '.join(c['unmanaged'])}")
    return c["address"] + (" (deleted outside terraform)" if gone else f" ({'; '.join(said)})" if said else "")


def _configured_attributes(module: dict, prefix: str) -> dict[str, set[str]]:
    """Resource address (no instance keys) -> the attributes and blocks its configuration sets."""
    out = {prefix + r["address"]: set(r.get("expressions", {})) for r in module.get("resources", [])}
    for name, call in module.get("module_calls", {}).items():
        out.update(_configured_attributes(call.get("module", {}), f"{prefix}module.{name}."))
    return out


def _same_value(value):
    """Null, empty and whitespace-only differences in JSON documents are not drift."""
    if value in (None, "", [], {}):
        return None
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return json.dumps(json.loads(value), sort_keys=True)
        except ValueError:
            return value
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return value


class ProcessRegistry:
    """Live terraform processes, so an interrupt reaches each one once."""

    def __init__(self):
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen] = set()
        self.interrupted: int | None = None

    def add(self, proc: subprocess.Popen) -> None:
        with self._lock:
            if self.interrupted is not None:
                _signal_group(proc, signal.SIGINT)
            self._procs.add(proc)

    def remove(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.discard(proc)

    def interrupt_all(self, signum: int = signal.SIGINT, grace: float = 60.0) -> None:
        """Forward one SIGINT to every terraform, wait up to ``grace`` s, then kill."""
        with self._lock:
            first = self.interrupted is None
            self.interrupted = signum
            procs = list(self._procs)
        if first:
            for proc in procs:
                _signal_group(proc, signal.SIGINT)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()

    def live(self) -> int:
        with self._lock:
            return sum(1 for p in self._procs if p.poll() is None)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


REGISTRY = ProcessRegistry()


@dataclass
class Workspace:
    """One working copy: (environment, suffix, unit). Source dir is shared and read-only;
    .terraform, plan files and logs live in the per-environment work dir."""

    unit: str
    source_dir: Path
    work_dir: Path

    @property
    def data_dir(self) -> Path:
        return self.work_dir / ".terraform"

    @property
    def plan_path(self) -> Path:
        return self.work_dir / "tfplan"

    @property
    def var_file(self) -> Path:
        return self.work_dir / "inputs.tfvars.json"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "terraform.log"

    @property
    def events_path(self) -> Path:
        """The `-json` commands' events, one per line, redacted (written by tfshim.py)."""
        return self.work_dir / "terraform.events.jsonl"

    @property
    def marker_path(self) -> Path:
        """Exists while a terraform command runs for this working copy (written by tfshim.py)."""
        return self.work_dir / "running.json"


class Terraform:
    def __init__(
        self,
        binary: str,
        *,
        cli_config: Path | None,
        base_env: Mapping[str, str],
        redactor: Redactor,
        timeout: float = 3600.0,
        max_retries: int = 2,
        retry_delay: float = 5.0,
        registry: ProcessRegistry = REGISTRY,
        run_id: str = "",
        copy_args: str = "",
        read_lock: Callable[[str], dict | None] | None = None,
    ):
        self.binary = binary
        self.cli_config = cli_config
        self.base_env = dict(base_env)
        self.redactor = redactor
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.registry = registry
        self.run_id = run_id  # the run this terraform works for, recorded beside each command
        self.copy_args = copy_args  # the copy's --env/--suffix, for the commands an error names
        # unit -> the lock on its state as the backend holds it (ID, Who, Operation, Created)
        self.read_lock = read_lock

    # ---- process ---------------------------------------------------------
    def env_for(self, ws: Workspace, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(self.base_env)
        env.setdefault("GOGC", GOGC)  # an operator's own GOGC is kept
        env.update(
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            CHECKPOINT_DISABLE="1",
            TF_DATA_DIR=str(ws.data_dir),
        )
        if self.cli_config is not None:
            env["TF_CLI_CONFIG_FILE"] = str(self.cli_config)
        if "TF_LOG_PATH" not in self.base_env:
            env.pop("TF_LOG", None)
        env.pop("TF_WORKSPACE", None)
        if extra:
            env.update(extra)
        return env

    def run(
        self,
        ws: Workspace,
        args: list[str],
        *,
        ok_codes: tuple[int, ...] = (0,),
        extra_env: Mapping[str, str] | None = None,
        on_line: Callable[[str], None] | None = None,
        capture: bool = False,
        retry_transient: bool = True,
    ) -> CommandResult:
        attempts = 0
        while True:
            attempts += 1
            since = time.time()
            result = self._run_once(ws, args, extra_env=extra_env, on_line=on_line, capture=capture)
            if result.returncode in ok_codes:
                return CommandResult(**{**result.__dict__, "attempts": attempts})
            if self.registry.interrupted is not None:
                raise Interrupted(f"{_what(args)} of unit {ws.unit} interrupted", signum=self.registry.interrupted)
            if result.held_lock():
                info = (self.read_lock(ws.unit) if self.read_lock else None) or {}
                if attempts <= self.max_retries and own_lost_lock(info, args[0], since):
                    # The lock write reached the backend but its reply was lost; the SDK retried
                    # the conditional write and found the lock this very command had just taken.
                    note(
                        ws,
                        f"[orchestrator] state lock {info['ID']} was taken by this command's own request "
                        "whose reply was lost: released, retrying",
                        on_line,
                    )
                    self.force_unlock(ws, info["ID"], on_line=on_line)
                    continue
                raise lock_error(ws.unit, result, info, self.copy_args)
            if retry_transient and attempts <= self.max_retries and _TRANSIENT_RE.search(result.stderr_tail):
                note(ws, f"[orchestrator] transient error, retry {attempts}/{self.max_retries}", on_line)
                time.sleep(self.retry_delay * attempts)
                continue
            raise TerraformError(
                f"terraform {args[0]} failed for unit {ws.unit} (exit {result.returncode}): {result.first_error()}",
                command=["terraform", f"-chdir={ws.source_dir}", *args],
                stderr_tail=our_advice(result.stderr_tail),
                diagnostics=tf_events.diagnostics(result.events),
            )

    def _run_once(self, ws, args, *, extra_env, on_line, capture) -> CommandResult:
        ws.work_dir.mkdir(parents=True, exist_ok=True)
        if capture:
            return self._run_captured(ws, args, extra_env=extra_env)
        return self._run_detached(ws, args, extra_env=extra_env, on_line=on_line)

    def _run_captured(self, ws, args, *, extra_env) -> CommandResult:
        """Read-only commands whose stdout is data (show -json, output -json): a pipe, never logged.
        They hold no lock and write nothing, so dying with the orchestrator loses nothing."""
        cmd = [self.binary, f"-chdir={ws.source_dir}", *args]
        started = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            cwd=ws.work_dir,
            env=self.env_for(ws, extra_env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
        self.registry.add(proc)
        try:
            out, errout = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            out, errout = proc.communicate()
        finally:
            self.registry.remove(proc)
        tail = [self.redactor.redact(line) for line in output_tail(errout.splitlines())]
        return CommandResult(cmd, _exit_code(proc.returncode), out, "\n".join(tail), time.monotonic() - started)

    def _run_detached(self, ws, args, *, extra_env, on_line) -> CommandResult:
        """Commands that can take a lock or write state run under tfshim.py, in a session of
        their own and with no pipe to this process: if the orchestrator dies, terraform still
        finishes, writes its state and releases its lock. Its output reaches us through the
        unit's log file (redacted by the shim before it is written), which we follow."""
        cmd = [self.binary, f"-chdir={ws.source_dir}", *args]
        started = time.monotonic()
        with open(ws.log_path, "a", encoding="utf-8") as log_file:
            log_file.write(f"\n$ terraform {' '.join(args)}\n")
            offset = log_file.tell()
        json_ui = "-json" in args
        events_offset = ws.events_path.stat().st_size if json_ui and ws.events_path.exists() else 0
        proc = subprocess.Popen(
            [sys.executable, str(SHIM), str(ws.log_path), str(ws.marker_path), "--", *cmd],
            cwd=ws.work_dir,
            env=self.env_for(ws, extra_env),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # own session and process group: signals go to it explicitly
        )
        self.registry.add(proc)
        info = {"command": args[0], "args": args[1:], "orchestrator_pid": os.getpid(), "run_id": self.run_id}
        try:
            doc = {"mask": self.redactor.values(), "info": info}
            if json_ui:
                doc["events"] = str(ws.events_path)
            proc.stdin.write(json.dumps(doc).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        timer = threading.Timer(self.timeout, _timeout_kill, args=(proc,))
        timer.daemon = True
        timer.start()
        lines: list[str] = []
        try:
            with open(ws.log_path, encoding="utf-8", errors="replace") as follow:
                follow.seek(offset)
                partial = ""
                while True:
                    finished = proc.poll() is not None  # checked before the read: nothing is missed
                    chunk = follow.read()
                    if chunk:
                        partial += chunk
                        *complete, partial = partial.split("\n")
                        for line in complete:
                            lines.append(line)
                            if on_line:
                                on_line(line)
                    elif finished:
                        break
                    else:
                        time.sleep(FOLLOW_INTERVAL)
                if partial:
                    lines.append(partial)
                    if on_line:
                        on_line(partial)
        finally:
            timer.cancel()
            if proc.poll() is None:  # only when following the log itself failed
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            self.registry.remove(proc)
        events: tuple[dict, ...] = ()
        if json_ui and ws.events_path.exists():
            with open(ws.events_path, encoding="utf-8", errors="replace") as f:
                f.seek(events_offset)
                events = tf_events.read(f.read())
        return CommandResult(
            command=cmd,
            returncode=_exit_code(proc.returncode),
            stdout="".join(line + "\n" for line in lines),
            stderr_tail="\n".join(output_tail(lines)),
            duration=time.monotonic() - started,
            events=events,
        )

    # ---- commands ----------------------------------------------------------
    def version(self) -> str:
        out = subprocess.run([self.binary, "version", "-json"], capture_output=True, text=True, timeout=60)
        try:
            return json.loads(out.stdout)["terraform_version"]
        except (ValueError, KeyError):
            raise PrerequisiteError(f"cannot read the version of {self.binary}: {out.stderr.strip()[:200]}") from None

    def init(self, ws: Workspace, backend_config: Mapping[str, object], *, reconfigure: bool = False, **kw):
        flags = backend_config_args(backend_config) + ["-json", "-lockfile=readonly"]
        if reconfigure:
            flags.append("-reconfigure")
        try:
            return self.run(ws, build_args("init", flags=flags), **kw)
        except TerraformError as exc:
            host = _REGISTRY_DOWN_RE.search(exc.stderr_tail.replace("\n", " "))
            if host and self.cli_config is None:
                exc.message = (
                    f"unit {ws.unit}: terraform cannot reach {host.group(1)} for its providers: name a filesystem "
                    "mirror with --provider-mirror DIR (or ORCHESTRATOR_PROVIDER_MIRROR, or [terraform] "
                    "provider_mirror in the manifest); `orchestrator doctor` shows where each provider comes from"
                )
            raise

    def plan(
        self,
        ws: Workspace,
        *,
        destroy: bool = False,
        refresh: bool = True,
        lock_timeout: str = "0s",
        var_file: bool = True,
        **kw,
    ) -> tuple[bool, CommandResult]:
        """Saved plan with -detailed-exitcode: returns (has_changes, result)."""
        flags = ["-json", "-detailed-exitcode", f"-out={ws.plan_path}"]
        if destroy:
            flags.append("-destroy")
        if not refresh:
            flags.append("-refresh=false")
        if var_file and ws.var_file.exists():
            flags.append(f"-var-file={ws.var_file}")
        args = build_args("plan", flags=flags, options={"lock-timeout": lock_timeout})
        result = self.run(ws, args, ok_codes=(PLAN_NO_CHANGES, PLAN_CHANGES), **kw)
        return result.returncode == PLAN_CHANGES, result

    def show_plan(self, ws: Workspace, **kw) -> dict:
        result = self.run(ws, build_args("show", flags=["-json", str(ws.plan_path)]), capture=True, **kw)
        return json.loads(result.stdout)

    def show_plan_text(self, ws: Workspace, **kw) -> str:
        """The saved plan as terraform words it for a person (each attribute's change), redacted:
        what the operator reads before answering, and what a CI summary shows. Never parsed."""
        result = self.run(ws, build_args("show", flags=[str(ws.plan_path)]), capture=True, **kw)
        return self.redactor.redact(result.stdout).strip()

    def apply(self, ws: Workspace, *, lock_timeout: str = "0s", **kw) -> CommandResult:
        """Applies the saved plan, nothing else."""
        args = build_args("apply", flags=["-json", "-auto-approve"], options={"lock-timeout": lock_timeout}) + [
            str(ws.plan_path)
        ]
        return self.run(ws, args, **kw)

    def apply_auto(self, ws: Workspace, *, lock_timeout: str = "0s", **kw) -> CommandResult:
        """Plan and apply in one terraform run (one provider start instead of two), for runs
        nobody confirms. The plan is printed in the output as usual."""
        flags = ["-json", "-auto-approve"]
        if ws.var_file.exists():
            flags.append(f"-var-file={ws.var_file}")
        return self.run(ws, build_args("apply", flags=flags, options={"lock-timeout": lock_timeout}), **kw)

    def providers_lock(self, ws: Workspace, platforms: Iterable[str], mirror: str | None = None) -> CommandResult:
        """Writes the unit's .terraform.lock.hcl for these platforms (no state, no lock, no init)."""
        flags = [f"-platform={p}" for p in platforms] + ([f"-fs-mirror={mirror}"] if mirror else [])
        self.run(ws, ["get", "-no-color"], capture=True)  # modules first: the lock covers theirs too
        return self.run(ws, ["providers", "lock", "-no-color", *flags], capture=True)

    def force_unlock(self, ws: Workspace, lock_id: str, **kw) -> CommandResult:
        return self.run(ws, ["force-unlock", "-force", lock_id], retry_transient=False, **kw)

    def state_rm(self, ws: Workspace, addresses: Iterable[str], *, lock_timeout: str = "0s", **kw) -> CommandResult:
        """Takes the resources out of the state, leaving them in AWS."""
        return self.run(ws, ["state", "rm", f"-lock-timeout={lock_timeout}", *addresses], retry_transient=False, **kw)

    def state_push(self, ws: Workspace, state_file: Path, **kw) -> CommandResult:
        # Subcommand first: "state -no-color push" is not a command.
        return self.run(ws, ["state", "push", str(state_file)], retry_transient=False, **kw)


def _what(args: list[str]) -> str:
    """A terraform command as the operator knows it: an apply without a saved plan plans too."""
    if args[0] == "apply" and not any(a.endswith("tfplan") for a in args):
        return "terraform apply (plan and apply in one run)"
    if args[0] == "plan" and "-destroy" in args:
        return "terraform plan -destroy"
    return f"terraform {args[0]}"


def note(ws: Workspace, text: str, on_line: Callable[[str], None] | None = None) -> None:
    """A line of the orchestrator's own in the unit's log (and on its progress line)."""
    ws.work_dir.mkdir(parents=True, exist_ok=True)
    with open(ws.log_path, "a", encoding="utf-8") as log:
        log.write(text + "\n")
    if on_line:
        on_line(text)


def _exit_code(rc: int) -> int:
    return 128 - rc if rc < 0 else rc  # killed by a signal (timeout or interrupt)


def _timeout_kill(proc: subprocess.Popen) -> None:
    _signal_group(proc, signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)


def error_summary(exc: TerraformError) -> str:
    """A failed command's first error: its first error diagnostic's summary (a `-json` command),
    else the first `Error:` line of its output."""
    return next(iter(exc.summaries()), "") or first_error(exc.stderr_tail)


def first_error(stderr_tail: str) -> str:
    """The first 'Error: ...' line of terraform's output, else its last line."""
    for line in stderr_tail.splitlines():
        stripped = line.strip("│ ").strip()
        if stripped.startswith("Error:"):
            return stripped[len("Error:") :].strip()
    lines = [line for line in stderr_tail.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


# terraform's advice that is wrong with this tool (it runs init itself, -lockfile=readonly): ours
_UPGRADE_ADVICE_RE = re.compile(r"terraform\s+init\s+-upgrade")
UPGRADE_ADVICE = "orchestrator lock --upgrade (then commit the units' lock files)"


def our_advice(stderr_tail: str) -> str:
    return _UPGRADE_ADVICE_RE.sub(UPGRADE_ADVICE, stderr_tail)


def error_detail(stderr_tail: str) -> str:
    """The first error's explanation (the paragraph under its 'Error:' line), as one line."""
    lines = [line.strip("│ ").strip() for line in stderr_tail.splitlines()]
    start = next((i for i, line in enumerate(lines) if line.startswith("Error:")), None)
    if start is None:
        return first_error(stderr_tail)
    body = []
    for line in lines[start + 1 :]:
        if line.startswith(("Error:", "Warning:")):
            break
        body.append(line)
    return " ".join(" ".join(body).split()) or first_error(stderr_tail)


def error_block(stderr_tail: str) -> str:
    """The 'Error:' block(s) of terraform's output, for printing on failure."""
    lines = stderr_tail.splitlines()
    for i, line in enumerate(lines):
        if "Error:" in line:
            return "\n".join(lines[i:])
    return stderr_tail


_LOCK_OPERATIONS = {"plan": "OperationTypePlan", "apply": "OperationTypeApply", "destroy": "OperationTypeApply"}


def terraform_identity() -> str:
    """What terraform writes as a lock's Who: the uid's user name @ host name."""
    import pwd
    import socket

    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def lock_created(text: str) -> float | None:
    """Epoch seconds of a lock's Created as the backend holds it (Go's RFC 3339 with nanoseconds:
    "2026-11-29T16:20:18.097311031Z")."""
    from datetime import datetime

    text = (text or "").strip()
    head, dot, rest = text.partition(".")
    if dot:  # Python reads at most microseconds
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def own_lost_lock(info: Mapping[str, str], command: str, since: float) -> bool:
    """A lock this failed command took itself: same user@host, same operation, created after the
    command started. Nothing else of ours can have taken it: no two commands of a run touch one
    unit at once, and the environment's run lock keeps other runs out."""
    created = lock_created(info.get("Created", ""))
    return (
        bool(info.get("ID"))
        and info.get("Who") == terraform_identity()
        and info.get("Operation") == _LOCK_OPERATIONS.get(command)
        and created is not None
        and created >= since - 1.0
    )


def lock_error(unit: str, result: CommandResult, info: Mapping[str, str], where: str = "") -> StateLockedError:
    """The held lock, as the backend holds it (`info`; empty when it was released meanwhile)."""
    if not info.get("ID"):
        return StateLockedError(
            f"state of unit {unit} was locked by another command, released since; run the command again",
            command=result.command,
            stderr_tail=result.stderr_tail,
        )
    lock = StateLock.from_info(unit, dict(info))
    release = lock.release_command(where) if where else lock.release_command("") + " (with the same --env/--suffix)"
    return StateLockedError(
        f"{lock.describe()}; if that run is dead: {release}",
        command=result.command,
        stderr_tail=result.stderr_tail,
    )
