"""--changed: what a unit's plan depends on, as digests, and the reason it runs (pure)."""

from __future__ import annotations

from orchestrator.core import changes


def _unit(tmp_path):
    unit, module = tmp_path / "unit", tmp_path / "modules" / "m"
    unit.mkdir()
    module.mkdir(parents=True)
    (unit / "main.tf").write_text('module "m" {\n  source = "../modules/m"\n}\nvariable "x" {}\n')
    (module / "main.tf").write_text('output "o" { value = 1 }\n')
    return unit, module


def _last(now, status="succeeded"):
    return {"status": status, "command": "deploy", "run_id": "r1", "digests": now}


STATE = {"lineage": "L", "serial": 3}


def test_nothing_moved_means_no_reason(tmp_path):
    unit, _ = _unit(tmp_path)
    now = changes.record({"x": "a"}, unit, STATE)
    assert changes.why_run(_last(now), changes.record({"x": "a"}, unit, dict(STATE))) is None


def test_each_cause_is_named(tmp_path):
    unit, module = _unit(tmp_path)
    then = changes.record({"x": "a", "y": 1}, unit, STATE)
    assert changes.why_run(None, then) == "no successful apply recorded"
    assert changes.why_run(_last(then, "failed"), then) == "no successful apply recorded"
    assert changes.why_run({**_last(then), "digests": None}, then) == "no digests recorded at its last apply"
    assert changes.why_run(_last(then), changes.record({"x": "b", "y": 2}, unit, STATE)) == "inputs changed: x, y"
    assert changes.why_run(_last(then), changes.record({"x": "a"}, unit, STATE)) == "input changed: y"
    moved = changes.record({"x": "a", "y": 1}, unit, {"lineage": "L", "serial": 5})
    assert changes.why_run(_last(then), moved) == "its state was written since its last apply (serial 3 -> 5)"
    other = changes.record({"x": "a", "y": 1}, unit, {"lineage": "M", "serial": 3})
    assert "another lineage" in changes.why_run(_last(then), other)
    assert changes.why_run(_last(then), changes.record({"x": "a", "y": 1}, unit, None)) == "it has no state"
    (module / "main.tf").write_text('output "o" { value = 2 }\n')  # a module the unit calls
    assert changes.why_run(_last(then), changes.record({"x": "a", "y": 1}, unit, STATE)) == "its files changed"


def test_working_files_do_not_count(tmp_path):
    unit, _ = _unit(tmp_path)
    before = changes.source_digest(unit)
    (unit / ".terraform").mkdir()
    (unit / ".terraform" / "x").write_text("providers")
    assert changes.source_digest(unit) == before


def test_an_artifact_counts_by_its_content_named_file_not_its_path(tmp_path):
    a = changes.input_digests({"zip": "/m1/artifacts/fn-abc.zip"}, artifacts=("zip",))
    assert a == changes.input_digests({"zip": "/m2/other/fn-abc.zip"}, artifacts=("zip",))
    assert a != changes.input_digests({"zip": "/m1/artifacts/fn-def.zip"}, artifacts=("zip",))


def test_digests_hold_no_value(tmp_path):
    unit, _ = _unit(tmp_path)
    rec = changes.record({"x": "a-value-nobody-should-read"}, unit, STATE)
    assert "a-value-nobody-should-read" not in repr(rec)


def test_a_generated_secret_is_never_digested_even_if_it_were_a_value(tmp_path):
    unit, _ = _unit(tmp_path)
    rec = changes.record({"x": "a", "db_password": "hunter2"}, unit, STATE, secrets=("db_password",))
    assert set(rec["inputs"]) == {"x"}
