"""Each of the review's twelve items (../shared/ref/model-response-failures.md),
checked on the real plans (`terraform show -json`) of dev and prod against
moto server. Each assertion fails on the flawed version the review quotes."""

from __future__ import annotations

import json

import pytest

from tests.integration.plans import ROOT

DEFAULT_TAGS = {"Environment", "EnvironmentSuffix", "Project", "ManagedBy", "Repository", "Owner"}
# Actions with no resource-level permissions: "*" is all AWS allows for them.
STAR_ONLY_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "secretsmanager:GetRandomPassword",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}


@pytest.fixture(params=["dev", "prod"])
def env(request):
    return request.getfixturevalue(request.param)


# 1. NAT gateway per AZ, private routes through it
def test_01_nat_per_az_and_private_default_routes(env):
    nats = env.changes("network", "aws_nat_gateway")
    eips = env.changes("network", "aws_eip")
    azs = env.settings["az_count"]
    expected = 1 if env.settings["single_nat_gateway"] else azs
    assert len(nats) == len(eips) == expected
    routes = env.changes("network", "aws_route")
    private = [r for r in routes if r["name"] == "private_nat"]
    assert len(private) == azs == len([r for r in env.changes("network", "aws_route_table") if r["name"] == "private"])
    for r in private:
        assert r["change"]["after"]["destination_cidr_block"] == "0.0.0.0/0"
        assert r["change"]["after_unknown"]["nat_gateway_id"] is True
        assert r["change"]["after"]["gateway_id"] is None
    cfg = env.config("network", "aws_route.private_nat")
    assert "aws_nat_gateway.main" in cfg["expressions"]["nat_gateway_id"]["references"]


def test_01_prod_has_one_nat_per_az(prod):
    assert len(prod.changes("network", "aws_nat_gateway")) == prod.settings["az_count"] == 3


# 2. No secret/cluster cycle; no host and no password in the plan
def test_02_secret_without_host_and_no_password_in_plan(env):
    version = env.changes("database", "aws_secretsmanager_secret_version")[0]["change"]["after"]
    assert version["secret_string"] is None and version["secret_string_wo"] is None
    refs = env.config("database", "aws_secretsmanager_secret_version.db")["expressions"]["secret_string_wo"][
        "references"
    ]
    assert not any(r.startswith("aws_rds_cluster") for r in refs)
    cluster_refs = json.dumps(env.config("database", "aws_rds_cluster.main")["expressions"])
    assert "aws_secretsmanager" not in cluster_refs
    cluster = env.changes("database", "aws_rds_cluster")[0]["change"]["after"]
    assert cluster["master_password"] is None and cluster["master_password_wo"] is None
    assert env.secrets, "the orchestrator generated the initial password"
    for unit, plan in env.plans.items():
        text = json.dumps(plan)
        for secret in env.secrets:
            assert secret not in text, unit
    lifecycle = env.config("database", "aws_secretsmanager_secret_version.db")
    assert "aws_rds_cluster.main.endpoint" not in json.dumps(lifecycle)


# 3. Route53 zone by data source
def test_03_route53_record_in_zone_from_data_source(prod, dev):
    record = prod.changes("edge", "aws_route53_record")[0]["change"]["after"]
    assert record["name"] == "api.acme-payments.com"
    assert record["zone_id"] == prod.zone_id
    cfg = prod.config("edge", "aws_route53_record.api")
    assert "data.aws_route53_zone.main" in cfg["expressions"]["zone_id"]["references"]
    assert not prod.changes("edge", "aws_route53_zone")  # never created, only found
    assert not dev.changes("edge", "aws_route53_record")  # dev has no domain


# 4. Container image from settings, credentials through `secrets`
def test_04_task_image_is_the_setting_and_credentials_are_secrets(env):
    td = env.changes("app", "aws_ecs_task_definition")[0]["change"]["after"]
    (container,) = json.loads(td["container_definitions"])
    assert container["image"] == env.settings["container_image"]
    assert not container["image"].endswith(":latest") and "nginx" not in container["image"]
    assert {e["name"] for e in container["environment"]} == {"ENVIRONMENT", "PORT"}
    secret_names = {s["name"] for s in container["secrets"]}
    assert {"DB_PASSWORD", "DB_HOST", "DB_USERNAME"} <= secret_names
    # the API's own secret where rotation is on (prod), the master secret where it is off (dev)
    assert all(s["valueFrom"].startswith(env.stand_ins["database"]["app_secret_arn"]) for s in container["secrets"])
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    assert "var.container_image" in json.dumps(env.config("app", "aws_ecs_task_definition.api")["expressions"])


