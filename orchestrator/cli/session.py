"""Builds what a command works with: project, stack, environment, AWS, terraform.

Local mode starts (or reuses) the emulator and points boto3, the aws provider
and the S3 backend at it with test credentials.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from orchestrator.aws.permissions import user_agent_token
from orchestrator.errors import PrerequisiteError
from orchestrator.model.config import (
    Environment,
    Project,
    Stack,
    load_emulator_overrides,
    load_environment,
    load_stack,
)


@dataclass(frozen=True)
class Options:
    local: bool = False
    emulator_url: str | None = None
    project_dir: str | None = None
    work_dir: str | None = None
    provider_mirror: str | None = None
    terraform_timeout: float = 3600.0
    terraform_retries: int = 2
    command: str = ""  # the CLI command, e.g. "unit plan" (User-Agent: orchestrator.aws.permissions)


@dataclass
class Session:
    project: Project
    stack: Stack
    env: Environment
    aws: object
    work_root: Path
    emulator_url: str | None
    redactor: object
    options: Options
    supplied_secrets: dict[str, str]

    @property
    def mirror(self) -> str | None:
        """The provider mirror the operator named (--provider-mirror, ORCHESTRATOR_PROVIDER_MIRROR)
        or the manifest's [terraform] provider_mirror; None leaves provider installation to
        terraform (its CLI config, its implicit mirrors, the registry)."""
        return mirror_for(self.options, self.stack)

    def terraform(self, run_id: str = ""):
        return build_terraform(
            self.options,
            self.mirror,
            self.work_root,
            self.redactor,
            self.aws.terraform_env(),
            run_id=run_id,
            copy_args=self.env.cli_args,
            read_lock=self._state_lock,
        )

    def _state_lock(self, unit: str) -> dict | None:
        """A unit's state lock as the backend holds it; None when it cannot be read."""
        try:
            return self.store.lock(unit)
        except Exception:  # noqa: BLE001 - the lock error is said either way, with what is known
            return None

    @cached_property
    def store(self):
        """The copy's state bucket (orchestrator.state.statestore): state, outputs, plans, journal, audit."""
        from orchestrator.state.statestore import StateStore

        return StateStore(self.aws, self.env, self.emulator_url)

    def run_lock(self, run_id: str, command: str):
        """The copy's run lock, for this run (orchestrator.state.runlock)."""
        from orchestrator.state.journal import who
        from orchestrator.state.runlock import RunLock

        return RunLock(self.aws, self.env, self.store.key_arn, run_id=run_id, command=command, who=who())

    def bootstrapper(self, *, repair: bool = False, verify_only: bool = False):
        """The state backend's (and the audit bucket's) provisioning (orchestrator.aws.bootstrap)."""
        from orchestrator.aws.bootstrap import Bootstrapper

        return Bootstrapper(
            self.aws,
            self.env,
            self.project.backend_file,
            emulated=bool(self.emulator_url),
            repair=repair,
            verify_only=verify_only,
        )

    def audit_trail(self, store):
        """The run's audit records (orchestrator.state.audit): who, from which commit, in which pipeline."""
        from orchestrator.state import audit

        return audit.AuditTrail(
            store,
            self.env,
            self.redactor,
            identity=audit.caller(self.aws),
            git=audit.git_state(self.project.root),
            actor=audit.ci_actor(),
        )

    def run_context(self, *, run_id: str | None = None, lock_for: str | None = None, **run_options):
        """The composition root of a run: everything the engine works with, built once. run_id: the
        run's (a CI job's is its pipeline's), else a new one; lock_for: the command the copy's run
        lock is taken for (the caller acquires it before the run starts), none for a read-only one."""
        from orchestrator.core.context import RunContext
        from orchestrator.state.journal import new_run_id
        from orchestrator.tf.hostslots import HostSlots, budget, default_dir

        run_id = run_id or new_run_id()

        host = budget()
        if run_options.get("parallelism") is None:  # auto: the machine's budget
            run_options["parallelism"] = host.slots
        run_options.setdefault("host_slots", HostSlots(default_dir(), host.slots))
        return RunContext(
            stack=self.stack,
            env=self.env,
            tf=self.terraform(run_id),
            store=self.store,
            run_id=run_id,
            run_lock=self.run_lock(run_id, lock_for) if lock_for else None,
            aws=self.aws,
            redactor=self.redactor,
            work_root=self.work_root,
            emulator_url=self.emulator_url,
            supplied_secrets=self.supplied_secrets,
            **run_options,
        )


