"""Plans made at the start of a deploy, ahead of the ready-queue.

A unit whose upstream units are all deployed can be planned at the start of
the run with their current outputs, while the queue works on the upstream.
The plan is used only if every ancestor then ends "no changes" in this run
(nothing was applied above it, so nothing it reads can have moved) and its
inputs are exactly the ones planned with; otherwise it is discarded (the plan
file deleted, so it is never applied by mistake) and the unit plans again.
A no-op deploy or an image change in a leaf costs about one plan, not a chain.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from orchestrator.graph import UnitGraph
from orchestrator.runner import Status, UnitResult
from orchestrator.units import Plan, Units


@dataclass
class EarlyPlan:
    values: dict
    plan: Plan
    scratch: UnitResult  # its counts, retries and hooks (e.g. a recovered errored.tfstate)

    def merge_into(self, result: UnitResult) -> None:
        """The plan's retries, timings and hooks become the unit's."""
        result.retries += self.scratch.retries
        result.timings.update(self.scratch.timings)
        result.hooks.extend(self.scratch.hooks)
        result.detail = "planned early (upstream unchanged)"


class EarlyPlans:
    def __init__(self, units: Units, full_graph: UnitGraph, slots: threading.Semaphore, stopped: Callable[[], bool]):
        self.units = units
        self.full_graph = full_graph
        self.slots = slots  # shared with the queue: at most `parallelism` terraform commands at once
        self.stopped = stopped
        self._futures: dict[str, Future] = {}
        self._pool: ThreadPoolExecutor | None = None

    def start(self, graph: UnitGraph, known: dict[str, dict | None], parallelism: int) -> None:
        """Plans every unit of `graph` with upstream units whose outputs are `known` (deployed)."""
        ancestors = {u: self.full_graph.ancestors(u) for u in graph.units}
        candidates = [
            u for u in graph.order() if graph.dependencies(u) and all(known.get(a) is not None for a in ancestors[u])
        ]
        if not candidates:
            return
        self._pool = ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="early")
        for unit in candidates:
            self._futures[unit] = self._pool.submit(self._plan, unit, {a: known[a] for a in ancestors[unit]})

    def _plan(self, unit: str, upstream: dict[str, dict]) -> EarlyPlan | None:
        """None when it could not be made: the unit then plans in its turn, where an error is reported."""
        with self.slots:
            if self.stopped():
                return None
            try:
                values = self.units.variables_for(unit, upstream)
                scratch = UnitResult(unit)
                self.units.prepare(unit, values, scratch)
                self.units.note(unit, "planning early: every upstream unit is deployed")
                return EarlyPlan(values, self.units.plan(unit, scratch), scratch)
            except Exception:  # noqa: BLE001 - the unit's own turn plans again and reports the error
                return None

    def take(self, unit: str, values: dict, results: dict[str, UnitResult]) -> EarlyPlan | None:
        """The unit's early plan if it is still valid for `values`, given how its ancestors ended."""
        future = self._futures.pop(unit, None)
        if future is None:
            return None
        early = future.result()
        usable = (
            early is not None
            and early.values == values
            and all(  # an ancestor outside this run (--only) is not applied by it
                (r := results.get(a)) is None or r.status is Status.NO_CHANGES for a in self.full_graph.ancestors(unit)
            )
        )
        if not usable:
            self.units.workspace(unit).plan_path.unlink(missing_ok=True)  # never applied by mistake
            return None
        return early

    def close(self) -> None:
        """Waits for plans still running; deletes the ones nobody took (a unit skipped or interrupted)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        for unit in self._futures:
            self.units.workspace(unit).plan_path.unlink(missing_ok=True)
        self._futures = {}
