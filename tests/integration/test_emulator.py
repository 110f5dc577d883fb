"""The emulator's corrections of moto (orchestrator/emulator.py): each behaves as AWS does."""

from __future__ import annotations

import uuid

from tests.integration.conftest import clients_for


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
