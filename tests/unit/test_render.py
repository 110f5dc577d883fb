"""The summary table and the JSON report against golden files; the report against its schema."""

import json
from pathlib import Path

import jsonschema
import pytest

from orchestrator.core.runner import RunReport, Status, UnitResult
from orchestrator.core.smoke import CheckResult
from orchestrator.redact import Redactor
from orchestrator.report.render import report_dict, summary_table

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "report-schema.json").read_text())
ORDER = ["network", "security", "database", "edge", "observability", "app"]


def sample() -> RunReport:
    r = {
        "network": UnitResult("network", Status.NO_CHANGES, started=0, ended=9.9, timings={"plan": 9.5}),
        "security": UnitResult(
            "security", Status.SUCCEEDED, started=10, ended=44, add=22, timings={"plan": 12.0, "apply": 20.1}
        ),
        "database": UnitResult(
            "database",
            Status.FAILED,
            detail="terraform apply failed for unit database (exit 1): boom",
            started=44,
            ended=100.5,
            add=6,
            retries=1,
            log_path="/w/envs/dev/database/terraform.log",
        ),
        "edge": UnitResult("edge", Status.SUCCEEDED, started=44, ended=90, add=3, change=1, replace=1),
        "observability": UnitResult(
            "observability",
            Status.SUCCEEDED,
            started=44,
            ended=80,
            hooks=["write_db_endpoint: unchanged (secret already has host db)"],
        ),
        "app": UnitResult("app", Status.SKIPPED, detail="database failed"),
    }
    return RunReport(
        "deploy",
        "dev-pr1",
        r,
        started=1_800_000_000.0,
        ended=1_800_000_100.5,
        smoke=[CheckResult("nat gateways", True, "1 NAT gateway(s) available", 1)],
    )


def test_summary_table_golden():
    assert summary_table(sample().units, ORDER) + "\n" == (GOLDEN / "summary.txt").read_text()


def test_json_report_golden_and_schema():
    report = report_dict(sample(), ORDER, Redactor())
    jsonschema.validate(report, SCHEMA)
    assert json.dumps(report, indent=2) + "\n" == (GOLDEN / "report.json").read_text()
    assert report["result"] == "failed"


def test_schema_rejects_an_unknown_status():
    report = report_dict(sample(), ORDER, Redactor())
    report["units"][0]["status"] = "exploded"
    try:
        jsonschema.validate(report, SCHEMA)
    except jsonschema.ValidationError:
        return
    raise AssertionError("schema accepted an unknown status")


def test_status_and_envs_follow_the_schema_with_every_word_the_journal_writes():
    """The engine journals a run as running, ok, failed, declined (no at the prompt) or interrupted,
    and a unit as running, resumed, interrupted or its status (core/engine.py): `status --json` and
    `envs --json` of any copy follow the published schema."""
    from orchestrator.core.engine import RESUMED
    from orchestrator.core.runner import Status

    words = ["running", RESUMED, "interrupted", *(s.value for s in Status if s is not Status.PENDING)]
    units = {
        f"u{i}": {"status": w, "command": "deploy", "run_id": "r1", "who": "me", "at": 1.0} for i, w in enumerate(words)
    }
    runs = [
        {"run_id": f"r{i}", "command": "deploy", "who": "me", "started": 1.0, "result": r}
        for i, r in enumerate(("running", "ok", "failed", "declined", "interrupted"))
    ]
    status = {
        "schema_version": 1,
        "command": "status",
        "environment": "dev-x",
        "runs": runs,
        "units": units,
        "run_lock": None,
        "state_locks": {},
    }
    jsonschema.validate(status, SCHEMA)
    status["runs"][0]["result"] = "exploded"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(status, SCHEMA)


def test_graph_renderings():
    from orchestrator.core.graph import UnitGraph
    from orchestrator.report.render import graph_dot, graph_mermaid, graph_text

    g = UnitGraph({"network": [], "security": ["network"], "edge": ["network", "security"]})
    assert graph_text(g) == "network  (after: -)\n  security  (after: network)\n    edge  (after: network, security)"
    assert '"network" -> "edge";' in graph_dot(g) and '"security" -> "edge";' in graph_dot(g)
    assert graph_mermaid(g).splitlines() == [
        "graph LR",
        "  network --> security",
        "  network --> edge",
        "  security --> edge",
    ]


def test_plan_of_an_undeployed_environment_means_differences_not_failure():
    units = {
        "network": UnitResult("network", Status.SUCCEEDED, add=19),
        "security": UnitResult(
            "security", Status.SKIPPED, detail="upstream network is not deployed", waits_for=("network",)
        ),
    }
    plan = RunReport("plan", "prod", units, started=0.0, ended=1.0)
    assert not plan.failed and plan.changed
    deploy = RunReport("deploy", "prod", dict(units), started=0.0, ended=1.0)
    assert deploy.failed  # in a deploy a skipped unit is a failure


def test_a_plan_with_changes_says_would_change_and_names_the_addresses_drift_says_drifted():
    from orchestrator.report.render import status_label

    r = UnitResult("logs", Status.SUCCEEDED, detail="aws_cloudwatch_log_group.app", change=1)
    quiet = UnitResult("net", Status.NO_CHANGES)
    assert status_label(r, "plan") == "would change" and status_label(r, "drift") == "drifted"
    assert status_label(r, "deploy") == "succeeded" and status_label(quiet, "plan") == "no changes"
    table = summary_table({"logs": r, "net": quiet}, ["net", "logs"], "plan").splitlines()
    assert table[2].split()[:2] == ["logs", "would"] and table[2].endswith("aws_cloudwatch_log_group.app")
    drift = summary_table({"logs": r}, ["logs"], "drift").splitlines()[1]
    assert " drifted " in drift and "succeeded" not in drift


def test_drift_names_an_unmanaged_attribute_the_next_apply_reverts_and_ignores_read_backs():
    from orchestrator.tf.terraform import PlanSummary

    plan = {
        "configuration": {"root_module": {"resources": [{"address": "aws_sns_topic.t", "expressions": {"name": {}}}]}},
        "resource_drift": [
            {
                "address": "aws_sns_topic.t",
                "change": {
                    "actions": ["update"],
                    "before": {"name": "t", "display_name": "", "policy": "{}", "arn": "a"},
                    "after": {"name": "t", "display_name": "hacked", "policy": '{"x": 1}', "arn": "a"},
                },
            }
        ],
        "resource_changes": [
            {
                "address": "aws_sns_topic.t",
                "change": {
                    "actions": ["update"],
                    # the apply puts display_name back; the policy (computed) it leaves as AWS has it
                    "after": {"name": "t", "display_name": None, "policy": '{"x": 1}'},
                    "after_unknown": {},
                },
            }
        ],
    }
    summary = PlanSummary.from_drift_json(plan)
    assert summary.has_changes and summary.change == 1
    assert summary.resources[0] == {
        "address": "aws_sns_topic.t",
        "actions": ["update"],
        "attributes": [],
        "reverts": ["display_name"],
    }
    assert summary.describe() == "aws_sns_topic.t (1 unmanaged attribute(s) the next apply reverts: display_name)"
    read_back = dict(plan, resource_changes=[])  # nothing planned for it: a read-back is not drift
    assert not PlanSummary.from_drift_json(read_back).has_changes
