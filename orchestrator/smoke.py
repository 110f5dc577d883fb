"""Smoke checks against what was deployed: the manifest's named checks -> results.

Each check (orchestrator.library, or a project's entry point) reads AWS
(never writes), returns pass/fail with a reason, and is retried with bounded backoff only while AWS may still be converging
(NotYet). Any other error fails the check at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from orchestrator.aws import error_code
from orchestrator.plugins import Context, Fail, NotYet


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    reason: str
    attempts: int = 1


@dataclass(frozen=True)
class Check:
    name: str
    fn: Callable[[], str]


def run_check(check: Check, *, attempts: int = 6, max_wait: float = 10.0) -> CheckResult:
    from botocore.exceptions import BotoCoreError, ClientError
    from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

    count = 0
    try:
        for attempt in Retrying(
            retry=retry_if_exception_type(NotYet),
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=0.5, max=max_wait),
            reraise=False,
        ):
            with attempt:
                count += 1
                reason = check.fn()
        return CheckResult(check.name, True, reason, count)
    except RetryError as exc:
        return CheckResult(check.name, False, f"{exc.last_attempt.exception()} (after {count} attempts)", count)
    except Fail as exc:
        return CheckResult(check.name, False, str(exc), count)
    except ClientError as exc:
        return CheckResult(check.name, False, f"AWS error {error_code(exc)}", count)
    except BotoCoreError as exc:
        return CheckResult(check.name, False, f"AWS client error {type(exc).__name__}", count)
    except KeyError as exc:
        return CheckResult(check.name, False, f"missing {exc.args[0] if exc.args else exc}", count)
    except (TypeError, ValueError, IndexError) as exc:
        return CheckResult(check.name, False, f"unexpected value: {type(exc).__name__}: {exc}", count)
    except Exception as exc:  # noqa: BLE001 - a project's check may raise anything: it fails, no traceback
        return CheckResult(check.name, False, f"{type(exc).__name__}: {exc}", count)


def calls_for(stack, units) -> list:
    """The smoke checks the manifest names for these units, in graph order."""
    return [c for u in stack.graph.order() if u in units for c in stack.units[u].smoke]


def run_smoke(ctx: Context, calls, outputs: dict[str, dict], *, attempts: int = 6) -> list[CheckResult]:
    """Each enabled check with its arguments from its unit's outputs; a unit without outputs fails its checks."""
    results = []
    for c in calls:
        if not c.enabled(ctx.settings):
            continue
        if outputs.get(c.unit) is None:
            results.append(CheckResult(c.label, False, f"unit {c.unit} is not deployed", 0))
            continue
        results.append(run_check(Check(c.label, partial(c, ctx, outputs[c.unit])), attempts=attempts))
    return results
