"""preflight on moto: a clean environment passes in seconds; each missing or
blocked prerequisite is one line naming the setting to change, exit 10, in
under 10 s, with nothing changed, and `deploy` stops on it before any
terraform command.

Each test gets an empty account: quota checks count what exists in it, so no other
test's resources may be in it. The module's own emulator is reset (moto's
`/moto-api/reset`: every service's data dropped) before each test, instead of a
server started per test.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import ROOT, Cli
from tests.integration.conftest import clients_for, own_emulator

FAST = 10.0  # seconds: the bound for a preflight answer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with own_emulator(tmp_path_factory.mktemp("moto-preflight")) as url:
        yield url


@pytest.fixture
def emulator(server):
    urllib.request.urlopen(urllib.request.Request(f"{server}/moto-api/reset", method="POST"), timeout=30).close()
    assert clients_for(server)("s3").list_buckets()["Buckets"] == []  # an empty account
    return server


@pytest.fixture
def client(emulator):
    return clients_for(emulator)


@pytest.fixture
def cli(emulator, mirror, tmp_path):
    return Cli(ROOT, tmp_path / "work", emulator, mirror)


def snapshot(client):
    """What a failed preflight must leave as it was."""
    s3 = client("s3")
    buckets = sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
    keys = sorted(k["KeyId"] for k in client("kms").list_keys()["Keys"])
    secrets = sorted(
        s["Name"] for s in client("secretsmanager").list_secrets(IncludePlannedDeletion=True)["SecretList"]
    )
    vpcs = sorted(v["VpcId"] for v in client("ec2").describe_vpcs()["Vpcs"])
    return buckets, keys, secrets, vpcs


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def preflight(cli, env: str, *extra: str):
    t0 = time.monotonic()
    r = cli("preflight", "--env", env, *extra)
    return r, time.monotonic() - t0


def seed(cli, env: str):
    r = cli("local", "seed", "--env", env)
    assert r.exit_code == 0, r.output
    return r


def test_clean_environment_passes_in_seconds(cli):
    r, seconds = preflight(cli, "prod", "--json")
    assert r.exit_code == 10  # not seeded: zone, certificate and image are missing
    missing = error_lines(r)
    assert len(missing) == 3, r.stderr
    assert any("settings.domain_name" in line for line in missing)
    assert any("settings.certificate_domain" in line for line in missing)
    assert any("settings.container_image" in line for line in missing)

    made = seed(cli, "prod").stdout
    assert "hosted zone acme-payments.com" in made and "certificate" in made and "image payments/api" in made
    assert "nothing to seed" in seed(cli, "prod").stdout  # a second seed changes nothing

    r, seconds = preflight(cli, "prod", "--json")
    assert r.exit_code == 0, r.stderr
    findings = json.loads(r.stdout)["checks"]
    assert not error_lines(r)
    assert {f["status"] for f in findings} <= {"ok", "skip"}
    ok = {f["check"] for f in findings if f["status"] == "ok"}
    assert {"name_lengths", "ecr_image", "hosted_zone", "acm_certificate", "quota", "kms_alias_usable"} <= ok
    assert seconds < FAST, seconds


def _fault_prod(cli, client, fault) -> tuple:
    seed(cli, "prod")
    fault(client)
    before = snapshot(client)
    r, seconds = preflight(cli, "prod")
    return r, seconds, before


def _no_image(client):
    ecr = client("ecr")
    ecr.batch_delete_image(repositoryName="payments/api", imageIds=[{"imageTag": "1.42.0"}])


def _no_zone(client):
    r53 = client("route53")
    (zone,) = r53.list_hosted_zones_by_name(DNSName="acme-payments.com")["HostedZones"]
    r53.delete_hosted_zone(Id=zone["Id"])


def _no_certificate(client):
    acm = client("acm")
    for c in acm.list_certificates()["CertificateSummaryList"]:
        acm.delete_certificate(CertificateArn=c["CertificateArn"])


def _secret_pending_deletion(client):
    sm = client("secretsmanager")
    sm.create_secret(Name="payments-db-credentials-prod", SecretString="{}")
    sm.delete_secret(SecretId="payments-db-credentials-prod", RecoveryWindowInDays=30)


def _alias_on_key_pending_deletion(client):
    kms = client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/payments-data-prod", TargetKeyId=key)
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=30)


def _secret_outside_state(client):
    client("secretsmanager").create_secret(Name="payments-db-credentials-prod", SecretString="{}")


def _alias_outside_state(client):
    kms = client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/payments-data-prod", TargetKeyId=key)


def _api_record_outside_state(client):
    r53 = client("route53")
    (zone,) = r53.list_hosted_zones_by_name(DNSName="acme-payments.com")["HostedZones"]
    r53.change_resource_record_sets(
        HostedZoneId=zone["Id"],
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": "api.acme-payments.com",
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "192.0.2.10"}],
                    },
                }
            ]
        },
    )


def _vpc_quota_used_up(client):
    ec2 = client("ec2")
    while len(ec2.describe_vpcs()["Vpcs"]) < 5:  # moto models the default of 5 per region
        ec2.create_vpc(CidrBlock="10.99.0.0/16")


FAULTS = {
    "missing image": (_no_image, "error: preflight: settings.container_image: image payments/api:1.42.0 is not in ECR"),
    "missing zone": (_no_zone, "error: preflight: settings.domain_name: no public hosted zone 'acme-payments.com'"),
    "missing certificate": (
        _no_certificate,
        "error: preflight: settings.certificate_domain: no ISSUED ACM certificate for '*.acme-payments.com'",
    ),
    "secret pending deletion": (
        _secret_pending_deletion,
        "error: preflight: secret 'payments-db-credentials-prod' is scheduled for deletion",
    ),
    "alias on a key pending deletion": (
        _alias_on_key_pending_deletion,
        "error: preflight: KMS alias alias/payments-data-prod points at key",
    ),
    # Names taken by something no state holds: terraform would fail minutes into the apply.
    "live secret outside state": (
        _secret_outside_state,
        "error: preflight: secret 'payments-db-credentials-prod' exists but no state of prod holds it: "
        "creating it would fail (ResourceExistsException)",
    ),
    "alias outside state": (
        _alias_outside_state,
        "error: preflight: KMS alias alias/payments-data-prod (on key ",
    ),
    "api record outside state": (
        _api_record_outside_state,
        "error: preflight: DNS record api.acme-payments.com (A) exists but no state of prod holds it",
    ),
    "quota too low": (_vpc_quota_used_up, "error: preflight: quota VPCs per Region (vpc L-F678F1CE): 5 in use of 5"),
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_each_fault_is_one_line_exit_10_nothing_changed(fault, cli, client):
    make, expected = FAULTS[fault]
    r, seconds, before = _fault_prod(cli, client, make)
    assert r.exit_code == 10, r.output
    lines = error_lines(r)
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(expected), lines[0]
    assert seconds < FAST, seconds
    assert snapshot(client) == before


def test_deploy_stops_on_preflight_before_any_terraform(cli, client):
    """No image: deploy says so in one line and exit 10, and no terraform command ran."""
    r = cli("bootstrap", "--env", "dev")
    assert r.exit_code == 0, r.output
    before = snapshot(client)
    t0 = time.monotonic()
    r = cli("deploy", "--env", "dev", "--suffix", "pf", "--yes")
    assert r.exit_code == 10, r.output
    assert error_lines(r) == [line for line in r.stderr.splitlines() if line.strip()], r.stderr
    (line,) = error_lines(r)
    assert line.startswith("error: preflight: settings.container_image: ECR repository 'payments/api' does not exist")
    assert time.monotonic() - t0 < FAST
    assert not (cli.work / "envs").exists() or not any((cli.work / "envs").iterdir())
    assert snapshot(client) == before


def test_name_too_long(cli, client, tmp_path):
    """A prefix longer than any name limit allows is refused when the settings load; a name
    template over its limit (here a lowered one) is refused by preflight, naming the prefix."""
    project = tmp_path / "project"
    for d in ("terraform", "environments"):
        shutil.copytree(ROOT / d, project / d, symlinks=True)
    env_file = project / "environments" / "prod" / "env.toml"
    env_file.write_text(env_file.read_text().replace('name_prefix = "payments"', 'name_prefix = "paymentsxyz"'))
    long_cli = Cli(project, cli.work, cli.emulator, cli.mirror)
    r, _ = preflight(long_cli, "prod")
    assert r.exit_code == 1
    assert error_lines(r) == [
        f"error: {env_file}: setting 'name_prefix' must be 2-10 characters, a lowercase letter first, "
        "then a-z or 0-9, got 'paymentsxyz'"
    ]
    env_file.write_text(env_file.read_text().replace('name_prefix = "paymentsxyz"', 'name_prefix = "payments"'))
    manifest = project / "terraform" / "stack.toml"
    text = manifest.read_text()
    manifest.write_text(
        text.replace(
            'template = "{name_prefix}-db-{env_id}", max = 63', 'template = "{name_prefix}-db-{env_id}", max = 12'
        )
    )
    seed(long_cli, "prod")
    r, seconds = preflight(long_cli, "prod", "--suffix", "pr42")
    assert r.exit_code == 10
    assert error_lines(r) == [
        "error: preflight: RDS cluster name 'payments-db-prod-pr42' has 21 characters, AWS allows 12: "
        "shorten name_prefix ('payments') or the suffix"
    ]


def test_seed_refuses_real_aws(tmp_path, mirror):
    r = Cli(ROOT, tmp_path / "work", None, mirror)("local", "seed", "--env", "dev")
    assert r.exit_code == 1
    assert error_lines(r) == [
        "error: local seed needs a running emulator: run `orchestrator local up` (or pass --emulator-url)"
    ]


def test_ca_bundle_is_required_on_real_aws_only(tmp_path):
    """The rotation function reaches a TLS-only database with its packaged CA bundle."""
    from dataclasses import dataclass

    from orchestrator.aws import preflight as pf

    @dataclass
    class FakeAws:
        endpoint_url: str | None

    @dataclass
    class FakeEnv:
        settings: dict

    spec = {"path": "ca-bundle.pem", "what": "the bundle", "when": "enable_rotation", "real_aws_only": True}
    real = pf.Context(FakeEnv({"enable_rotation": True}), FakeAws(None), tmp_path)
    emulated = pf.Context(FakeEnv({"enable_rotation": True}), FakeAws("http://127.0.0.1:1"), tmp_path)
    off = pf.Context(FakeEnv({"enable_rotation": False}), FakeAws(None), tmp_path)

    def check(ctx):  # through the dispatcher, which owns `when` for every check
        (finding,) = pf.run(ctx, [{"check": "file_has_certificates", **spec}])
        return finding

    assert check(real).failed
    assert check(emulated).status == "skip"
    assert check(off).status == "skip" and "enable_rotation is off" in check(off).message
    Path(tmp_path / "ca-bundle.pem").write_text("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n")
    assert check(real).status == "ok"


def test_acceptance_run_tears_down_after_a_failed_step(emulator, client, mirror, tmp_path):
    """scripts/acceptance.py (make test-aws) on the emulator: the deploy fails (preflight: the
    copy's secret name is pending deletion), teardown still runs, the run fails, nothing is left."""
    import os
    import subprocess
    import sys

    sm = client("secretsmanager")
    sm.create_secret(Name="payments-db-credentials-dev-accfail", SecretString="{}")
    sm.delete_secret(SecretId="payments-db-credentials-dev-accfail", RecoveryWindowInDays=7)
    report_file = tmp_path / "acceptance.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "acceptance.py"),
            "--emulator-url",
            emulator,
            "--suffix",
            "accfail",
            "--report",
            str(report_file),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "ORCHESTRATOR_PROVIDER_MIRROR": mirror},
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(report_file.read_text())
    steps = {s["step"]: s["exit"] for s in report["steps"]}
    assert steps == {"bootstrap": 0, "seed": 0, "deploy": 10, "teardown": 0}, report["steps"]
    assert report["result"] == "failed" and report["leftovers"] == []
    assert "scheduled for deletion" in proc.stderr


def test_a_secret_force_deleted_a_moment_ago_does_not_fail_preflight(mirror, tmp_path):
    """Like AWS (the like-AWS emulator), a force-deleted secret keeps its name for a few seconds
    (the deletion is asynchronous): right after a teardown of a copy, preflight waits for it
    instead of saying "wait for the window"."""
    with own_emulator(tmp_path, like_aws=True) as url:
        client = clients_for(url)
        cli = Cli(ROOT, tmp_path / "work", url, mirror)
        seed(cli, "dev")
        sm = client("secretsmanager")
        sm.create_secret(Name="payments-db-credentials-dev", SecretString="{}")
        sm.delete_secret(SecretId="payments-db-credentials-dev", ForceDeleteWithoutRecovery=True)
        assert sm.describe_secret(SecretId="payments-db-credentials-dev").get("DeletedDate")  # name still taken
        r, seconds = preflight(cli, "dev", "--json")
        assert r.exit_code == 0, r.stderr
        messages = [f["message"] for f in json.loads(r.stdout)["checks"] if f["check"] == "secret_not_pending_deletion"]
        assert "secret payments-db-credentials-dev was deleted a moment ago: the name is free" in messages
        assert seconds < FAST + 5, seconds
