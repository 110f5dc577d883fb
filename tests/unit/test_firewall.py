"""orchestrator.policy.firewall: a security group rule nobody declared is drift; the stack's own rules,
however AWS spells them back, are not; a group whose rules live elsewhere is not judged."""

from __future__ import annotations

from orchestrator.policy import firewall
from orchestrator.tf.terraform import PlanSummary

DB, APP, ALB = "sg-0db", "sg-0app", "sg-0alb"


def group(name, gid, ingress=(), egress=()):
    return {
        "address": f"aws_security_group.{name}",
        "mode": "managed",
        "type": "aws_security_group",
        "values": {"id": gid, "ingress": list(ingress), "egress": list(egress)},
    }


def perm(proto, low, high, cidrs=(), groups=(), self_=False, description=""):
    return {
        "protocol": proto, "from_port": low, "to_port": high, "cidr_blocks": list(cidrs),
        "ipv6_cidr_blocks": [], "prefix_list_ids": [], "security_groups": list(groups), "self": self_,
        "description": description,
    }  # fmt: skip


def rule(name, gid, direction, proto, low, high, cidrs=None, source=None, self_=False):
    return {
        "address": f"aws_security_group_rule.{name}",
        "mode": "managed",
        "type": "aws_security_group_rule",
        "values": {
            "security_group_id": gid, "type": direction, "protocol": proto, "from_port": low,
            "to_port": high, "cidr_blocks": cidrs, "source_security_group_id": source, "self": self_,
        },
    }  # fmt: skip


def plan(*resources, modules=()):
    return {"prior_state": {"values": {"root_module": {"resources": list(resources), "child_modules": list(modules)}}}}


DECLARED = [
    rule("db_from_app", DB, "ingress", "tcp", 5432, 5432, source=APP),
    rule("alb_https", ALB, "ingress", "tcp", 443, 443, cidrs=["10.0.0.0/8", "192.168.0.0/16"]),
    rule("app_out", APP, "egress", "-1", 0, 0, cidrs=["0.0.0.0/0"]),
]
AS_DEPLOYED = [
    # AWS answers a rule with two CIDRs as one permission, and a rule's numbers as it likes
    group("db", DB, ingress=[perm("tcp", 5432, 5432, groups=[f"123456789012/{APP}"])]),
    group("alb", ALB, ingress=[perm("6", 443, 443, cidrs=["10.0.0.0/8", "192.168.0.0/16"])]),
    group("app", APP, egress=[perm("-1", -1, -1, cidrs=["0.0.0.0/0"])]),
]


def test_the_stacks_own_rules_however_aws_spells_them_are_not_drift():
    assert firewall.unmanaged_rules(plan(*DECLARED, *AS_DEPLOYED)) == []


def test_a_rule_added_by_hand_is_named_with_its_group():
    opened = group(
        "db", DB, ingress=[perm("tcp", 5432, 5432, groups=[APP]), perm("tcp", 5432, 5432, cidrs=["0.0.0.0/0"])]
    )
    found = firewall.unmanaged_rules(plan(*DECLARED, opened, *AS_DEPLOYED[1:]))
    assert found == [
        {
            "address": "aws_security_group.db",
            "actions": ["update"],
            "attributes": [],
            "unmanaged": ["ingress tcp port 5432 from cidr 0.0.0.0/0"],
        }
    ]


def test_a_widened_cidr_list_and_an_egress_to_itself_are_each_named():
    alb = group("alb", ALB, ingress=[perm("tcp", 443, 443, cidrs=["10.0.0.0/8", "192.168.0.0/16", "1.2.3.4/32"])])
    app = group("app", APP, egress=[perm("-1", 0, 0, cidrs=["0.0.0.0/0"]), perm("udp", 53, 60, self_=True)])
    found = firewall.unmanaged_rules(plan(*DECLARED, AS_DEPLOYED[0], alb, app))
    assert {f["address"]: f["unmanaged"] for f in found} == {
        "aws_security_group.alb": ["ingress tcp port 443 from cidr 1.2.3.4/32"],
        "aws_security_group.app": ["egress udp ports 53-60 to itself"],
    }


def test_a_group_whose_rules_this_unit_does_not_declare_is_not_judged():
    """Its rules may live in another unit: this unit's state cannot tell them from a hand-made one."""
    elsewhere = group("edge", "sg-0edge", ingress=[perm("tcp", 80, 80, cidrs=["0.0.0.0/0"])])
    assert firewall.unmanaged_rules(plan(*DECLARED, *AS_DEPLOYED, elsewhere)) == []


def test_the_newer_rule_resources_and_groups_in_modules_count():
    newer = {
        "address": "module.db.aws_vpc_security_group_ingress_rule.from_app",
        "mode": "managed",
        "type": "aws_vpc_security_group_ingress_rule",
        "values": {
            "security_group_id": DB, "ip_protocol": "tcp", "from_port": 5432, "to_port": 5432,
            "referenced_security_group_id": APP, "cidr_ipv4": None,
        },
    }  # fmt: skip
    db = dict(group("db", DB, ingress=[perm("tcp", 5432, 5432, groups=[APP]), perm("-1", 0, 0, cidrs=["10.0.0.0/8"])]))
    db["address"] = "module.db.aws_security_group.db"
    found = firewall.unmanaged_rules(plan(modules=[{"resources": [newer, db]}]))
    assert [(f["address"], f["unmanaged"]) for f in found] == [
        ("module.db.aws_security_group.db", ["ingress all traffic from cidr 10.0.0.0/8"])
    ]


def test_drift_names_the_hand_made_rule_beside_what_the_refresh_saw():
    opened = group("db", DB, ingress=[perm("tcp", 5432, 5432, groups=[APP]), perm("tcp", 22, 22, cidrs=["0.0.0.0/0"])])
    doc = plan(*DECLARED, opened, *AS_DEPLOYED[1:])
    doc["resource_drift"] = [
        {"address": "aws_security_group.db", "change": {"actions": ["update"], "before": {}, "after": opened["values"]}}
    ]
    s = PlanSummary.from_drift_json(doc)
    assert (s.change, s.has_changes) == (1, True)
    assert (
        s.describe()
        == "aws_security_group.db (1 rule(s) no resource declares: ingress tcp port 22 from cidr 0.0.0.0/0)"
    )
    assert not PlanSummary.from_drift_json(plan(*DECLARED, *AS_DEPLOYED)).has_changes
