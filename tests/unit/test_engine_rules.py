"""The engine's rules with a fake terraform and an in-memory state store: early plans used and
discarded, resume, confirmation, skip-on-failure, the guard, teardown order. Seconds, no AWS,
no terraform binary. (The integration tests run the same rules with the real ones.)"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from orchestrator.core.context import RunContext
from orchestrator.core.engine import Engine
from orchestrator.core.runner import Status
from orchestrator.errors import HookError, PolicyDenied, TerraformError
from orchestrator.model.config import BackendSettings, Environment, load_stack
from orchestrator.policy import policies
from orchestrator.redact import Redactor
from orchestrator.state.journal import Journal
from orchestrator.tf.terraform import CommandResult

# a -> b -> c, and a -> d; `tag` reaches only a, `size` is what a's database would lose on a replace
MANIFEST = """
[settings]
tag = "string"
size = "number"
image = "string"
keep_key = "bool"

[units.a]
path = "a"
[units.b]
path = "b"
inputs = { upstream = "a.out" }
keep_on_teardown = [{ address = "aws_kms_key.b", why = "b's snapshot needs it", when = "keep_key" }]
[units.c]
path = "c"
inputs = { upstream = "b.out" }
[units.d]
path = "d"
inputs = { upstream = "a.out" }

[guard]
stateful_types = ["aws_db_instance"]

[teardown.settings]
size = 0
"""


def planned(address: str, action: str) -> dict:
    """A `planned_change` event as `terraform plan -json` prints it."""
    return {
        "@level": "info",
        "@message": f"{address}: Plan to {action}",
        "type": "planned_change",
        "change": {"resource": {"addr": address}, "action": action},
    }


class FakeTerraform:
    """Plans compare a unit's variables with what was applied; applies record them."""

    def __init__(self):
        self.applied: dict[str, dict] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail: set[tuple[str, str]] = set()
        self.fail_once: dict[tuple[str, str], str] = {}  # (command, unit) -> stderr of one failure
        self.replaces: set[str] = set()  # units whose plan replaces their database
        self.serials: dict[str, int] = {}  # each unit's state serial: every apply writes it
        self.writes_also: dict[str, str] = {}  # unit -> another unit whose state its apply writes too
        self.after: dict[tuple[str, str], tuple[str, str]] = {}  # a command held until another one was run
        self.timeout = 60.0
        self.run_id = ""
        self.lock = threading.Lock()
        self.removed: dict[str, set[str]] = {}  # unit -> addresses taken out of its state
        self.refreshes: dict[str, tuple[dict, ...]] = {}  # unit -> refresh events its plans print

    def _call(self, command: str, ws) -> None:
        first = self.after.get((command, ws.unit))
        deadline = time.monotonic() + 10
        while first is not None and first not in self.calls:
            assert time.monotonic() < deadline, f"{command} {ws.unit} waited 10 s for {first}"
            time.sleep(0.01)
        with self.lock:
            self.calls.append((command, ws.unit))
        if (command, ws.unit) in self.fail_once:
            stderr = self.fail_once.pop((command, ws.unit))
            raise TerraformError(f"terraform {command} failed for unit {ws.unit}", stderr_tail=stderr)
        if (command, ws.unit) in self.fail:
            raise TerraformError(f"terraform {command} failed for unit {ws.unit}", stderr_tail="Error: boom")

    def _diff(self, ws, destroy: bool) -> tuple[bool, tuple[dict, ...], str]:
        """(changed, the `-json` events terraform prints, the plan as `terraform show` words it)."""
        values = json.loads(ws.var_file.read_text())
        current = self.applied.get(ws.unit)
        if destroy:
            if current is None:
                return False, (), ""
            return True, (planned(f"aws_thing.{ws.unit}", "delete"),), f"  # aws_thing.{ws.unit} will be destroyed\n"
        if current == values:
            return False, (), ""
        action, verb = ("create", "will be created") if current is None else ("update", "will be updated in-place")
        head = "Terraform will perform the following actions:\n\n"
        moved = "".join(
            f'      ~ {k} = "{(current or {}).get(k)}" -> "{v}"\n'
            for k, v in sorted(values.items())
            if current and current.get(k) != v
        )
        return True, (planned(f"aws_thing.{ws.unit}", action),), f"{head}  # aws_thing.{ws.unit} {verb}\n{moved}"

    def _result(self, command: str, events: tuple[dict, ...] = ()) -> CommandResult:
        return CommandResult(["terraform", "-chdir=x", command], 0, "", "", 0.0, events=events)

    def init(self, ws, backend_config, **kw):
        self._call("init", ws)
        ws.data_dir.mkdir(parents=True, exist_ok=True)
        (ws.data_dir / "terraform.tfstate").write_text("{}")
        return self._result("init", "")

    def plan(self, ws, *, destroy=False, **kw):
        self._call("plan", ws)
        changed, events, text = self._diff(ws, destroy)
        events += self.refreshes.get(ws.unit, ())
        saved = {"values": json.loads(ws.var_file.read_text()), "destroy": destroy, "text": text}
        ws.plan_path.write_text(json.dumps(saved))
        return changed, self._result("plan", events)

    def _wrote(self, unit: str) -> None:
        for u in (unit, self.writes_also.get(unit)):
            if u:
                self.serials[u] = self.serials.get(u, 0) + 1

    def apply(self, ws, **kw):
        self._call("apply", ws)
        self._wrote(ws.unit)
        saved = json.loads(ws.plan_path.read_text())  # exactly the saved plan
        if saved["destroy"]:
            self.applied.pop(ws.unit, None)
        else:
            self.applied[ws.unit] = saved["values"]
        return self._result("apply", "")

    def apply_auto(self, ws, **kw):
        self._call("apply_auto", ws)
        self._wrote(ws.unit)
        changed, events, _ = self._diff(ws, False)
        self.applied[ws.unit] = json.loads(ws.var_file.read_text())
        return self._result("apply", events)

    def show_plan_text(self, ws, **kw):
        self.calls.append(("show_text", ws.unit))
        return json.loads(ws.plan_path.read_text())["text"]

    def show_plan(self, ws, **kw):
        self.calls.append(("show", ws.unit))
        saved = json.loads(ws.plan_path.read_text())
        actions = ["delete"] if saved["destroy"] else (["delete", "create"] if ws.unit in self.replaces else ["update"])
        kind = "aws_db_instance" if ws.unit in self.replaces else "aws_thing"
        change = {"actions": actions, "after": None if saved["destroy"] else {"tags_all": {"Owner": "o"}}}
        return {"resource_changes": [{"address": f"{kind}.{ws.unit}", "type": kind, "change": change}]}

    def state_push(self, ws, state_file, **kw):
        self._call("state_push", ws)

    def state_rm(self, ws, addresses, **kw):
        self._call("state_rm", ws)
        self.removed.setdefault(ws.unit, set()).update(addresses)

    def count(self, command: str, unit: str) -> int:
        return self.calls.count((command, unit))