def _policy_documents(env):
    for unit in env.plans:
        for r in env.config_resources(unit):
            if r["type"] == "aws_iam_policy_document":
                yield unit, r


# 5. IAM: every statement has a condition, "*" only where AWS allows nothing narrower
def test_05_every_iam_statement_has_a_condition_and_scoped_resources(env):
    seen = 0
    for unit, doc in _policy_documents(env):
        if doc["name"] in ("key_admin", "use_via_services", "data_key", "logs_key", "alerts_key"):
            continue  # key policies: "*" is the key itself
        for st in doc["expressions"]["statement"]:
            seen += 1
            assert st.get("condition"), f"{unit} {doc['address']} {st.get('sid')}"
            actions = set(st["actions"]["constant_value"])
            resources = st.get("resources", {})
            if resources.get("constant_value") == ["*"]:
                assert actions <= STAR_ONLY_ACTIONS, f"{doc['address']}: {actions}"
            if any(a.startswith("secretsmanager:") and a != "secretsmanager:GetRandomPassword" for a in actions):
                assert resources.get("constant_value") != ["*"]
                assert resources.get("references"), doc["address"]
    assert seen >= 10


def test_05_no_iam_policy_resource_with_star_for_secrets(env):
    for unit in env.plans:
        for rc in env.changes(unit, "aws_iam_role_policy"):
            policy = rc["change"]["after"].get("policy")
            if not policy:
                continue  # known after apply: checked on the configuration above
            for st in json.loads(policy)["Statement"]:
                assert "Condition" in st
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                if st["Resource"] == "*":
                    assert set(actions) <= STAR_ONLY_ACTIONS


# 6. Rotation in prod only
def test_06_rotation_in_prod_only(prod, dev):
    rotation = prod.changes("database", "aws_secretsmanager_secret_rotation")
    assert sorted(rc["name"] for rc in rotation) == ["app", "db"]  # the master and the API's secret
    for rc in rotation:
        after = rc["change"]["after"]
        assert after["rotation_rules"][0]["automatically_after_days"] == 30
        assert after["rotate_immediately"] is False
    fn = prod.changes("database", "aws_lambda_function")[0]["change"]["after"]
    assert fn["handler"] == "rotate.handler" and fn["runtime"].startswith("python3")
    assert fn["vpc_config"][0]["subnet_ids"] == prod.stand_ins["network"]["private_subnet_ids"]
    assert not dev.changes("database", "aws_secretsmanager_secret_rotation")
    assert not dev.changes("database", "aws_lambda_function")


# 7. KMS-encrypted logs in prod
def test_07_log_groups_kms_encrypted_in_prod(prod, dev):
    logs_key = prod.stand_ins["security"]["logs_kms_key_arn"]
    app_logs = prod.changes("observability", "aws_cloudwatch_log_group")[0]["change"]["after"]
    assert app_logs["kms_key_id"] == logs_key
    for unit in ("database", "edge"):
        for lg in prod.changes(unit, "aws_cloudwatch_log_group"):
            assert lg["change"]["after"]["kms_key_id"] == logs_key
    flow = prod.changes("security", "aws_cloudwatch_log_group")[0]
    assert flow["change"]["after_unknown"].get("kms_key_id") is True  # the new logs key
    assert prod.changes("security", "aws_kms_key")
    assert dev.changes("observability", "aws_cloudwatch_log_group")[0]["change"]["after"]["kms_key_id"] is None


# 8. SNS subscriptions with a DLQ
def test_08_every_subscription_has_a_redrive_policy_to_the_dlq(env):
    subs = env.changes("observability", "aws_sns_topic_subscription")
    assert len(subs) == len(env.settings["alarm_emails"]) >= 1
    cfg = env.config("observability", "aws_sns_topic_subscription.email")
    assert "aws_sqs_queue.alerts_dlq.arn" in cfg["expressions"]["redrive_policy"]["references"]
    for s in subs:
        assert s["change"]["after_unknown"].get("redrive_policy") or s["change"]["after"].get("redrive_policy")
    queue = env.changes("observability", "aws_sqs_queue")[0]["change"]["after"]
    assert queue["kms_master_key_id"] == env.stand_ins["security"]["alerts_kms_key_arn"]
    assert env.changes("observability", "aws_sqs_queue_policy")
    topic = env.changes("observability", "aws_sns_topic")[0]["change"]["after"]
    assert topic["kms_master_key_id"] == env.stand_ins["security"]["alerts_kms_key_arn"]
    alarms = {a["change"]["after"]["metric_name"] for a in env.changes("app", "aws_cloudwatch_metric_alarm")}
    # + the rotation function's Errors where rotation is on
    expected = {"HTTPCode_ELB_5XX_Count", "CPUUtilization"} | ({"Errors"} if env.settings["enable_rotation"] else set())
    assert alarms == expected
    assert len(env.changes("app", "aws_cloudwatch_metric_alarm")) == 3 + env.settings["enable_rotation"]


