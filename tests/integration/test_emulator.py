"""The emulator's corrections of moto (orchestrator/emulator.py): each behaves as AWS does."""

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
    from orchestrator.aws import Aws
    from orchestrator.library import sns_subscriptions_dlq
    from orchestrator.plugins import Context, Fail

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
