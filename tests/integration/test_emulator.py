"""The emulator's corrections of moto (orchestrator/aws/emulator.py): each behaves as AWS does."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.integration.conftest import clients_for, own_emulator


def test_a_put_after_moving_awscurrent_labels_the_moved_version_previous(moto_url):
    """After a rotation's finishSecret moved AWSCURRENT, PutSecretValue takes AWSCURRENT off
    that version and labels it AWSPREVIOUS (plain moto leaves AWSCURRENT on two versions)."""
    sm = clients_for(moto_url)("secretsmanager")
    arn = sm.create_secret(Name=f"emulator-{uuid.uuid4().hex[:6]}", SecretString="v0")["ARN"]
    v0 = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    (first,) = v0
    rotated = sm.put_secret_value(SecretId=arn, SecretString="v1", VersionStages=["AWSPENDING"])["VersionId"]
    sm.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=rotated, RemoveFromVersionId=first
    )
    written = sm.put_secret_value(SecretId=arn, SecretString="v2")["VersionId"]
    stages = {v: s for v, s in sm.describe_secret(SecretId=arn)["VersionIdsToStages"].items() if s}
    holders = sorted(v for v, s in stages.items() if "AWSCURRENT" in s)
    assert holders == [written]
    assert "AWSPREVIOUS" in stages[rotated]
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "v2"


# ---- like-AWS mode ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def like_aws(tmp_path_factory):
    with own_emulator(tmp_path_factory.mktemp("like-aws"), like_aws=True) as url:
        yield url


def test_an_email_subscription_stays_pending_and_the_smoke_check_says_so(like_aws):
    """Like AWS: an e-mail subscription delivers nothing until confirmed. The smoke check names
    it instead of counting it as delivered; once confirmed (and redriving to the DLQ) it passes.
    On plain moto the subscription is confirmed at once."""
    from orchestrator.aws.clients import Aws
    from orchestrator.model.library import sns_subscriptions_dlq
    from orchestrator.model.plugins import Context, Fail

    client = clients_for(like_aws)
    sns, sqs = client("sns"), client("sqs")
    topic = sns.create_topic(Name=f"alerts-{uuid.uuid4().hex[:6]}")["TopicArn"]
    dlq_url = sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sub = sns.subscribe(
        TopicArn=topic,
        Protocol="email",
        Endpoint="oncall@example.com",
        ReturnSubscriptionArn=True,
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq})},
    )["SubscriptionArn"]
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["SubscriptionArn"] for s in listed] == ["PendingConfirmation"]
    assert sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["PendingConfirmation"] == "true"

    ctx = Context(aws=Aws("us-east-1", endpoint_url=like_aws), settings={})
    with pytest.raises(Fail, match=r"1 of 1 subscription\(s\) pending confirmation, so no alert reaches oncall@"):
        sns_subscriptions_dlq(ctx, topic, dlq)
    sns.confirm_subscription(TopicArn=topic, Token="the-token-in-the-email")
    assert sns_subscriptions_dlq(ctx, topic, dlq) == "1 subscription(s), confirmed, each with the DLQ"


# ---- ECS: rollouts and the targets they register --------------------------------------
ECS_TIMING = {
    "ORCHESTRATOR_LIKE_AWS_TIME_SCALE": "0.2",  # 10 s PENDING -> 2 s; 5 s x 2 checks -> 2 s
    "ORCHESTRATOR_LIKE_AWS_ECS_SECONDS": "10",
    "ORCHESTRATOR_LIKE_AWS_CRASHING_SERVICES": "crashing",
}


@pytest.fixture(scope="module")
def ecs_like_aws(tmp_path_factory):
    with own_emulator(tmp_path_factory.mktemp("like-aws-ecs"), like_aws=True, timing=ECS_TIMING) as url:
        yield url


def _service_behind_a_target_group(url: str, name: str, image: str = "app:1"):
    """A cluster, a task definition, a target group (checked every 5 s, healthy after 2) and a
    service of 2 tasks registered with it."""
    client = clients_for(url)
    ec2, ecs, elb = client("ec2"), client("ecs"), client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    tg = elb.create_target_group(
        Name=f"tg-{name}"[:32],
        Protocol="HTTP",
        Port=8080,
        VpcId=vpc,
        TargetType="ip",
        HealthCheckPath="/health",
        HealthCheckIntervalSeconds=5,
        HealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    ecs.create_cluster(clusterName=name)
    family = ecs.register_task_definition(
        family=name, containerDefinitions=[{"name": "api", "image": image, "memory": 512}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster=name,
        serviceName=name,
        taskDefinition=family,
        desiredCount=2,
        loadBalancers=[{"targetGroupArn": tg, "containerName": "api", "containerPort": 8080}],
    )
    return ecs, elb, tg


def _phases(url: str, name: str, tg: str, deadline_s: float = 30.0) -> tuple[list[str], list[str]]:
    """What the service shows and what its targets show, each change once, until its rollout
    completes and its targets are healthy (or the deadline)."""
    import time

    client = clients_for(url)
    ecs, elb = client("ecs"), client("elbv2")
    service: list[str] = []
    targets: list[str] = []

    def saw(seq, phase):
        if not seq or seq[-1] != phase:
            seq.append(phase)

    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        s = ecs.describe_services(cluster=name, services=[name])["services"][0]
        saw(service, f"{s['deployments'][0]['rolloutState']} running={s['runningCount']}")
        health = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
        saw(targets, ",".join(sorted({h["TargetHealth"]["State"] for h in health})) or "-")
        if service[-1].startswith("COMPLETED") and targets[-1] == "healthy":
            break
        time.sleep(0.1)
    return service, targets


def test_like_aws_a_new_service_starts_its_tasks_then_passes_its_health_checks_then_completes(ecs_like_aws):
    """Like AWS: tasks PENDING, then RUNNING with targets `initial`, then healthy and the rollout
    COMPLETED. The smoke check waits through it (NotYet) and passes; plain moto reported the
    service running at once, so the old check passed before any task could serve."""
    from orchestrator.aws.clients import Aws
    from orchestrator.model.library import ecs_service
    from orchestrator.model.plugins import Context, NotYet

    ecs, elb, tg = _service_behind_a_target_group(ecs_like_aws, "fresh")
    ctx = Context(aws=Aws("us-east-1", endpoint_url=ecs_like_aws), settings={})
    with pytest.raises(NotYet, match=r"rollout IN_PROGRESS: 0/2 new task\(s\) running"):
        ecs_service(ctx, "fresh", "fresh", 2)
    assert _phases(ecs_like_aws, "fresh", tg) == (
        ["IN_PROGRESS running=0", "IN_PROGRESS running=2", "COMPLETED running=2"],
        ["-", "initial", "healthy"],
    )
    assert ecs_service(ctx, "fresh", "fresh", 2) == (
        "service ACTIVE, rollout COMPLETED, 2/2 tasks running, 2 target(s) healthy"
    )


def test_like_aws_a_new_task_definition_rolls_out_beside_the_old_tasks(ecs_like_aws):
    """An update to a new task definition starts a second deployment; the old tasks keep running
    until the new ones are healthy: the check waits for the one COMPLETED deployment."""
    from orchestrator.aws.clients import Aws
    from orchestrator.model.library import ecs_service
    from orchestrator.model.plugins import Context, NotYet

    ecs, elb, tg = _service_behind_a_target_group(ecs_like_aws, "updated")
    assert _phases(ecs_like_aws, "updated", tg) == (
        ["IN_PROGRESS running=0", "IN_PROGRESS running=2", "COMPLETED running=2"],
        ["-", "initial", "healthy"],
    )
    v2 = ecs.register_task_definition(
        family="updated", containerDefinitions=[{"name": "api", "image": "app:2", "memory": 512}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster="updated", service="updated", taskDefinition=v2, desiredCount=2)
    s = ecs.describe_services(cluster="updated", services=["updated"])["services"][0]
    assert [(d["status"], d["runningCount"]) for d in s["deployments"]] == [("PRIMARY", 0), ("ACTIVE", 2)]
    ctx = Context(aws=Aws("us-east-1", endpoint_url=ecs_like_aws), settings={})
    with pytest.raises(NotYet, match=r"2 deployment\(s\)"):
        ecs_service(ctx, "updated", "updated", 2)
    service, _ = _phases(ecs_like_aws, "updated", tg)
    assert service[-1] == "COMPLETED running=2"
    s = ecs.describe_services(cluster="updated", services=["updated"])["services"][0]
    assert [d["taskDefinition"] for d in s["deployments"]] == [v2]


def test_like_aws_a_crash_looping_service_never_passes_its_smoke_check(ecs_like_aws):
    """Tasks that start and then fail their health checks: targets `unhealthy`, the rollout never
    completes, the check fails when its budget ends, naming the targets' state. The old check
    (runningCount >= desiredCount) passed it."""
    from orchestrator.aws.clients import Aws
    from orchestrator.core.smoke import Check, run_check
    from orchestrator.model.library import ecs_service
    from orchestrator.model.plugins import Context

    ecs, elb, tg = _service_behind_a_target_group(ecs_like_aws, "crashing")
    ctx = Context(aws=Aws("us-east-1", endpoint_url=ecs_like_aws), settings={})
    result = run_check(Check("ecs service", lambda: ecs_service(ctx, "crashing", "crashing", 2), budget=6))
    assert not result.passed
    assert "rollout IN_PROGRESS: 2/2 new task(s) running" in result.reason
    assert "task(s) failed to start" in result.reason
    states = {
        h["TargetHealth"]["State"] for h in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    }
    assert states == {"unhealthy"}


def test_plain_moto_rolls_out_at_once_and_registers_healthy_targets(moto_url):
    """The always-on correction: the service's tasks are registered with its target group (moto
    registers nothing), settled at once, so the demo's smoke checks pass without waiting."""
    from orchestrator.aws.clients import Aws
    from orchestrator.model.library import ecs_service
    from orchestrator.model.plugins import Context

    name = f"plain-{uuid.uuid4().hex[:6]}"
    _service_behind_a_target_group(moto_url, name)
    ctx = Context(aws=Aws("us-east-1", endpoint_url=moto_url), settings={})
    assert (
        ecs_service(ctx, name, name, 2) == "service ACTIVE, rollout COMPLETED, 2/2 tasks running, 2 target(s) healthy"
    )