class MemoryJournal(Journal):
    def __init__(self, docs: dict, redactor, run_id):
        self.docs, self.redactor, self.run_id = docs, redactor, run_id
        self.lock = threading.Lock()
        self.doc = None
        self.writable = lambda: True

    def load(self) -> dict:
        if self.doc is None:
            self.doc = json.loads(json.dumps(self.docs.get("journal") or {"version": 1, "units": {}, "runs": []}))
        return self.doc

    def _save(self) -> None:
        self.docs["journal"] = json.loads(json.dumps(self.doc))


class MemoryStore:
    def __init__(self, tf: FakeTerraform):
        self.tf, self.docs = tf, {}

    def key_arn(self) -> str:
        return "arn:aws:kms:us-east-1:123456789012:key/fake"

    def outputs(self, unit: str) -> dict | None:
        values = self.tf.applied.get(unit)
        return None if values is None else {"out": f"{unit}({values.get('tag', values.get('upstream'))})"}

    def lock(self, unit: str):
        return None

    def state_version(self, unit: str):
        return None if unit not in self.tf.serials else ("lineage", self.tf.serials[unit])

    def backend_config(self, unit: str) -> dict:
        return {"key": f"fake/{unit}.tfstate"}

    def state(self, unit: str) -> dict | None:
        """Each applied unit holds one KMS key, until state rm takes it out."""
        if unit not in self.tf.applied:
            return None
        resources = []
        if f"aws_kms_key.{unit}" not in self.tf.removed.get(unit, set()):
            arn = f"arn:aws:kms:us-east-1:123456789012:key/{unit}"
            resources.append(
                {
                    "mode": "managed",
                    "type": "aws_kms_key",
                    "name": unit,
                    "instances": [{"attributes": {"arn": arn, "id": unit}}],
                }
            )
        outputs = {k: {"value": v} for k, v in (self.outputs(unit) or {}).items()}
        return {
            "lineage": "lineage",
            "serial": self.tf.serials.get(unit, 0),
            "resources": resources,
            "outputs": outputs,
        }

    def kept(self) -> list[dict]:
        return self.docs.get("kept", [])

    def stranded(self, known) -> list[str]:
        """Units with state the manifest does not name (a test puts them in tf.applied)."""
        return sorted(u for u in self.tf.applied if u not in set(known))

    def add_kept(self, entries: list[dict]) -> None:
        self.tf.calls.append(("add_kept", entries[0]["unit"]))
        self.docs["kept"] = self.kept() + entries

    def delete_reviews(self) -> int:
        self.deleted = [*getattr(self, "deleted", []), "reviews"]
        return 1

    def delete_plans(self) -> int:
        """A pipeline's saved plans of the copy (a test sets how many: docs["plans"])."""
        self.deleted = [*getattr(self, "deleted", []), "plans"]
        return self.docs.pop("plans", 0)


