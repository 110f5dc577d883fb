"""Faults between the clients and moto server (tests/faultproxy.py): throttling, 503,
connection resets, latency, a reply lost after the server acted. Each scenario ends
converged (nothing duplicated, a following run changes nothing) or failed cleanly (a
clear error, no lock left), and the attempts seen at the proxy match the retries
configured: botocore's standard mode, max_attempts, nothing stacked on top."""

from __future__ import annotations

import json

import boto3
import pytest

from orchestrator.aws.clients import Aws
from orchestrator.errors import HookError
from orchestrator.model.library import write_db_endpoint
from orchestrator.model.plugins import Context
from orchestrator.redact import Redactor
from tests.faultproxy import FaultProxy, Rule
from tests.helpers import FIXTURE_STACK, Cli, fixture_without_aws

MAX_ATTEMPTS = 4


def write_endpoint(aws, secret):
    return write_db_endpoint(
        Context(aws, {}, Redactor()),
        secret_arn=secret,
        host=OUTPUTS["cluster_endpoint"],
        port=OUTPUTS["db_port"],
        dbname=OUTPUTS["db_name"],
    )


@pytest.fixture
def proxy(moto_url):
    p = FaultProxy(moto_url)
    url = p.start()
    p.url = url
    yield p
    p.stop()


def direct(moto_url, service):
    return boto3.client(
        service, endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )


@pytest.fixture
def secret(moto_url, request):
    sm = direct(moto_url, "secretsmanager")
    name = f"payments-db-credentials-{request.node.name[-40:].replace('[', '-').replace(']', '')}"
    arn = sm.create_secret(
        Name=name,
        SecretString=json.dumps(
            {"engine": "postgres", "username": "payments_admin", "password": "canary-Pa55word-xyz", "port": 5432}
        ),
    )["ARN"]
    return arn


OUTPUTS = {
    "cluster_endpoint": "payments-db-dev.cluster-x.us-east-1.rds.amazonaws.com",
    "db_port": 5432,
    "db_name": "payments",
}


def versions(moto_url, arn):
    return direct(moto_url, "secretsmanager").list_secret_version_ids(SecretId=arn)["Versions"]


def test_secret_update_retries_throttling_then_succeeds(proxy, secret, moto_url):
    proxy.rules.append(Rule("secretsmanager.PutSecretValue", "throttle", times=2))
    aws = Aws("us-east-1", endpoint_url=proxy.url, max_attempts=MAX_ATTEMPTS)
    result = write_endpoint(aws, secret)
    assert result.changed
    assert proxy.count("PutSecretValue") == 3  # 2 throttled + 1
    assert len(versions(moto_url, secret)) == 2


def test_secret_update_always_throttled_fails_cleanly_after_max_attempts(proxy, secret, moto_url):
    proxy.rules.append(Rule("secretsmanager.PutSecretValue", "throttle", times=-1))
    aws = Aws("us-east-1", endpoint_url=proxy.url, max_attempts=MAX_ATTEMPTS)
    with pytest.raises(HookError) as exc:
        write_endpoint(aws, secret)
    assert str(exc.value) == f"write_db_endpoint: ThrottlingException on {secret}"
    assert "canary-Pa55word" not in str(exc.value)
    assert proxy.count("PutSecretValue") == MAX_ATTEMPTS
    assert len(versions(moto_url, secret)) == 1


def test_access_denied_is_never_retried(proxy, secret):
    proxy.rules.append(Rule("secretsmanager.GetSecretValue", "access_denied", times=-1))
    aws = Aws("us-east-1", endpoint_url=proxy.url, max_attempts=MAX_ATTEMPTS)
    with pytest.raises(HookError, match="AccessDeniedException"):
        write_endpoint(aws, secret)
    assert proxy.count("GetSecretValue") == 1


@pytest.mark.parametrize("fault", ["503", "reset"])
def test_secret_update_survives_503_and_resets(proxy, secret, moto_url, fault):
    proxy.rules.append(Rule("secretsmanager.GetSecretValue", fault, times=1))
    proxy.rules.append(Rule("secretsmanager.PutSecretValue", fault, times=1))
    aws = Aws("us-east-1", endpoint_url=proxy.url, max_attempts=MAX_ATTEMPTS)
    assert write_endpoint(aws, secret).changed
    assert proxy.count("GetSecretValue") == 2 and proxy.count("PutSecretValue") == 2
    assert len(versions(moto_url, secret)) == 2


