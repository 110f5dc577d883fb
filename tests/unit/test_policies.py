"""orchestrator.policy.policies on plan documents shaped like `terraform show -json tfplan`: each
built-in says yes and no, the manifest's entries are checked when it loads, overrides need a
reason. Pure: no terraform, no AWS."""

from __future__ import annotations

import json

import pytest

from orchestrator.errors import ConfigError
from orchestrator.policy import policies

FACTS = policies.Facts("prod", True, ownership_tags=("Project", "Owner"))


def rc(address, rtype, actions, after=None, unknown=None):
    change = {"actions": actions, "after": after or {}, "after_unknown": unknown or {}}
    return {"address": address, "type": rtype, "mode": "managed", "change": change}


def plan(*changes):
    return {"resource_changes": list(changes)}


def found(name, p, facts=FACTS, **arguments):
    return sorted(policies.BUILTIN[name](p, facts, **arguments))


def test_ownership_tags_names_what_lacks_a_tag_and_skips_untaggable_and_unknown():
    p = plan(
        rc("aws_sns_topic.ok", "aws_sns_topic", ["create"], {"tags_all": {"Project": "p", "Owner": "o"}}),
        rc("aws_sns_topic.bare", "aws_sns_topic", ["create"], {"tags_all": {"Project": "p"}}),
        rc("aws_sqs_queue.later", "aws_sqs_queue", ["create"], {}, {"tags_all": True}),
        rc("aws_iam_role_policy.x", "aws_iam_role_policy", ["create"], {"policy": "{}"}),
        rc("aws_sns_topic.gone", "aws_sns_topic", ["delete"], {}),
        rc("aws_s3_bucket.moving", "aws_s3_bucket", ["update"], {"tags_all": {}}),
    )
    assert found("ownership_tags", p) == [
        ("aws_s3_bucket.moving", "has no tag Project, Owner"),
        ("aws_sns_topic.bare", "has no tag Owner"),
    ]
    assert found("ownership_tags", p, tags=["Project"]) == [("aws_s3_bucket.moving", "has no tag Project")]


def test_encrypted_storage_refuses_plain_storage_and_accepts_a_key_made_in_the_same_plan():
    p = plan(
        rc("aws_rds_cluster.plain", "aws_rds_cluster", ["create"], {"storage_encrypted": False}),
        rc("aws_rds_cluster.ok", "aws_rds_cluster", ["create"], {"storage_encrypted": True}),
        rc("aws_sns_topic.plain", "aws_sns_topic", ["create"], {"kms_master_key_id": None}),
        rc("aws_sns_topic.new_key", "aws_sns_topic", ["create"], {}, {"kms_master_key_id": True}),
        rc("aws_sqs_queue.sse", "aws_sqs_queue", ["create"], {"sqs_managed_sse_enabled": True}),
        rc("aws_sqs_queue.plain", "aws_sqs_queue", ["update"], {"sqs_managed_sse_enabled": False}),
        rc("aws_cloudwatch_log_group.plain", "aws_cloudwatch_log_group", ["create"], {"kms_key_id": ""}),
        rc("aws_dynamodb_table.cmk", "aws_dynamodb_table", ["create"], {"server_side_encryption": [{"enabled": True}]}),
        rc("aws_s3_bucket.any", "aws_s3_bucket", ["create"], {}),  # S3 encrypts every new object
        rc("aws_rds_cluster.gone", "aws_rds_cluster", ["delete"], {}),
    )
    assert [a for a, _ in found("encrypted_storage", p)] == [
        "aws_cloudwatch_log_group.plain",
        "aws_rds_cluster.plain",
        "aws_sns_topic.plain",
        "aws_sqs_queue.plain",
    ]
    assert [a for a, _ in found("encrypted_storage", p, types=["aws_rds_cluster"])] == ["aws_rds_cluster.plain"]