@pytest.fixture
def world(tmp_path):
    tf_dir = tmp_path / "terraform"
    variables_of = {"a": ("tag", "size"), "b": ("upstream",), "c": ("upstream",), "d": ("upstream", "image")}
    for unit, variables in variables_of.items():
        (tf_dir / unit).mkdir(parents=True)
        (tf_dir / unit / "main.tf").write_text(
            "".join(f'variable "{v}" {{}}\n' for v in variables) + 'output "out" { value = 1 }\n'
        )
        (tf_dir / unit / ".terraform.lock.hcl").write_text("# fake\n")
    (tf_dir / "stack.toml").write_text(MANIFEST)
    stack = load_stack(tf_dir)
    backend = BackendSettings("bucket", "fake", "us-east-1", "alias/fake")
    env = Environment(
        "dev", tmp_path / "env.toml", "us-east-1", "123456789012", "fx", "p", "r", "o", False, backend,
        {"tag": "v1", "size": 10, "image": "api:v1"},
    )  # fmt: skip
    tf = FakeTerraform()
    store = MemoryStore(tf)

    def engine(
        env=env, *, resume=False, changed=False, allow_replace=(), stack=stack, plan_text=False, **options
    ) -> Engine:
        options.setdefault("early_destroy_width", 4)  # every destroy planned ahead at once, unless a test says
        overrides = options.pop("overrides", None) or policies.overrides([], None, allow_replace)
        redactor = Redactor()
        ctx = RunContext(
            stack, env, tf, store, aws=None, redactor=redactor, work_root=tmp_path / "work",
            journal=lambda run_id: MemoryJournal(store.docs, redactor, run_id), **options,
        )  # fmt: skip
        return Engine(ctx, resume=resume, changed=changed, overrides=overrides, plan_text=plan_text)

    engine.tf, engine.env, engine.store, engine.stack = tf, env, store, stack
    return engine


def statuses(report) -> dict[str, str]:
    return {u: r.status.value for u, r in report.units.items()}


def test_a_no_op_deploy_plans_every_unit_once_the_root_included_and_runs_nothing_else(world):
    assert statuses(world().deploy()) == dict.fromkeys("abcd", "succeeded")
    world.tf.calls.clear()
    report = world().deploy()
    assert statuses(report) == dict.fromkeys("abcd", "no changes")
    # one plan per unit, made at the start side by side; no apply, no init (all initialised already)
    assert sorted(world.tf.calls) == [("plan", u) for u in "abcd"], world.tf.calls
    for unit in "abcd":
        assert report.units[unit].detail == "planned early (upstream unchanged)"
    assert not (Path(report.units["b"].log_path).parent / "tfplan").exists()  # no plan file outlives a run


def test_an_image_bump_plans_every_unit_once_and_applies_only_the_leaf_that_changed(world):
    world().deploy()
    world.tf.calls.clear()
    report = world(env=world.env.with_settings({"image": "api:v2"})).deploy()
    assert statuses(report) == {"a": "no changes", "b": "no changes", "c": "no changes", "d": "succeeded"}
    assert sorted(world.tf.calls) == sorted([("plan", u) for u in "abcd"] + [("apply", "d")]), world.tf.calls
    assert world.tf.applied["d"]["image"] == "api:v2"


def test_a_first_deploy_initialises_every_unit_once_and_creates_each_in_one_run(world):
    report = world().deploy()
    assert statuses(report) == dict.fromkeys("abcd", "succeeded")
    for unit in "abcd":
        assert world.tf.count("init", unit) == 1 and world.tf.count("apply_auto", unit) == 1, world.tf.calls


def test_an_upstream_change_discards_the_early_plans_below_it(world):
    world().deploy()
    world.tf.calls.clear()
    report = world(env=world.env.with_settings({"tag": "v2"})).deploy()
    assert statuses(report) == dict.fromkeys("abcd", "succeeded")
    for unit in "bcd":
        # planned early with a's old output, discarded, then planned and applied with the new one
        assert world.tf.count("plan", unit) == 1 and world.tf.count("apply_auto", unit) == 1, world.tf.calls
        assert report.units[unit].detail != "planned early (upstream unchanged)"
    assert world.tf.applied["c"]["upstream"] == "b(a(v2))"


def test_a_failed_unit_skips_exactly_its_dependents_and_resume_reruns_only_what_did_not_finish(world):
    world.tf.fail.add(("apply_auto", "b"))
    report = world().deploy()
    assert statuses(report) == {"a": "succeeded", "b": "failed", "c": "skipped", "d": "succeeded"}
    assert report.units["c"].detail.startswith("b failed") or "b" in report.units["c"].detail
    assert report.failed
    world.tf.fail.clear()
    world.tf.calls.clear()
    report = world(resume=True).deploy()
    assert statuses(report) == {"a": "no changes", "b": "succeeded", "c": "succeeded", "d": "no changes"}
    first_run = world.store.docs["journal"]["runs"][0]["run_id"]
    assert report.units["a"].detail == f"resumed: unchanged since run {first_run}"
    assert {u for _, u in world.tf.calls} == {"b", "c"}
    journal = world.store.docs["journal"]["units"]
    assert journal["a"]["status"] == "resumed" and journal["b"]["status"] == "succeeded"
    # A second resume still takes a resumed unit as done, and still names the run that did it.
    world.tf.calls.clear()
    report = world(resume=True).deploy()
    assert report.units["a"].detail == f"resumed: unchanged since run {first_run}"
    assert world.tf.calls == []  # every unit finished in an earlier run: nothing runs


