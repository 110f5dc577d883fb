import pytest

from orchestrator.core.graph import UnitGraph
from orchestrator.errors import GraphError

DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


def test_order_is_topological_and_deterministic():
    assert UnitGraph(DIAMOND).order() == ["a", "b", "c", "d"]
    assert UnitGraph({"z": [], "y": [], "x": ["z"]}).order() == ["y", "z", "x"]


def test_levels():
    assert UnitGraph(DIAMOND).levels() == [["a"], ["b", "c"], ["d"]]


def test_cycle_names_its_members():
    with pytest.raises(GraphError) as exc:
        UnitGraph({"a": ["c"], "b": ["a"], "c": ["b"], "d": []})
    msg = str(exc.value)
    assert "cycle" in msg
    for m in ("a", "b", "c"):
        assert m in msg
    assert "d" not in msg.split(":", 1)[1]


def test_unknown_dependency():
    with pytest.raises(GraphError, match="unknown unit"):
        UnitGraph({"a": ["nope"]})


def test_subset_pulls_in_dependencies():
    g = UnitGraph(DIAMOND).subset(["b"])
    assert g.units == ("a", "b")
    assert UnitGraph(DIAMOND).subset(["d"]).units == ("a", "b", "c", "d")


def test_subset_unknown_unit_is_an_error():
    with pytest.raises(GraphError, match="unknown unit"):
        UnitGraph(DIAMOND).subset(["e"])


def test_reversed_is_teardown_order():
    r = UnitGraph(DIAMOND).reversed()
    assert r.order() == ["d", "b", "c", "a"]
    assert r.dependencies("a") == {"b", "c"}


def test_descendants_and_ancestors():
    g = UnitGraph(DIAMOND)
    assert g.descendants("b") == {"d"}
    assert g.ancestors("d") == {"a", "b", "c"}