def test_no_wildcard_iam_action_reads_every_policy_document_and_only_allow_statements():
    def doc(*statements):
        return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})

    star = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    p = plan(
        rc("aws_iam_policy.admin", "aws_iam_policy", ["create"], {"policy": doc(star)}),
        rc("aws_iam_role.inline", "aws_iam_role", ["create"], {"inline_policy": [{"policy": doc({**star, "Action": ["s3:GetObject", "*:*"]})}]}),
        rc("aws_s3_bucket_policy.deny", "aws_s3_bucket_policy", ["create"], {"policy": doc({**star, "Effect": "Deny"})}),
        rc("aws_iam_role_policy.narrow", "aws_iam_role_policy", ["create"], {"policy": doc({**star, "Action": "kms:*"})}),
        rc("aws_iam_role_policy.single", "aws_iam_role_policy", ["create"], {"policy": json.dumps({"Statement": star})}),
        rc("aws_iam_role_policy.unknown", "aws_iam_role_policy", ["create"], {}, {"policy": True}),
    )  # fmt: skip
    assert [a for a, _ in found("no_wildcard_iam_action", p)] == [
        "aws_iam_policy.admin",
        "aws_iam_role.inline",
        "aws_iam_role_policy.single",
    ]


def test_stateful_replace_leaves_a_teardowns_destroy_plan_to_its_typed_confirmation():
    p = plan(rc("aws_rds_cluster.main", "aws_rds_cluster", ["delete"]))
    facts = policies.Facts("prod", True, stateful_types=frozenset({"aws_rds_cluster"}))
    assert [a for a, _ in found("stateful_replace", p, facts)] == ["aws_rds_cluster.main"]
    assert (
        found("stateful_replace", p, policies.Facts("prod", True, destroy=True, stateful_types=facts.stateful_types))
        == []
    )


def test_levels_environments_and_overrides_decide_each_verdict():
    rules = (
        policies.Rule("ownership_tags", "deny", ("protected",)),
        policies.Rule("encrypted_storage", "warn", ("staging", "prod")),
    )
    p = plan(rc("aws_sns_topic.t", "aws_sns_topic", ["create"], {"tags_all": {}}))
    verdicts = policies.Policies(rules).evaluate(p, FACTS)
    assert [(v.policy, v.level, v.denied) for v in verdicts] == [
        ("ownership_tags", "deny", True),
        ("encrypted_storage", "warn", False),
    ]
    assert verdicts[0].line().endswith('(to accept: --override ownership_tags:aws_sns_topic.t --reason "...")')
    dev = policies.Facts("dev", False, ownership_tags=FACTS.ownership_tags)
    assert policies.Policies(rules).evaluate(p, dev) == []  # neither applies to dev

    accepted = policies.overrides(["ownership_tags:aws_sns_topic.t"], "CHG-1234 tagged by the next release")
    v = policies.Policies(rules, accepted).evaluate(p, FACTS)[0]
    assert not v.denied and v.override == "CHG-1234 tagged by the next release"
    assert v.line().endswith("overridden: CHG-1234 tagged by the next release")
    assert v.to_dict()["override"] == "CHG-1234 tagged by the next release"


@pytest.mark.parametrize(
    ("values", "reason", "message"),
    [
        (["ownership_tags:aws_sns_topic.t"], None, "--override needs --reason"),
        (["ownership_tags:aws_sns_topic.t"], "   ", "--override needs --reason"),
        (["aws_sns_topic.t"], "r", "expected POLICY:ADDRESS"),
        (["ownership_tag:aws_sns_topic.t"], "r", "unknown policy 'ownership_tag' (did you mean 'ownership_tags'?)"),
    ],
)
def test_an_override_without_a_reason_or_a_known_policy_is_one_line(values, reason, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        policies.overrides(values, reason)


def test_allow_replace_is_an_override_of_both_guard_rules_at_that_address():
    accepted = policies.overrides([], None, ["aws_rds_cluster.main"])
    assert {(o.policy, o.address) for o in accepted} == {
        ("stateful_replace", "aws_rds_cluster.main"),
        ("open_to_internet", "aws_rds_cluster.main"),
    }
    assert {o.reason for o in accepted} == {policies.ALLOW_REPLACE_REASON}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"policy": "ownership_tag"}, "unknown policy 'ownership_tag' (did you mean 'ownership_tags'?"),
        ({"policy": "ownership_tags", "level": "block"}, "level must be one of deny, warn, got 'block'"),
        ({"policy": "ownership_tags", "environments": "prod"}, "environments must be a list"),
        ({"policy": "ownership_tags", "environments": ["prd"]}, "unknown environment 'prd' (known: dev, prod"),
        ({"policy": "ownership_tags", "tag": ["x"]}, "policy 'ownership_tags' has no argument tag (it takes tags)"),
        ("ownership_tags", 'each [[policies]] entry is a table with policy = "<name>"'),
    ],
)
def test_each_mistake_in_a_policy_entry_is_one_line_when_the_manifest_loads(entry, message):
    with pytest.raises(ConfigError) as exc:
        policies.from_manifest([entry], "stack.toml", guard_rules=False, environments=["dev", "prod"])
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert str(exc.value).startswith("stack.toml: policies[0]")