# 9. WAF in prod
def test_09_waf_associated_in_prod(prod, dev):
    acl = prod.changes("edge", "aws_wafv2_web_acl")[0]["change"]["after"]
    rules = {r["name"]: r for r in acl["rule"]}
    assert rules["rate-limit-per-ip"]["statement"][0]["rate_based_statement"][0]["limit"] == 2000
    managed = [
        r["statement"][0]["managed_rule_group_statement"][0]["name"]
        for r in acl["rule"]
        if r["statement"][0]["managed_rule_group_statement"]
    ]
    assert "AWSManagedRulesCommonRuleSet" in managed
    assert prod.changes("edge", "aws_wafv2_web_acl_association")
    assert prod.changes("edge", "aws_wafv2_web_acl_logging_configuration")
    assert not dev.changes("edge", "aws_wafv2_web_acl")


# 10. Real backend values
def test_10_backend_is_real_and_encrypted(env):
    for unit in env.plans:
        state = json.loads(
            (env.work / "envs" / f"{env.env_name}-plan" / unit / ".terraform" / "terraform.tfstate").read_text()
        )
        conf = state["backend"]["config"]
        assert conf["bucket"].startswith("acme-payments-tfstate-") and "<" not in conf["bucket"]
        assert conf["key"] == f"payment-platform/{env.env_name}-plan/{unit}.tfstate"
        assert conf["encrypt"] is True and conf["kms_key_id"].startswith("arn:aws:kms:")
        assert conf["use_lockfile"] is True or conf["dynamodb_table"]


# 11. Explicit dependencies
def test_11_explicit_dependencies(env):
    service = env.config("app", "aws_ecs_service.api")
    assert {"terraform_data.listener", "aws_iam_role_policy.execution"} <= set(service["depends_on"])
    assert "aws_internet_gateway.main" in env.config("network", "aws_nat_gateway.main")["depends_on"]
    assert (
        "aws_lambda_permission.rotation"
        in env.config("database", "aws_secretsmanager_secret_rotation.db")["depends_on"]
    )


# 12. default_tags, no per-resource tag drift
def test_12_default_tags_on_every_resource(env):
    count = 0
    for unit in env.plans:
        provider = env.plans[unit]["configuration"]["provider_config"]["aws"]["expressions"]
        assert provider["default_tags"], unit
        for rc in env.changes(unit):
            after = rc["change"]["after"] or {}
            if "tags_all" not in after or after["tags_all"] is None:
                continue
            count += 1
            assert set(after["tags_all"]) >= DEFAULT_TAGS, rc["address"]
            assert after["tags_all"]["Environment"] == env.env_name
            assert after["tags_all"]["EnvironmentSuffix"] == f"{env.env_name}-plan"
            assert set(after.get("tags") or {}) <= {"Name", "Tier"}, rc["address"]
    assert count > 30


def test_names_carry_prefix_and_suffix(env):
    """${name_prefix}-<what>-${environment_suffix}: copies of dev can share an account."""
    suffix = f"{env.env_name}-plan"
    checked = 0
    for unit in env.plans:
        for rc in env.changes(unit):
            if rc["type"] in ("aws_iam_role_policy", "aws_route53_record"):  # scoped to a role / a DNS name
                continue
            after = rc["change"]["after"] or {}
            for key in ("name", "function_name", "cluster_identifier", "identifier", "family", "alarm_name"):
                value = after.get(key)
                if key == "family" and rc["type"] != "aws_ecs_task_definition":
                    continue  # e.g. a parameter group's engine family
                if isinstance(value, str) and value:
                    checked += 1
                    assert "payments-" in value and suffix in value, (rc["address"], key, value)
    assert checked > 25


def test_custom_checkov_checks_pass_on_the_plans(env, checkov):
    import subprocess

    for unit in env.plans:
        plan_file = env.work / f"{env.env_name}-{unit}.plan.json"
        out = subprocess.run(
            [
                checkov,
                "-f",
                str(plan_file),
                "--framework",
                "terraform_plan",
                "--skip-download",
                "--quiet",
                "--external-checks-dir",
                "checks",
                "--check",
                "CKV_PAY_2,CKV_PAY_3",
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert out.returncode == 0, out.stdout[-2000:]
