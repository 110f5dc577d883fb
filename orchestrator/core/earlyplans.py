"""Plans made at the start of a deploy, ahead of the ready-queue.

A unit whose upstream units are all deployed can be planned at the start of
the run with their current outputs, while the queue works on the upstream.
The plan is used only if every ancestor then ends "no changes" in this run
(nothing was applied above it, so nothing it reads can have moved) and its
inputs are exactly the ones planned with; otherwise it is discarded (the plan
file deleted, so it is never applied by mistake) and the unit plans again.
A no-op deploy or an image change in a leaf costs about one plan, not a chain:
every unit with state is planned at once, the root included, and a unit whose
plan is empty and whose upstream ended "no changes" is done with no other
terraform command. Units that cannot be planned yet are initialised meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from orchestrator.core.graph import UnitGraph
from orchestrator.core.runner import Status, UnitResult
from orchestrator.core.units import Plan, Units
from orchestrator.tf.hostslots import Slots


@dataclass
class EarlyPlan:
    values: dict
    plan: Plan
    scratch: UnitResult  # its counts, retries and hooks (e.g. a recovered errored.tfstate)
    state: object = None  # destroy plans: the unit's state version (lineage, serial) the plan was made on

    def merge_into(self, result: UnitResult, detail: str = "planned early (upstream unchanged)") -> None:
        """The plan's retries, timings and hooks become the unit's."""
        result.retries += self.scratch.retries
        result.timings.update(self.scratch.timings)
        result.hooks.extend(self.scratch.hooks)
        result.detail = detail


class EarlyPlans:
    def __init__(self, units: Units, full_graph: UnitGraph, slots: Slots, stopped: Callable[[], bool]):
        self.units = units
        self.full_graph = full_graph
        self.slots = slots  # shared with the queue: at most `parallelism` terraform commands at once
        self.stopped = stopped
        self._futures: dict[str, Future] = {}
        self._pool: ThreadPoolExecutor | None = None

    def start(self, graph: UnitGraph, known: dict[str, dict | None], parallelism: int) -> None:
        """Plans every unit of `graph` whose upstream units' outputs are `known` (deployed) and
        that has state or an upstream (a root without state is created in one terraform run in
        its turn); every other unit is initialised meanwhile, off the critical path."""
        ancestors = {u: self.full_graph.ancestors(u) for u in graph.units}
        candidates = [
            u
            for u in graph.order()
            if all(known.get(a) is not None for a in ancestors[u]) and (ancestors[u] or known.get(u) is not None)
        ]
        self._pool = ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="early")
        for unit in candidates:
            self._futures[unit] = self._pool.submit(self._plan, unit, {a: known[a] for a in ancestors[unit]})
        for unit in graph.order():
            if unit not in candidates:
                self._pool.submit(self._init, unit)

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

    def start_destroys(self, units: list[str], values_for: Callable[[str], dict], parallelism: int) -> None:
        """Teardown: the destroy plan of each of `units` made at once, while the reverse queue
        destroys the units that need them."""
        self._pool = ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="early")
        for unit in units:
            self._futures[unit] = self._pool.submit(self._plan_destroy, unit, values_for)

    def _plan_destroy(self, unit: str, values_for: Callable[[str], dict]) -> EarlyPlan | None:
        with self.slots:
            if self.stopped():
                return None
            try:
                values = values_for(unit)
                scratch = UnitResult(unit)
                state = self.units.ctx.store.state_version(unit)
                self.units.prepare(unit, values, scratch)
                self.units.note(unit, "planning its destroy early")
                return EarlyPlan(values, self.units.plan(unit, scratch, destroy=True), scratch, state)
            except Exception:  # noqa: BLE001 - the unit's own turn plans again and reports the error
                return None

    def take_destroy(self, unit: str, values: dict) -> EarlyPlan | None:
        """The unit's early destroy plan if its state is still the one it was planned on: a
        dependent's destroy that wrote this unit's state (or anything else that did) discards it.
        A plan that has not started when the unit's turn comes is cancelled: the turn does not wait
        behind plans of units that go later."""
        future = self._futures.pop(unit, None)
        if future is None or future.cancel():
            return None  # not started yet (plans ahead of it still running): the turn plans itself now
        early = future.result()
        if early is None or early.values != values or self.units.ctx.store.state_version(unit) != early.state:
            self.units.workspace(unit).plan_path.unlink(missing_ok=True)  # never applied by mistake
            return None
        return early

    def _init(self, unit: str) -> None:
        """init ahead of the unit's turn (its own turn finds it done); an error is the turn's to report."""
        with self.slots:
            if self.stopped():
                return
            try:
                self.units.ensure_init(unit, self.units.workspace(unit), UnitResult(unit))
            except Exception:  # noqa: BLE001 - the unit's own turn inits again and reports the error
                return

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