def test_guard_settings_alone_keep_their_meaning_and_naming_a_guard_rule_takes_over():
    implicit = policies.from_manifest(None, "stack.toml", guard_rules=True)
    assert [(r.policy, r.level, r.environments) for r in implicit] == [
        ("stateful_replace", "deny", ("protected",)),
        ("open_to_internet", "deny", ("protected",)),
    ]
    named = policies.from_manifest([{"policy": "stateful_replace", "level": "warn"}], "s", guard_rules=True)
    assert [(r.policy, r.level, r.environments) for r in named] == [("stateful_replace", "warn", ())]
    assert policies.from_manifest([], "s", guard_rules=False) == ()


def test_a_project_policy_is_called_with_its_arguments(monkeypatch):
    def no_destroy_of(plan, facts, types):
        return [(c["address"], "destroyed") for c in plan["resource_changes"] if c["type"] in types]

    monkeypatch.setitem(policies.BUILTIN, "no_destroy_of", no_destroy_of)
    rules = policies.from_manifest([{"policy": "no_destroy_of", "types": ["aws_sns_topic"]}], "s", guard_rules=False)
    p = plan(rc("aws_sns_topic.t", "aws_sns_topic", ["delete"]), rc("aws_sqs_queue.q", "aws_sqs_queue", ["delete"]))
    assert [v.address for v in policies.Policies(rules).evaluate(p, FACTS)] == ["aws_sns_topic.t"]
    with pytest.raises(ConfigError, match="needs argument\\(s\\) types"):
        policies.from_manifest([{"policy": "no_destroy_of"}], "s", guard_rules=False)


@pytest.mark.tools
def test_the_projects_checkov_checks_gate_a_plan(checkov, tmp_path):
    """The opt-in checkov policy: the project's custom checks (checks/) on a unit's plan JSON, in
    checkov's own virtualenv; a container with a password in its plain environment is denied."""
    from tests.helpers import ROOT

    def task(env_name: str) -> dict:
        containers = json.dumps([{"name": "app", "image": "x", "environment": [{"name": env_name, "value": "v"}]}])
        values = {"family": "app", "container_definitions": containers}
        address = "aws_ecs_task_definition.app"
        return {  # as `terraform show -json` writes it (checkov reads terraform_version)
            "format_version": "1.2",
            "terraform_version": "1.11.4",
            "planned_values": {"root_module": {"resources": [
                {"address": address, "mode": "managed", "type": "aws_ecs_task_definition", "name": "app", "values": values}
            ]}},
            "resource_changes": [
                {"address": address, "mode": "managed", "type": "aws_ecs_task_definition", "name": "app",
                 "change": {"actions": ["create"], "before": None, "after": values}}
            ],
            "configuration": {"root_module": {"resources": []}},
        }  # fmt: skip

    facts = policies.Facts("prod", True, project_root=str(ROOT))
    found = policies.checkov_checks(task("DB_PASSWORD"), facts, checkov=checkov)
    assert [(a, why.split(":")[0]) for a, why in found] == [("aws_ecs_task_definition.app", "CKV_PAY_3")]
    assert "DB_PASSWORD" in found[0][1]
    assert policies.checkov_checks(task("LOG_LEVEL"), facts, checkov=checkov) == []
    with pytest.raises(ConfigError, match="checks directory .* not found"):
        policies.checkov_checks(task("LOG_LEVEL"), facts, checks_dir="nope", checkov=checkov)
