"""The unit DAG: pure, no I/O."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping

from orchestrator.errors import GraphError


class UnitGraph:
    """Units and their dependencies. Order among independent units is by name."""

    def __init__(self, dependencies: Mapping[str, Iterable[str]]):
        self._deps: dict[str, frozenset[str]] = {u: frozenset(d) for u, d in dependencies.items()}
        for unit, deps in self._deps.items():
            unknown = sorted(d for d in deps if d not in self._deps)
            if unknown:
                raise GraphError(f"unit {unit!r} depends on unknown unit(s): {', '.join(unknown)}")
        cycle = self._find_cycle()
        if cycle:
            raise GraphError(f"dependency cycle: {' -> '.join(cycle)}")

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(sorted(self._deps))

    def dependencies(self, unit: str) -> frozenset[str]:
        return self._deps[unit]

    def dependents(self, unit: str) -> frozenset[str]:
        return frozenset(u for u, d in self._deps.items() if unit in d)

    def _find_cycle(self) -> list[str] | None:
        try:
            graphlib.TopologicalSorter(self._deps).prepare()
        except graphlib.CycleError as exc:
            members = list(exc.args[1])
            # graphlib lists the cycle backwards (node, its dependency, ...).
            return list(reversed(members))
        return None

    def order(self) -> list[str]:
        """A topological order, ties broken by name (deterministic)."""
        sorter = graphlib.TopologicalSorter(self._deps)
        sorter.prepare()
        out: list[str] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready())
            out.extend(ready)
            sorter.done(*ready)
        return out

    def levels(self) -> list[list[str]]:
        depth: dict[str, int] = {}
        for unit in self.order():
            depth[unit] = 1 + max((depth[d] for d in self._deps[unit]), default=-1)
        out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for unit in sorted(depth):
            out[depth[unit]].append(unit)
        return out

    def ancestors(self, unit: str) -> frozenset[str]:
        seen: set[str] = set()
        stack = list(self._deps[unit])
        while stack:
            u = stack.pop()
            if u not in seen:
                seen.add(u)
                stack.extend(self._deps[u])
        return frozenset(seen)

    def descendants(self, unit: str) -> frozenset[str]:
        seen: set[str] = set()
        stack = list(self.dependents(unit))
        while stack:
            u = stack.pop()
            if u not in seen:
                seen.add(u)
                stack.extend(self.dependents(u))
        return frozenset(seen)

    def require(self, *units: str) -> None:
        """Units named on the command line: each one of the graph's, else one line naming the
        unknown ones and the known (the only place that words it)."""
        unknown = sorted(u for u in units if u not in self._deps)
        if unknown:
            raise GraphError(f"unknown unit(s): {', '.join(unknown)} (known: {', '.join(self.units)})")

    def subset(self, only: Iterable[str]) -> UnitGraph:
        """The named units plus everything they need."""
        wanted = list(only)
        self.require(*wanted)
        keep: set[str] = set()
        for u in wanted:
            keep.add(u)
            keep |= self.ancestors(u)
        return UnitGraph({u: self._deps[u] & keep for u in keep})

    def exactly(self, only: Iterable[str]) -> UnitGraph:
        """The named units alone, with the dependencies among them."""
        keep = set(self.subset(only).units) & set(only)  # subset() names the unknown ones
        return UnitGraph({u: self._deps[u] & keep for u in keep})

    def reversed(self) -> UnitGraph:
        """Teardown graph: a unit waits for every unit that depends on it."""
        return UnitGraph({u: self.dependents(u) for u in self._deps})
