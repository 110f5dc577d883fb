"""Live resources that carry an environment's ownership tags but that no state file holds.

What a run that died between "created in AWS" and "written to state" leaves behind:
it costs money and nobody knows it exists. Found with the Resource Groups Tagging
API (the tags come from the manifest's [ownership] tags), plus EC2 describes with
the same tag filters for the network resources that cost by the hour (VPCs, NAT
gateways, Elastic IPs), and compared with every identifier in every unit's state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from orchestrator.aws.clients import Aws
from orchestrator.errors import ConfigError, error_code
from orchestrator.model.config import Environment, Stack
from orchestrator.state.statestore import read_kept, state_key, units_with_state


@dataclass(frozen=True)
class Orphan:
    arn: str
    type: str  # service:resource-type, e.g. ec2:vpc
    id: str
    created: str  # ISO time, or "" when the service does not say

    def as_dict(self) -> dict:
        return {"arn": self.arn, "type": self.type, "id": self.id, "created": self.created}


def ownership_filters(stack: Stack, env: Environment) -> dict[str, str]:
    if not stack.ownership_tags:
        raise ConfigError(
            f"{stack.manifest_path}: no [ownership] tags: orphans needs the tags every resource of an environment "
            'carries, e.g. tags = { EnvironmentSuffix = "environment_suffix" }'
        )
    common = env.common_variables()
    return {key: str(common[var]) for key, var in stack.ownership_tags.items()}


def state_identifiers(aws: Aws, env: Environment, units) -> set[str]:
    """Every arn and id of every resource instance in the units' states."""
    s3 = aws.client("s3", env.backend.region)
    held: set[str] = set()
    for unit in units:
        try:
            body = s3.get_object(Bucket=env.backend.bucket, Key=state_key(env, unit))["Body"].read()
        except s3.exceptions.NoSuchKey:
            continue
        for resource in json.loads(body).get("resources", []):
            if resource.get("mode") != "managed":
                continue
            for instance in resource.get("instances", []):
                attrs = instance.get("attributes") or {}
                for name in ("arn", "id"):
                    value = attrs.get(name)
                    if isinstance(value, str) and value:
                        held.add(_norm(value))
    return held


def _norm(arn: str) -> str:
    return arn[:-2] if arn.endswith(":*") else arn


# services whose ARNs end in the bare name, without a resource type
_UNNAMED_TYPES = {"s3": "bucket", "sqs": "queue", "sns": "topic"}


def _split(arn: str) -> tuple[str, str]:
    """(service:type, id) of an ARN."""
    parts = arn.split(":", 5)
    service, resource = parts[2], parts[5] if len(parts) > 5 else ""
    cut = min((i for i in (resource.find("/"), resource.find(":")) if i >= 0), default=-1)
    if cut >= 0:
        return f"{service}:{resource[:cut]}", resource[cut + 1 :]
    return f"{service}:{_UNNAMED_TYPES.get(service, 'resource')}", resource


def is_held(arn: str, held: set[str]) -> bool:
    """Whether an ARN (or id) is among a state's identifiers, by ARN, id or the id's last part."""
    arn = _norm(arn)
    if arn in held:
        return True
    if not arn.startswith("arn:"):  # an id, already looked up
        return False
    _, rid = _split(arn)
    return rid in held or rid.rsplit("/", 1)[-1] in held


def tagged(aws: Aws, filters: dict[str, str | list[str]]) -> set[str]:
    """ARNs the Resource Groups Tagging API lists with these tags (a list: any of its values)."""
    tag_filters = [{"Key": k, "Values": [v] if isinstance(v, str) else list(v)} for k, v in filters.items()]
    pages = aws.client("resourcegroupstaggingapi").get_paginator("get_resources").paginate(TagFilters=tag_filters)
    return {r["ResourceARN"] for page in pages for r in page["ResourceTagMappingList"]}


def live_tagged(aws: Aws, filters: dict[str, str | list[str]]) -> list[str]:
    """Tagged ARNs that are still live (see is_gone), whether or not a state holds them."""
    return sorted(arn for arn in tagged(aws, filters) if not is_gone(aws, arn))


def is_gone(aws: Aws, arn: str) -> bool:
    """What AWS keeps visible after a delete does not count: a KMS key or a secret waiting out its
    deletion window, a NAT gateway "deleted", INACTIVE ECS task definitions, services and clusters, and
    (moto only) the automated snapshots of a deleted cluster. A final snapshot kept on purpose
    does count: it is live and costs money."""
    if ":kms:" in arn:
        return aws.client("kms").describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    if ":secretsmanager:" in arn and ":secret:" in arn:
        return "DeletedDate" in aws.client("secretsmanager").describe_secret(SecretId=arn)
    if ":natgateway/" in arn:
        nats = aws.client("ec2").describe_nat_gateways(NatGatewayIds=[arn.rsplit("/", 1)[1]])["NatGateways"]
        return not nats or nats[0]["State"] in ("deleting", "deleted")
    if ":task-definition/" in arn:
        return aws.client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]["status"] == "INACTIVE"
    if ":ecs:" in arn and ":cluster/" in arn:
        clusters = aws.client("ecs").describe_clusters(clusters=[arn])["clusters"]
        return not clusters or clusters[0]["status"] == "INACTIVE"
    if ":ecs:" in arn and ":service/" in arn:
        cluster = arn.split(":service/")[1].split("/")[0]
        services = aws.client("ecs").describe_services(cluster=cluster, services=[arn])["services"]
        return not services or services[0]["status"] in ("INACTIVE", "DRAINING")
    if ":cluster-snapshot:rds:" in arn:
        # An automated snapshot: AWS deletes these with their cluster; moto keeps them.
        cluster = arn.split(":cluster-snapshot:rds:")[1].rsplit("-", 5)[0]
        live = aws.client("rds").describe_db_clusters()["DBClusters"]
        return not any(c["DBClusterIdentifier"] == cluster for c in live)
    return False


