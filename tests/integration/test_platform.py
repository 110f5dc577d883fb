"""The real platform, deployed once per run through the CLI on moto server:
bootstrap, deploy dev, secret host = cluster endpoint, smoke, a no-op second
deploy (no new secret version), health and drift, teardown leaving nothing
tagged, and prod's teardown refused. (The generated CI pipeline deploys and
tears down a copy of the fixture stack: tests/integration/test_pipeline.py.)"""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import ROOT, Cli, Webhook, deployed, sns_messages

pytestmark = pytest.mark.platform
SUFFIXES = ("dev",)


@pytest.fixture(scope="module")
def cli(moto_url, mirror, tmp_path_factory):
    return Cli(ROOT, tmp_path_factory.mktemp("platform-work"), moto_url, mirror)


@pytest.fixture(scope="module")
def first_deploy_run(cli):
    r = cli("bootstrap", "--env", "dev")
    assert r.exit_code == 0, r.output
    r = cli("local", "seed", "--env", "dev")  # the image in ECR, which preflight checks
    assert r.exit_code == 0, r.output
    r = cli("deploy", "--env", "dev", "--yes", "--json")
    assert r.exit_code == 0, r.stderr[-4000:]
    return r


@pytest.fixture(scope="module")
def first_deploy(first_deploy_run):
    return json.loads(first_deploy_run.stdout)


def _shape(line: str) -> str:
    """A line of output with its times and numbers made generic, whitespace collapsed."""
    line = re.sub(r"\[\d\d:\d\d:\d\d\]", "[T]", line)
    return " ".join(re.sub(r"\d+(?:\.\d+)?", "N", line).split())


def test_the_quickstarts_sample_output_is_what_a_deploy_prints(first_deploy_run):
    """docs/quickstart.md shows a deploy's output: each of its lines (times and numbers aside,
    "..." standing for any text) appears, in that order, in what the real deploy printed."""
    text = (ROOT / "docs" / "quickstart.md").read_text()
    block = text.split("A deploy prints", 1)[1].split("```", 2)[1]
    sample = [line for line in block.splitlines() if line.strip() and line.strip() != "..."]
    assert len(sample) >= 8, sample
    # The SDK's retries of a hook's calls (", N AWS retries", said below the sample) come and go
    # with the emulator's load: the sample shows the line without them.
    printed = [_shape(line).replace(", N AWS retries)", ")") for line in first_deploy_run.stderr.splitlines()]
    at = 0
    for line in sample:
        want = re.compile(".*".join(re.escape(part) for part in _shape(line).split("...")))
        found = next((i for i in range(at, len(printed)) if want.fullmatch(printed[i])), None)
        assert found is not None, f"quickstart line not printed (in this order): {line!r}\n" + "\n".join(printed)
        at = found + 1


