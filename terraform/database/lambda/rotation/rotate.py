"""Single-user rotation of the payments database master secret.

Secrets Manager calls this function four times per rotation
(createSecret, setSecret, testSecret, finishSecret). The secret is a JSON
object: engine, username, password, host, port, dbname. Rotation changes only
the password: every other field, host/port/dbname included, is carried over
from AWSCURRENT, so a rotation never undoes what the orchestrator wrote.

The database requires TLS (rds.force_ssl = 1). The function trusts exactly
the CA bundle packaged beside it (ca-bundle.pem: the RDS global bundle,
written by scripts/update-rds-ca-bundle.sh before a real deploy), never the
system's store, and checks the server's host name.

With rotation configured but not started (rotate_immediately = false), AWS
tests the configuration by running testSecret once, during terraform apply:
before the orchestrator has written the host into the secret. That test
passes when the secret is complete except for the host; every real rotation
still logs in.

The password never reaches a log line or an exception message.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
from pathlib import Path

import boto3

logger = logging.getLogger()
logger.setLevel(logging.INFO)

# Characters that survive JSON, URLs and shell quoting untouched.
EXCLUDE_CHARACTERS = "/@\"'\\`:;,%?#[]{}()<>&|$ "
PASSWORD_LENGTH = 32
CA_BUNDLE = Path(__file__).with_name("ca-bundle.pem")


class RotationError(Exception):
    """A rotation step failed; the message names the step, never a secret value."""


def handler(event, context, client=None, connect=None):
    """Entry point. ``client`` and ``connect`` are injectable for tests."""
    arn = event["SecretId"]
    token = event["ClientRequestToken"]
    step = event["Step"]
    if client is None:
        client = boto3.client("secretsmanager", endpoint_url=os.environ.get("SECRETS_MANAGER_ENDPOINT"))
    connect = connect or connect_pg8000

    metadata = client.describe_secret(SecretId=arn)
    if not metadata.get("RotationEnabled"):
        raise RotationError(f"rotation is not enabled for {arn}")
    versions = metadata.get("VersionIdsToStages", {})
    if token not in versions:
        raise RotationError(f"version {token} has no stage on {arn}")
    if "AWSCURRENT" in versions[token]:
        logger.info("version %s is already AWSCURRENT on %s", token, arn)
        return
    if "AWSPENDING" not in versions[token]:
        raise RotationError(f"version {token} is not AWSPENDING on {arn}")

    steps = {
        "createSecret": create_secret,
        "setSecret": set_secret,
        "testSecret": test_secret,
        "finishSecret": finish_secret,
    }
    if step not in steps:
        raise RotationError(f"unknown step {step!r}")
    steps[step](client, arn, token, connect)


def _get(client, arn, stage, token=None):
    kwargs = {"SecretId": arn, "VersionStage": stage}
    if token:
        kwargs["VersionId"] = token
    value = json.loads(client.get_secret_value(**kwargs)["SecretString"])
    missing = {"username", "password"} - value.keys()
    if missing:
        raise RotationError(f"{stage} value of {arn} lacks {sorted(missing)}")
    return value


def create_secret(client, arn, token, connect):
    """Store AWSPENDING: AWSCURRENT with a new password, every other field kept."""
    current = _get(client, arn, "AWSCURRENT")
    try:
        _get(client, arn, "AWSPENDING", token)
        logger.info("createSecret: AWSPENDING already exists for %s", arn)
        return
    except client.exceptions.ResourceNotFoundException:
        pass
    password = client.get_random_password(PasswordLength=PASSWORD_LENGTH, ExcludeCharacters=EXCLUDE_CHARACTERS)[
        "RandomPassword"
    ]
    pending = dict(current, password=password)
    client.put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(pending), VersionStages=["AWSPENDING"]
    )
    logger.info("createSecret: stored AWSPENDING version %s for %s", token, arn)


def set_secret(client, arn, token, connect):
    """Set the pending password on the database, logging in with whichever works."""
    pending = _get(client, arn, "AWSPENDING", token)
    if not pending.get("host"):
        raise RotationError(f"AWSPENDING of {arn} has no host: the endpoint was never written")
    # Already set (a retried step)?
    if _try_login(connect, pending):
        logger.info("setSecret: AWSPENDING already works for %s", arn)
        return
    for stage in ("AWSCURRENT", "AWSPREVIOUS"):
        try:
            old = _get(client, arn, stage)
        except client.exceptions.ResourceNotFoundException:
            continue
        login = dict(pending, password=old["password"])
        conn = _try_login(connect, login)
        if conn is None:
            continue
        try:
            # ALTER ROLE takes no bind parameters: quote as a literal.
            quoted_user = '"' + pending["username"].replace('"', '""') + '"'
            quoted_pw = "'" + pending["password"].replace("'", "''") + "'"
            conn.run(f"ALTER ROLE {quoted_user} WITH PASSWORD {quoted_pw}")
        finally:
            conn.close()
        logger.info("setSecret: password set on %s:%s for %s", pending["host"], pending.get("port"), arn)
        return
    raise RotationError(f"setSecret: neither AWSCURRENT nor AWSPREVIOUS can log in to the database of {arn}")


def test_secret(client, arn, token, connect):
    pending = _get(client, arn, "AWSPENDING", token)
    if not pending.get("host") and not _get(client, arn, "AWSCURRENT").get("host"):
        # The configuration test AWS runs while the secret is created, before
        # the endpoint is written: nothing to log in to yet, and nothing uses
        # the secret. A rotation (setSecret) without a host still fails.
        logger.info("testSecret: %s has no host yet: configuration test only", arn)
        return
    conn = _try_login(connect, pending)
    if conn is None:
        raise RotationError(f"testSecret: AWSPENDING cannot log in to the database of {arn}")
    try:
        conn.run("SELECT 1")
    finally:
        conn.close()
    logger.info("testSecret: AWSPENDING logs in for %s", arn)


def finish_secret(client, arn, token, connect):
    versions = client.describe_secret(SecretId=arn)["VersionIdsToStages"]
    current = next((v for v, stages in versions.items() if "AWSCURRENT" in stages), None)
    if current == token:
        return
    client.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=current
    )
    logger.info("finishSecret: version %s is AWSCURRENT for %s", token, arn)


def _try_login(connect, value):
    try:
        return connect(value)
    except RotationError:
        raise  # e.g. no CA bundle: not a wrong password
    except Exception as exc:  # noqa: BLE001 - a failed login is an answer here
        # The driver's message can quote the connection string: log its type only.
        logger.info("login as %s failed: %s", value.get("username"), type(exc).__name__)
        return None


def tls_context(ca_bundle: Path = CA_BUNDLE) -> ssl.SSLContext:
    """Verifies the server against the packaged bundle only, host name included."""
    if not ca_bundle.is_file():
        raise RotationError(f"no CA bundle packaged at {ca_bundle.name}: the database requires TLS")
    context = ssl.create_default_context(cafile=str(ca_bundle))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def connect_pg8000(value):
    import pg8000.native

    return pg8000.native.Connection(
        user=value["username"],
        password=value["password"],
        host=value["host"],
        port=int(value.get("port", 5432)),
        database=value.get("dbname", "postgres"),
        ssl_context=tls_context(),
        timeout=10,
    )