def terraform_version() -> tuple[str, str]:
    """(binary, version) of the terraform on PATH, before any session (doctor)."""
    from orchestrator.tf.terraform import Terraform, find_binary

    binary = find_binary()
    return binary, Terraform(binary, cli_config=None, base_env={}, redactor=None).version()


def build_terraform(
    options: Options,
    mirror: str | None,
    root: Path,
    redactor,
    base_env: dict[str, str],
    run_id="",
    copy_args="",
    read_lock=None,
):
    """The one place a Terraform is made: binary, CLI config, plugin cache, timeouts."""
    from orchestrator.tf.terraform import Terraform, cli_setup, find_binary, tf_log_env

    base_env = {**base_env, **tf_log_env(root)}
    # The AWS provider appends this to its User-Agent: CloudTrail (and the emulator) see the command.
    base_env["TF_APPEND_USER_AGENT"] = " ".join(
        filter(None, (base_env.get("TF_APPEND_USER_AGENT"), user_agent_token(options.command)))
    )
    cli_config, cli_env = cli_setup(root, mirror)
    base_env.update(cli_env)
    for name, value in cli_env.items():
        if name.startswith("TF_TOKEN_"):
            redactor.add(value)
    return Terraform(
        find_binary(),
        cli_config=cli_config,
        base_env=base_env,
        redactor=redactor,
        timeout=options.terraform_timeout,
        max_retries=options.terraform_retries,
        run_id=run_id,
        copy_args=copy_args,
        read_lock=read_lock,
    )


def mirror_for(options: Options, stack: Stack) -> str | None:
    """The one rule for the provider mirror: the operator's (--provider-mirror,
    ORCHESTRATOR_PROVIDER_MIRROR), else the manifest's [terraform] provider_mirror, else none."""
    return options.provider_mirror or stack.provider_mirror or None


def work_root(project: Project, options: Options) -> Path:
    root = Path(options.work_dir or os.environ.get("ORCHESTRATOR_WORK_DIR") or project.root / ".orchestrator")
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def load(options: Options, env_name: str, suffix: str | None = None) -> tuple[Project, Stack, Environment]:
    project = Project.find(options.project_dir)
    stack = load_stack(project.terraform_dir)
    env = load_environment(project.environments_dir, env_name, stack).with_suffix(suffix)
    return project, stack, env


@contextlib.contextmanager
def open_session(
    options: Options, env_name: str, suffix: str | None = None, *, check_account: bool = True, read_only: bool = False
):
    """A read-only session (outputs, status, smoke, envs, doctor) does not judge ORCHESTRATOR_SECRET_*
    variables (nothing is generated): it only masks their values."""
    from orchestrator.aws import local
    from orchestrator.aws.clients import Aws
    from orchestrator.model.config import SECRET_ENV_PREFIX, supplied_secrets
    from orchestrator.redact import Redactor

    project, stack, env = load(options, env_name, suffix)
    # Registered before anything runs: a supplied secret is masked from the first line on.
    redactor = Redactor()
    if read_only:
        supplied = {}
        for key, value in os.environ.items():
            if key.startswith(SECRET_ENV_PREFIX):
                redactor.add(value)
    else:
        supplied = supplied_secrets(dict(os.environ), stack)
        for value in supplied.values():
            redactor.add(value)
    root = work_root(project, options)
    with contextlib.ExitStack() as stack_ctx:
        url = None
        if options.local or options.emulator_url:
            url = options.emulator_url or local.running(root / "local", local.project_state_dir(project.root))
            if url is None:
                raise PrerequisiteError(
                    f"no local emulator runs for {project.root}: start one with `orchestrator local up` "
                    "(--local never starts one that would vanish with this command)"
                )
            url = stack_ctx.enter_context(local.emulator(url, log_path=root / "moto.log"))
        aws = Aws(env.region, endpoint_url=url, user_agent=user_agent_token(options.command))
        if url:
            # One emulated account serves every environment: the environment's
            # real account id is swapped for the emulator's.
            env = env.with_account(local.EMULATOR_ACCOUNT_ID)
            env = env.with_settings(load_emulator_overrides(project.environments_dir, stack))
        if check_account:
            aws.check_account(env.account_id, env.name)
        yield Session(project, stack, env, aws, root, url, redactor, options, supplied)