def test_lost_reply_after_the_server_acted_duplicates_nothing(proxy, secret, moto_url):
    proxy.rules.append(Rule("secretsmanager.PutSecretValue", "lost_reply", times=1))
    aws = Aws("us-east-1", endpoint_url=proxy.url, max_attempts=MAX_ATTEMPTS)
    assert write_endpoint(aws, secret).changed
    assert proxy.count("PutSecretValue") == 2  # the retry carries the same ClientRequestToken
    assert len(versions(moto_url, secret)) == 2  # initial + exactly one
    # a second run converges: nothing to write
    assert not write_endpoint(aws, secret).changed


def test_added_latency_is_only_slower(proxy, secret):
    proxy.rules.append(Rule("secretsmanager.GetSecretValue", "latency", times=1, seconds=2.0))
    aws = Aws("us-east-1", endpoint_url=proxy.url, max_attempts=MAX_ATTEMPTS)
    assert write_endpoint(aws, secret).changed
    assert proxy.count("GetSecretValue") == 1


def test_bootstrap_through_throttling_503_and_resets_converges(proxy, mirror, tmp_path, moto_url):
    import shutil

    project = tmp_path / "p"
    shutil.copytree(FIXTURE_STACK, project)
    env_file = project / "environments" / "dev" / "env.toml"
    env_file.write_text(
        env_file.read_text()
        .replace("fixture-tfstate-dev-", "fixture-faults-dev-")
        .replace("alias/fixture-tfstate-dev", "alias/fixture-faults-dev")
    )
    proxy.rules += [
        Rule("kms.DescribeKey", "throttle", times=2),
        Rule("kms.CreateKey", "503", times=1),
        Rule("S3:PUT", "503", times=2),
        Rule("S3:HEAD", "reset", times=1),
        Rule("kms.EnableKeyRotation", "reset", times=1),
    ]
    cli = Cli(project, tmp_path / "w", proxy.url, mirror)
    r = cli("bootstrap", "--env", "dev")
    assert r.exit_code == 0, r.output
    assert proxy.count("CreateKey") == 2 and proxy.count("kms.DescribeKey") >= 3
    keys = [
        a for a in direct(moto_url, "kms").list_aliases()["Aliases"] if a["AliasName"] == "alias/fixture-faults-dev"
    ]
    assert len(keys) == 1
    proxy.rules.clear()
    again = cli("bootstrap", "--env", "dev")
    assert again.exit_code == 0 and "mutating AWS calls: 0" in again.stdout


def test_deploy_of_the_fixture_stack_through_faults_converges(proxy, mirror, tmp_path, moto_url):
    import shutil

    project = tmp_path / "p"
    shutil.copytree(FIXTURE_STACK, project)
    cli = Cli(project, tmp_path / "w", proxy.url, mirror)
    assert cli("bootstrap", "--env", "dev").exit_code == 0
    proxy.rules += [
        Rule("logs.CreateLogGroup", "throttle", times=2),  # the aws provider retries it
        Rule("S3:PUT", "503", times=1),  # a state write, retried by the S3 backend
        Rule("logs.DescribeLogGroups", "latency", times=3, seconds=1.0),
    ]
    r = cli("deploy", "--env", "dev", "--suffix", "faults", "--yes", "--no-smoke", "--json")
    assert r.exit_code == 0, r.output
    assert proxy.count("CreateLogGroup") == 3
    groups = direct(moto_url, "logs").describe_log_groups(logGroupNamePrefix="/fixture/fixture-base-dev-faults")
    assert len(groups["logGroups"]) == 1
    proxy.rules.clear()
    r = cli("plan", "--env", "dev", "--suffix", "faults", "--json")
    assert r.exit_code == 0, r.output  # nothing differs, nothing duplicated
    keys = [
        o["Key"]
        for o in direct(moto_url, "s3")
        .list_objects_v2(Bucket="fixture-tfstate-dev-123456789012", Prefix="fixture/dev-faults/")
        .get("Contents", [])
    ]
    assert not [k for k in keys if k.endswith(".tflock")]
    assert cli("teardown", "--env", "dev", "--suffix", "faults", "--yes").exit_code == 0


def test_a_destroy_told_the_object_is_already_gone_plans_again_and_finishes(proxy, mirror, tmp_path, moto_url):
    """The listener flake: a delete the server carried out, answered "does not exist" (as an SDK
    retry of a delete whose reply was lost hears). The teardown plans that unit's destroy once
    more and finishes, leaving nothing in state or in AWS."""
    import shutil

    project = tmp_path / "p"
    shutil.copytree(FIXTURE_STACK, project)
    cli = Cli(project, tmp_path / "w", proxy.url, mirror)
    assert cli("bootstrap", "--env", "dev").exit_code == 0
    r = cli("deploy", "--env", "dev", "--suffix", "gone", "--yes", "--no-smoke")
    assert r.exit_code == 0, r.output
    proxy.rules.append(Rule("logs.DeleteLogGroup", "gone_reply", times=1))
    r = cli("teardown", "--env", "dev", "--suffix", "gone", "--yes", "--json")
    assert r.exit_code == 0, r.output
    assert proxy.faults[("logs.DeleteLogGroup", "gone_reply")] == 1
    base = next(u for u in json.loads(r.stdout)["units"] if u["unit"] == "base")
    assert base["status"] == "succeeded" and base["retries"] == 1, base
    prefix = "/fixture/fixture-base-dev-gone"
    assert direct(moto_url, "logs").describe_log_groups(logGroupNamePrefix=prefix)["logGroups"] == []
    outputs = cli("outputs", "--env", "dev", "--suffix", "gone")
    assert outputs.exit_code == 1 and "dev-gone is not deployed" in outputs.output, outputs.output