def test_a_plan_the_operator_declines_is_skipped_with_its_dependents_and_never_applied(world):
    asked = []

    def confirm(unit, summary, log_path):
        asked.append((unit, summary.text()))
        return unit != "b"

    report = world(confirm=confirm).deploy()
    assert statuses(report) == {"a": "succeeded", "b": "skipped", "c": "skipped", "d": "succeeded"}
    assert report.units["b"].detail == "declined at the prompt"
    assert report.units["c"].detail == "b was declined"
    # declined is an outcome of its own: not a failure (exit 11, journaled "declined")
    assert report.declined and not report.failed
    assert world.store.docs["journal"]["runs"][-1]["result"] == "declined"
    assert ("b", "+1 ~0 -0 ±0") in asked and "c" not in {u for u, _ in asked}
    assert "b" not in world.tf.applied and world.tf.count("apply", "a") == 1  # the saved plan, not apply_auto
    assert not (Path(report.units["b"].log_path).parent / "tfplan").exists()


def test_a_protected_environment_refuses_a_replace_of_stateful_data_and_applies_nothing(world):
    from dataclasses import replace

    world().deploy()
    world.tf.replaces.add("a")
    prod = replace(world.env, protected=True).with_settings({"tag": "v2"})
    report = world(env=prod).deploy()
    assert report.units["a"].status is Status.FAILED
    assert report.units["a"].detail == ("denied by policy: stateful_replace at aws_db_instance.a; nothing was applied")
    assert report.units["a"].cause is PolicyDenied
    assert world.tf.applied["a"]["tag"] == "v1"
    assert statuses(report)["b"] == "skipped"
    assert world(env=prod, allow_replace={"aws_db_instance.a"}).deploy().units["a"].status is Status.SUCCEEDED


def test_plan_applies_nothing_and_teardown_destroys_in_reverse_with_its_settings_first(world):
    world().deploy()
    world.tf.calls.clear()
    report = world(env=world.env.with_settings({"tag": "v2"})).plan()
    assert statuses(report)["a"] == "succeeded" and report.units["a"].detail == "aws_thing.a"
    assert not [c for c in world.tf.calls if c[0].startswith("apply")]
    world.tf.calls.clear()
    report = world().teardown()
    assert statuses(report) == dict.fromkeys("abcd", "succeeded")
    order = [u for c, u in world.tf.calls if c == "apply"]
    assert order.index("a") > max(order.index("b"), order.index("d")) and order.index("b") > order.index("c")
    assert world.tf.count("apply_auto", "a") == 1  # size = 0 applied before a's destroy
    assert report.units["a"].hooks == ["before destroy: applied size"]
    assert world.tf.applied == {}
    assert getattr(world.store, "deleted", []) == ["reviews", "plans"] and report.notes == []  # no plan was saved


def test_a_whole_teardown_deletes_the_copys_saved_plans_a_partial_one_keeps_them(world):
    world().deploy()
    world.store.docs["plans"] = 3
    world().teardown(["c"])
    assert getattr(world.store, "deleted", []) == []
    report = world().teardown()
    assert world.store.deleted == ["reviews", "plans"]
    assert "deleted 3 saved plan object(s) of dev never applied" in report.notes, report.notes


def test_teardown_keeps_what_outlives_the_environment_out_of_state_recorded_first(world):
    """keep_on_teardown where its setting is on: the unit plans in its turn, the resource is
    recorded, then taken out of state, then the destroy planned and applied; the summary names
    it. Where the setting is off, it is destroyed like the rest."""
    keeping = world.env.with_settings({"keep_key": True})
    world(env=keeping).deploy()
    world.tf.calls.clear()
    report = world(env=keeping).teardown()
    assert statuses(report) == dict.fromkeys("abcd", "succeeded")
    b = [c for c, u in world.tf.calls if u == "b"]
    assert b.index("add_kept") < b.index("state_rm") < b.index("plan") < b.index("apply"), b
    assert report.units["b"].detail != "destroy planned early"
    assert report.units["b"].hooks == [
        "kept aws_kms_key.b (arn:aws:kms:us-east-1:123456789012:key/b): b's snapshot needs it"
    ]
    assert [(k["unit"], k["address"], k["id"]) for k in world.store.kept()] == [("b", "aws_kms_key.b", "b")]
    assert world.tf.removed == {"b": {"aws_kms_key.b"}}

    world().deploy()  # keep_key off
    world.tf.calls.clear()
    world.tf.removed.clear()
    report = world().teardown()
    assert "state_rm" not in [c for c, _ in world.tf.calls] and report.units["b"].hooks == []
    assert report.units["b"].detail == "destroy planned early"


