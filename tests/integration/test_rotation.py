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
    from orchestrator.model.artifacts import build_zip

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
    from orchestrator.model.artifacts import build_zip

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


def superuser(postgres):
    return pg8000.native.Connection(
        user=postgres["superuser"],
        password=postgres["password"],
        host=postgres["host"],
        port=postgres["port"],
        ssl_context=ssl.create_default_context(cafile=str(postgres["ca_file"])),
    )


@pytest.fixture
def db_role(postgres, rotate):
    """A fresh login role with a known password, like the Aurora master user (it may create
    roles, and owns the application database). Created with a SCRAM verifier: the server log
    never sees a password, not even the test's."""
    name = f"payments_admin_{uuid.uuid4().hex[:6]}"
    password = "initial-" + uuid.uuid4().hex
    admin = superuser(postgres)
    admin.run(f"CREATE ROLE {name} LOGIN CREATEROLE {rotate.password_clause(password)}")
    admin.run(f"CREATE DATABASE {name}_db OWNER {name}")
    admin.close()
    return {"username": name, "password": password, "dbname": f"{name}_db"}


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
    return rotated_secret(sm, "payments-db-credentials", value, lambda_arn), value


def rotated_secret(sm, prefix: str, value: dict, lambda_arn: str) -> str:
    """A secret holding `value`, with rotation configured as terraform configures it."""
    arn = sm.create_secret(Name=f"{prefix}-{uuid.uuid4().hex[:6]}", SecretString=json.dumps(value))["ARN"]
    sm.rotate_secret(
        SecretId=arn,
        RotationLambdaARN=lambda_arn,
        RotationRules={"AutomaticallyAfterDays": 30},
        RotateImmediately=False,
    )
    return arn


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
    from orchestrator.model.artifacts import build_zip

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


# ---- no password in any statement, the server's log included ---------------------


def test_the_verifier_is_what_postgresql_stores_and_it_logs_in(rotate, postgres):
    """The SCRAM verifier computed by the function is accepted as is by PostgreSQL, and the
    password it was made from logs in (the server would reject a malformed verifier as a
    plain-text password, and that login would then fail)."""
    name = f"verifier_{uuid.uuid4().hex[:6]}"
    password = "v-" + uuid.uuid4().hex
    admin = superuser(postgres)
    try:
        admin.run(f"CREATE ROLE {name} LOGIN {rotate.password_clause(password)}")
        (stored,) = admin.run("SELECT rolpassword FROM pg_authid WHERE rolname = :n", n=name)[0]
    finally:
        admin.close()
    assert stored.startswith("SCRAM-SHA-256$4096:") and password not in stored
    assert can_login(postgres, name, password)
    assert not can_login(postgres, name, password + "x")


def app_secret(sm, postgres, master_arn, dbname, lambda_arn, *, username=None):
    """The app's secret as terraform writes it: its own user (not yet in the database), the
    generated password, and masterarn."""
    value = {
        "engine": "postgres",
        "username": username or f"payments_app_{uuid.uuid4().hex[:6]}",
        "password": "app-initial-" + uuid.uuid4().hex,
        "host": postgres["host"],
        "port": postgres["port"],
        "dbname": dbname,
        "masterarn": master_arn,
    }
    return rotated_secret(sm, "payments-db-app-credentials", value, lambda_arn), value


def login(postgres, value):
    return connect_tls({**value, "host": postgres["host"], "port": postgres["port"]}, postgres["ca_file"])