def test_botocore_retries_are_counted(proxy, secret):
    proxy.rules.append(Rule("secretsmanager.PutSecretValue", "throttle", times=2))
    aws = Aws("us-east-1", endpoint_url=proxy.url, max_attempts=MAX_ATTEMPTS)
    write_endpoint(aws, secret)
    assert aws.call_log.retries == 2


def test_lost_create_key_reply_leaves_no_orphan_key(proxy, mirror, tmp_path, moto_url):
    """CreateKey is not idempotent: the key KMS made before the reply was lost is adopted."""
    import shutil

    project = tmp_path / "p"
    shutil.copytree(FIXTURE_STACK, project)
    env_file = project / "environments" / "dev" / "env.toml"
    env_file.write_text(
        env_file.read_text()
        .replace("fixture-tfstate-dev-", "fixture-lostkey-dev-")
        .replace("alias/fixture-tfstate-dev", "alias/fixture-lostkey-dev")
    )
    proxy.rules.append(Rule("kms.CreateKey", "lost_reply", times=1))
    cli = Cli(project, tmp_path / "w", proxy.url, mirror)
    r = cli("bootstrap", "--env", "dev")
    assert r.exit_code == 0, r.output
    assert "adopted the key an interrupted run created" in r.stdout
    assert proxy.count("CreateKey") == 1
    tagging = direct(moto_url, "resourcegroupstaggingapi")
    keys = tagging.get_resources(
        ResourceTypeFilters=["kms:key"],
        TagFilters=[{"Key": "orchestrator:alias", "Values": ["alias/fixture-lostkey-dev"]}],
    )
    assert len(keys["ResourceTagMappingList"]) == 1


@pytest.mark.parametrize(
    "env, rule",
    [
        ("dev", Rule("S3:PUT", "lost_reply", times=1, path_contains=".tflock")),  # S3-native lock file
        ("staging", Rule("dynamodb.PutItem", "lost_reply", times=1)),  # DynamoDB lock table
    ],
    ids=["s3-lockfile", "dynamodb"],
)
def test_a_lock_write_whose_reply_is_lost_is_not_a_lock_held_by_someone_else(proxy, mirror, tmp_path, env, rule):
    """The self-lock seen on a loaded CI machine, made deterministic: terraform's lock write
    reaches the backend, the reply is lost, the SDK retries the conditional write and finds
    the lock its own first attempt took ("locked by <same user@host>, created 0.5 s ago",
    operation plan). The run recognises its own lock, releases it and goes on. (base holds no AWS
    resource here: the state lock is what is tested, and nothing else crosses the proxy.)"""
    project = fixture_without_aws(tmp_path / "p")
    cli = Cli(project, tmp_path / "w", proxy.url, mirror)
    assert cli("bootstrap", "--env", env).exit_code == 0
    proxy.rules.append(rule)
    r = cli("deploy", "--env", env, "--suffix", "lost", "--only", "base", "--yes", "--no-smoke", "--json")
    assert proxy.faults[(rule.operation, "lost_reply")] == 1  # the fault did happen
    assert r.exit_code == 0, r.output
    log = (tmp_path / "w" / "envs" / f"{env}-lost" / "base" / "terraform.log").read_text()
    assert "Error acquiring the state lock" in log  # terraform did trip over its own lock
    assert "was taken by this command's own request whose reply was lost: released, retrying" in log
    units = {u["unit"]: u for u in json.loads(r.stdout)["units"]}
    # At least the one the fault made: on a loaded machine a reply can also be late for real, and
    # that self-lock is released the same way (seen once with three test workers).
    assert units["base"]["status"] == "succeeded" and units["base"]["retries"] >= 1
    proxy.rules.clear()
    assert cli("plan", "--env", env, "--suffix", "lost", "--only", "base").exit_code == 0
    assert (
        cli("teardown", "--env", env, "--suffix", "lost", "--yes", "--allow-protected", "--confirm", env).exit_code == 0
    )
