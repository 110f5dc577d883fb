"""The built-in library of named smoke checks and post-apply hooks (boto3 only).

Nothing here knows a particular stack: each function takes the AWS identifiers
it works on as arguments, and a manifest says which outputs and settings fill
them (see orchestrator.model.plugins). A check reads AWS, never writes, and returns
what it saw, raising NotYet while AWS may still be converging and Fail when
something is wrong. A hook acts after its unit applied and returns a
HookResult; it is idempotent (a second run changes nothing).
"""

from __future__ import annotations

import json

from orchestrator.errors import HookError, error_code
from orchestrator.model.plugins import Context, Fail, HookResult, NotYet, converges_within


# ---- checks ------------------------------------------------------------------
def nat_gateways(ctx: Context, ids: list, single: bool = False, az_count: int | None = None) -> str:
    """Every NAT gateway available: one, or one per availability zone."""
    if not ids:
        raise Fail("no NAT gateways")
    gws = ctx.aws.client("ec2").describe_nat_gateways(NatGatewayIds=ids)["NatGateways"]
    states = {g["NatGatewayId"]: g["State"] for g in gws}
    not_ready = [i for i in ids if states.get(i) != "available"]
    if not_ready:
        raise NotYet(f"NAT gateways not available: {', '.join(not_ready)}")
    expected = 1 if single else (az_count if az_count is not None else len(ids))
    if len(ids) != expected:
        raise Fail(f"{len(ids)} NAT gateways, expected {expected}")
    return f"{len(ids)} NAT gateway(s) available"


def routes_through_nat(ctx: Context, route_table_ids: list, nat_gateway_ids: list) -> str:
    """Each route table sends 0.0.0.0/0 to one of the NAT gateways."""
    nats = set(nat_gateway_ids)
    tables = ctx.aws.client("ec2").describe_route_tables(RouteTableIds=route_table_ids)["RouteTables"]
    bad = []
    for t in tables:
        default = [r for r in t.get("Routes", []) if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
        if not default or default[0].get("NatGatewayId") not in nats:
            bad.append(t["RouteTableId"])
    if bad:
        raise Fail(f"private route tables without a NAT default route: {', '.join(bad)}")
    return f"{len(tables)} private route table(s) route 0.0.0.0/0 through a NAT"


@converges_within(900)  # a cluster "modifying" after a parameter or class change: many minutes
def db_cluster_secret(ctx: Context, cluster_id: str, secret_arn: str) -> str:
    """The cluster is available and the secret's host and port are its endpoint's."""
    cluster = ctx.aws.client("rds").describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]
    if cluster["Status"] != "available":
        raise NotYet(f"cluster {cluster_id} is {cluster['Status']}")
    secret = ctx.aws.client("secretsmanager").get_secret_value(SecretId=secret_arn, VersionStage="AWSCURRENT")
    value = json.loads(secret["SecretString"])
    if value.get("host") != cluster["Endpoint"]:
        raise Fail(f"secret host {value.get('host')!r} is not the cluster endpoint {cluster['Endpoint']!r}")
    if int(value.get("port", 0)) != int(cluster["Port"]):
        raise Fail(f"secret port {value.get('port')} is not the cluster port {cluster['Port']}")
    return f"cluster available; secret host = {cluster['Endpoint']}"


