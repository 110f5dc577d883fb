"""`orchestrator doctor`: the machine and the environment, one line per check.

terraform's version; for each provider the units need, where it will come
from and whether that source answers; credentials and account; the backend's
posture. Each check is a dict (check, ok, detail); the CLI renders them.
"""

from __future__ import annotations

from orchestrator.errors import ConfigError, OrchestratorError


def run_checks(options, env: str) -> list[dict]:
    from orchestrator.aws.bootstrap import DRIFT
    from orchestrator.cli.session import mirror_for, open_session, terraform_version, work_root
    from orchestrator.model.config import Project, load_stack
    from orchestrator.tf.hostslots import HostSlots, budget, default_dir
    from orchestrator.tf.providers import sources

    checks: list[dict] = []

    def add(name: str, ok: bool, detail: str) -> None:
        checks.append({"check": name, "ok": ok, "detail": detail})

    try:
        binary, version = terraform_version()
        major, minor = (int(x) for x in version.split(".")[:2])
        add("terraform", (major, minor) >= (1, 11), f"{binary} {version} (>= 1.11 needed)")
    except OrchestratorError as exc:
        add("terraform", False, exc.message)
    stack = load_stack(Project.find(options.project_dir).terraform_dir)  # a broken manifest: exit 1
    host = budget()
    slots = HostSlots(default_dir(), host.slots)
    add(
        "parallelism auto",
        True,
        f"{host.slots} terraform commands at once on this host ({host.why}); "
        f"{slots.in_use()} in use now by other runs ({slots.directory})",
    )
    try:
        mirror = mirror_for(options, stack)
        for src in sources(stack, mirror):
            name = "provider " + src.provider.removeprefix("registry.terraform.io/")
            add(
                name,
                src.ok,
                f"from {src.origin}" + (f": {src.detail}" if src.detail else "") + f" ({', '.join(src.units)})",
            )
    except OrchestratorError as exc:
        add("providers", False, exc.message)
    try:
        with open_session(options, env, read_only=True) as s:
            add(
                "credentials and account",
                True,
                f"account {s.env.account_id} ({'emulator' if s.emulator_url else 'AWS'})",
            )
            result = s.bootstrapper(verify_only=True).run()
            drift = [f"{st.piece}: {st.detail}" for st in result.steps if st.status == DRIFT]
            add("backend posture", not drift, "; ".join(drift) or f"{s.env.backend.bucket}: every setting in place")
            add("work dir", True, str(work_root(s.project, options)))
    except ConfigError:
        raise  # an unknown environment or a broken file: one line and exit 1, not a check that failed
    except OrchestratorError as exc:
        add("credentials and account", False, exc.message)
    return checks
