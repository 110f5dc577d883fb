"""The ready-queue: a unit starts as soon as its own dependencies succeeded.

Pure scheduling: the action (plan/apply/destroy) is passed in. Bounded
parallelism, deterministic order among ready units (by name), explicit status
per unit, a failure skips exactly its dependents and names the cause.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum

from orchestrator.core.graph import UnitGraph


class Status(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    NO_CHANGES = "no changes"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def ok(self) -> bool:
        return self in (Status.SUCCEEDED, Status.NO_CHANGES)


@dataclass
class UnitResult:
    unit: str
    status: Status = Status.PENDING
    detail: str = ""
    started: float | None = None
    ended: float | None = None
    add: int = 0
    change: int = 0
    destroy: int = 0
    replace: int = 0
    retries: int = 0
    outputs: dict = field(default_factory=dict)
    hooks: list[str] = field(default_factory=list)
    log_path: str = ""
    error: str = ""
    fingerprint: str | None = None
    cause: type | None = None  # the error class of a failure, e.g. errors.HookError (a post-apply hook)
    resumed: bool = False  # --resume took it as done by an earlier run; nothing ran for it
    declined: bool = False  # skipped because the operator (or for an upstream of it) answered no
    changes: list = field(default_factory=list)  # the plan's resources: address, actions (drift: attributes)
    waits_for: tuple = ()  # plan/drift: the upstream units without state this unit could not be planned before
    preview: bool = False  # plan: a preview (an upstream has no state yet); never applied
    why: str = ""  # --changed: why the unit ran, or that nothing moved since its last apply
    policies: list = field(default_factory=list)  # policies.Verdict of the unit's plan (deny, warn, overridden)
    plan_digest: str | None = None  # sha256 of the saved plan that was applied (the audit trail)
    confirmed_by: str = ""  # who let the plan be applied: the operator at the prompt, --yes, CI
    diff: str = ""  # plan and drift: the plan as terraform printed it (redacted), for --show
    # seconds spent in each terraform command (init, plan, apply, ...)
    timings: dict = field(default_factory=dict)

    def take_counts(self, summary) -> None:
        """A plan's adds, changes, destroys and replacements."""
        self.add, self.change, self.destroy, self.replace = (
            summary.add,
            summary.change,
            summary.destroy,
            summary.replace,
        )

    def fields(self) -> dict:
        """What the JSON report, the events and the audit trail say of a unit."""
        return {
            "unit": self.unit,
            "status": self.status.value,
            "detail": self.detail,
            "add": self.add,
            "change": self.change,
            "destroy": self.destroy,
            "replace": self.replace,
            "duration_s": round(self.duration, 3),
            "retries": self.retries,
            **({"why": self.why} if self.why else {}),
            **({"preview": True} if self.preview else {}),
            **({"policies": [v.to_dict() for v in self.policies]} if self.policies else {}),
        }

    def failed_with(self, error: type) -> bool:
        """Failed, and for this error class (or a subclass of it)."""
        return self.status is Status.FAILED and self.cause is not None and issubclass(self.cause, error)

    def count(self, command_result) -> None:
        """Account one terraform command: its retries and its time."""
        self.retries += command_result.attempts - 1
        name = command_result.subcommand
        self.timings[name] = round(self.timings.get(name, 0.0) + command_result.duration, 3)

    @property
    def duration(self) -> float:
        if self.started is None or self.ended is None:
            return 0.0
        return self.ended - self.started


Action = Callable[[str], UnitResult]


class ReadyQueue:
    def __init__(
        self,
        graph: UnitGraph,
        action: Action,
        *,
        parallelism: int = 4,
        on_start: Callable[[str], None] | None = None,
        on_finish: Callable[[UnitResult], None] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        if parallelism < 1:
            raise ValueError("parallelism must be at least 1")
        self.graph = graph
        self.action = action
        self.parallelism = parallelism
        self.on_start = on_start or (lambda u: None)
        self.on_finish = on_finish or (lambda r: None)
        self.clock = clock
        self.stop = threading.Event()
        self.results: dict[str, UnitResult] = {u: UnitResult(u) for u in graph.units}

    def _ready(self) -> list[str]:
        out = []
        for unit in self.graph.units:
            r = self.results[unit]
            if r.status is Status.PENDING and all(self.results[d].status.ok for d in self.graph.dependencies(unit)):
                out.append(unit)
        return out

    def _skip_dependents(self, unit: str, cause: str, *, declined: bool = False) -> None:
        for dep in sorted(self.graph.descendants(unit)):
            r = self.results[dep]
            if r.status is Status.PENDING:
                r.status = Status.SKIPPED
                r.detail = cause
                r.declined = declined
                self.on_finish(r)

    def _run(self, unit: str) -> UnitResult:
        started = self.clock()
        try:
            result = self.action(unit)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a status
            result = UnitResult(unit, Status.FAILED, detail=str(exc) or type(exc).__name__)
            result.error = getattr(exc, "stderr_tail", "") or ""
            if isinstance(exc, KeyboardInterrupt):
                self.stop.set()
        result.started = started
        result.ended = self.clock()
        return result

    def run(self) -> dict[str, UnitResult]:
        running: dict[Future, str] = {}
        with ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="unit") as pool:
            while True:
                if not self.stop.is_set():
                    for unit in self._ready():
                        if len(running) >= self.parallelism:
                            break
                        self.results[unit].status = Status.RUNNING
                        self.results[unit].started = self.clock()
                        self.on_start(unit)
                        running[pool.submit(self._run, unit)] = unit
                if not running:
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: running[f]):
                    unit = running.pop(fut)
                    result = fut.result()
                    self.results[unit] = result
                    self.on_finish(result)
                    if not result.status.ok:
                        verb = (
                            "failed"
                            if result.status is Status.FAILED
                            else ("was declined" if result.declined else "was skipped")
                        )
                        self._skip_dependents(unit, f"{unit} {verb}", declined=result.declined)
        for r in self.results.values():
            if r.status is Status.PENDING:
                r.status = Status.SKIPPED
                r.detail = "interrupted before it started" if self.stop.is_set() else "not reached"
                self.on_finish(r)
        return self.results

    def interrupt(self) -> None:
        self.stop.set()


@dataclass
class RunReport:
    command: str
    env_id: str
    units: dict[str, UnitResult]
    started: float
    ended: float = 0.0
    smoke: list = field(default_factory=list)
    preflight: dict | None = None  # deploy: findings, or skipped
    notes: list[str] = field(default_factory=list)  # what a previous run that died left behind

    def _not_deployed(self, r: UnitResult) -> bool:
        # plan/drift of a unit whose upstream has no state yet: everything differs
        return self.command in ("plan", "drift") and r.status is Status.SKIPPED and bool(r.waits_for)

    @property
    def failed(self) -> bool:
        return (
            any(r.status is Status.FAILED for r in self.units.values())
            or any(not c.passed for c in self.smoke)
            or any(
                r.status is Status.SKIPPED and not self._not_deployed(r) and not r.declined for r in self.units.values()
            )
        )

    @property
    def declined(self) -> bool:
        """The operator answered no for a unit (it and its dependents were not applied)."""
        return any(r.declined for r in self.units.values())

    @property
    def changed(self) -> bool:
        return any(r.add or r.change or r.destroy or r.replace or self._not_deployed(r) for r in self.units.values())

    @property
    def result(self) -> str:
        """One word for the run: failed, declined, changed or ok (the report's and the audit trail's)."""
        return "failed" if self.failed else ("declined" if self.declined else ("changed" if self.changed else "ok"))
