"""Bootstrap against a real moto server: idempotent, posture verified with Get* calls,
drift reported and repaired only when asked."""

from __future__ import annotations

import boto3
import pytest

from tests.helpers import FIXTURE_STACK, Cli
from tests.integration.conftest import clients_for, own_emulator


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory):
    """This module's own emulator: its first bootstrap creates the backend, whatever ran before."""
    with own_emulator(tmp_path_factory.mktemp("moto-backend")) as url:
        yield url


@pytest.fixture(scope="module")
def aws(moto_url):
    return clients_for(moto_url)


@pytest.fixture(scope="module")
def cli(moto_url, mirror, tmp_path_factory):
    return Cli(FIXTURE_STACK, tmp_path_factory.mktemp("work"), moto_url, mirror)


BUCKET = "fixture-tfstate-dev-123456789012"


def test_bootstrap_twice_second_run_makes_no_mutating_call(cli):
    first = cli("bootstrap", "--env", "dev")
    assert first.exit_code == 0, first.output
    assert "state bucket         created" in first.stdout
    second = cli("bootstrap", "--env", "dev")
    assert second.exit_code == 0, second.output
    assert "mutating AWS calls: 0" in second.stdout
    for piece in (
        "kms key",
        "state bucket",
        "versioning",
        "encryption",
        "public access block",
        "object ownership",
        "lifecycle",
        "audit bucket",
        "audit object lock",
        "audit versioning",
        "audit encryption",
        "audit public access block",
    ):
        assert any(line.startswith(f"- {piece}") and "in place" in line for line in second.stdout.splitlines()), piece
    assert "tls-only policy      skipped" in second.stdout  # the emulator cannot apply it (see README)
    assert "audit bucket         created" in first.stdout