def test_teardown_plans_each_destroy_at_the_start_and_applies_it_when_the_dependents_are_gone(world):
    world().deploy()
    world.tf.calls.clear()

    def turn_after_its_early_plan_began(unit: str) -> None:
        # The early plans start with the teardown and its first turn (d's) comes at once: on a
        # loaded machine the turn could win the race and cancel a plan not yet picked up, which
        # is right (tested below) but not this test's case. Each turn waits (10 s at most) until
        # its unit's plan began; were none made early, the assertions below say so.
        deadline = time.monotonic() + 10
        while unit != "a" and ("plan", unit) not in world.tf.calls and time.monotonic() < deadline:
            time.sleep(0.01)

    report = world(on_start=turn_after_its_early_plan_began).teardown()
    assert statuses(report) == dict.fromkeys("abcd", "succeeded")
    for unit in "bcd":  # no settings to lift: destroy planned early, once, applied once
        assert (world.tf.count("plan", unit), world.tf.count("apply", unit)) == (1, 1), world.tf.calls
        assert report.units[unit].detail == "destroy planned early"
    # a lifts size first: planned in its turn, after the settings were applied
    assert report.units["a"].detail != "destroy planned early" and world.tf.count("apply_auto", "a") == 1
    assert world.tf.applied == {}


def test_an_early_destroy_plan_is_discarded_when_a_dependents_destroy_wrote_the_units_state(world):
    world().deploy()
    world.tf.calls.clear()
    world.tf.writes_also["c"] = "b"  # c's destroy also writes b's state ...
    world.tf.after[("apply", "c")] = ("plan", "b")  # ... after b's destroy was planned early
    report = world().teardown()
    assert statuses(report) == dict.fromkeys("abcd", "succeeded")
    assert (world.tf.count("plan", "b"), world.tf.count("apply", "b")) == (2, 1), world.tf.calls
    assert report.units["b"].detail != "destroy planned early"
    assert report.units["d"].detail == "destroy planned early"


def test_a_destroy_plan_not_started_when_its_units_turn_comes_is_cancelled_and_made_in_the_turn(world):
    """One early plan at a time: c's holds the only worker until d is destroyed, so d's turn does not
    wait behind it; it cancels d's early plan and plans itself. c's plan, once made, is used."""
    world().deploy()
    world.tf.calls.clear()
    world.tf.after[("plan", "c")] = ("apply", "d")
    report = world(early_destroy_width=1).teardown()
    assert statuses(report) == dict.fromkeys("abcd", "succeeded")
    assert report.units["d"].detail != "destroy planned early"
    assert report.units["c"].detail == "destroy planned early"
    for unit in "cd":
        assert (world.tf.count("plan", unit), world.tf.count("apply", unit)) == (1, 1), world.tf.calls


def test_an_early_plan_is_discarded_when_an_ancestor_applied_even_with_the_same_inputs(world):
    world().deploy()
    world.tf.calls.clear()
    report = world(env=world.env.with_settings({"size": 20})).deploy()  # a changes; its output does not
    assert report.units["a"].status is Status.SUCCEEDED
    for unit in "bcd":
        assert report.units[unit].detail != "planned early (upstream unchanged)", unit
        assert world.tf.count("plan", unit) == 1 and world.tf.count("apply_auto", unit) == 1, world.tf.calls


def test_an_early_plan_made_with_outputs_that_moved_since_is_discarded(world):
    world().deploy()
    world.tf.calls.clear()
    reads = []
    plain = world.store.outputs

    def moving(unit):
        out = plain(unit)
        if unit == "a":
            reads.append(unit)
            if len(reads) > 1:  # after the early plans read it, a's output moves without a change of a
                out = {"out": "a(moved)"}
        return out

    world.store.outputs = moving
    report = world().deploy()
    assert report.units["a"].status is Status.NO_CHANGES
    assert report.units["b"].detail != "planned early (upstream unchanged)"
    assert world.tf.applied["b"]["upstream"] == "a(moved)"


def test_skipped_units_are_journaled_with_their_cause(world):
    world.tf.fail.add(("apply_auto", "b"))
    world().deploy()
    units = world.store.docs["journal"]["units"]
    assert units["c"]["status"] == "skipped" and "b" in units["c"]["detail"]
    assert units["b"]["status"] == "failed" and units["d"]["status"] == "succeeded"


def test_a_run_whose_only_failure_is_a_hook_ends_with_exit_6(world, tmp_path):
    from types import SimpleNamespace

    from orchestrator.errors import RunFailed
    from orchestrator.report.views import finish

    engine = world()

    def broken_hook(unit, outputs, result):
        if unit == "b":
            raise HookError("write_db_endpoint: AccessDeniedException on arn:secret")

    engine.units.run_hooks = broken_hook
    report = engine.deploy()
    assert report.units["b"].cause is HookError and report.units["c"].status is Status.SKIPPED
    session = SimpleNamespace(redactor=Redactor(), work_root=tmp_path / "w")
    order = list(report.units)
    with pytest.raises(HookError) as exc:
        finish(report, session, False, order)
    assert exc.value.exit_code == 6
    report.units["d"].status, report.units["d"].cause = Status.FAILED, TerraformError
    with pytest.raises(RunFailed):
        finish(report, session, False, order)