def outputs(cli, *args):
    r = cli("outputs", "--env", "dev", "--json", *args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["outputs"]


def secret_versions(aws, arn):
    return {v["VersionId"] for v in aws("secretsmanager").list_secret_version_ids(SecretId=arn)["Versions"]}


def test_first_deploy_applies_every_unit_and_smoke_passes(first_deploy):
    assert {u["unit"]: u["status"] for u in first_deploy["units"]} == {
        u: "succeeded" for u in ("network", "security", "database", "edge", "observability", "app")
    }
    assert first_deploy["smoke"] and all(c["passed"] for c in first_deploy["smoke"]), first_deploy["smoke"]
    db = next(u for u in first_deploy["units"] if u["unit"] == "database")
    assert any(h.startswith("write_db_endpoint: changed") for h in db["hooks"])


def test_secret_host_is_the_cluster_endpoint_and_password_kept(cli, first_deploy, aws):
    db = outputs(cli, "database")["database"]
    cluster = aws("rds").describe_db_clusters(DBClusterIdentifier=db["cluster_id"])["DBClusters"][0]
    value = json.loads(
        aws("secretsmanager").get_secret_value(SecretId=db["secret_arn"], VersionStage="AWSCURRENT")["SecretString"]
    )
    assert value["host"] == cluster["Endpoint"] == db["cluster_endpoint"]
    assert value["port"] == cluster["Port"] and value["dbname"] == "payments"
    assert value["username"] == "payments_admin" and len(value["password"]) >= 24
    # The first version (written by terraform, write-only) had no host; ours added one.
    assert len(secret_versions(aws, db["secret_arn"])) == 2


def test_smoke_command_passes(cli, first_deploy):
    r = cli("smoke", "--env", "dev", "--json")
    assert r.exit_code == 0, r.output
    checks = json.loads(r.stdout)["smoke"]
    assert {c["check"] for c in checks} >= {
        "nat gateways",
        "private routes",
        "database + secret host",
        "ecs service",
        "load balancer",
        "sns subscriptions dlq",
    }


def test_second_deploy_applies_nothing_and_writes_no_secret_version(cli, first_deploy, aws):
    """Right after the first deploy: every unit "no changes", as on AWS (the emulator keeps the
    ECS service's availability-zone rebalancing, which plain moto drops: orchestrator/aws/emulator.py)."""
    arn = outputs(cli, "database")["database"]["secret_arn"]
    before = secret_versions(aws, arn)
    r = cli("deploy", "--env", "dev", "--yes", "--json")
    assert r.exit_code == 0, r.stderr[-4000:]
    report = json.loads(r.stdout)
    assert {u["status"] for u in report["units"]} == {"no changes"}, report["units"]
    assert report["result"] == "ok"
    assert secret_versions(aws, arn) == before


def test_the_database_password_appears_nowhere(cli, first_deploy, aws):
    """Canary: the real master password, read from Secrets Manager, is in no output,
    log, journal, audit record, JSON report or HTML report the orchestrator wrote."""
    arn = outputs(cli, "database")["database"]["secret_arn"]
    password = json.loads(
        aws("secretsmanager").get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
    )["password"]
    texts = []
    for args in (
        ("status", "--env", "dev", "--json"),
        ("outputs", "--env", "dev", "--json"),
        ("plan", "--env", "dev", "--only", "database", "--json"),
        ("smoke", "--env", "dev", "--json"),
    ):
        r = cli(*args)
        texts += [r.stdout, r.stderr]
    for f in cli.work.rglob("*"):
        if f.is_file() and f.suffix not in (".zip",) and ".terraform" not in f.parts:
            texts.append(f.read_text(errors="replace"))
    s3 = aws("s3")
    texts.append(
        s3.get_object(Bucket="acme-payments-tfstate-dev-123456789012", Key="payment-platform/_runs/dev/journal.json")[
            "Body"
        ]
        .read()
        .decode()
    )
    state = (
        s3.get_object(Bucket="acme-payments-tfstate-dev-123456789012", Key="payment-platform/dev/database.tfstate")[
            "Body"
        ]
        .read()
        .decode()
    )
    texts.append(state)  # write-only: not even the state holds it
    audit_bucket = "acme-payments-tfstate-dev-123456789012-audit"
    records = s3.list_objects_v2(Bucket=audit_bucket, Prefix="payment-platform/dev/")["Contents"]
    assert any(o["Key"].endswith("/end.json") for o in records)  # the deploys above were recorded
    texts += [s3.get_object(Bucket=audit_bucket, Key=o["Key"])["Body"].read().decode() for o in records]
    assert len(texts) > 20
    assert sum(t.count(password) for t in texts) == 0


def test_smoke_checks_retry_through_throttling(cli, first_deploy):
    from orchestrator.aws.clients import Aws
    from orchestrator.core.smoke import calls_for, run_smoke
    from orchestrator.model.config import load_stack
    from orchestrator.model.plugins import Context
    from tests.faultproxy import FaultProxy, Rule

    proxy = FaultProxy(cli.emulator)
    url = proxy.start()
    try:
        proxy.rules += [
            Rule("DescribeNatGateways", "throttle", times=2),
            Rule("DescribeDBClusters", "503", times=1),
            Rule("DescribeLoadBalancers", "reset", times=1),
        ]
        stack = load_stack(ROOT / "terraform")
        settings = {"single_nat_gateway": True, "az_count": 2, "desired_count": 1}
        results = run_smoke(
            Context(Aws("us-east-1", endpoint_url=url, max_attempts=4), settings),
            calls_for(stack, stack.units),
            {u: outputs(cli)[u] for u in ("network", "database", "app", "edge", "observability")},
        )
        assert all(r.passed for r in results), results
        assert proxy.count("DescribeNatGateways") == 3 and proxy.count("DescribeDBClusters") == 2
        assert proxy.count("DescribeLoadBalancers") == 2
    finally:
        proxy.stop()


def test_health_names_a_rule_opened_by_hand_and_tells_the_alerts_topic_and_the_webhook_once(cli, first_deploy, aws):
    """Day two on the platform. A rule opening the database to the internet, added with boto3
    (the stack declares its rules as separate resources, so terraform alone would not name it):
    `health` says drifted, one message reaches the platform's own alerts topic (read back through
    an SQS subscription) and one the webhook. Then the rule taken away and a subscription added by
    hand without the dead-letter queue: no drift left, the smoke check of the alerts topic fails,
    `health` says failing (was drifted) and tells it once the same way. (The same state told to
    nobody, and "healthy" told once: tests/integration/test_health.py, on the fixture stack.)"""
    out = outputs(cli)
    topic, db_sg = out["observability"]["alerts_topic_arn"], out["security"]["db_security_group_id"]
    sqs, sns, ec2 = aws("sqs"), aws("sns"), aws("ec2")
    queue = sqs.create_queue(QueueName="platform-health-read-back")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    dlq = {"RedrivePolicy": json.dumps({"deadLetterTargetArn": out["observability"]["alerts_dlq_arn"]})}
    subscription = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes=dlq)["SubscriptionArn"]
    careless = sqs.create_queue(QueueName="platform-health-no-dlq")["QueueUrl"]
    careless_arn = sqs.get_queue_attributes(QueueUrl=careless, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    subscriptions = [subscription]
    hook = Webhook()
    opened = [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]

    def health():
        r = cli("health", "--env", "dev", "--json", env={"ORCHESTRATOR_WEBHOOK_URL": hook.url})
        return r, json.loads(r.stdout)

    try:
        # The copy's first health (a fresh deploy, the stack's own rules in place): only the rule
        # opened by hand is drift, in no other unit, and it is told.
        ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=opened)
        r, doc = health()
        assert r.exit_code == 2, r.stderr[-3000:]
        assert (doc["drifted"], doc["failing"]) == (
            {
                "security": [
                    "aws_security_group.db (1 rule(s) no resource declares: ingress tcp port 5432 from cidr 0.0.0.0/0)"
                ]
            },
            [],
        )
        [sent] = sns_messages(aws, queue)
        [posted] = hook.bodies
        assert sent == posted and (sent["state"], sent["was"]) == ("drifted", "unknown")
        assert "ingress tcp port 5432 from cidr 0.0.0.0/0" in sent["text"]

        ec2.revoke_security_group_ingress(GroupId=db_sg, IpPermissions=opened)
        subscriptions.append(sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=careless_arn)["SubscriptionArn"])
        r, doc = health()
        assert r.exit_code == 13, r.stderr[-3000:]
        assert (doc["state"], doc["drifted"], doc["failing"]) == ("failing", {}, ["sns subscriptions dlq"])
        [sent] = sns_messages(aws, queue)
        assert (sent["state"], sent["was"], sent["failing"]) == ("failing", "drifted", ["sns subscriptions dlq"])
        assert hook.bodies[1] == sent and len(hook.bodies) == 2
    finally:
        hook.close()
        for arn in subscriptions:
            sns.unsubscribe(SubscriptionArn=arn)
        sqs.delete_queue(QueueUrl=queue)
        sqs.delete_queue(QueueUrl=careless)


