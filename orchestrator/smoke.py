"""Smoke checks against what was deployed: checks -> results.

Each check reads AWS (never writes), returns pass/fail with a reason, and is
retried with bounded backoff only while AWS may still be converging
(NotYet). Any other error fails the check at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.aws import Aws, error_code


class NotYet(Exception):
    """The resource may still be converging; try again."""


class Fail(Exception):
    """Definitely wrong."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    reason: str
    attempts: int = 1


@dataclass(frozen=True)
class Check:
    name: str
    fn: Callable[[], str]


def run_check(check: Check, *, attempts: int = 6, max_wait: float = 10.0) -> CheckResult:
    from botocore.exceptions import BotoCoreError, ClientError
    from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

    count = 0
    try:
        for attempt in Retrying(
            retry=retry_if_exception_type(NotYet),
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=0.5, max=max_wait),
            reraise=False,
        ):
            with attempt:
                count += 1
                reason = check.fn()
        return CheckResult(check.name, True, reason, count)
    except RetryError as exc:
        return CheckResult(check.name, False, f"{exc.last_attempt.exception()} (after {count} attempts)", count)
    except Fail as exc:
        return CheckResult(check.name, False, str(exc), count)
    except ClientError as exc:
        return CheckResult(check.name, False, f"AWS error {error_code(exc)}", count)
    except BotoCoreError as exc:
        return CheckResult(check.name, False, f"AWS client error {type(exc).__name__}", count)
    except (KeyError, TypeError) as exc:
        return CheckResult(check.name, False, f"missing output {exc}", count)