@converges_within(900)
def ecs_service(ctx: Context, cluster: str, service: str, desired_count: int | None = None) -> str:
    """The service is ACTIVE with the desired count, its latest deployment rolled out (COMPLETED,
    no older deployment left, every task running), and in every target group it registers with,
    as many targets healthy as tasks it wants.

    AWS's timing sizes the budget (15 min): Fargate tasks are PENDING for tens of seconds (ENI,
    image pull, secrets); a target is `initial` until it passes HealthyThresholdCount checks
    (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html);
    a rollout is IN_PROGRESS until the new tasks are healthy and the old ones drained, and
    FAILED when the deployment circuit breaker trips
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html).
    A crash-looping service never completes its rollout and never has healthy targets: it fails."""
    svc = ctx.aws.client("ecs").describe_services(cluster=cluster, services=[service])
    if not svc["services"]:
        raise Fail(f"service {service} not found")
    s = svc["services"][0]
    if s["status"] != "ACTIVE":
        raise Fail(f"service is {s['status']}")
    want = s["desiredCount"]
    if desired_count is not None and want != desired_count:
        raise Fail(f"desired count {want}, settings say {desired_count}")
    deployments = s.get("deployments") or []
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    if primary is not None:
        state = primary.get("rolloutState")
        failed = primary.get("failedTasks", 0)
        if state == "FAILED":
            raise Fail(f"deployment {primary.get('id')} FAILED: {primary.get('rolloutStateReason', 'no reason given')}")
        if state == "IN_PROGRESS" or len(deployments) > 1:
            started = f", {failed} task(s) failed to start" if failed else ""
            raise NotYet(
                f"rollout {state or 'not finished'}: {primary.get('runningCount', 0)}/{want} new task(s) running"
                f"{started}, {len(deployments)} deployment(s)"
            )
    if s["runningCount"] < want:
        raise NotYet(f"{s['runningCount']}/{want} tasks running")
    healthy_note = ""
    elb = ctx.aws.client("elbv2")
    for lb in s.get("loadBalancers") or []:
        if not lb.get("targetGroupArn"):
            continue
        health = elb.describe_target_health(TargetGroupArn=lb["targetGroupArn"])["TargetHealthDescriptions"]
        healthy = sum(1 for h in health if h["TargetHealth"]["State"] == "healthy")
        if healthy < want:
            others = sorted(
                {f"{h['TargetHealth']['State']} ({h['TargetHealth'].get('Reason', '-')})" for h in health}
                - {"healthy (-)"}
            )
            raise NotYet(
                f"{healthy}/{want} target(s) healthy in {lb['targetGroupArn'].split(':')[-1]}"
                + (f"; others: {', '.join(others)}" if others else "")
            )
        healthy_note = f", {healthy} target(s) healthy"
    extra = s["runningCount"] - want  # tasks of the replaced deployment, still draining
    running = f"{want}/{want} tasks running" + (f" (+{extra} of the old deployment stopping)" if extra > 0 else "")
    return f"service ACTIVE, rollout COMPLETED, {running}{healthy_note}"


@converges_within(600)  # an ALB stays "provisioning" for minutes after CreateLoadBalancer
def load_balancer(ctx: Context, alb_arn: str, target_group_arn: str) -> str:
    """The load balancer is active with a listener; its target group has a health check path."""
    elb = ctx.aws.client("elbv2")
    lb = elb.describe_load_balancers(LoadBalancerArns=[alb_arn])["LoadBalancers"][0]
    if lb["State"]["Code"] != "active":
        raise NotYet(f"load balancer is {lb['State']['Code']}")
    listeners = elb.describe_listeners(LoadBalancerArn=alb_arn)["Listeners"]
    if not listeners:
        raise Fail("load balancer has no listener")
    tg = elb.describe_target_groups(TargetGroupArns=[target_group_arn])["TargetGroups"][0]
    if not tg.get("HealthCheckEnabled", True) or not tg.get("HealthCheckPath"):
        raise Fail("target group has no health check path")
    return f"ALB active, {len(listeners)} listener(s), health check {tg['HealthCheckPath']}"


def waf_association(ctx: Context, resource_arn: str) -> str:
    """A web ACL is associated with the resource."""
    acl = ctx.aws.client("wafv2").get_web_acl_for_resource(ResourceArn=resource_arn).get("WebACL")
    if not acl:
        raise Fail("no web ACL associated with the load balancer")
    return f"web ACL {acl['Name']} associated"


def log_group_kms(ctx: Context, log_group_name: str) -> str:
    """The log group exists and is encrypted with a KMS key."""
    groups = ctx.aws.client("logs").describe_log_groups(logGroupNamePrefix=log_group_name)["logGroups"]
    group = next((g for g in groups if g["logGroupName"] == log_group_name), None)
    if group is None:
        raise Fail(f"log group {log_group_name} not found")
    if not group.get("kmsKeyId"):
        raise Fail(f"log group {log_group_name} is not KMS-encrypted")
    return "log group KMS-encrypted"


def sns_subscriptions_dlq(ctx: Context, topic_arn: str, dlq_arn: str) -> str:
    """Every subscription of the topic is confirmed and redrives to the dead-letter queue. A
    subscription pending confirmation (an e-mail whose recipient has not followed AWS's link)
    delivers nothing: it fails the check, named, instead of counting as delivered."""
    sns = ctx.aws.client("sns")
    subs = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    subs = [s for s in subs if s["SubscriptionArn"] != "Deleted"]
    if not subs:
        raise Fail("alert topic has no subscription")
    pending, bad = [], []
    for s in subs:
        if s["SubscriptionArn"] == "PendingConfirmation":
            pending.append(s["Endpoint"])
            continue
        attrs = sns.get_subscription_attributes(SubscriptionArn=s["SubscriptionArn"])["Attributes"]
        if str(attrs.get("PendingConfirmation", "false")).lower() == "true":
            pending.append(s["Endpoint"])
        elif json.loads(attrs.get("RedrivePolicy") or "{}").get("deadLetterTargetArn") != dlq_arn:
            bad.append(s["Endpoint"])
    if pending:
        raise Fail(
            f"{len(pending)} of {len(subs)} subscription(s) pending confirmation, so no alert reaches "
            f"{', '.join(sorted(pending))}: each recipient must follow the link in the e-mail AWS sent"
        )
    if bad:
        raise Fail(f"subscriptions without the DLQ: {len(bad)}")
    return f"{len(subs)} subscription(s), confirmed, each with the DLQ"