def test_drift_is_detected(cli, first_deploy, aws):
    name = outputs(cli, "observability")["observability"]["log_group_name"]
    aws("logs").put_retention_policy(logGroupName=name, retentionInDays=1)
    r = cli("drift", "--env", "dev", "--only", "observability", "--json")
    assert r.exit_code == 2, r.output
    units = {u["unit"]: u for u in json.loads(r.stdout)["units"]}
    assert units["observability"]["change"] == 1
    # put it back through a deploy of that unit
    r = cli("deploy", "--env", "dev", "--only", "observability", "--yes")
    assert r.exit_code == 0, r.stderr[-3000:]


def test_prod_teardown_is_refused_and_changes_nothing(cli, aws):
    before = aws("s3").list_buckets()["Buckets"]
    r = cli("teardown", "--env", "prod", "--yes")
    assert r.exit_code == 8
    assert r.stderr.strip() == (
        "error: environment prod is protected: teardown needs --allow-protected and --confirm prod (nothing was changed)"
    )
    assert aws("s3").list_buckets()["Buckets"] == before


def tagged(cli, suffixes):
    from orchestrator.aws.clients import Aws
    from orchestrator.aws.orphans import live_tagged

    return live_tagged(
        Aws("us-east-1", endpoint_url=cli.emulator),
        {"EnvironmentSuffix": list(suffixes), "Project": "payment-platform"},
    )


def test_teardown_of_both_leaves_nothing_tagged(cli, first_deploy, aws):
    assert tagged(cli, SUFFIXES), "the tagging API sees the deployed resources"
    r = cli("teardown", "--env", "dev", "--yes", "--json")
    assert r.exit_code == 0, r.stderr[-4000:]
    order = [u["unit"] for u in json.loads(r.stdout)["units"]]
    assert order[0] == "app" and order[-1] == "network"
    left = tagged(cli, SUFFIXES)
    assert left == [], "\n".join(left)
    assert not [
        v
        for v in aws("ec2").describe_vpcs()["Vpcs"]
        if any(t["Key"] == "EnvironmentSuffix" and t["Value"] in SUFFIXES for t in v.get("Tags", []))
    ]
    assert not [
        c
        for c in aws("rds").describe_db_clusters()["DBClusters"]
        if c["DBClusterIdentifier"].startswith("payments-db-dev")
    ]
    assert not aws("secretsmanager").list_secrets(Filters=[{"Key": "name", "Values": ["payments-db-credentials-dev"]}])[
        "SecretList"
    ]
    assert deployed(cli("envs", "--env", "dev", "--json").stdout) == {}