def test_posture_with_get_calls(cli, aws):
    assert cli("bootstrap", "--env", "dev").exit_code == 0
    s3, kms = aws("s3"), aws("kms")
    key = kms.describe_key(KeyId="alias/fixture-tfstate-dev")["KeyMetadata"]
    assert key["KeyState"] == "Enabled"
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == key["Arn"]
    assert rule["BucketKeyEnabled"] is True
    pab = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(pab[k] for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"))
    own = s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]["Rules"][0]
    assert own["ObjectOwnership"] == "BucketOwnerEnforced"
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}
    lc = rules["expire-old-state-versions"]
    assert lc["Status"] == "Enabled" and lc["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90
    # `unit plan`'s saved plans expire, every version of them (and only they)
    plans = rules["expire-saved-plans"]
    assert plans["Status"] == "Enabled" and plans["Filter"]["Prefix"] == "fixture/_plans/"
    assert plans["Expiration"]["Days"] == 7 and plans["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1


def test_tls_only_policy_document():
    """The policy real AWS gets (the emulator cannot enforce it): deny every non-TLS request."""

    from orchestrator.aws.bootstrap import _render
    from orchestrator.model.config import Project

    policy = _render(Project(FIXTURE_STACK).backend_file("state-bucket-policy.json"), partition="aws", bucket="b")
    deny = next(s for s in policy["Statement"] if s["Sid"] == "DenyInsecureTransport")
    assert deny["Effect"] == "Deny" and deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(deny["Resource"]) == {"arn:aws:s3:::b", "arn:aws:s3:::b/*"}


def test_audit_bucket_policy_document_denies_every_rewrite():
    """What real AWS gets on the audit bucket besides Object Lock: nobody deletes a record,
    shortens its retention, bypasses governance or lifts the lock (the emulator skips policies)."""
    from orchestrator.aws.bootstrap import _render
    from orchestrator.model.config import Project

    policy = _render(Project(FIXTURE_STACK).backend_file("audit-bucket-policy.json"), partition="aws", bucket="a")
    deny = next(s for s in policy["Statement"] if s["Sid"] == "DenyAuditRewrite")
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and "Condition" not in deny
    assert {"s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:PutObjectRetention"} <= set(deny["Action"])
    assert {"s3:PutBucketObjectLockConfiguration", "s3:DeleteBucket"} <= set(deny["Action"])
    assert {s["Sid"] for s in policy["Statement"]} >= {"DenyInsecureTransport", "DenyOldTls"}


def test_a_weakened_audit_retention_is_reported_and_restored_only_with_repair(cli, aws):
    assert cli("bootstrap", "--env", "dev").exit_code == 0
    s3, audit = aws("s3"), f"{BUCKET}-audit"
    s3.put_object_lock_configuration(
        Bucket=audit,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    verify = cli("bootstrap", "--env", "dev", "--verify")
    assert verify.exit_code == 4, verify.output
    assert "! audit object lock" in verify.stdout
    assert "default retention is GOVERNANCE 1 days, not COMPLIANCE 400 days" in verify.stdout
    repaired = cli("bootstrap", "--env", "dev", "--repair")
    assert repaired.exit_code == 0, repaired.output
    rule = s3.get_object_lock_configuration(Bucket=audit)["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert (rule["Mode"], rule["Days"]) == ("COMPLIANCE", 400)


def test_weaker_bucket_is_reported_and_fixed_only_with_repair(cli, aws):
    assert cli("bootstrap", "--env", "dev").exit_code == 0
    s3 = aws("s3")
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    s3.delete_public_access_block(Bucket=BUCKET)

    plain = cli("bootstrap", "--env", "dev")
    assert plain.exit_code == 4
    assert "! versioning" in plain.stdout and "drift" in plain.stdout
    assert "--repair" in plain.stderr
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Suspended"  # untouched

    verify = cli("bootstrap", "--env", "dev", "--verify")
    assert verify.exit_code == 4 and "drifted" in verify.stderr

    repaired = cli("bootstrap", "--env", "dev", "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert "versioning           repaired" in repaired.stdout
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    assert cli("bootstrap", "--env", "dev", "--verify").exit_code == 0


def test_dynamodb_lock_table(cli, aws):
    result = cli("bootstrap", "--env", "staging")
    assert result.exit_code == 0, result.output
    ddb = aws("dynamodb")
    table = ddb.describe_table(TableName="fixture-tfstate-locks-staging")["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["SSEType"] == "KMS"
    assert table["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}]
    pitr = ddb.describe_continuous_backups(TableName="fixture-tfstate-locks-staging")["ContinuousBackupsDescription"]
    assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    again = cli("bootstrap", "--env", "staging")
    assert "mutating AWS calls: 0" in again.stdout and "lock table           in place" in again.stdout


def test_bucket_owned_by_someone_else_is_refused_and_nothing_is_created(cli, aws, tmp_path):
    import shutil

    project = tmp_path / "p"
    shutil.copytree(FIXTURE_STACK, project)
    env_file = project / "environments" / "dev" / "env.toml"
    env_file.write_text(
        env_file.read_text()
        .replace(BUCKET, "someone-elses-state")
        .replace("alias/fixture-tfstate-dev", "alias/fixture-other")
    )
    # Another account (moto maps assumed-role credentials to that account) owns the name.
    creds = aws("sts").assume_role(RoleArn="arn:aws:iam::111111111111:role/other", RoleSessionName="other")[
        "Credentials"
    ]
    boto3.client(
        "s3",
        endpoint_url=cli.emulator,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    ).create_bucket(Bucket="someone-elses-state")
    other = Cli(project, tmp_path / "w", cli.emulator, cli.mirror)
    result = other("bootstrap", "--env", "dev")
    assert result.exit_code == 4, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        "error: state bucket someone-elses-state exists but is not owned by account 123456789012; choose another name"
    )
    assert "someone-elses-state" not in {b["Name"] for b in aws("s3").list_buckets()["Buckets"]}


def test_bucket_outside_us_east_1_gets_its_location_constraint(cli, aws, tmp_path):
    """us-east-1 refuses a LocationConstraint naming itself; every other region needs one."""
    import shutil

    project = tmp_path / "p"
    shutil.copytree(FIXTURE_STACK, project)
    env_file = project / "environments" / "dev" / "env.toml"
    env_file.write_text(
        env_file.read_text()
        .replace('region = "us-east-1"', 'region = "eu-west-1"')
        .replace(BUCKET, "fixture-tfstate-euw1-123456789012")
        .replace("alias/fixture-tfstate-dev", "alias/fixture-tfstate-euw1")
    )
    r = Cli(project, tmp_path / "w", cli.emulator, cli.mirror)("bootstrap", "--env", "dev")
    assert r.exit_code == 0, r.output
    eu = boto3.client(
        "s3", endpoint_url=cli.emulator, region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    loc = eu.get_bucket_location(Bucket="fixture-tfstate-euw1-123456789012")["LocationConstraint"]
    assert loc == "eu-west-1"
    assert aws("s3").get_bucket_location(Bucket=BUCKET)["LocationConstraint"] in (None, "us-east-1")


def test_local_up_keeps_one_emulated_account_for_several_commands(tmp_path, mirror, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    c = Cli(FIXTURE_STACK, tmp_path / "w", None, mirror)
    elsewhere = Cli(FIXTURE_STACK, tmp_path / "another-work-dir", None, mirror)
    r = c("--local", "status", "--env", "dev")  # nothing runs: refused, never a throwaway emulator
    assert r.exit_code == 3, r.output
    assert r.stderr.strip() == (
        f"error: no local emulator runs for {FIXTURE_STACK}: start one with `orchestrator local up` "
        "(--local never starts one that would vanish with this command)"
    )
    try:
        up = c("local", "up")
        assert up.exit_code == 0 and up.stdout.startswith("emulator started at http://127.0.0.1:")
        assert c("local", "status").exit_code == 0
        r = c("--local", "bootstrap", "--env", "dev")
        assert r.exit_code == 0, r.output
        assert "state bucket         created" in r.stdout
        assert c("local", "up").stdout.startswith("emulator already running")
        r = c("--local", "bootstrap", "--env", "dev")  # a second command, the same account
        assert "state bucket         in place" in r.stdout and "mutating AWS calls: 0" in r.stdout
        # another --work-dir finds the project's emulator too (the same account, nothing to do)
        r = elsewhere("--local", "bootstrap", "--env", "dev")
        assert "state bucket         in place" in r.stdout and "mutating AWS calls: 0" in r.stdout, r.output
    finally:
        assert c("local", "down").stdout.strip() == "emulator stopped"
    assert c("local", "status").exit_code == 1


def test_lock_table_pitr_refused_right_after_create_is_retried_and_read_back(mirror, tmp_path):
    """Like AWS, the like-AWS emulator refuses UpdateContinuousBackups for a while after
    CreateTable (ContinuousBackupsUnavailableException, a 400 boto3 does not retry). bootstrap
    waits it out and reads PITR back: the next run and --verify find nothing to fix."""
    from tests.integration.conftest import clients_for, own_emulator

    with own_emulator(tmp_path, like_aws=True) as url:
        ddb = clients_for(url)("dynamodb")
        probe = "like-aws-probe"
        ddb.create_table(
            TableName=probe,
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        with pytest.raises(ddb.exceptions.ContinuousBackupsUnavailableException):
            ddb.update_continuous_backups(
                TableName=probe, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        cli = Cli(FIXTURE_STACK, tmp_path / "w", url, mirror)
        first = cli("bootstrap", "--env", "staging")
        assert first.exit_code == 0, first.output
        assert "lock table           created" in first.stdout
        pitr = ddb.describe_continuous_backups(TableName="fixture-tfstate-locks-staging")
        assert pitr["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == (
            "ENABLED"
        )
        assert cli("bootstrap", "--env", "staging", "--verify").exit_code == 0
