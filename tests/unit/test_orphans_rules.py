"""How orphans matches live ARNs against what the states hold, without AWS."""

from __future__ import annotations

import pytest

from orchestrator.aws.orphans import _aws_managed, _split, is_held


@pytest.mark.parametrize(
    "arn, kind, rid",
    [
        (
            "arn:aws:logs:us-east-1:1:log-group:/aws/rds/cluster/db/postgresql",
            "logs:log-group",
            "/aws/rds/cluster/db/postgresql",
        ),
        ("arn:aws:ec2:us-east-1:1:natgateway/nat-0c0a", "ec2:natgateway", "nat-0c0a"),
        ("arn:aws:rds:us-east-1:1:cluster:payments-db-dev", "rds:cluster", "payments-db-dev"),
        ("arn:aws:sqs:us-east-1:1:payments-alerts-dlq-dev", "sqs:queue", "payments-alerts-dlq-dev"),
        ("arn:aws:s3:::payments-alb-logs-dev", "s3:bucket", "payments-alb-logs-dev"),
        (
            "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/alb/76f0",
            "elasticloadbalancing:loadbalancer",
            "app/alb/76f0",
        ),
    ],
)
def test_an_arn_splits_into_type_and_id(arn, kind, rid):
    assert _split(arn) == (kind, rid)


def test_a_resource_is_held_by_its_arn_or_its_id():
    held = {
        "arn:aws:logs:us-east-1:1:log-group:/ecs/api",  # a log group's arn, as the provider stores it
        "nat-0c0a",  # a NAT gateway: its id only
        "https://sqs.us-east-1.amazonaws.com/1/q",  # a queue's id is its URL ...
        "arn:aws:sqs:us-east-1:1:q",  # ... and its arn is stored too
    }
    assert is_held("arn:aws:logs:us-east-1:1:log-group:/ecs/api:*", held)
    assert is_held("arn:aws:ec2:us-east-1:1:natgateway/nat-0c0a", held)
    assert is_held("arn:aws:sqs:us-east-1:1:q", held)
    assert not is_held("arn:aws:ec2:us-east-1:1:natgateway/nat-e689", held)
    assert not is_held("arn:aws:sqs:us-east-1:1:made-by-hand", held)


def test_automated_snapshots_belong_to_their_cluster():
    assert _aws_managed("arn:aws:rds:us-east-1:1:cluster-snapshot:rds:payments-db-dev-2026-11-29-03-00")
    assert not _aws_managed("arn:aws:rds:us-east-1:1:cluster-snapshot:payments-db-final-prod-20261129")
