"""Live resources still tagged with an environment (Resource Groups Tagging API).

What AWS itself keeps visible after a delete does not count: a KMS key waiting
out its deletion window, a NAT gateway in state "deleted", INACTIVE ECS task
definitions, services and clusters, and (moto only) the automated snapshots
of a deleted cluster. A final snapshot kept on purpose does count: it is live
and costs money, so whoever tears down must know it is there.
"""

from __future__ import annotations

from orchestrator.aws import Aws

ENV_TAG = "EnvironmentSuffix"


def is_gone(aws: Aws, arn: str) -> bool:
    if ":kms:" in arn:
        return aws.client("kms").describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "PendingDeletion"
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


def live_tagged(aws: Aws, env_ids: list[str] | tuple[str, ...], extra_tags: dict[str, str] | None = None) -> list[str]:
    """ARNs of live resources whose EnvironmentSuffix tag is one of env_ids."""
    filters = [{"Key": ENV_TAG, "Values": list(env_ids)}]
    filters += [{"Key": k, "Values": [v]} for k, v in (extra_tags or {}).items()]
    found = []
    pages = aws.client("resourcegroupstaggingapi").get_paginator("get_resources").paginate(TagFilters=filters)
    for page in pages:
        for resource in page["ResourceTagMappingList"]:
            if not is_gone(aws, resource["ResourceARN"]):
                found.append(resource["ResourceARN"])
    return found