def _ec2_tagged(aws: Aws, env: Environment, filters: dict[str, str]) -> dict[str, str]:
    """ARN -> creation time of the hourly-billed network resources, by EC2's own tag filters."""
    ec2 = aws.client("ec2")
    tag_filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in filters.items()]
    prefix = f"arn:aws:ec2:{env.region}:{env.account_id}"

    def ours(item: dict) -> bool:
        # The filters narrow the listing on AWS; the tags are checked here as well (moto ignores
        # tag filters on some describes).
        tags = {t["Key"]: t["Value"] for t in item.get("Tags") or []}
        return all(tags.get(k) == v for k, v in filters.items())

    out = {}
    for vpc in filter(ours, ec2.describe_vpcs(Filters=tag_filters)["Vpcs"]):
        out[f"{prefix}:vpc/{vpc['VpcId']}"] = ""
    for nat in filter(ours, ec2.describe_nat_gateways(Filters=tag_filters)["NatGateways"]):
        if nat.get("State") not in ("deleting", "deleted"):
            out[f"{prefix}:natgateway/{nat['NatGatewayId']}"] = _iso(nat.get("CreateTime"))
    for eip in filter(ours, ec2.describe_addresses(Filters=tag_filters)["Addresses"]):
        out[f"{prefix}:elastic-ip/{eip['AllocationId']}"] = ""
    return out


def _iso(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value or "")


def _created(aws: Aws, arn: str) -> str:
    """Creation time where one describe call tells it; "" otherwise."""
    kind, rid = _split(arn)
    try:
        if kind == "logs:log-group":
            groups = aws.client("logs").describe_log_groups(logGroupNamePrefix=rid)["logGroups"]
            ms = next((g["creationTime"] for g in groups if g["logGroupName"] == rid), None)
            return _iso(datetime.fromtimestamp(ms / 1000, tz=UTC)) if ms else ""
        if kind == "kms:key":
            return _iso(aws.client("kms").describe_key(KeyId=rid)["KeyMetadata"]["CreationDate"])
        if kind == "rds:cluster":
            clusters = aws.client("rds").describe_db_clusters(DBClusterIdentifier=rid)["DBClusters"]
            return _iso(clusters[0]["ClusterCreateTime"])
        if kind == "rds:db":
            instances = aws.client("rds").describe_db_instances(DBInstanceIdentifier=rid)["DBInstances"]
            return _iso(instances[0]["InstanceCreateTime"])
        if kind == "secretsmanager:secret":
            return _iso(aws.client("secretsmanager").describe_secret(SecretId=arn).get("CreatedDate"))
    except Exception:  # noqa: BLE001 - the time is a courtesy; the orphan is listed regardless
        return ""
    return ""


def _aws_managed(arn: str) -> bool:
    """Made and deleted by AWS for a resource in state: automated snapshots of a cluster."""
    return ":cluster-snapshot:rds:" in arn or ":snapshot:rds:" in arn


def kept_live(aws: Aws, env: Environment) -> list[dict]:
    """What teardown kept on purpose (keep_on_teardown) and is still there."""
    from botocore.exceptions import ClientError

    def there(k: dict) -> bool:
        try:
            return not is_gone(aws, k.get("arn") or k.get("id", ""))
        except ClientError as exc:
            if "NotFound" in error_code(exc):
                return False  # deleted since (a key past its window)
            raise

    return [k for k in read_kept(aws, env) if there(k)]


def find(aws: Aws, env: Environment, stack: Stack) -> list[Orphan]:
    filters = ownership_filters(stack, env)
    # Every state object of the copy counts, a unit the manifest no longer names included: what
    # a renamed unit holds is stranded (said by the commands), not orphaned.
    held = state_identifiers(aws, env, [*stack.units, *units_with_state(aws, env, skip=stack.units)])
    # What teardown kept on purpose (keep_on_teardown) is recorded, not orphaned.
    held |= {_norm(v) for k in read_kept(aws, env) for v in (k.get("arn"), k.get("id")) if v}
    candidates = dict.fromkeys(tagged(aws, filters), "")
    candidates.update(_ec2_tagged(aws, env, filters))
    found = []
    for arn, created in sorted(candidates.items()):
        if is_held(arn, held) or _aws_managed(arn) or is_gone(aws, arn):
            continue
        kind, rid = _split(arn)
        found.append(Orphan(arn, kind, rid, created or _created(aws, arn)))
    return found