def pending_value(sm, arn, token):
    return json.loads(sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")["SecretString"])


def test_app_user_is_created_inside_by_the_first_rotation_and_alternates(
    rotate, sm, postgres, db_role, rotation_lambda
):
    master_arn, _ = make_secret(sm, postgres, db_role, rotation_lambda)
    app_arn, initial = app_secret(sm, postgres, master_arn, db_role["dbname"], rotation_lambda)
    base = initial["username"]
    assert not can_login(postgres, base, initial["password"])  # nobody created it by hand

    rotate_once(rotate, sm, app_arn)  # what prove_rotation runs at deploy
    first = current_value(sm, app_arn)
    assert first["username"] == base + "_clone" and first["masterarn"] == master_arn
    assert can_login(postgres, first["username"], first["password"])
    assert can_login(postgres, base, initial["password"])  # created with the password terraform wrote

    # The second rotation, step by step: the app logs in before, during and after.
    token = str(uuid.uuid4())
    rotate.create_secret(sm, app_arn, token, None)
    pending = pending_value(sm, app_arn, token)
    assert pending["username"] == base and pending["password"] != initial["password"]
    assert can_login(postgres, first["username"], first["password"])
    for step in ("setSecret", "testSecret"):
        rotate.handler({"SecretId": app_arn, "ClientRequestToken": token, "Step": step}, None, client=sm)
        assert can_login(postgres, first["username"], first["password"]), step  # running tasks keep working
        assert can_login(postgres, base, pending["password"]), step
    rotate.handler({"SecretId": app_arn, "ClientRequestToken": token, "Step": "finishSecret"}, None, client=sm)
    after = current_value(sm, app_arn)
    assert (after["username"], after["password"]) == (base, pending["password"])
    assert can_login(postgres, first["username"], first["password"])  # the previous user still logs in
    assert not can_login(postgres, base, initial["password"])  # base's old password is gone


def test_app_user_reads_and_writes_data_and_nothing_more(rotate, sm, postgres, db_role, rotation_lambda):
    master_arn, master = make_secret(sm, postgres, db_role, rotation_lambda)
    app_arn, _ = app_secret(sm, postgres, master_arn, db_role["dbname"], rotation_lambda)
    rotate_once(rotate, sm, app_arn)
    # The schema belongs to the master (migrations); tables it creates later are the app's to use.
    owner = login(postgres, {**current_value(sm, master_arn), "dbname": db_role["dbname"]})
    owner.run("CREATE TABLE payments (id serial PRIMARY KEY, amount integer)")
    owner.close()
    app = login(postgres, current_value(sm, app_arn))
    try:
        app.run("INSERT INTO payments (amount) VALUES (42)")
        assert app.run("SELECT amount FROM payments") == [[42]]
        for forbidden in ("CREATE ROLE intruder", "CREATE TABLE mine (x int)", "DROP TABLE payments"):
            with pytest.raises(pg8000.exceptions.DatabaseError, match="permission denied|must be owner"):
                app.run(forbidden)
    finally:
        app.close()
    assert master["username"] != current_value(sm, app_arn)["username"]


def test_no_password_reaches_the_server_log_or_any_output(
    rotate, sm, postgres, db_role, rotation_lambda, caplog, capfd
):
    """The canary: every password of a master and an app rotation (initial and new) appears 0
    times in the server's log (log_statement = ddl), in what the function logged, and in
    everything the test captured; the log does hold the role statements, verifier and all."""
    caplog.set_level("INFO")  # the level the function sets on the root logger in Lambda
    log_file = Path(postgres["log_file"])
    start = log_file.stat().st_size
    master_arn, master = make_secret(sm, postgres, db_role, rotation_lambda)
    app_arn, app = app_secret(sm, postgres, master_arn, db_role["dbname"], rotation_lambda)
    passwords = {master["password"], app["password"]}
    for arn in (app_arn, master_arn, app_arn, master_arn):
        token = rotate_once(rotate, sm, arn)
        passwords.add(json.loads(sm.get_secret_value(SecretId=arn, VersionId=token)["SecretString"])["password"])
    assert len(passwords) == 6
    assert can_login(postgres, db_role["username"], current_value(sm, master_arn)["password"])

    server_log = log_file.read_bytes()[start:].decode(errors="replace")
    assert "ALTER ROLE" in server_log and "CREATE ROLE" in server_log, "log_statement = ddl logged nothing"
    assert "SCRAM-SHA-256$" in server_log  # what the statements carried instead
    captured = capfd.readouterr()
    for where, text in (
        ("server log", server_log),
        ("function log", caplog.text),
        ("output", captured.out + captured.err),
    ):
        for pw in passwords:
            assert text.count(pw) == 0, f"a password in the {where}"


# ---- the host written while a rotation is in flight --------------------------------


@pytest.fixture
def hook_ctx(moto_url):
    from orchestrator.aws.clients import Aws
    from orchestrator.model.plugins import Context

    return Context(aws=Aws("us-east-1", endpoint_url=moto_url), settings={})


def stages_of(sm, arn) -> dict:
    return {v: s for v, s in sm.describe_secret(SecretId=arn)["VersionIdsToStages"].items() if s}


def assert_settled(sm, arn):
    """No AWSPENDING label except on AWSCURRENT: a later RotateSecret is not refused."""
    for version, stages in stages_of(sm, arn).items():
        assert "AWSPENDING" not in stages or "AWSCURRENT" in stages, (version, stages)


def test_host_written_after_create_secret_is_kept_and_no_pending_label_is_left(
    rotate, sm, postgres, db_role, rotation_lambda, hook_ctx
):
    """AWSPENDING copied before the orchestrator wrote the host: the rotation logs in where
    AWSCURRENT says the database is, and its new AWSCURRENT keeps that host."""
    from orchestrator.model.library import write_db_endpoint

    arn, _ = make_secret(sm, postgres, db_role, rotation_lambda, with_host=False)
    token = str(uuid.uuid4())
    rotate.create_secret(sm, arn, token, None)
    new_password = pending_value(sm, arn, token)["password"]
    assert "host" not in pending_value(sm, arn, token)
    assert write_db_endpoint(hook_ctx, arn, postgres["host"], postgres["port"], "postgres").changed
    for step in ("setSecret", "testSecret", "finishSecret"):
        rotate.handler({"SecretId": arn, "ClientRequestToken": token, "Step": step}, None, client=sm)
    current = current_value(sm, arn)
    assert (current["host"], current["password"]) == (postgres["host"], new_password)
    assert can_login(postgres, db_role["username"], new_password)
    assert_settled(sm, arn)
    # prove_rotation's wait sees this rotation done, though AWSCURRENT is not on its token
    from orchestrator.model.library import await_rotation

    assert await_rotation(sm, arn, token, wait_seconds=0, interval=0, clock=Ticks())
    rotate_once(rotate, sm, arn)  # the next rotation is not blocked
    assert can_login(postgres, db_role["username"], current_value(sm, arn)["password"])


@pytest.mark.parametrize("written_after", ["setSecret", "testSecret"])
def test_endpoint_changed_late_in_a_rotation_is_kept(
    rotate, sm, postgres, db_role, rotation_lambda, hook_ctx, written_after
):
    """The endpoint moves (here: dbname) after the password is set: finishSecret's new
    AWSCURRENT is the new password with the new endpoint, and no AWSPENDING stays."""
    from orchestrator.model.library import write_db_endpoint

    arn, _ = make_secret(sm, postgres, db_role, rotation_lambda)
    token = str(uuid.uuid4())
    rotate.create_secret(sm, arn, token, None)
    new_password = pending_value(sm, arn, token)["password"]
    for step in ("setSecret", "testSecret", "finishSecret"):
        rotate.handler({"SecretId": arn, "ClientRequestToken": token, "Step": step}, None, client=sm)
        if step == written_after:
            assert write_db_endpoint(hook_ctx, arn, postgres["host"], postgres["port"], db_role["dbname"]).changed
    current = current_value(sm, arn)
    assert (current["dbname"], current["password"]) == (db_role["dbname"], new_password)
    assert_settled(sm, arn)
    rotate_once(rotate, sm, arn)
    assert can_login(postgres, db_role["username"], current_value(sm, arn)["password"])


def test_rotation_finishing_between_the_hooks_read_and_write_is_not_undone(
    rotate, sm, postgres, db_role, rotation_lambda, hook_ctx
):
    """Secrets Manager has no conditional write: finishSecret lands between the hook's read
    and its write (forced here, deterministically, from the hook's own client). The hook sees
    that its write displaced another writer's version and merges into that one: the new
    password survives."""
    from orchestrator.model.library import write_db_endpoint

    arn, _ = make_secret(sm, postgres, db_role, rotation_lambda)
    token = str(uuid.uuid4())
    rotate.create_secret(sm, arn, token, None)
    new_password = pending_value(sm, arn, token)["password"]
    for step in ("setSecret", "testSecret"):
        rotate.handler({"SecretId": arn, "ClientRequestToken": token, "Step": step}, None, client=sm)
    hook_client = hook_ctx.aws.client("secretsmanager")
    finished = []

    def finish_first(**_):
        if not finished:
            finished.append(True)
            rotate.handler({"SecretId": arn, "ClientRequestToken": token, "Step": "finishSecret"}, None, client=sm)

    hook_client.meta.events.register("before-call.secretsmanager.PutSecretValue", finish_first)
    try:
        assert write_db_endpoint(hook_ctx, arn, postgres["host"], postgres["port"], db_role["dbname"]).changed
    finally:
        hook_client.meta.events.unregister("before-call.secretsmanager.PutSecretValue", finish_first)
    assert finished == [True]
    current = current_value(sm, arn)
    assert (current["dbname"], current["password"]) == (db_role["dbname"], new_password)
    assert can_login(postgres, db_role["username"], new_password)
    assert_settled(sm, arn)


# ---- the proof at deploy: waiting for a rotation -----------------------------------


class Ticks:
    """An injected clock: each reading is one tick later (no wall-clock margins)."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


def test_await_rotation_sees_the_rotation_finish(rotate, sm, postgres, db_role, rotation_lambda):
    """The rotation runs as Secrets Manager runs it (AWSPENDING staged first, then the steps, in
    another thread); await_rotation returns True once the token is AWSCURRENT."""
    import threading

    from orchestrator.model.library import await_rotation

    arn, before = make_secret(sm, postgres, db_role, rotation_lambda)
    token = str(uuid.uuid4())
    rotate.create_secret(sm, arn, token, None)
    errors = []

    def run_steps():
        try:
            for step in ("setSecret", "testSecret", "finishSecret"):
                rotate.handler({"SecretId": arn, "ClientRequestToken": token, "Step": step}, None, client=sm)
        except Exception as exc:  # noqa: BLE001 - reported after join
            errors.append(exc)

    worker = threading.Thread(target=run_steps)
    worker.start()
    try:
        assert await_rotation(sm, arn, token, wait_seconds=10_000, interval=0.05, clock=Ticks())
    finally:
        worker.join(timeout=60)
    assert not worker.is_alive() and errors == []
    assert "AWSCURRENT" in stages_of(sm, arn)[token]


def test_await_rotation_that_never_finishes_takes_its_label_off(rotate, sm, postgres, db_role, rotation_lambda):
    """A rotation that failed (its function never finished): at the deadline the AWSPENDING
    label is taken off, so the next RotateSecret is not refused, and nothing else moved."""
    from orchestrator.model.library import await_rotation

    arn, before = make_secret(sm, postgres, db_role, rotation_lambda)
    token = str(uuid.uuid4())
    rotate.create_secret(sm, arn, token, None)
    assert "AWSPENDING" in stages_of(sm, arn)[token]
    assert not await_rotation(sm, arn, token, wait_seconds=3, interval=0, clock=Ticks())
    assert_settled(sm, arn)
    assert current_value(sm, arn) == before
    rotate_once(rotate, sm, arn)
    assert can_login(postgres, db_role["username"], current_value(sm, arn)["password"])