def build_checks(aws: Aws, outputs: dict[str, dict], settings: dict) -> list[Check]:
    """Checks for what the outputs say exists. A unit without outputs fails its checks."""
    net, db, app, edge, obs = (outputs.get(u) or {} for u in ("network", "database", "app", "edge", "observability"))
    ec2 = aws.client("ec2")

    def nat():
        ids = net["nat_gateway_ids"]
        if not ids:
            raise Fail("no NAT gateways")
        gws = ec2.describe_nat_gateways(NatGatewayIds=ids)["NatGateways"]
        states = {g["NatGatewayId"]: g["State"] for g in gws}
        not_ready = [i for i in ids if states.get(i) != "available"]
        if not_ready:
            raise NotYet(f"NAT gateways not available: {', '.join(not_ready)}")
        expected = 1 if settings.get("single_nat_gateway") else settings.get("az_count", len(ids))
        if len(ids) != expected:
            raise Fail(f"{len(ids)} NAT gateways, expected {expected}")
        return f"{len(ids)} NAT gateway(s) available"

    def private_routes():
        nats = set(net["nat_gateway_ids"])
        tables = ec2.describe_route_tables(RouteTableIds=net["private_route_table_ids"])["RouteTables"]
        bad = []
        for t in tables:
            default = [r for r in t.get("Routes", []) if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
            if not default or default[0].get("NatGatewayId") not in nats:
                bad.append(t["RouteTableId"])
        if bad:
            raise Fail(f"private route tables without a NAT default route: {', '.join(bad)}")
        return f"{len(tables)} private route table(s) route 0.0.0.0/0 through a NAT"

    def database():
        cluster = aws.client("rds").describe_db_clusters(DBClusterIdentifier=db["cluster_id"])["DBClusters"][0]
        if cluster["Status"] != "available":
            raise NotYet(f"cluster {db['cluster_id']} is {cluster['Status']}")
        value = json.loads(
            aws.client("secretsmanager").get_secret_value(SecretId=db["secret_arn"], VersionStage="AWSCURRENT")[
                "SecretString"
            ]
        )
        if value.get("host") != cluster["Endpoint"]:
            raise Fail(f"secret host {value.get('host')!r} is not the cluster endpoint {cluster['Endpoint']!r}")
        if int(value.get("port", 0)) != int(cluster["Port"]):
            raise Fail(f"secret port {value.get('port')} is not the cluster port {cluster['Port']}")
        return f"cluster available; secret host = {cluster['Endpoint']}"

    def ecs():
        svc = aws.client("ecs").describe_services(cluster=app["cluster_name"], services=[app["service_name"]])
        if not svc["services"]:
            raise Fail(f"service {app['service_name']} not found")
        s = svc["services"][0]
        if s["status"] != "ACTIVE":
            raise Fail(f"service is {s['status']}")
        if s["desiredCount"] != settings.get("desired_count", s["desiredCount"]):
            raise Fail(f"desired count {s['desiredCount']}, settings say {settings.get('desired_count')}")
        if s["runningCount"] < s["desiredCount"]:
            raise NotYet(f"{s['runningCount']}/{s['desiredCount']} tasks running")
        return f"service ACTIVE, {s['runningCount']}/{s['desiredCount']} tasks running"

    def alb():
        elb = aws.client("elbv2")
        lb = elb.describe_load_balancers(LoadBalancerArns=[edge["alb_arn"]])["LoadBalancers"][0]
        if lb["State"]["Code"] != "active":
            raise NotYet(f"load balancer is {lb['State']['Code']}")
        listeners = elb.describe_listeners(LoadBalancerArn=edge["alb_arn"])["Listeners"]
        if not listeners:
            raise Fail("load balancer has no listener")
        tg = elb.describe_target_groups(TargetGroupArns=[edge["target_group_arn"]])["TargetGroups"][0]
        if not tg.get("HealthCheckEnabled", True) or not tg.get("HealthCheckPath"):
            raise Fail("target group has no health check path")
        return f"ALB active, {len(listeners)} listener(s), health check {tg['HealthCheckPath']}"

    def waf():
        acl = aws.client("wafv2").get_web_acl_for_resource(ResourceArn=edge["alb_arn"]).get("WebACL")
        if not acl:
            raise Fail("no web ACL associated with the load balancer")
        return f"web ACL {acl['Name']} associated"

    def log_group_kms():
        groups = aws.client("logs").describe_log_groups(logGroupNamePrefix=obs["log_group_name"])["logGroups"]
        group = next((g for g in groups if g["logGroupName"] == obs["log_group_name"]), None)
        if group is None:
            raise Fail(f"log group {obs['log_group_name']} not found")
        if not group.get("kmsKeyId"):
            raise Fail(f"log group {obs['log_group_name']} is not KMS-encrypted")
        return "log group KMS-encrypted"

    def subscriptions():
        sns = aws.client("sns")
        subs = sns.list_subscriptions_by_topic(TopicArn=obs["alerts_topic_arn"])["Subscriptions"]
        if not subs:
            raise Fail("alert topic has no subscription")
        bad = []
        for s in subs:
            if s["SubscriptionArn"] in ("PendingConfirmation", "Deleted"):
                continue
            attrs = sns.get_subscription_attributes(SubscriptionArn=s["SubscriptionArn"])["Attributes"]
            target = json.loads(attrs.get("RedrivePolicy") or "{}").get("deadLetterTargetArn")
            if target != obs["alerts_dlq_arn"]:
                bad.append(s["Endpoint"])
        if bad:
            raise Fail(f"subscriptions without the DLQ: {len(bad)}")
        return f"{len(subs)} subscription(s), each with the DLQ"

    checks = [
        Check("nat gateways", nat),
        Check("private routes", private_routes),
        Check("database + secret host", database),
        Check("ecs service", ecs),
        Check("load balancer", alb),
        Check("sns subscriptions dlq", subscriptions),
    ]
    if settings.get("enable_waf"):
        checks.append(Check("waf association", waf))
    if settings.get("kms_encrypted_logs"):
        checks.append(Check("log group kms", log_group_kms))
    return checks


def run_smoke(aws: Aws, outputs: dict[str, dict], settings: dict, *, attempts: int = 6) -> list[CheckResult]:
    return [run_check(c, attempts=attempts) for c in build_checks(aws, outputs, settings)]
