"""One error hierarchy; each class owns its exit code.

Library code raises these; only the CLI turns them into a line and an exit.
Messages are one line and never carry a secret value.
"""

from __future__ import annotations


class OrchestratorError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(OrchestratorError):
    """Bad input: settings, manifest, environment name, suffix, unit name, command line (as
    terraform: 1 is an error, 2 only ever "differences found")."""

    exit_code = 1


class GraphError(ConfigError):
    """The unit graph is not a DAG, or names an unknown unit."""


class PrerequisiteError(OrchestratorError):
    """Missing terraform binary, credentials, or the wrong AWS account."""

    exit_code = 3


class BackendError(OrchestratorError):
    """The state backend is missing, drifted, or not ours."""

    exit_code = 4


class TerraformError(OrchestratorError):
    """A terraform command failed; carries the command, its output's tail and, for a command run
    with `-json`, its error diagnostics ({"summary", "detail"}, redacted)."""

    exit_code = 5

    def __init__(
        self,
        message: str,
        *,
        command: list[str] | None = None,
        stderr_tail: str = "",
        hint=None,
        diagnostics: list[dict] | None = None,
    ):
        super().__init__(message, hint=hint)
        self.command = command or []
        self.stderr_tail = stderr_tail
        self.diagnostics = diagnostics or []

    def summaries(self) -> list[str]:
        return [str(d.get("summary") or "") for d in self.diagnostics]


class StateLockedError(TerraformError):
    """Another run holds the state lock."""


class StalePlan(ConfigError):
    """`unit apply`: the saved plan was made against other inputs or an older state (plan again)."""


class NotDeployed(ConfigError):
    """A read-only command on an environment or copy that has no state."""


class HookError(OrchestratorError):
    """A post-apply hook failed; a run whose only failures are hooks ends with this code."""

    exit_code = 6


class RunFailed(OrchestratorError):
    """A run finished with at least one failed unit or check (already reported: no message)."""

    exit_code = 7


class ChangesFound(OrchestratorError):
    """plan or drift found differences (already reported): the only exit 2."""

    exit_code = 2


class ProblemsFound(OrchestratorError):
    """preflight failed, orphans found some, or a teardown left live resources (already reported)."""

    exit_code = 10


class Declined(OrchestratorError):
    """The operator answered no at a confirmation prompt: that unit and its dependents were not
    applied, nothing failed (already reported)."""

    exit_code = 11


class NotRunning(OrchestratorError):
    """`local status`: no emulator runs (already said)."""

    exit_code = 1


class ProtectedEnvironmentError(OrchestratorError):
    exit_code = 8


class PolicyDenied(OrchestratorError):
    """A policy at level deny refused a plan (one line per violation); nothing was applied. A run
    whose only failures are denials ends with this code."""

    exit_code = 12


class DeliveryError(OrchestratorError):
    """What the command exists to deliver did not arrive: the review comment of a pull/merge
    request (`report --post`). (A health notification that fails is said, and the run goes on.)"""

    exit_code = 15


class HealthProblems(OrchestratorError):
    """`health` found drift (2), failing smoke checks (13) or both (14) (already reported)."""

    def __init__(self, code: int):
        super().__init__("")
        self.exit_code = code


class TerraformExit(OrchestratorError):
    """`orchestrator tf`: terraform's own exit code (it already said why)."""

    def __init__(self, code: int):
        super().__init__("")
        self.exit_code = code


class Interrupted(OrchestratorError):
    def __init__(self, message: str = "interrupted", *, signum: int = 2):
        super().__init__(message)
        self.exit_code = 128 + signum


def error_code(exc: BaseException) -> str:
    """An AWS error's code ("NoSuchKey", "PreconditionFailed"; "" for anything else)."""
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code", "")
