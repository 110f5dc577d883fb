"""prod, applied end to end on the emulator: seeded prerequisites, preflight,
saved plans (prod is protected: never the one-run apply), rotation, WAF,
KMS-encrypted logs, three NATs, the access-log bucket; smoke checks; nothing
left to plan; teardown refused without the typed confirmation, then done with it
(deletion protection lifted first: moto honours the cluster's).

Its own emulator, in like-AWS mode (orchestrator/aws/emulator.py): prod's resources never meet
another test's, quota checks count only them, and AWS's timing applies: ECS tasks PENDING
then `initial` targets before the rollout completes (scaled down here), e-mail subscriptions
pending until confirmed, DynamoDB refusing PITR right after creation, a snapshot unusable under
a deleted key.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import ROOT, Cli
from tests.integration.conftest import clients_for, own_emulator

pytestmark = pytest.mark.platform


# AWS's delays, scaled to a quarter: ECS 30 s PENDING -> 7.5 s; the target group's 15 s x 2
# health checks -> 7.5 s. The smoke check's budget (15 min) is AWS's, unscaled.
LIKE_AWS_TIMING = {"ORCHESTRATOR_LIKE_AWS_TIME_SCALE": "0.25"}


@pytest.fixture(scope="module")
def calls(tmp_path_factory):
    """Where the emulator records every call it served, with the command that sent it."""
    return tmp_path_factory.mktemp("calls") / "calls.jsonl"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory, calls):
    timing = {**LIKE_AWS_TIMING, "ORCHESTRATOR_EMULATOR_RECORD": str(calls)}
    with own_emulator(tmp_path_factory.mktemp("moto-prod"), like_aws=True, timing=timing) as url:
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
    assert r.exit_code == 10, r.output
    missing = [line for line in r.stderr.splitlines() if line.startswith("error: preflight:")]
    assert len(missing) == 3, r.stderr
    assert not (cli.work / "envs" / "prod").exists()
    r = cli("local", "seed", "--env", "prod")
    assert r.exit_code == 0, r.output
    # Before the first deploy: every unit's plan, network's for real, the rest as previews.
    r = cli("plan", "--env", "prod", "--json")
    assert r.exit_code == 2, r.output
    preview = json.loads(r.stdout)["units"]
    r = cli("deploy", "--env", "prod", "--yes", "--json")
    # Every unit applied; the one smoke check failing is the alert e-mails', pending confirmation
    # (as on AWS: nobody has followed the link yet, so no alert would reach anyone).
    assert r.exit_code == 7, r.stderr[-4000:]
    doc = json.loads(r.stdout)
    failing = [c for c in doc["smoke"] if not c["passed"]]
    assert [c["check"] for c in failing] == ["sns subscriptions dlq"], failing
    assert "2 of 2 subscription(s) pending confirmation" in failing[0]["reason"], failing
    # The ECS check waited for the rollout (said so), then passed.
    lines = r.stderr.splitlines()
    waited = next(i for i, line in enumerate(lines) if line.startswith("smoke: ecs service: not settled after"))
    assert "rollout IN_PROGRESS" in lines[waited] or "target(s) healthy" in lines[waited], lines[waited]
    # The recipients follow AWS's link; the smoke checks pass.
    topic = json.loads(cli("outputs", "--env", "prod", "--json").stdout)["outputs"]["observability"]["alerts_topic_arn"]
    clients_for(cli.emulator)("sns").confirm_subscription(TopicArn=topic, Token="the-token-in-the-email")
    r = cli("smoke", "--env", "prod", "--json")
    assert r.exit_code == 0, r.output
    doc["smoke"] = json.loads(r.stdout)["smoke"]
    doc["preview"] = preview
    return doc


def test_the_plan_before_the_first_deploy_shows_every_unit_with_the_deploys_counts(deployed):
    """`plan --env prod` on a prod that was never deployed: all six units, five of them previews
    (their upstream has no state), each with the resource counts the deploy then applied."""
    counts = ("add", "change", "destroy", "replace")
    planned = {u["unit"]: u for u in deployed["preview"]}
    assert set(planned) == {"network", "security", "database", "edge", "observability", "app"}
    assert {u for u, p in planned.items() if p.get("preview")} == set(planned) - {"network"}
    assert all(p["status"] == "succeeded" for p in planned.values()), planned
    applied = {u["unit"]: [u[k] for k in counts] for u in deployed["units"]}
    assert {u: [p[k] for k in counts] for u, p in planned.items()} == applied


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
    assert smoke["ecs service"]["reason"] == (
        "service ACTIVE, rollout COMPLETED, 3/3 tasks running, 3 target(s) healthy"
    ), smoke["ecs service"]
    # Protected: each unit applied a saved plan that was planned first (never the one-run apply).
    for unit in ("network", "security", "database", "edge", "observability", "app"):
        log = (cli.work / "envs" / "prod" / unit / "terraform.log").read_text()
        commands = [line.split()[2] for line in log.splitlines() if line.startswith("$ terraform ")]
        applies = [line for line in log.splitlines() if line.startswith("$ terraform apply")]
        # A lock write whose reply was lost (the SDK's retry then found its own lock: a loaded
        # machine) is released and the same command run again (test_faults covers it): after
        # the deploy's last plan, its apply (again after each such release). What came before
        # (the `plan` command this fixture ran first, its own releases) is not the deploy's.
        last_plan = len(commands) - 1 - commands[::-1].index("plan")
        tail = commands[last_plan:]
        recovered = tail.count("force-unlock")
        assert tail == ["plan", "apply"] + ["force-unlock", "apply"] * recovered, (unit, commands)
        assert len(applies) == 1 + recovered and all(a.endswith("/tfplan") for a in applies), (unit, applies)
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


def test_prods_plan_right_after_the_deploy_finds_nothing(deployed, cli):
    """Nothing to do in any unit (as on AWS), read as the plan role reads it (docs/permissions.md:
    a refresh of every unit). A deploy now would apply nothing: it is this plan, then no apply
    (a no-op deploy, its secret untouched: tests/integration/test_platform.py)."""
    r = cli("plan", "--env", "prod", "--json")
    assert r.exit_code == 0, r.stderr[-3000:]
    units = json.loads(r.stdout)["units"]
    assert {u["unit"]: u["status"] for u in units} == {
        u: "no changes" for u in ("network", "security", "database", "edge", "observability", "app")
    }, units


def test_prod_teardown_needs_the_typed_confirmation_then_lifts_protection(deployed, cli, client):
    for args in (("--yes",), ("--allow-protected", "--yes"), ("--allow-protected", "--confirm", "dev", "--yes")):
        r = cli("teardown", "--env", "prod", *args)
        assert r.exit_code == 8, r.output
        assert client("rds").describe_db_clusters(DBClusterIdentifier="payments-db-prod")["DBClusters"]
    outputs = json.loads(cli("outputs", "--env", "prod", "--json").stdout)["outputs"]
    data_key = outputs["security"]["data_kms_key_arn"]
    r = cli("teardown", "--env", "prod", "--allow-protected", "--confirm", "prod", "--yes", "--json")
    assert r.exit_code == 0, r.stderr[-4000:]
    doc = json.loads(r.stdout)
    units = {u["unit"]: u for u in doc["units"]}
    assert any("before destroy: applied deletion_protection" in h for h in units["database"]["hooks"])
    assert any("before destroy: applied deletion_protection" in h for h in units["edge"]["hooks"])
    assert not client("rds").describe_db_clusters()["DBClusters"]
    # The final snapshot is kept, under a name of its own (a re-create can take it again).
    snaps = client("rds").describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
    (final,) = [s for s in snaps if s["DBClusterSnapshotIdentifier"].startswith("payments-db-final-prod-")]
    # ... and usable: its key was kept (out of state, recorded, named), not scheduled for deletion,
    # so the snapshot copies (the like-AWS emulator refuses a copy under a key pending deletion).
    assert final["KmsKeyId"] == data_key
    assert client("kms").describe_key(KeyId=data_key)["KeyMetadata"]["KeyState"] == "Enabled"
    assert f"kept aws_kms_key.data ({data_key}): the database's final snapshot" in " ".join(units["security"]["hooks"])
    client("rds").copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=final["DBClusterSnapshotIdentifier"],
        TargetDBClusterSnapshotIdentifier="restore-check",
    )
    # The other keys go as before; nothing kept is reported as left behind.
    logs_key = outputs["security"]["logs_kms_key_arn"]
    assert client("kms").describe_key(KeyId=logs_key)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert f"kept on purpose (keep_on_teardown): aws_kms_key.data {data_key}:" in r.stderr, r.stderr[-3000:]
    assert "teardown left nothing else: no live resource is tagged for prod" in r.stderr, r.stderr[-3000:]
    r = cli("orphans", "--env", "prod", "--json")
    assert data_key not in r.stdout, r.stdout


def test_every_call_of_prods_life_is_in_the_published_permissions(deployed, calls):
    """Bootstrap, preflight, plan, deploy (rotation proof included), smoke, teardown: every
    call the emulator served to an orchestrator command (terraform's and boto3's, by the command
    in their User-Agent) is in docs/permissions.json under the role that runs that command.
    ORCHESTRATOR_UPDATE_PERMISSIONS=1 rewrites the list (and docs/permissions.md) from this run."""
    import os

    from orchestrator.aws import permissions

    recorded = permissions.needed(permissions.read_records(calls))
    assert len(recorded["deploy"]) > 100 and "ecs:CreateService" in recorded["deploy"], recorded
    assert "s3:GetObject" in recorded["plan"] and "kms:CreateKey" in recorded["bootstrap"], recorded
    listed_path = ROOT / "docs" / "permissions.json"
    if os.environ.get("ORCHESTRATOR_UPDATE_PERMISSIONS") == "1":
        listed_path.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
        (ROOT / "docs" / "permissions.md").write_text(permissions.render(recorded))
    listed = json.loads(listed_path.read_text())
    lacking = permissions.missing(recorded, listed)
    assert not lacking, (
        f"calls no published list allows: {lacking}; if they are meant, rerun with ORCHESTRATOR_UPDATE_PERMISSIONS=1"
    )
