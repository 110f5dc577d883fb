"""orchestrator.policy.guard, and the two guard policies built on it, on plan documents shaped like
`terraform show -json tfplan`."""

from __future__ import annotations

from orchestrator.policy import policies
from orchestrator.policy.guard import open_to_world, stateful_deletes

STATEFUL = {"aws_rds_cluster", "aws_kms_key", "aws_s3_bucket", "aws_cloudwatch_log_group"}


def rc(address, rtype, actions, after=None):
    return {"address": address, "type": rtype, "mode": "managed", "change": {"actions": actions, "after": after or {}}}


def rule_config(address, group):
    return {"address": address, "expressions": {"security_group_id": {"references": [f"{group}.id", group]}}}


def refusals(p, *, stateful_types, public_groups, allowed):
    """The deny lines of both guard policies in a protected environment, --allow-replace as given."""
    rules = policies.from_manifest([], "stack.toml", guard_rules=True)
    facts = policies.Facts(
        "prod", True, stateful_types=frozenset(stateful_types), public_security_groups=frozenset(public_groups)
    )
    verdicts = policies.Policies(rules, policies.overrides([], None, allowed)).evaluate(p, facts)
    return [v.line() for v in verdicts if v.denied]


def plan(*changes, config=(), prior=()):
    return {
        "resource_changes": list(changes),
        "configuration": {"root_module": {"resources": list(config)}},
        "prior_state": {"values": {"root_module": {"resources": list(prior)}}},
    }


def test_deletes_and_replacements_of_stateful_types_are_named_and_nothing_else():
    p = plan(
        rc("aws_rds_cluster.main", "aws_rds_cluster", ["delete", "create"]),
        rc("aws_cloudwatch_log_group.app", "aws_cloudwatch_log_group", ["delete"]),
        rc("module.db.aws_kms_key.data[0]", "aws_kms_key", ["create", "delete"]),
        rc("aws_rds_cluster_instance.main[1]", "aws_rds_cluster_instance", ["delete"]),  # not listed stateful
        rc("aws_s3_bucket.logs", "aws_s3_bucket", ["create"]),
        rc("aws_s3_bucket.docs", "aws_s3_bucket", ["update"]),
        {**rc("data.aws_kms_key.x", "aws_kms_key", ["delete"]), "mode": "data"},
    )
    assert stateful_deletes(p, STATEFUL) == [
        "aws_rds_cluster.main",
        "aws_cloudwatch_log_group.app",
        "module.db.aws_kms_key.data[0]",
    ]
    out = refusals(p, stateful_types=STATEFUL, public_groups=(), allowed={"aws_cloudwatch_log_group.app"})
    assert [r.split(" (to accept")[0] for r in out] == [
        "policy stateful_replace (deny): aws_rds_cluster.main: deletes or replaces a stateful resource",
        "policy stateful_replace (deny): module.db.aws_kms_key.data[0]: deletes or replaces a stateful resource",
    ]
    assert "--override stateful_replace:aws_rds_cluster.main --reason" in out[0]


def test_an_ingress_open_to_the_world_is_refused_unless_its_group_is_public():
    p = plan(
        rc(
            "aws_security_group_rule.alb_https_in",
            "aws_security_group_rule",
            ["create"],
            {"type": "ingress", "cidr_blocks": ["0.0.0.0/0"], "security_group_id": None},
        ),
        rc(
            "aws_security_group_rule.db_in",
            "aws_security_group_rule",
            ["update"],
            {"type": "ingress", "cidr_blocks": ["10.0.0.0/16", "0.0.0.0/0"], "security_group_id": "sg-db"},
        ),
        rc(
            "aws_security_group_rule.app_out",
            "aws_security_group_rule",
            ["create"],
            {"type": "egress", "cidr_blocks": ["0.0.0.0/0"]},
        ),
        rc(
            "aws_vpc_security_group_ingress_rule.v6",
            "aws_vpc_security_group_ingress_rule",
            ["create"],
            {"cidr_ipv6": "::/0", "security_group_id": "sg-app"},
        ),
        rc(
            "aws_vpc_security_group_ingress_rule.office",
            "aws_vpc_security_group_ingress_rule",
            ["create"],
            {"cidr_ipv4": "203.0.113.0/24"},
        ),
        rc(
            "aws_security_group.legacy",
            "aws_security_group",
            ["create"],
            {"ingress": [{"cidr_blocks": ["0.0.0.0/0"], "from_port": 22}]},
        ),
        rc("aws_security_group_rule.gone", "aws_security_group_rule", ["delete"], {}),
        config=[rule_config("aws_security_group_rule.alb_https_in", "aws_security_group.alb")],
        prior=[
            {"address": "aws_security_group.db", "type": "aws_security_group", "values": {"id": "sg-db"}},
            {"address": "aws_security_group.app", "type": "aws_security_group", "values": {"id": "sg-app"}},
        ],
    )
    assert open_to_world(p) == [
        ("aws_security_group_rule.alb_https_in", "aws_security_group.alb"),
        ("aws_security_group_rule.db_in", "aws_security_group.db"),
        ("aws_vpc_security_group_ingress_rule.v6", "aws_security_group.app"),
        ("aws_security_group.legacy", "aws_security_group.legacy"),
    ]
    out = refusals(p, stateful_types=(), public_groups={"aws_security_group.alb"}, allowed=())
    assert [r.split(": opens ")[1].split(" to the")[0] for r in out] == [
        "aws_security_group.legacy",
        "aws_security_group.db",
        "aws_security_group.app",
    ]
    assert out[0].startswith("policy open_to_internet (deny): aws_security_group.legacy: opens")
    allowed = refusals(
        p, stateful_types=(), public_groups={"aws_security_group.alb"}, allowed={"aws_security_group_rule.db_in"}
    )
    assert len(allowed) == 2


def test_a_plan_without_guarded_changes_is_not_refused():
    p = plan(
        rc("aws_ecs_service.app", "aws_ecs_service", ["update"]), rc("aws_s3_bucket.x", "aws_s3_bucket", ["create"])
    )
    assert refusals(p, stateful_types=STATEFUL, public_groups=(), allowed=()) == []
