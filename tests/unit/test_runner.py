"""The ready-queue with a fake action: order, cap, skip-on-failure, timing."""

import threading
import time

from orchestrator.core.graph import UnitGraph
from orchestrator.core.runner import ReadyQueue, Status, UnitResult

# network -> security -> {database (slow), edge, observability} -> app
PLATFORM = {
    "network": [],
    "security": ["network"],
    "database": ["network", "security"],
    "edge": ["network", "security"],
    "observability": ["security"],
    "app": ["database", "edge", "observability"],
}


class FakeAction:
    def __init__(self, durations=None, fail=()):
        self.durations = durations or {}
        self.fail = set(fail)
        self.events = []
        self.lock = threading.Lock()
        self.running = 0
        self.max_running = 0

    def __call__(self, unit):
        with self.lock:
            self.events.append(("start", unit))
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        time.sleep(self.durations.get(unit, 0.01))
        with self.lock:
            self.running -= 1
            self.events.append(("end", unit))
        if unit in self.fail:
            raise RuntimeError(f"boom in {unit}")
        return UnitResult(unit, Status.SUCCEEDED)


def starts(action):
    return [u for e, u in action.events if e == "start"]


def test_dependencies_finish_before_dependents_start():
    action = FakeAction()
    results = ReadyQueue(UnitGraph(PLATFORM), action, parallelism=4).run()
    assert all(r.status is Status.SUCCEEDED for r in results.values())
    pos = {(e, u): i for i, (e, u) in enumerate(action.events)}
    for unit, deps in PLATFORM.items():
        for d in deps:
            assert pos[("end", d)] < pos[("start", unit)], (d, unit)


def test_order_among_ready_units_is_by_name():
    action = FakeAction()
    ReadyQueue(UnitGraph(PLATFORM), action, parallelism=1).run()
    assert starts(action) == ["network", "security", "database", "edge", "observability", "app"]


def test_parallel_cap_is_respected():
    g = UnitGraph({f"u{i}": [] for i in range(8)})
    action = FakeAction({f"u{i}": 0.05 for i in range(8)})
    ReadyQueue(g, action, parallelism=3).run()
    assert action.max_running == 3


def test_failure_skips_exactly_its_dependents_and_names_the_cause():
    action = FakeAction(fail={"edge"})
    results = ReadyQueue(UnitGraph(PLATFORM), action, parallelism=4).run()
    assert results["edge"].status is Status.FAILED
    assert "boom in edge" in results["edge"].detail
    assert results["app"].status is Status.SKIPPED
    assert results["app"].detail == "edge failed"
    # independent units finish
    for u in ("network", "security", "database", "observability"):
        assert results[u].status is Status.SUCCEEDED
    assert "app" not in starts(action)


def test_skip_propagates_transitively():
    g = UnitGraph({"a": [], "b": ["a"], "c": ["b"], "d": []})
    results = ReadyQueue(g, FakeAction(fail={"a"}), parallelism=2).run()
    assert results["b"].status is Status.SKIPPED and results["b"].detail == "a failed"
    assert results["c"].status is Status.SKIPPED and results["c"].detail == "a failed"
    assert results["d"].status is Status.SUCCEEDED


def test_teardown_runs_in_reverse_order():
    action = FakeAction()
    ReadyQueue(UnitGraph(PLATFORM).reversed(), action, parallelism=1).run()
    order = starts(action)
    assert order[0] == "app" and order[-1] == "network"
    assert order.index("security") > max(order.index(u) for u in ("database", "edge", "observability"))


def test_a_unit_starts_when_its_own_upstream_is_done_not_when_its_level_is():
    """'late' needs only 'edge'; 'db' is on edge's level. The ready-queue starts 'late' while 'db'
    still runs: db waits for late to start (a 10 s deadline only for a failure), which level-by-level
    waves (late after the whole db wave) would never allow."""
    g = UnitGraph({"net": [], "sec": ["net"], "db": ["sec"], "edge": ["sec"], "late": ["edge"], "app": ["db"]})
    late_started = threading.Event()

    class DbWaitsForLate(FakeAction):
        saw_late = None

        def __call__(self, unit):
            if unit == "late":
                late_started.set()
            if unit == "db":
                self.saw_late = late_started.wait(timeout=10)
            return super().__call__(unit)

    action = DbWaitsForLate()
    results = ReadyQueue(g, action, parallelism=4).run()
    assert action.saw_late is True
    assert all(r.status == Status.SUCCEEDED for r in results.values())
    assert action.events.index(("start", "late")) < action.events.index(("end", "db"))
    assert action.events.index(("end", "db")) < action.events.index(("start", "app"))


def test_interrupt_stops_new_units():
    g = UnitGraph({"a": [], "b": ["a"]})
    holder = {}

    def action(unit):
        holder["q"].interrupt()
        return UnitResult(unit, Status.SUCCEEDED)

    q = ReadyQueue(g, action, parallelism=1)
    holder["q"] = q
    results = q.run()
    assert results["a"].status is Status.SUCCEEDED
    assert results["b"].status is Status.SKIPPED and "interrupted" in results["b"].detail