def test_a_new_service_shows_its_availability_zone_rebalancing(moto_url):
    """Always on: CreateService keeps `availabilityZoneRebalancing`, ENABLED when not named (AWS's
    default for a create). Plain moto drops it, and the first plan after a create updated the
    service once; the platform's no-op redeploys (test_platform, test_prod_emulator) now find
    nothing at once."""
    name = f"azr-{uuid.uuid4().hex[:6]}"
    ecs, _, _ = _service_behind_a_target_group(moto_url, name)
    family = ecs.describe_services(cluster=name, services=[name])["services"][0]["taskDefinition"]
    ecs.create_service(
        cluster=name,
        serviceName=f"{name}-off",
        taskDefinition=family,
        desiredCount=0,
        availabilityZoneRebalancing="DISABLED",
    )
    shown = ecs.describe_services(cluster=name, services=[name, f"{name}-off"])["services"]
    assert {s["serviceName"]: s.get("availabilityZoneRebalancing") for s in shown} == {
        name: "ENABLED",
        f"{name}-off": "DISABLED",
    }


def test_like_aws_a_snapshot_under_a_key_pending_deletion_cannot_be_copied_or_restored(like_aws):
    """Like AWS: a final snapshot is only as usable as its KMS key. While the key is enabled the
    snapshot copies; once the key is scheduled for deletion, copy and restore are refused
    (KMSKeyNotAccessibleFault). Plain moto copies regardless."""
    from botocore.exceptions import ClientError

    client = clients_for(like_aws)
    kms, rds = client("kms"), client("rds")
    meta = kms.create_key(Description="data")["KeyMetadata"]
    key = meta["Arn"]
    name = f"db-{uuid.uuid4().hex[:6]}"
    rds.create_db_cluster(
        DBClusterIdentifier=name,
        Engine="aurora-postgresql",
        MasterUsername="payments",
        MasterUserPassword="not-a-real-one-1",
        StorageEncrypted=True,
        KmsKeyId=key,
    )
    rds.delete_db_cluster(DBClusterIdentifier=name, FinalDBSnapshotIdentifier=f"{name}-final")
    rds.copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=f"{name}-final", TargetDBClusterSnapshotIdentifier=f"{name}-copy"
    )
    kms.schedule_key_deletion(KeyId=meta["KeyId"], PendingWindowInDays=7)  # (moto: by id, not ARN)
    for call in (
        lambda: rds.copy_db_cluster_snapshot(
            SourceDBClusterSnapshotIdentifier=f"{name}-final", TargetDBClusterSnapshotIdentifier=f"{name}-copy2"
        ),
        lambda: rds.restore_db_cluster_from_snapshot(
            DBClusterIdentifier=f"{name}-restored", SnapshotIdentifier=f"{name}-final", Engine="aurora-postgresql"
        ),
    ):
        with pytest.raises(ClientError) as caught:
            call()
        assert caught.value.response["Error"]["Code"] == "KMSKeyNotAccessibleFault"