def test_teardown_asks_for_each_units_destroy_plan_before_it_changes_anything(world):
    world().deploy()
    world.tf.calls.clear()
    asked = []

    def confirm(unit, summary, log_path):
        asked.append((unit, summary.text()))
        return unit != "a"  # keep the root

    report = world(confirm=confirm).teardown()
    assert statuses(report) == {"a": "skipped", "b": "succeeded", "c": "succeeded", "d": "succeeded"}
    assert report.units["a"].detail == "declined at the prompt" and report.declined and not report.failed
    assert ("c", "+0 ~0 -1 ±0") in asked and ("a", "+0 ~0 -1 ±0") in asked
    # a's teardown settings (size = 0) would have been applied before its destroy: never, since declined
    assert world.tf.count("apply_auto", "a") == 0 and world.tf.applied["a"]["size"] == 10
    assert world.tf.count("apply", "a") == 0 and world.tf.count("apply", "b") == 1


def test_only_applies_the_named_units_alone_with_their_upstream_read_from_state(world):
    from orchestrator.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unit a, upstream of b, is not deployed: add --with-upstream"):
        world().deploy(["b"])
    assert world.tf.calls == []  # refused before any terraform command
    report = world().deploy(["b"], with_upstream=True)
    assert set(report.units) == {"a", "b"} and statuses(report) == {"a": "succeeded", "b": "succeeded"}
    world.tf.calls.clear()
    report = world(env=world.env.with_settings({"tag": "v2"})).deploy(["c"])  # a's change is not applied
    assert statuses(report) == {"c": "succeeded"} and world.tf.applied["a"]["tag"] == "v1"
    assert {u for _, u in world.tf.calls} == {"c"}


def test_teardown_only_destroys_the_named_units_and_never_one_still_needed(world):
    from orchestrator.errors import ConfigError

    world().deploy()
    with pytest.raises(ConfigError, match=r"unit b is needed by c, still deployed: include them in --only"):
        world().teardown(["b"])
    report = world().teardown(["b", "c"])
    assert statuses(report) == {"b": "succeeded", "c": "succeeded"}
    assert set(world.tf.applied) == {"a", "d"}


GONE = (
    "Error: deleting ELBv2 Listener (arn:aws:elasticloadbalancing:...): operation error Elastic Load "
    "Balancing v2: DeleteListener, https response error StatusCode: 400, ListenerNotFound: The specified "
    "listener does not exist."
)


def test_a_destroy_that_failed_on_an_object_already_gone_is_planned_again_once_and_finishes(world):
    world().deploy()
    world.tf.fail_once[("apply", "c")] = GONE
    report = world().teardown()
    assert set(statuses(report).values()) == {"succeeded"}, report.units["c"].detail
    assert world.tf.count("plan", "c") == 2 and world.tf.count("apply", "c") == 2
    assert report.units["c"].retries == 1 and world.tf.applied == {}


def test_a_destroy_failing_for_another_reason_or_twice_fails_the_unit_and_keeps_its_upstream(world):
    world().deploy()
    world.tf.fail_once[("apply", "c")] = "Error: AccessDenied: not authorized to perform DeleteThing"
    report = world().teardown()
    assert statuses(report)["c"] == "failed" and statuses(report)["b"] == "skipped"
    assert world.tf.count("apply", "c") == 1  # not retried

    world.tf.fail.add(("apply", "c"))  # every later apply of c fails, even after the re-plan
    world.tf.fail_once[("apply", "c")] = GONE
    report = world().teardown()
    assert statuses(report)["c"] == "failed" and "b" in world.tf.applied
    assert world.tf.count("apply", "c") == 1 + 2  # the first failure, and exactly one more try


def test_plan_only_plans_the_named_units_alone_as_deploy_only_applies_them_alone(world):
    """--only has one meaning everywhere: those units alone (their upstream read from state)."""
    world().deploy()
    world.tf.calls.clear()
    report = world(env=world.env.with_settings({"tag": "v2"})).plan(["c"])
    assert list(report.units) == ["c"] and statuses(report) == {"c": "no changes"}
    assert world.tf.calls == [("plan", "c")]


def test_state_of_a_unit_the_manifest_no_longer_names_stops_teardown_and_is_said_by_deploy_and_plan(world):
    """A renamed unit strands its state: teardown refuses before destroying anything (the stranded
    unit may depend on any unit), and deploy and plan say so with the commands that fix it."""
    from orchestrator.errors import ConfigError

    world().deploy()
    world.tf.applied["metrics"] = {"upstream": "a(v1)"}  # state under a name the manifest lost
    world.tf.calls.clear()
    with pytest.raises(ConfigError, match=r"teardown refused \(nothing destroyed\): state of unit\(s\) metrics"):
        world().teardown()
    assert world.tf.calls == [] and set(world.tf.applied) == {"a", "b", "c", "d", "metrics"}
    said = []
    report = world(say=said.append).plan()
    assert any("s3://bucket/fake/dev/metrics.tfstate" in n and "aws s3 mv" in n for n in report.notes), report.notes
    assert said and said[0].startswith("warning: state of unit(s) metrics")
    report = world().deploy()
    assert any("--only metrics" in n for n in report.notes)


