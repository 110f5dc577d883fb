"""The rotation function against a real PostgreSQL and moto server's Secrets Manager."""

from __future__ import annotations

import importlib.util
import json
import shutil
import ssl
import uuid
import zipfile
from pathlib import Path

import boto3
import pg8000.native
import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "terraform" / "database" / "lambda" / "rotation" / "rotate.py"


def packaged_rotate(tmp: Path, ca_pem: bytes | None):
    """rotate.py as the package ships it: built by the orchestrator with `ca_pem` as its
    ca-bundle.pem (the RDS bundle on AWS), extracted, imported from the extracted copy."""
    from orchestrator.artifacts import build_zip

    src = tmp / "src" / "rotation"
    shutil.copytree(SRC.parent, src, ignore=shutil.ignore_patterns("ca-bundle.pem", "__pycache__"))
    if ca_pem is not None:
        (src / "ca-bundle.pem").write_bytes(ca_pem)
    package = build_zip(src, tmp / "artifacts")
    out = tmp / "extracted"
    with zipfile.ZipFile(package) as zf:
        zf.extract("rotate.py", out)
        if ca_pem is not None:
            zf.extract("ca-bundle.pem", out)
    spec = importlib.util.spec_from_file_location(f"rotate_{uuid.uuid4().hex[:6]}", out / "rotate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def rotate(postgres, tmp_path_factory):
    """Trusts exactly the test CA that signed the server's certificate."""
    return packaged_rotate(tmp_path_factory.mktemp("pkg-test-ca"), Path(postgres["ca_file"]).read_bytes())


@pytest.fixture
def sm(moto_url):
    return boto3.client(
        "secretsmanager",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture(scope="module")
def rotation_lambda(moto_url, tmp_path_factory):
    """The function Secrets Manager would call (moto stores it; it cannot run it)."""
    from orchestrator.artifacts import build_zip

    kw = dict(endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    iam = boto3.client("iam", **kw)
    role = iam.create_role(
        RoleName=f"rotation-{uuid.uuid4().hex[:6]}",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    package = build_zip(SRC.parent, tmp_path_factory.mktemp("artifacts"))
    return boto3.client("lambda", **kw).create_function(
        FunctionName=f"rotation-{uuid.uuid4().hex[:6]}",
        Runtime="python3.12",
        Role=role,
        Handler="rotate.handler",
        Code={"ZipFile": package.read_bytes()},
    )["FunctionArn"]


@pytest.fixture
def db_role(postgres):
    """A fresh login role with a known password, like the Aurora master user."""
    name = f"payments_admin_{uuid.uuid4().hex[:6]}"
    password = "initial-" + uuid.uuid4().hex
    admin = pg8000.native.Connection(
        user=postgres["superuser"],
        password=postgres["password"],
        host=postgres["host"],
        port=postgres["port"],
        ssl_context=ssl.create_default_context(cafile=str(postgres["ca_file"])),
    )
    admin.run(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
    admin.close()
    return {"username": name, "password": password}


def connect_tls(value, ca_file):
    """The test's own logins: TLS, trusting the test CA."""
    return pg8000.native.Connection(
        user=value["username"],
        password=value["password"],
        host=value["host"],
        port=int(value["port"]),
        database=value.get("dbname", "postgres"),
        ssl_context=ssl.create_default_context(cafile=str(ca_file)),
        timeout=5,
    )


def can_login(postgres, username, password):
    try:
        connect_tls(
            {
                "username": username,
                "password": password,
                "host": postgres["host"],
                "port": postgres["port"],
                "dbname": "postgres",
            },
            postgres["ca_file"],
        ).close()
        return True
    except pg8000.exceptions.InterfaceError:
        return False
    except pg8000.exceptions.DatabaseError:
        return False


def make_secret(sm, postgres, role, lambda_arn, *, with_host=True):
    value = {
        "engine": "postgres",
        "username": role["username"],
        "password": role["password"],
        "port": postgres["port"],
        "dbname": "postgres",
        "extra": "kept",
    }
    if with_host:
        value["host"] = postgres["host"]
    arn = sm.create_secret(Name=f"payments-db-credentials-{uuid.uuid4().hex[:6]}", SecretString=json.dumps(value))[
        "ARN"
    ]
    sm.rotate_secret(
        SecretId=arn,
        RotationLambdaARN=lambda_arn,
        RotationRules={"AutomaticallyAfterDays": 30},
        RotateImmediately=False,
    )
    return arn, value


def current_value(sm, arn):
    # Explicit stage: moto's default-version lookup does not follow a moved AWSCURRENT label.
    return json.loads(sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])


def rotate_once(rotate, sm, arn):
    """The four steps as Secrets Manager calls them; the function connects its own way
    (TLS, trusting only its packaged CA bundle)."""
    token = str(uuid.uuid4())
    # createSecret directly: on AWS, RotateSecret stages the token before calling the
    # function; moto does not, and the handler refuses an unstaged token.
    rotate.create_secret(sm, arn, token, None)
    for step in ("setSecret", "testSecret", "finishSecret"):
        rotate.handler({"SecretId": arn, "ClientRequestToken": token, "Step": step}, None, client=sm)
    return token


def test_rotation_changes_password_keeps_every_other_field(rotate, sm, postgres, db_role, rotation_lambda):
    arn, before = make_secret(sm, postgres, db_role, rotation_lambda)
    token = rotate_once(rotate, sm, arn)

    after = current_value(sm, arn)
    assert after["password"] != before["password"]
    for k in ("host", "port", "dbname", "username", "engine", "extra"):
        assert after[k] == before[k], k
    stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    assert "AWSCURRENT" in stages[token]
    previous = json.loads(sm.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")["SecretString"])
    assert previous["password"] == before["password"]
    assert can_login(postgres, db_role["username"], after["password"])
    assert not can_login(postgres, db_role["username"], before["password"])


def test_rotation_twice_then_steps_are_idempotent(rotate, sm, postgres, db_role, rotation_lambda):
    arn, _ = make_secret(sm, postgres, db_role, rotation_lambda)
    rotate_once(rotate, sm, arn)
    token = rotate_once(rotate, sm, arn)
    current = current_value(sm, arn)
    assert can_login(postgres, db_role["username"], current["password"])
    # finishSecret again on the current version: a no-op, not an error
    rotate.handler({"SecretId": arn, "ClientRequestToken": token, "Step": "finishSecret"}, None, client=sm)
    assert current_value(sm, arn) == current


def test_set_secret_without_host_fails_without_leaking_password(rotate, sm, postgres, db_role, rotation_lambda):
    arn, before = make_secret(sm, postgres, db_role, rotation_lambda, with_host=False)
    token = str(uuid.uuid4())
    rotate.create_secret(sm, arn, token, None)
    pending = json.loads(sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")["SecretString"])
    with pytest.raises(rotate.RotationError) as exc:
        rotate.handler({"SecretId": arn, "ClientRequestToken": token, "Step": "setSecret"}, None, client=sm)
    assert "no host" in str(exc.value)
    assert pending["password"] not in str(exc.value) and before["password"] not in str(exc.value)
    # the database password did not change
    assert can_login(postgres, db_role["username"], before["password"])


def test_unknown_token_is_refused(rotate, sm, postgres, db_role, rotation_lambda):
    arn, _ = make_secret(sm, postgres, db_role, rotation_lambda)
    with pytest.raises(rotate.RotationError, match="has no stage"):
        rotate.handler(
            {"SecretId": arn, "ClientRequestToken": str(uuid.uuid4()), "Step": "setSecret"},
            None,
            client=sm,
        )


def test_package_builds_reproducibly(tmp_path):
    from orchestrator.artifacts import build_zip

    a = build_zip(SRC.parent, tmp_path / "a")
    b = build_zip(SRC.parent, tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    import zipfile

    names = zipfile.ZipFile(a).namelist()
    assert "rotate.py" in names and any(n.startswith("pg8000/") for n in names)


def test_the_database_refuses_plain_connections(postgres, db_role):
    """Like rds.force_ssl = 1: what the function must cope with."""
    with pytest.raises(pg8000.exceptions.DatabaseError, match="no encryption|pg_hba"):
        pg8000.native.Connection(
            user=db_role["username"],
            password=db_role["password"],
            host=postgres["host"],
            port=postgres["port"],
            database="postgres",
            ssl_context=False,  # pg8000's None would try TLS without verifying
            timeout=5,
        )
    assert can_login(postgres, db_role["username"], db_role["password"])


def test_a_package_trusting_another_ca_cannot_log_in(sm, postgres, db_role, rotation_lambda, tmp_path):
    from tests.integration.conftest import make_ca, pem

    other, _ = make_ca("some other CA")
    rotate_other = packaged_rotate(tmp_path, pem(other))
    arn, before = make_secret(sm, postgres, db_role, rotation_lambda)
    with pytest.raises(rotate_other.RotationError, match="neither AWSCURRENT nor AWSPREVIOUS can log in"):
        rotate_once(rotate_other, sm, arn)
    assert can_login(postgres, db_role["username"], before["password"])  # nothing changed


def test_a_package_without_a_ca_bundle_says_so(sm, postgres, db_role, rotation_lambda, tmp_path):
    rotate_none = packaged_rotate(tmp_path, None)
    arn, before = make_secret(sm, postgres, db_role, rotation_lambda)
    with pytest.raises(rotate_none.RotationError, match="no CA bundle packaged"):
        rotate_once(rotate_none, sm, arn)
    assert can_login(postgres, db_role["username"], before["password"])


def test_configuration_test_before_the_host_is_written(rotate, sm, postgres, db_role, rotation_lambda):
    """rotate_immediately = false: AWS runs testSecret while terraform applies, before the
    orchestrator's post-apply hook has written the host. It must pass; a real rotation must not."""
    arn, before = make_secret(sm, postgres, db_role, rotation_lambda, with_host=False)
    token = str(uuid.uuid4())
    # What the configuration test does: an AWSPENDING copy, then testSecret.
    sm.put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(before), VersionStages=["AWSPENDING"]
    )
    rotate.handler({"SecretId": arn, "ClientRequestToken": token, "Step": "testSecret"}, None, client=sm)
    # Once the host is written, testSecret logs in for real, over TLS.
    with_host = dict(before, host=postgres["host"])
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps(with_host), VersionStages=["AWSCURRENT"])
    token2 = str(uuid.uuid4())
    sm.put_secret_value(
        SecretId=arn,
        ClientRequestToken=token2,
        SecretString=json.dumps(dict(with_host, password="wrong-password-123")),
        VersionStages=["AWSPENDING"],
    )
    with pytest.raises(rotate.RotationError, match="testSecret: AWSPENDING cannot log in"):
        rotate.handler({"SecretId": arn, "ClientRequestToken": token2, "Step": "testSecret"}, None, client=sm)
