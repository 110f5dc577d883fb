"""The rotation function against a real PostgreSQL and moto server's Secrets Manager."""

from __future__ import annotations

import importlib.util
import json
import uuid
from pathlib import Path

import boto3
import pg8000.native
import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "terraform" / "database" / "lambda" / "rotation" / "rotate.py"


@pytest.fixture(scope="module")
def rotate(monkeypatch_module=None):
    spec = importlib.util.spec_from_file_location("rotate", SRC)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
        user=postgres["superuser"], password=postgres["password"], host=postgres["host"], port=postgres["port"]
    )
    admin.run(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
    admin.close()
    return {"username": name, "password": password}


def connect_plain(value):
    return pg8000.native.Connection(
        user=value["username"],
        password=value["password"],
        host=value["host"],
        port=int(value["port"]),
        database=value.get("dbname", "postgres"),
        timeout=5,
    )


def can_login(postgres, username, password):
    try:
        connect_plain(
            {
                "username": username,
                "password": password,
                "host": postgres["host"],
                "port": postgres["port"],
                "dbname": "postgres",
            }
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
    token = str(uuid.uuid4())
    rotate.create_secret(sm, arn, token, connect_plain)
    for step in ("setSecret", "testSecret", "finishSecret"):
        rotate.handler(
            {"SecretId": arn, "ClientRequestToken": token, "Step": step}, None, client=sm, connect=connect_plain
        )
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
    rotate.handler(
        {"SecretId": arn, "ClientRequestToken": token, "Step": "finishSecret"}, None, client=sm, connect=connect_plain
    )
    assert current_value(sm, arn) == current


def test_set_secret_without_host_fails_without_leaking_password(rotate, sm, postgres, db_role, rotation_lambda):
    arn, before = make_secret(sm, postgres, db_role, rotation_lambda, with_host=False)
    token = str(uuid.uuid4())
    rotate.create_secret(sm, arn, token, connect_plain)
    pending = json.loads(sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")["SecretString"])
    with pytest.raises(rotate.RotationError) as exc:
        rotate.handler(
            {"SecretId": arn, "ClientRequestToken": token, "Step": "setSecret"}, None, client=sm, connect=connect_plain
        )
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
            connect=connect_plain,
        )


def test_package_builds_reproducibly(tmp_path):
    from orchestrator.artifacts import build_zip

    a = build_zip(SRC.parent, tmp_path / "a")
    b = build_zip(SRC.parent, tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    import zipfile

    names = zipfile.ZipFile(a).namelist()
    assert "rotate.py" in names and any(n.startswith("pg8000/") for n in names)
