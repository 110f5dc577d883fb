"""Smoke checks against what was deployed: the manifest's named checks -> results.

Each check (orchestrator.model.library, or a project's entry point) reads AWS
(never writes), returns pass/fail with a reason, and is retried with backoff only while AWS may still be converging
(NotYet), within the check's budget: how long AWS documents the thing may take to settle (an ECS
rollout with its targets' health checks takes minutes). Any other error fails the check at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from orchestrator.errors import error_code
from orchestrator.model.plugins import DEFAULT_CHECK_BUDGET, Context, Fail, MissingOutput, NotYet


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
    budget: float = DEFAULT_CHECK_BUDGET  # seconds of NotYet before the check fails


# Between attempts: 1 s, doubling, at most this (a check's budget can be many minutes).
MAX_WAIT = 15.0
# A check still waiting says so this often (a long budget is not a silent one).
REPORT_EVERY = 30.0


def run_check(
    check: Check,
    *,
    on_wait: Callable[[str, str, float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckResult:
    """Runs the check until it passes, fails, or has said NotYet for its whole budget.
    on_wait(name, reason, seconds waited) is called at the first NotYet and every REPORT_EVERY."""
    from botocore.exceptions import BotoCoreError, ClientError

    count, wait, start = 0, 1.0, clock()
    reported = None
    try:
        while True:
            count += 1
            try:
                return CheckResult(check.name, True, check.fn(), count)
            except NotYet as exc:
                waited = clock() - start
                if waited + wait > check.budget:
                    return CheckResult(
                        check.name, False, f"{exc} (still, after {count} attempts in {waited:.0f}s)", count
                    )
                if on_wait and (reported is None or waited - reported >= REPORT_EVERY):
                    reported = waited
                    on_wait(check.name, str(exc), waited)
                sleep(wait)
                wait = min(wait * 2, MAX_WAIT)
    except Fail as exc:
        return CheckResult(check.name, False, str(exc), count)
    except ClientError as exc:
        return CheckResult(check.name, False, f"AWS error {error_code(exc)}", count)
    except BotoCoreError as exc:
        return CheckResult(check.name, False, f"AWS client error {type(exc).__name__}", count)
    except MissingOutput as exc:
        return CheckResult(check.name, False, f"missing {exc.args[0] if exc.args else exc}", count)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return CheckResult(check.name, False, f"unexpected value: {type(exc).__name__}: {exc}", count)
    except Exception as exc:  # noqa: BLE001 - a project's check may raise anything: it fails, no traceback
        return CheckResult(check.name, False, f"{type(exc).__name__}: {exc}", count)


def calls_for(stack, units) -> list:
    """The smoke checks the manifest names for these units, in graph order."""
    return [c for u in stack.graph.order() if u in units for c in stack.units[u].smoke]


def run_smoke(
    ctx: Context, calls, outputs: dict[str, dict], *, on_wait: Callable[[str, str, float], None] | None = None
) -> list[CheckResult]:
    """Each enabled check with its arguments from its unit's outputs; a unit without outputs fails its checks.
    A check saying NotYet is retried within its budget (its function's converges_within)."""
    results = []
    for c in calls:
        if not c.enabled(ctx.settings):
            continue
        if outputs.get(c.unit) is None:
            results.append(CheckResult(c.label, False, f"unit {c.unit} is not deployed", 0))
            continue
        check = Check(c.label, partial(c, ctx, outputs[c.unit]), c.budget)
        results.append(run_check(check, on_wait=on_wait))
    return results