def test_the_prompt_shows_each_attribute_that_changes_redacted(world):
    """The operator decides on the attributes that move, not only on the addresses; a secret
    value in the plan is masked."""
    from orchestrator.redact import Redactor

    world().deploy()
    seen = {}

    def confirm(unit, summary, log_path):
        seen[unit] = summary.diff
        return False

    redactor = Redactor()
    redactor.add("hunter2-secret-tag")
    engine = world(env=world.env.with_settings({"tag": "hunter2-secret-tag"}), confirm=confirm)
    engine.ctx.redactor = redactor
    engine.deploy()
    assert "# aws_thing.a will be updated in-place" in seen["a"]
    assert '~ tag = "v1" -> "' in seen["a"] and "hunter2-secret-tag" not in seen["a"]


def changed(world, env=None):
    return world(env=env or world.env, changed=True).deploy()


def test_changed_runs_no_terraform_for_what_did_not_move_and_exactly_the_consumers_of_what_did(world):
    world().deploy()
    world.tf.calls.clear()
    report = changed(world)
    assert world.tf.calls == [] and statuses(report) == dict.fromkeys("abcd", "no changes")
    assert all(r.why.startswith("unchanged since run ") for r in report.units.values())
    # d's own setting: d alone
    report = changed(world, world.env.with_settings({"image": "api:v2"}))
    # its upstream is unmoved, so no early plan: plan and apply in one terraform run, as by hand
    assert world.tf.calls == [("apply_auto", "d")] and report.units["d"].why == "input changed: image"
    world.tf.calls.clear()
    # a's output moves (its tag): every unit below consumes it, in turn
    report = changed(world, world.env.with_settings({"image": "api:v2", "tag": "v2"}))
    assert {u for _, u in world.tf.calls} == set("abcd")
    assert report.units["a"].why == "input changed: tag" and report.units["b"].why == "input changed: upstream"
    world.tf.calls.clear()
    # a state written behind the journal's back: planned
    world.tf.serials["c"] += 1
    report = changed(world, world.env.with_settings({"image": "api:v2", "tag": "v2"}))
    assert {u for _, u in world.tf.calls} == {"c"}
    assert report.units["c"].why.startswith("its state was written since its last apply")


def test_changed_after_a_failure_runs_the_failed_unit_and_what_it_skipped(world):
    world().deploy()
    world.tf.fail.add(("apply_auto", "b"))
    report = changed(world, world.env.with_settings({"tag": "v2"}))
    assert statuses(report)["b"] == "failed"
    world.tf.fail.clear()
    world.tf.calls.clear()
    report = changed(world, world.env.with_settings({"tag": "v2"}))
    for unit in "ad":  # applied by the run that failed in b (d needs only a)
        assert report.units[unit].why.startswith("unchanged since run "), report.units[unit]
    assert report.units["b"].why == "no successful apply recorded" and report.units["b"].status.value == "succeeded"
    assert {u for _, u in world.tf.calls} == {"b", "c"}


# ---- policies ---------------------------------------------------------------------------------
def with_policies(world, entries) -> object:
    """The world's stack with these [[policies]] entries."""
    from dataclasses import replace

    return replace(world.stack, policies=policies.from_manifest(entries, "stack.toml", guard_rules=False))


def no_destroy(plan, facts):
    """A project's policy: nothing of this environment is destroyed."""
    return [(c["address"], "destroys it") for c in plan["resource_changes"] if "delete" in c["change"]["actions"]]


def test_a_deny_policy_refuses_a_teardowns_destroy_plan_and_destroys_nothing(world, monkeypatch):
    monkeypatch.setitem(policies.BUILTIN, "no_destroy", no_destroy)
    world().deploy()
    stack = with_policies(world, [{"policy": "no_destroy", "environments": ["dev"]}])
    report = world(stack=stack).teardown()
    assert statuses(report) == {"c": "failed", "d": "failed", "b": "skipped", "a": "skipped"}
    assert report.units["c"].cause is PolicyDenied
    assert report.units["c"].detail == "denied by policy: no_destroy at aws_thing.c; nothing was applied"
    assert sorted(world.tf.applied) == ["a", "b", "c", "d"]  # nothing destroyed
    assert not [c for c in world.tf.calls if c[0] == "apply"]
    accepted = policies.overrides([f"no_destroy:aws_thing.{u}" for u in "abcd"], "CHG-7 decommission")
    done = world(stack=stack, overrides=accepted).teardown()
    assert set(statuses(done).values()) == {"succeeded"}
    assert world.tf.applied == {}
    assert {(v.policy, v.override) for r in done.units.values() for v in r.policies} == {
        ("no_destroy", "CHG-7 decommission")
    }


