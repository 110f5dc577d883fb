"""moto server, with what it does differently from AWS put right where the product relies on it.

`orchestrator.aws.local` runs this module instead of `moto.server` (same arguments). Each
correction names the AWS behaviour it reproduces and where AWS documents it; each has a test
that fails on plain moto. Differences that are worked around in settings instead
(environments/emulator.toml) are listed in the README's "Local emulator" section.
"""

from __future__ import annotations

import sys


def current_version_follows_its_label() -> None:
    """UpdateSecretVersionStage moving AWSCURRENT makes that version the secret's current one:
    a later PutSecretValue labels *it* AWSPREVIOUS and takes AWSCURRENT off it ("Secrets
    Manager automatically moves the label AWSPREVIOUS to the version that AWSCURRENT was
    removed from",
    https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_UpdateSecretVersionStage.html
    and API_PutSecretValue.html). moto moves the label but keeps its own idea of the current
    version, so after a rotation's finishSecret a PutSecretValue leaves AWSCURRENT on two
    versions and labels the wrong one AWSPREVIOUS."""
    from moto.secretsmanager.models import SecretsManagerBackend

    original = SecretsManagerBackend.update_secret_version_stage
    if getattr(original, "_follows_label", False):
        return

    def update_secret_version_stage(self, secret_id, version_stage, remove_from_version_id, move_to_version_id):
        result = original(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
        if version_stage == "AWSCURRENT" and move_to_version_id:
            self.secrets[secret_id].set_default_version_id(move_to_version_id)
        return result

    update_secret_version_stage._follows_label = True
    SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage


# ---- ECS services: rollouts and the targets they register ------------------------------
# moto never runs a task: a service reports MOTO_ECS_SERVICE_RUNNING (default 0) tasks and registers
# nothing with its target groups. AWS starts the tasks (PENDING, then RUNNING), registers each
# with the service's target groups, where it is `initial` until it passed HealthyThresholdCount
# checks HealthCheckIntervalSeconds apart, then `healthy`; the deployment is IN_PROGRESS until
# then and COMPLETED after, the older deployment gone
# (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-load-balancing.html,
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html,
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html).
# Always on: the rollout settles and its targets register, at once. In like-AWS mode with AWS's
# timing: ORCHESTRATOR_LIKE_AWS_ECS_SECONDS (default 30) of PENDING, then interval x threshold
# of `initial`, both multiplied by ORCHESTRATOR_LIKE_AWS_TIME_SCALE (default 1). A fault for
# tests: ORCHESTRATOR_LIKE_AWS_CRASHING_SERVICES (comma-separated names) start their tasks,
# which then fail their health checks: `unhealthy`, the rollout never completes.
def _rollout(service, now: float) -> None:
    """Brings the service's deployments, counts and targets to what AWS shows at `now`."""
    import os

    from moto.core.utils import utcnow

    started, pending_for, previous = service.like_aws_rollout
    want = service.desired_count
    primary = service.deployments[0] if service.deployments else None
    crashing = service.name in {
        n.strip() for n in os.environ.get("ORCHESTRATOR_LIKE_AWS_CRASHING_SERVICES", "").split(",")
    }
    elapsed = now - started
    health_for = _health_seconds(service)
    if elapsed < pending_for:
        phase = "pending"
    elif crashing:
        phase = "unhealthy"
    elif elapsed < pending_for + health_for:
        phase = "initial"
    else:
        phase = "healthy"
    service.like_aws_targets = (0 if phase == "pending" else want, phase)
    running = 0 if phase == "pending" else want
    service.running_count = running + (previous if phase != "healthy" else 0)
    service.pending_count = want - running
    if primary is None:
        return
    primary.update(
        desiredCount=want,
        runningCount=running,
        pendingCount=want - running,
        failedTasks=int(elapsed // max(health_for, 1)) if phase == "unhealthy" else 0,
        rolloutState="COMPLETED" if phase == "healthy" else "IN_PROGRESS",
        rolloutStateReason=f"ECS deployment {primary['id']} "
        + ("completed." if phase == "healthy" else "in progress."),
        taskDefinition=service.task_definition,
        updatedAt=utcnow(),
    )
    service.deployments = [primary]
    if previous and phase != "healthy":
        service.deployments.append(
            {
                **primary,
                "id": primary["id"] + "-previous",
                "status": "ACTIVE",
                "runningCount": previous,
                "pendingCount": 0,
                "desiredCount": previous,
                "rolloutState": "COMPLETED",
            }
        )


def _health_seconds(service) -> float:
    """HealthCheckIntervalSeconds x HealthyThresholdCount of the service's target groups (the
    longest), scaled; 0 outside like-AWS mode."""
    from moto.elbv2.models import elbv2_backends

    scale = service.like_aws_scale
    if not scale:
        return 0.0
    groups = elbv2_backends[service._account_id][service.region_name].target_groups
    times = [
        int(groups[lb["targetGroupArn"]].health_check_interval_seconds)
        * int(groups[lb["targetGroupArn"]].healthy_threshold_count)
        for lb in service.load_balancers
        if lb.get("targetGroupArn") in groups
    ]
    return max(times, default=0) * scale


def ecs_services_roll_out_and_register_targets(*, like_aws: bool = False) -> None:
    import time
    import zlib

    from moto.ecs.models import EC2ContainerServiceBackend, ecs_backends
    from moto.elbv2.models import ELBv2Backend, FakeHealthStatus

    scale = _seconds("ORCHESTRATOR_LIKE_AWS_TIME_SCALE", 1.0) if like_aws else 0.0
    pending_for = _seconds("ORCHESTRATOR_LIKE_AWS_ECS_SECONDS", 30.0) * scale
    create, update, describe = (
        EC2ContainerServiceBackend.create_service,
        EC2ContainerServiceBackend.update_service,
        EC2ContainerServiceBackend.describe_services,
    )

    def like_aws_create(self, *args, **kwargs):
        service = create(self, *args, **kwargs)
        service.like_aws_scale = scale
        service.like_aws_rollout = (time.monotonic(), pending_for, 0)
        return service

    def like_aws_update(self, service_properties):
        name = service_properties.get("service", "").split("/")[-1]
        cluster = service_properties.get("cluster", "default").split("/")[-1]
        before = self.services.get(f"{cluster}:{name}")
        was = (before.task_definition, before.desired_count, before.running_count) if before else None
        service = update(self, service_properties)
        if not hasattr(service, "like_aws_rollout"):
            service.like_aws_scale = scale
            service.like_aws_rollout = (time.monotonic(), pending_for, 0)
        _rollout(service, time.monotonic())
        new_tasks = was and (was[0] != service.task_definition or service_properties.get("force_new_deployment"))
        if new_tasks:  # a new deployment replaces the running tasks
            service.deployments[0]["id"] = f"ecs-svc/{int(time.monotonic() * 1000)}"
            service.like_aws_rollout = (time.monotonic(), pending_for, was[2])
        elif was and was[1] != service.desired_count:  # a scale change: the new tasks start
            service.like_aws_rollout = (time.monotonic(), pending_for, 0)
        return service

    def like_aws_describe(self, cluster_str, service_names_or_arns):
        found, failures = describe(self, cluster_str, service_names_or_arns)
        for service in found:
            if hasattr(service, "like_aws_rollout"):
                _rollout(service, time.monotonic())
        return found, failures

    def services_of(backend, target_group_arn):
        ecs = ecs_backends[backend.account_id][backend.region_name]
        for service in list(ecs.services.values()):
            if service.status == "ACTIVE" and any(
                lb.get("targetGroupArn") == target_group_arn for lb in service.load_balancers
            ):
                yield service

    health = ELBv2Backend.describe_target_health
    states = {
        "initial": ("initial", "Elb.InitialHealthChecking", "Initial health checks in progress"),
        "healthy": ("healthy", None, None),
        "unhealthy": ("unhealthy", "Target.ResponseCodeMismatch", "Health checks failed with these codes: [502]"),
    }

    def like_aws_health(self, target_group_arn, targets):
        found = health(self, target_group_arn, targets)
        if targets or found:
            return found
        for service in services_of(self, target_group_arn):
            if hasattr(service, "like_aws_rollout"):
                _rollout(service, time.monotonic())
            count, phase = getattr(service, "like_aws_targets", (0, "pending"))
            port = next(
                (
                    lb.get("containerPort")
                    for lb in service.load_balancers
                    if lb.get("targetGroupArn") == target_group_arn
                ),
                80,
            )
            state, reason, description = states[phase] if phase in states else states["initial"]
            for i in range(count):
                ip = f"10.0.{zlib.crc32(service.name.encode()) % 200}.{10 + i}"
                found.append(FakeHealthStatus(ip, str(port), None, state, reason, description))
        return found

    EC2ContainerServiceBackend.create_service = like_aws_create
    EC2ContainerServiceBackend.update_service = like_aws_update
    EC2ContainerServiceBackend.describe_services = like_aws_describe
    ELBv2Backend.describe_target_health = like_aws_health


def a_service_keeps_its_availability_zone_rebalancing() -> None:
    """CreateService stores `availabilityZoneRebalancing` (ENABLED when the request names none:
    "For create service requests, when no value is specified for AvailabilityZoneRebalancing,
    Amazon ECS defaults the value to ENABLED",
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html) and
    DescribeServices returns it. moto drops it on create and keeps it only once an UpdateService
    sent it, so the first plan after creating a service proposed to set it: every first redeploy
    on the emulator updated the service once, where AWS has nothing to do."""
    from moto.ecs.responses import EC2ContainerServiceResponse

    original = EC2ContainerServiceResponse.create_service
    if getattr(original, "_keeps_rebalancing", False):
        return

    def create_service(self):
        result = original(self)
        cluster = (self._get_param("cluster") or "default").split("/")[-1]
        service = self.ecs_backend.services[f"{cluster}:{self._get_param('serviceName')}"]
        service.availability_zone_rebalancing = self._get_param("availabilityZoneRebalancing") or "ENABLED"
        return result

    create_service._keeps_rebalancing = True
    EC2ContainerServiceResponse.create_service = create_service


CORRECTIONS = (current_version_follows_its_label, a_service_keeps_its_availability_zone_rebalancing)


# ---- like-AWS mode: AWS's asynchronous timing, where moto answers at once -------------
# On with ORCHESTRATOR_LIKE_AWS=1 (`orchestrator local up --like-aws`; the platform tests);
# each delay is an environment variable of its own, in seconds.
LIKE_AWS = "ORCHESTRATOR_LIKE_AWS"


def _seconds(name: str, default: float) -> float:
    import os

    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


def continuous_backups_unavailable_after_create() -> None:
    """Right after CreateTable, AWS refuses UpdateContinuousBackups with
    ContinuousBackupsUnavailableException ("Backups are being enabled for the table") for a
    while (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateContinuousBackups.html,
    Errors). moto enables point-in-time recovery at once.
    ORCHESTRATOR_LIKE_AWS_PITR_SECONDS (default 5)."""
    from moto.core.utils import utcnow
    from moto.dynamodb.exceptions import DynamodbException
    from moto.dynamodb.models import DynamoDBBackend

    delay = _seconds("ORCHESTRATOR_LIKE_AWS_PITR_SECONDS", 5.0)
    original = DynamoDBBackend.update_continuous_backups

    class ContinuousBackupsUnavailable(DynamodbException):
        def __init__(self) -> None:
            super().__init__("ContinuousBackupsUnavailableException", "Backups are being enabled for the table")

    def update_continuous_backups(self, table_name, point_in_time_spec):
        table = self.tables.get(table_name)
        if table is not None and (utcnow() - table.created_at).total_seconds() < delay:
            raise ContinuousBackupsUnavailable()
        return original(self, table_name, point_in_time_spec)

    DynamoDBBackend.update_continuous_backups = update_continuous_backups


def email_subscriptions_wait_for_confirmation() -> None:
    """An e-mail subscription stays pending until its recipient follows the link AWS mailed
    (https://docs.aws.amazon.com/sns/latest/dg/sns-email-notifications.html): the topic's
    subscription list shows its SubscriptionArn as "PendingConfirmation"
    (https://docs.aws.amazon.com/sns/latest/api/API_Subscription.html) and its attributes say
    PendingConfirmation "true". moto confirms at once. Here ConfirmSubscription on the topic
    (AWS checks the mailed token; here any token) confirms its pending subscriptions."""
    import copy

    from moto.sns.models import SNSBackend
    from moto.sns.responses import SNSResponse

    subscribe, by_topic, everything = (
        SNSBackend.subscribe,
        SNSBackend.list_subscriptions_by_topic,
        SNSBackend.list_subscriptions,
    )

    def like_aws_subscribe(self, topic_arn, endpoint, protocol):
        sub = subscribe(self, topic_arn, endpoint, protocol)
        if protocol in ("email", "email-json") and not hasattr(sub, "like_aws_pending"):
            sub.like_aws_pending = True
            sub.attributes["PendingConfirmation"] = "true"
            sub.attributes["ConfirmationWasAuthenticated"] = "false"
        return sub

    def shown(subs):
        out = []
        for sub in subs:
            if getattr(sub, "like_aws_pending", False):
                sub = copy.copy(sub)
                sub.arn = "PendingConfirmation"
            out.append(sub)
        return out

    def like_aws_by_topic(self, topic_arn, next_token=None):
        subs, token = by_topic(self, topic_arn, next_token=next_token)
        return shown(subs), token

    def like_aws_everything(self, next_token=None):
        subs, token = everything(self, next_token=next_token)
        return shown(subs), token

    confirm = SNSResponse.confirm_subscription

    def like_aws_confirm(self):
        topic_arn = self._get_param("TopicArn")
        for sub in self.backend.subscriptions.values():
            if sub.topic.arn == topic_arn and getattr(sub, "like_aws_pending", False):
                sub.like_aws_pending = False
                sub.attributes["PendingConfirmation"] = "false"
        return confirm(self)

    SNSBackend.subscribe = like_aws_subscribe
    SNSBackend.list_subscriptions_by_topic = like_aws_by_topic
    SNSBackend.list_subscriptions = like_aws_everything
    SNSResponse.confirm_subscription = like_aws_confirm


def force_deleted_secret_keeps_its_name_a_while() -> None:
    """DeleteSecret with ForceDeleteWithoutRecovery: "Secrets Manager performs the actual
    deletion with an asynchronous and separate mechanism", so the name stays taken for a
    short while (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DeleteSecret.html).
    moto frees it at once. Here the secret shows DeletedDate and keeps its name for
    ORCHESTRATOR_LIKE_AWS_SECRET_PURGE_SECONDS (default 5), then it is gone."""
    import time

    from moto.core.utils import utcnow
    from moto.secretsmanager.models import SecretsManagerBackend

    delay = _seconds("ORCHESTRATOR_LIKE_AWS_SECRET_PURGE_SECONDS", 5.0)
    delete = SecretsManagerBackend.delete_secret

    def purge(self) -> None:
        now = time.monotonic()
        for key, secret in list(self.secrets.items()):
            if getattr(secret, "like_aws_purge_at", now + 1) <= now:
                self.secrets.pop(key)

    def like_aws_delete(self, secret_id, recovery_window_in_days, force_delete_without_recovery):
        purge(self)
        if force_delete_without_recovery and self._is_valid_identifier(secret_id):
            secret = self.secrets[secret_id]
            if not hasattr(secret, "like_aws_purge_at"):
                secret.delete(self._unix_time_secs(utcnow()))
                secret.like_aws_purge_at = time.monotonic() + delay
            return secret.arn, secret.name, self._unix_time_secs(utcnow())
        return delete(self, secret_id, recovery_window_in_days, force_delete_without_recovery)

    SecretsManagerBackend.delete_secret = like_aws_delete
    for name in ("create_secret", "describe_secret", "get_secret_value", "list_secrets", "restore_secret"):
        original = getattr(SecretsManagerBackend, name)

        def purged(self, *args, _original=original, **kwargs):
            purge(self)
            return _original(self, *args, **kwargs)

        setattr(SecretsManagerBackend, name, purged)


def data_under_an_unusable_key_is_unusable() -> None:
    """A snapshot encrypted with a KMS key that is pending deletion or disabled cannot be
    restored or copied: RDS answers KMSKeyNotAccessibleFault ("Deleting a KMS key is
    destructive and potentially dangerous. It deletes the key material and all metadata
    associated with the KMS key ... you can no longer decrypt the data that was encrypted under
    that KMS key", https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys.html;
    "Amazon RDS loses access to the KMS key ... the DB cluster ... becomes inaccessible",
    https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Overview.Encryption.Keys.html).
    moto restores and copies regardless of the key's state."""
    from moto.rds.exceptions import KMSKeyNotAccessibleFault
    from moto.rds.models import RDSBackend

    copy_snapshot, restore = RDSBackend.copy_db_cluster_snapshot, RDSBackend.restore_db_cluster_from_snapshot

    def usable(self, snapshot_id: str) -> None:
        snapshot = self.get_db_cluster_snapshot(snapshot_id)
        key_id = getattr(snapshot, "kms_key_id", None)
        if not key_id:
            return
        region, account = self.region_name, self.account_id
        parts = key_id.split(":")
        if key_id.startswith("arn:") and len(parts) >= 6:
            region, account = parts[3], parts[4]
        kms = self.get_backend("kms", region, account)
        try:
            key = kms.describe_key(key_id.split("/")[-1] if key_id.startswith("arn:") else key_id)
        except Exception:  # noqa: BLE001 - a key gone altogether is as unusable
            raise KMSKeyNotAccessibleFault(key_id) from None
        if key.key_state != "Enabled":
            raise KMSKeyNotAccessibleFault(key_id)

    def like_aws_copy(self, source_db_cluster_snapshot_identifier, target_db_cluster_snapshot_identifier, *a, **kw):
        usable(self, source_db_cluster_snapshot_identifier)
        return copy_snapshot(
            self, source_db_cluster_snapshot_identifier, target_db_cluster_snapshot_identifier, *a, **kw
        )

    def like_aws_restore(self, from_snapshot_id, overrides):
        usable(self, from_snapshot_id)
        return restore(self, from_snapshot_id, overrides)

    RDSBackend.copy_db_cluster_snapshot = like_aws_copy
    RDSBackend.restore_db_cluster_from_snapshot = like_aws_restore


LIKE_AWS_CORRECTIONS = (
    data_under_an_unusable_key_is_unusable,
    continuous_backups_unavailable_after_create,
    email_subscriptions_wait_for_confirmation,
    force_deleted_secret_keeps_its_name_a_while,
)


def record_calls(path: str) -> None:
    """Every distinct request (service, operation, the orchestrator command that sent it) as one
    JSON line in `path`: what orchestrator/permissions.py turns into the IAM actions per role
    (docs/permissions.md). On with ORCHESTRATOR_EMULATOR_RECORD=<file>."""
    import io
    import json
    import threading

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from orchestrator.aws.permissions import command_of, operation_of, signing_name

    seen: set[tuple[str, str, str]] = set()
    lock = threading.Lock()
    call = DomainDispatcherApplication.__call__

    def recording(self, environ, start_response):
        try:
            service = signing_name(environ.get("HTTP_AUTHORIZATION", ""))
            form = None
            if service and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
                length = int(environ.get("CONTENT_LENGTH") or 0)
                form = environ["wsgi.input"].read(length) if length else b""
                environ["wsgi.input"] = io.BytesIO(form)
            if service:
                op = operation_of(
                    service,
                    environ.get("REQUEST_METHOD", ""),
                    environ.get("PATH_INFO", ""),
                    environ.get("QUERY_STRING", ""),
                    environ.get("HTTP_X_AMZ_TARGET", ""),
                    form,
                    frozenset(k[5:].replace("_", "-").lower() for k in environ if k.startswith("HTTP_")),
                )
                key = (service, op, command_of(environ.get("HTTP_USER_AGENT", "")))
                with lock:
                    if key not in seen:
                        seen.add(key)
                        with open(path, "a", encoding="utf-8") as f:
                            f.write(json.dumps(dict(zip(("service", "operation", "command"), key, strict=True))) + "\n")
        except Exception as exc:  # noqa: BLE001 - recording never breaks a request
            print(f"[emulator] could not record a call: {exc!r}", file=sys.stderr)
        return call(self, environ, start_response)

    DomainDispatcherApplication.__call__ = recording


def main(argv: list[str] | None = None) -> None:
    import os

    like_aws = os.environ.get(LIKE_AWS) == "1"
    for correction in CORRECTIONS:
        correction()
    ecs_services_roll_out_and_register_targets(like_aws=like_aws)
    if like_aws:
        for correction in LIKE_AWS_CORRECTIONS:
            correction()
    if os.environ.get("ORCHESTRATOR_EMULATOR_RECORD"):
        record_calls(os.environ["ORCHESTRATOR_EMULATOR_RECORD"])
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
