"""prod, applied end to end on the emulator: seeded prerequisites, preflight,
saved plans (prod is protected: never the one-run apply), rotation, WAF,
KMS-encrypted logs, three NATs, the access-log bucket; smoke checks; a
redeploy; teardown refused without the typed confirmation, then done with it
(deletion protection lifted first: moto honours the cluster's).

Its own emulator: prod's resources never meet another test's, and quota
checks count only them.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import ROOT, Cli
from tests.integration.conftest import clients_for, own_emulator

pytestmark = pytest.mark.platform


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with own_emulator(tmp_path_factory.mktemp("moto-prod")) as url:
        yield url


@pytest.fixture(scope="module")
def client(emulator):
    return clients_for(emulator)


@pytest.fixture(scope="module")
def cli(emulator, mirror, tmp_path_factory):
    return Cli(ROOT, tmp_path_factory.mktemp("prod-work"), emulator, mirror)


@pytest.fixture(scope="module")
def deployed(cli):
    r = cli("bootstrap", "--env", "prod")
    assert r.exit_code == 0, r.output
    # Without the seed, preflight names each missing outside prerequisite, and nothing runs.
    r = cli("deploy", "--env", "prod", "--yes")
    assert r.exit_code == 2, r.output
    missing = [line for line in r.stderr.splitlines() if line.startswith("error: preflight:")]
    assert len(missing) == 3, r.stderr
    assert not (cli.work / "envs" / "prod").exists()
    r = cli("local", "seed", "--env", "prod")
    assert r.exit_code == 0, r.output
    r = cli("deploy", "--env", "prod", "--yes", "--json")
    assert r.exit_code == 0, r.stderr[-4000:]
    return json.loads(r.stdout)


def test_prod_deploys_with_every_protection_and_smoke_passes(deployed, cli, client):
    assert {u["unit"]: u["status"] for u in deployed["units"]} == {
        u: "succeeded" for u in ("network", "security", "database", "edge", "observability", "app")
    }
    assert deployed["preflight"]["skipped"] is False
    assert {f["status"] for f in deployed["preflight"]["findings"]} <= {"ok", "skip"}
    smoke = {c["check"]: c for c in deployed["smoke"]}
    assert all(c["passed"] for c in smoke.values()), smoke
    assert {"waf association", "log group kms", "nat gateways"} <= set(smoke)
    assert "3 NAT gateway(s)" in smoke["nat gateways"]["reason"]
    # Protected: each unit applied a saved plan that was planned first (never the one-run apply).
    for unit in ("network", "security", "database", "edge", "observability", "app"):
        log = (cli.work / "envs" / "prod" / unit / "terraform.log").read_text()
        commands = [line.split()[2] for line in log.splitlines() if line.startswith("$ terraform ")]
        applies = [line for line in log.splitlines() if line.startswith("$ terraform apply")]
        assert commands[-2:] == ["plan", "apply"], (unit, commands)
        assert len(applies) == 1 and applies[0].endswith("/tfplan"), (unit, applies)
    # What moto stores: rotation configured, the access-log bucket, KMS on every log group.
    outputs = json.loads(cli("outputs", "--env", "prod", "--json").stdout)["outputs"]
    secret = client("secretsmanager").describe_secret(SecretId=outputs["database"]["secret_arn"])
    assert secret["RotationEnabled"] is True
    master_arn, app_arn = outputs["database"]["secret_arn"], outputs["database"]["app_secret_arn"]
    assert app_arn != master_arn
    assert client("secretsmanager").describe_secret(SecretId=app_arn)["RotationEnabled"] is True
    assert smoke["database + app secret host"]["passed"]
    # Who may read which secret, on the policies IAM holds (moto stores them; it evaluates none).
    from tests.integration.test_real_aws_semantics import allows_on

    iam = client("iam")
    ctx = {"aws:RequestedRegion": "us-east-1"}

    def policy(role, name):
        return iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]

    rotation = policy("payments-db-rotation-prod", "rotate-db-secret")
    for arn in (master_arn, app_arn):
        for action in ("secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"):
            assert allows_on(rotation, action, arn, ctx), (action, arn)
    for role, name in (("payments-ecs-task-prod", "payments-api"), ("payments-ecs-execution-prod", "start-api-tasks")):
        assert allows_on(policy(role, name), "secretsmanager:GetSecretValue", app_arn, ctx), role
        assert not allows_on(policy(role, name), "secretsmanager:GetSecretValue", master_arn, ctx), role
    (task_def,) = client("ecs").list_task_definitions(familyPrefix="payments-api-prod")["taskDefinitionArns"]
    container = client("ecs").describe_task_definition(taskDefinition=task_def)["taskDefinition"][
        "containerDefinitions"
    ][0]
    assert all(s["valueFrom"].startswith(app_arn + ":") for s in container["secrets"]), container["secrets"]
    alarms = client("cloudwatch").describe_alarms(AlarmNames=["payments-db-rotation-errors-prod"])["MetricAlarms"]
    assert [a["AlarmActions"] for a in alarms] == [[outputs["observability"]["alerts_topic_arn"]]]
    assert client("s3").head_bucket(Bucket="payments-alb-logs-prod-123456789012")
    groups = client("logs").describe_log_groups()["logGroups"]
    ours = [g for g in groups if "-prod" in g["logGroupName"]]
    assert len(ours) == 6 and all(g.get("kmsKeyId") for g in ours), ours
    (cluster,) = client("rds").describe_db_clusters(DBClusterIdentifier="payments-db-prod")["DBClusters"]
    assert cluster["DeletionProtection"] is True


def test_prod_redeploys_without_changes(deployed, cli):
    """moto does not model ECS availability-zone rebalancing: the first redeploy may change
    that one attribute of the service (as in dev); nothing else, and then nothing at all."""
    for attempt in range(2):
        r = cli("deploy", "--env", "prod", "--yes", "--json")
        assert r.exit_code == 0, r.stderr[-4000:]
        units = {u["unit"]: u for u in json.loads(r.stdout)["units"]}
        changed = {
            u: (x["add"], x["change"], x["destroy"], x["replace"])
            for u, x in units.items()
            if x["status"] != "no changes"
        }
        if not changed:
            break
        assert attempt == 0 and changed == {"app": (0, 1, 0, 0)}, changed
    assert not changed, changed


def test_prod_teardown_needs_the_typed_confirmation_then_lifts_protection(deployed, cli, client):
    for args in (("--yes",), ("--allow-protected", "--yes"), ("--allow-protected", "--confirm", "dev", "--yes")):
        r = cli("teardown", "--env", "prod", *args)
        assert r.exit_code == 8, r.output
        assert client("rds").describe_db_clusters(DBClusterIdentifier="payments-db-prod")["DBClusters"]
    r = cli("teardown", "--env", "prod", "--allow-protected", "--confirm", "prod", "--yes", "--json")
    assert r.exit_code == 0, r.stderr[-4000:]
    units = {u["unit"]: u for u in json.loads(r.stdout)["units"]}
    assert any("before destroy: applied deletion_protection" in h for h in units["database"]["hooks"])
    assert any("before destroy: applied deletion_protection" in h for h in units["edge"]["hooks"])
    assert not client("rds").describe_db_clusters()["DBClusters"]
    # The final snapshot is kept, under a name of its own (a re-create can take it again).
    snaps = client("rds").describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
    assert any(s["DBClusterSnapshotIdentifier"].startswith("payments-db-final-prod-") for s in snaps), snaps