def test_a_warn_policy_is_shown_and_recorded_and_applies(world, tmp_path, capsys):
    from types import SimpleNamespace

    from orchestrator.report.views import finish

    stack = with_policies(world, [{"policy": "ownership_tags", "level": "warn", "tags": ["Owner", "Project"]}])
    report = world(stack=stack).deploy()
    assert set(statuses(report).values()) == {"succeeded"}
    a = report.units["a"].policies
    assert [(v.policy, v.level, v.address, v.why) for v in a] == [
        ("ownership_tags", "warn", "aws_thing.a", "has no tag Project")
    ]
    assert ("apply_auto", "a") not in world.tf.calls and ("show", "a") in world.tf.calls  # a saved plan, read
    session = SimpleNamespace(redactor=Redactor(), work_root=tmp_path / "w")
    finish(report, session, True, list(report.units))
    out = capsys.readouterr()
    assert "a: policy ownership_tags (warn): aws_thing.a: has no tag Project" in out.err
    doc = json.loads(out.out)
    assert doc["units"][0]["policies"] == [
        {
            "policy": "ownership_tags",
            "level": "warn",
            "address": "aws_thing.a",
            "why": "has no tag Project",
            "override": None,
        }
    ]


def test_a_run_whose_only_failures_are_denials_ends_with_exit_12(world, tmp_path):
    from types import SimpleNamespace

    from orchestrator.errors import PolicyDenied, RunFailed
    from orchestrator.report.views import finish

    stack = with_policies(world, [{"policy": "ownership_tags", "tags": ["Project"]}])
    report = world(stack=stack).deploy()
    assert statuses(report) == {"a": "failed", "b": "skipped", "c": "skipped", "d": "skipped"}
    assert world.tf.applied == {}
    session = SimpleNamespace(redactor=Redactor(), work_root=tmp_path / "w")
    with pytest.raises(PolicyDenied) as exc:
        finish(report, session, False, list(report.units))
    assert exc.value.exit_code == 12
    report.units["d"].status, report.units["d"].cause = Status.FAILED, TerraformError
    with pytest.raises(RunFailed):
        finish(report, session, False, list(report.units))


def test_an_environment_without_policies_plans_and_applies_in_one_run_and_reads_no_plan(world):
    world().deploy()
    assert ("apply_auto", "a") in world.tf.calls
    assert not [c for c in world.tf.calls if c[0] == "show"]


def test_a_plans_text_is_read_only_when_someone_reads_it(world):
    """terraform's wording of a plan costs a `terraform show` (a provider start): `plan` reads it
    for --show or --summary alone, a deploy nobody confirms never."""
    report = world().plan()
    assert statuses(report)["a"] == "succeeded"  # the root; the others wait for its outputs
    assert ("show_text", "a") not in world.tf.calls and report.units["a"].diff == ""
    report = world(plan_text=True).plan()
    assert "# aws_thing.a will be created" in report.units["a"].diff
    assert world.tf.calls.count(("show_text", "a")) == 1
    world.tf.calls.clear()
    world().deploy()
    assert [c for c in world.tf.calls if c[0] == "show_text"] == []


def refresh(rtype: str) -> dict:
    """A `refresh_start` event as `terraform plan -json` prints it."""
    return {"type": "refresh_start", "hook": {"resource": {"addr": f"{rtype}.x", "resource_type": rtype}}}


def test_drift_reads_a_plan_with_nothing_to_do_only_where_something_moved_or_a_rule_could_hide(world):
    """`show -json` is a provider start: drift pays for it on a plan without changes only when the
    refresh found drift, or read security group rules (a rule opened by hand changes no plan)."""
    world().deploy()
    world.tf.calls.clear()
    report = world().plan(command="drift")
    assert statuses(report) == dict.fromkeys("abcd", "no changes")
    assert [c for c in world.tf.calls if c[0] == "show"] == []
    world.tf.refreshes = {"b": (refresh("aws_vpc_security_group_ingress_rule"),), "c": (refresh("aws_s3_bucket"),)}
    world.tf.refreshes["d"] = ({"type": "resource_drift", "change": {"resource": {"addr": "aws_thing.d"}}},)
    world().plan(command="drift")
    assert sorted(u for c, u in world.tf.calls if c == "show") == ["b", "d"]


def test_terraform_typed_by_hand_gets_the_units_variables_where_it_reads_them(world):
    """`orchestrator tf`: which commands write (protected: the typed confirmation, the run lock),
    and the variables file given to the commands that read variables, never to a saved plan."""
    from orchestrator.core import units as units_mod
    from orchestrator.errors import NotDeployed

    assert units_mod.writes(["state", "rm", "aws_thing.a"]) and units_mod.writes(["apply"])
    assert not units_mod.writes(["state", "list"]) and not units_mod.writes(["plan"])
    with pytest.raises(NotDeployed, match="unit a, upstream of b, is not deployed in dev$"):
        world().units.by_hand("b", ["plan"])
    with pytest.raises(NotDeployed, match="is not deployed in dev: its apply job must run first$"):
        world().units.deployed_values("b", then="its apply job must run first")
    world().deploy()
    ws, args = world().units.by_hand("b", ["plan", "-detailed-exitcode"])
    assert args == ["plan", f"-var-file={ws.var_file}", "-detailed-exitcode"] and ws.var_file.exists()
    assert world().units.by_hand("b", ["apply", "tfplan"])[1] == ["apply", "tfplan"]
    assert world().units.by_hand("b", ["plan", "-var-file=mine.tfvars"])[1] == ["plan", "-var-file=mine.tfvars"]
    assert world().units.by_hand("b", ["state", "list"])[1] == ["state", "list"]