def log_group_exists(ctx: Context, log_group_name: str, retention_days: int | None = None) -> str:
    """The log group exists (with the given retention, when one is named)."""
    groups = ctx.aws.client("logs").describe_log_groups(logGroupNamePrefix=log_group_name)["logGroups"]
    group = next((g for g in groups if g["logGroupName"] == log_group_name), None)
    if group is None:
        raise Fail(f"log group {log_group_name} not found")
    if retention_days is not None and group.get("retentionInDays") != retention_days:
        raise Fail(f"log group {log_group_name} keeps {group.get('retentionInDays')} days, expected {retention_days}")
    return f"log group {log_group_name} exists"


def sns_topic_encrypted(ctx: Context, topic_arn: str) -> str:
    """The topic exists and encrypts messages at rest with a KMS key."""
    attrs = ctx.aws.client("sns").get_topic_attributes(TopicArn=topic_arn)["Attributes"]
    if not attrs.get("KmsMasterKeyId"):
        raise Fail(f"topic {topic_arn} is not KMS-encrypted")
    return f"topic encrypted with {attrs['KmsMasterKeyId']}"


def metric_alarm_exists(ctx: Context, alarm_name: str, action_arn: str | None = None) -> str:
    """The CloudWatch alarm exists with its actions enabled (and notifying action_arn, when named)."""
    alarms = ctx.aws.client("cloudwatch").describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
    if not alarms:
        raise Fail(f"alarm {alarm_name} not found")
    if not alarms[0].get("ActionsEnabled", True):
        raise Fail(f"alarm {alarm_name} has its actions disabled")
    if action_arn is not None and action_arn not in alarms[0].get("AlarmActions", []):
        raise Fail(f"alarm {alarm_name} does not notify {action_arn}")
    return f"alarm {alarm_name} is {alarms[0].get('StateValue', 'unknown')}"


CHECKS = {
    "nat_gateways": nat_gateways,
    "routes_through_nat": routes_through_nat,
    "db_cluster_secret": db_cluster_secret,
    "ecs_service": ecs_service,
    "load_balancer": load_balancer,
    "waf_association": waf_association,
    "log_group_kms": log_group_kms,
    "sns_subscriptions_dlq": sns_subscriptions_dlq,
    "log_group_exists": log_group_exists,
    "sns_topic_encrypted": sns_topic_encrypted,
    "metric_alarm_exists": metric_alarm_exists,
}


# ---- hooks -------------------------------------------------------------------
ENDPOINT_WRITE_ATTEMPTS = 3


def _pending_elsewhere(versions: dict) -> str | None:
    """The version labelled AWSPENDING when it is not AWSCURRENT: a rotation in flight (or one
    that failed and left its label)."""
    return next(
        (v for v, stages in versions.items() if "AWSPENDING" in stages and "AWSCURRENT" not in stages),
        None,
    )


