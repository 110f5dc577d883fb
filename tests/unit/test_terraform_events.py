"""terraform's machine-readable UI read as data (orchestrator.tf.events): the lines below are
terraform 1.11.4's own (`plan -json` and `apply -json` of a small configuration), not imitations."""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.tf import events
from orchestrator.tf.terraform import PlanSummary

PLAN = r"""
{"@level":"info","@message":"Terraform 1.11.4","@module":"terraform.ui","@timestamp":"2026-12-07T09:06:10.390558Z","terraform":"1.11.4","type":"version","ui":"1.2"}
{"@level":"info","@message":"terraform_data.d: Plan to create","@module":"terraform.ui","@timestamp":"2026-12-07T09:06:10.440707Z","change":{"resource":{"addr":"terraform_data.d","module":"","resource":"terraform_data.d","implied_provider":"terraform","resource_type":"terraform_data","resource_name":"d","resource_key":null},"action":"create"},"type":"planned_change"}
{"@level":"info","@message":"terraform_data.c: Plan to replace","@module":"terraform.ui","@timestamp":"2026-12-07T09:06:10.450432Z","change":{"resource":{"addr":"terraform_data.c","module":"","resource":"terraform_data.c","implied_provider":"terraform","resource_type":"terraform_data","resource_name":"c","resource_key":null},"action":"replace","reason":"cannot_update"},"type":"planned_change"}
{"@level":"info","@message":"terraform_data.a: Plan to update","@module":"terraform.ui","@timestamp":"2026-12-07T09:06:10.450503Z","change":{"resource":{"addr":"terraform_data.a","module":"","resource":"terraform_data.a","implied_provider":"terraform","resource_type":"terraform_data","resource_name":"a","resource_key":null},"action":"update"},"type":"planned_change"}
{"@level":"info","@message":"terraform_data.s: Plan to delete","@module":"terraform.ui","@timestamp":"2026-12-07T09:04:51.554210Z","change":{"resource":{"addr":"terraform_data.s","module":"","resource":"terraform_data.s","implied_provider":"terraform","resource_type":"terraform_data","resource_name":"s","resource_key":null},"action":"delete","reason":"delete_because_no_resource_config"},"type":"planned_change"}
{"@level":"info","@message":"data.aws_caller_identity.me: Plan to read","@module":"terraform.ui","change":{"resource":{"addr":"data.aws_caller_identity.me","module":"","resource":"data.aws_caller_identity.me","implied_provider":"aws","resource_type":"aws_caller_identity","resource_name":"me","resource_key":null},"action":"read"},"type":"planned_change"}
{"@level":"info","@message":"Plan: 2 to add, 1 to change, 2 to destroy.","@module":"terraform.ui","@timestamp":"2026-12-07T09:06:10.450520Z","changes":{"add":2,"change":1,"import":0,"remove":2,"operation":"plan"},"type":"change_summary"}
{"@level":"info","@message":"Outputs: 1","@module":"terraform.ui","@timestamp":"2026-12-07T09:06:10.450564Z","outputs":{"o":{"sensitive":false,"action":"update"}},"type":"outputs"}
"""

APPLY_NO_CHANGES = r"""
{"@level":"info","@message":"Terraform 1.11.4","@module":"terraform.ui","@timestamp":"2026-12-07T09:02:58.518444Z","terraform":"1.11.4","type":"version","ui":"1.2"}
{"@level":"info","@message":"Apply complete! Resources: 0 added, 0 changed, 0 destroyed.","@module":"terraform.ui","@timestamp":"2026-12-07T09:04:51.569289Z","changes":{"add":0,"change":0,"import":0,"remove":0,"operation":"apply"},"type":"change_summary"}
{"@level":"info","@message":"Outputs: 1","@module":"terraform.ui","@timestamp":"2026-12-07T09:04:51.569351Z","outputs":{"o":{"sensitive":false,"type":"string","value":"v"}},"type":"outputs"}
"""

DIAGNOSTIC = r"""{"@level":"error","@message":"Error: Reference to undeclared resource","@module":"terraform.ui","@timestamp":"2026-12-07T09:02:58.583225Z","diagnostic":{"severity":"error","summary":"Reference to undeclared resource","detail":"A managed resource \"nosuch\" \"x\" has not been declared in the root module.","range":{"filename":"bad.tf","start":{"line":1,"column":41,"byte":40},"end":{"line":1,"column":49,"byte":48}}},"type":"diagnostic"}"""


def test_a_plans_counts_come_from_its_planned_changes_with_replaces_apart():
    summary = PlanSummary.from_events(events.read(PLAN))
    assert (summary.add, summary.change, summary.destroy, summary.replace) == (1, 1, 1, 1)
    # terraform's own count: add = creates + replaces, remove = deletes + replaces
    assert (summary.add + summary.replace, summary.change, summary.destroy + summary.replace) == (2, 1, 2)
    assert [c["address"] for c in summary.resources] == [
        "terraform_data.a",
        "terraform_data.c",
        "terraform_data.d",
        "terraform_data.s",
    ]
    assert summary.resources[1]["actions"] == ["delete", "create"]
    assert events.changes_outputs(events.read(PLAN))


def test_an_apply_that_planned_nothing_changes_nothing_though_its_outputs_carry_values():
    done = events.read(APPLY_NO_CHANGES)
    assert not PlanSummary.from_events(done).has_changes
    assert not events.changes_outputs(done)


def test_a_diagnostic_is_read_apart_and_logged_with_its_detail():
    (event,) = events.read("not json\n" + DIAGNOSTIC + "\n{broken")
    assert events.first_error([event]) == "Reference to undeclared resource"
    assert not events.has_error([event], events.LOCK_ERROR)
    assert events.log_lines(event) == [
        "Error: Reference to undeclared resource",
        "  on bad.tf line 1",
        "",
        '  A managed resource "nosuch" "x" has not been declared in the root module.',
    ]
    assert events.first_error(events.read(PLAN)) is None


# The human output's wording, as any parser of it would have to spell it.
HUMAN_OUTPUT = (
    r"will be created",
    r"will be updated in-place",
    r"must be replaced",
    r"No changes\.",
    r"Terraform will perform",
    r"Lock Info",
    r"\+0000 UTC",
    r"Saved plan is stale\b(?!\")",
)


def test_no_module_reads_terraforms_human_output():
    """What the orchestrator knows of a plan or an apply comes from `-json` events (and `show
    -json`); the human text is only ever shown. Only events.py names a diagnostic's summary."""
    package = Path(__file__).resolve().parents[2] / "orchestrator"
    found = []
    for path in package.rglob("*.py"):
        text = path.read_text()
        for pattern in HUMAN_OUTPUT:
            for m in re.finditer(pattern, text):
                line = text[: m.start()].count("\n") + 1
                found.append(f"{path.relative_to(package)}:{line}: {m.group(0)}")
    allowed = {"core/preview.py"}  # a preview's own text for --show, written, not read
    assert [f for f in found if f.split(":")[0] not in allowed and not f.startswith("tf/events.py")] == []
