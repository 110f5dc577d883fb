"""The emulator's recorded calls -> IAM actions per role (orchestrator/aws/permissions.py), and the
published page generated from its list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.aws import permissions

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("service", "method", "path", "query", "target", "form", "operation"),
    [
        ("ecs", "POST", "/", "", "AmazonEC2ContainerServiceV20141113.DescribeServices", None, "DescribeServices"),
        ("ec2", "POST", "/", "", "", b"Action=DescribeVpcs&Version=2016-11-15", "DescribeVpcs"),
        ("sts", "GET", "/", "Action=GetCallerIdentity&Version=2011-06-15", "", None, "GetCallerIdentity"),
        ("s3", "HEAD", "/bucket", "", "", None, "HeadBucket"),
        ("s3", "GET", "/bucket/a/b.tfstate", "", "", None, "GetObject"),
        ("s3", "PUT", "/bucket", "versioning", "", None, "PutBucketVersioning"),
        ("s3", "GET", "/bucket", "list-type=2&prefix=x", "", None, "ListObjectsV2"),
        ("s3", "GET", "/bucket", "versions&prefix=x", "", None, "ListObjectVersions"),
        ("lambda", "GET", "/2015-03-31/functions/rotate/configuration", "", "", None, "GetFunctionConfiguration"),
    ],
)
def test_a_request_is_named_by_its_operation(service, method, path, query, target, form, operation):
    assert permissions.operation_of(service, method, path, query, target, form) == operation


def test_an_operation_becomes_its_iam_action_and_commands_their_roles():
    assert permissions.iam_action("s3", "HeadBucket") == "s3:ListBucket"
    assert permissions.iam_action("s3", "PutBucketLifecycle") == "s3:PutLifecycleConfiguration"
    assert permissions.iam_action("monitoring", "PutMetricAlarm") == "cloudwatch:PutMetricAlarm"
    assert permissions.iam_action("tagging", "GetResources") == "tag:GetResources"
    assert permissions.iam_action("kms", "CreateKey") == "kms:CreateKey"
    ua = "Boto3/1.35 md/Botocore#1.35 " + permissions.user_agent_token("unit plan")
    assert permissions.command_of(ua) == "unit-plan"
    assert permissions.command_of("Terraform/1.11.4 terraform-provider-aws/5.100.0") == ""
    assert (
        permissions.signing_name(
            "AWS4-HMAC-SHA256 Credential=test/20261206/us-east-1/elasticloadbalancing/aws4_request, SignedHeaders=host"
        )
        == "elasticloadbalancing"
    )
    records = [
        {"service": "s3", "operation": "GetObject", "command": "unit-plan"},
        {"service": "ecs", "operation": "CreateService", "command": "deploy"},
        {"service": "ecs", "operation": "CreateService", "command": ""},  # a test's own client: nobody's
        {"service": "ecr", "operation": "PutImage", "command": "local-seed"},  # the emulator only
    ]
    assert permissions.needed(records) == {"bootstrap": [], "plan": ["s3:GetObject"], "deploy": ["ecs:CreateService"]}
    listed = {"plan": ["s3:GetObject"], "deploy": []}
    assert permissions.missing(permissions.needed(records), listed) == {"deploy": ["ecs:CreateService"]}


def test_the_published_page_is_generated_from_the_list():
    listed = json.loads((ROOT / "docs" / "permissions.json").read_text())
    assert set(listed) == set(permissions.ROLES)
    assert (ROOT / "docs" / "permissions.md").read_text() == permissions.render(listed), (
        "docs/permissions.md is stale: run scripts/permissions_doc.py"
    )