def write_db_endpoint(ctx: Context, secret_arn: str, host: str, port, dbname: str) -> HookResult:
    """Merge host, port and dbname into a JSON secret; a new version only when they differ.
    The password and every other field are kept as they are.

    Secrets Manager has no conditional write: a rotation may move AWSCURRENT between the
    read and the write. After writing, the version the write displaced (now AWSPREVIOUS) is
    compared with the one read; when another writer came between, its value gets the
    endpoint merged in turn (bounded). A rotation in flight needs nothing here: the rotation
    function gives its new AWSCURRENT the endpoint of AWSCURRENT (rotate.py, finishSecret)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        wanted = {"host": host, "port": int(port), "dbname": dbname}
    except (TypeError, ValueError):
        raise HookError(f"write_db_endpoint: port {port!r} is not a number") from None
    sm = ctx.aws.client("secretsmanager")
    try:
        current = sm.get_secret_value(SecretId=secret_arn, VersionStage="AWSCURRENT")
        expected = current["VersionId"]  # what our write should displace
        for _ in range(ENDPOINT_WRITE_ATTEMPTS):
            value = json.loads(current["SecretString"])
            if not isinstance(value, dict):
                raise HookError(f"write_db_endpoint: secret {secret_arn} is not a JSON object")
            if ctx.redactor is not None:
                ctx.redactor.add(value.get("password"))
            if all(value.get(k) == v for k, v in wanted.items()):
                return HookResult("write_db_endpoint", False, f"secret already has host {wanted['host']}")
            written = sm.put_secret_value(SecretId=secret_arn, SecretString=json.dumps({**value, **wanted}))
            stages = sm.describe_secret(SecretId=secret_arn)["VersionIdsToStages"]
            displaced = next((v for v, s in stages.items() if "AWSPREVIOUS" in s), None)
            if displaced in (expected, None) or "AWSCURRENT" not in stages.get(written["VersionId"], []):
                break
            # Another writer (a rotation's finishSecret) came between: merge into its value.
            current = sm.get_secret_value(SecretId=secret_arn, VersionId=displaced)
            expected = written["VersionId"]
        else:
            raise HookError(f"write_db_endpoint: {secret_arn} kept changing under {ENDPOINT_WRITE_ATTEMPTS} writes")
    except HookError:
        raise
    except ValueError:
        raise HookError(f"write_db_endpoint: secret {secret_arn} does not hold JSON") from None
    except ClientError as exc:
        raise HookError(f"write_db_endpoint: {error_code(exc)} on {secret_arn}") from None
    except BotoCoreError as exc:
        raise HookError(f"write_db_endpoint: {type(exc).__name__} on {secret_arn}") from None
    return HookResult("write_db_endpoint", True, f"secret now has host {wanted['host']}, port {wanted['port']}")


def await_rotation(sm, secret_arn: str, token: str, wait_seconds: float, interval: float = 5.0, clock=None) -> bool:
    """Waits until version ``token`` is AWSCURRENT (True) or the deadline passes (False).
    On False the rotation's AWSPENDING label is taken off: AWS refuses every later
    RotateSecret while AWSPENDING sits on another version than AWSCURRENT
    (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html)."""
    import time
    import uuid

    clock = clock or time.monotonic
    deadline = clock() + wait_seconds
    # When the endpoint moved during the rotation, finishSecret makes AWSCURRENT a version of its
    # own, its id derived from the rotation's (terraform/database/lambda/rotation/rotate.py).
    merged = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{token}/endpoint"))
    while True:
        stages = sm.describe_secret(SecretId=secret_arn)["VersionIdsToStages"]
        if "AWSCURRENT" in stages.get(token, []) or "AWSCURRENT" in stages.get(merged, []):
            return True
        if clock() >= deadline:
            if "AWSPENDING" in stages.get(token, []):
                sm.update_secret_version_stage(
                    SecretId=secret_arn, VersionStage="AWSPENDING", RemoveFromVersionId=token
                )
            return False
        time.sleep(interval)


def prove_rotation(ctx: Context, secret_arn: str, enabled: bool = True, wait_seconds: int = 300) -> HookResult:
    """One rotation of the secret, run now and awaited, so a wrong CA bundle, security group
    or route fails the deploy instead of the first scheduled rotation a month later.
    Rotates when the secret never rotated, or when the rotation function changed since its
    last rotation; otherwise there is nothing new to prove. For the app secret (alternating
    users) the first rotation also creates the app's database user."""
    from datetime import datetime

    from botocore.exceptions import BotoCoreError, ClientError

    if not enabled:
        return HookResult("prove_rotation", False, "rotation is off: nothing to prove")
    sm = ctx.aws.client("secretsmanager")
    try:
        meta = sm.describe_secret(SecretId=secret_arn)
        name = meta.get("Name", secret_arn)
        if not meta.get("RotationEnabled") or not meta.get("RotationLambdaARN"):
            raise HookError(f"prove_rotation: rotation is not configured on {name}")
        function = meta["RotationLambdaARN"]
        fn = ctx.aws.client("lambda").get_function_configuration(FunctionName=function)
        changed = datetime.fromisoformat(fn["LastModified"].replace("+0000", "+00:00"))
        last = meta.get("LastRotatedDate")
        if last is not None and last >= changed:
            return HookResult(
                "prove_rotation", False, f"{name} rotated {last:%Y-%m-%d %H:%M}, function unchanged since"
            )
        stuck = _pending_elsewhere(meta.get("VersionIdsToStages", {}))
        if stuck:  # a rotation in flight finishes first; one that failed earlier loses its label
            await_rotation(sm, secret_arn, stuck, wait_seconds)
        token = sm.rotate_secret(SecretId=secret_arn, RotateImmediately=True)["VersionId"]
        if not await_rotation(sm, secret_arn, token, wait_seconds):
            log_group = "/aws/lambda/" + function.rsplit(":", 1)[-1]
            raise HookError(
                f"prove_rotation: rotation of {name} did not finish in {wait_seconds}s "
                f"(the function's error is in log group {log_group})"
            )
    except HookError:
        raise
    except ClientError as exc:
        raise HookError(f"prove_rotation: {error_code(exc)} on {secret_arn}") from None
    except BotoCoreError as exc:
        raise HookError(f"prove_rotation: {type(exc).__name__} on {secret_arn}") from None
    return HookResult("prove_rotation", True, f"{name} rotated and logs in")


HOOKS = {"write_db_endpoint": write_db_endpoint, "prove_rotation": prove_rotation}
