"""Rotation of the payments database's credentials secrets.

Secrets Manager calls this function four times per rotation (createSecret,
setSecret, testSecret, finishSecret). Each secret is a JSON object: engine,
username, password, host, port, dbname. Two kinds, told apart by their value:

- **The master secret** (no ``masterarn``): single-user rotation. The function
  logs in as the master user and sets its new password.
- **The app secret** (``masterarn`` names the master secret): alternating
  users, AWS's multi-user strategy
  (https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotating-secrets_strategies.html#rotating-secrets-two-users).
  The pending version names the *other* of two users, ``<user>`` and
  ``<user>_clone``; the function logs in with the master secret, creates that
  user when it does not exist yet (a member of ``<user>``, which holds the
  privileges) and sets its password. The user of AWSCURRENT keeps its
  password, so running tasks keep logging in until they re-read the secret.
  The first rotation also creates ``<user>`` itself, with the password the
  orchestrator generated: the app's role is created inside the VPC, by the
  platform, never by hand.

**No statement carries a password.** The cluster logs DDL (``log_statement =
ddl``, an audit control), and PostgreSQL writes ``ALTER ROLE … PASSWORD
'…'`` to its log verbatim (AWS documents this for RDS and Aurora PostgreSQL).
The function computes the SCRAM-SHA-256 verifier itself (``scramp``) and
sends only the verifier, which PostgreSQL stores as it is.

**The endpoint belongs to the database, not to a rotation.** The orchestrator
writes host, port and dbname into AWSCURRENT after the database unit applies;
a rotation may be in flight then, its AWSPENDING copied before the host
existed. Every step connects to AWSCURRENT's endpoint when it has one, and
finishSecret makes the new AWSCURRENT carry AWSCURRENT's endpoint fields: a
host written during a rotation is never lost, and no AWSPENDING label is left
behind.

The database requires TLS (rds.force_ssl = 1). The function trusts exactly
the CA bundle packaged beside it (ca-bundle.pem: the RDS global bundle,
written by scripts/update-rds-ca-bundle.sh before a real deploy), never the
system's store, and checks the server's host name.

No password reaches a log line, an exception message or a SQL statement.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import ssl
import uuid
from pathlib import Path

import boto3

logger = logging.getLogger()
logger.setLevel(logging.INFO)

# Characters that survive JSON, URLs and shell quoting untouched.
EXCLUDE_CHARACTERS = "/@\"'\\`:;,%?#[]{}()<>&|$ "
PASSWORD_LENGTH = 32
CA_BUNDLE = Path(__file__).with_name("ca-bundle.pem")
ENDPOINT_FIELDS = ("host", "port", "dbname")
CLONE_SUFFIX = "_clone"
# PostgreSQL truncates identifiers at 63 bytes: a clone name must fit whole.
MAX_IDENTIFIER = 63
# PostgreSQL's own default (scram_iterations).
SCRAM_ITERATIONS = 4096


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


# ---- SQL without a password ------------------------------------------------------


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """PostgreSQL's stored form of a SCRAM-SHA-256 password
    (``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``), computed here so the
    password itself never travels in a statement."""
    from scramp import ScramMechanism

    salt, stored_key, server_key, iterations = ScramMechanism("SCRAM-SHA-256").make_auth_info(
        password, iteration_count=SCRAM_ITERATIONS, salt=salt
    )

    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def password_clause(password: str) -> str:
    """``PASSWORD '<verifier>'``: base64, '$' and ':' only, nothing to escape."""
    return f"PASSWORD '{scram_verifier(password)}'"


# ---- secret values -----------------------------------------------------------------


def _get(client, arn, stage, token=None):
    kwargs = {"SecretId": arn, "VersionStage": stage}
    if token:
        kwargs["VersionId"] = token
    try:
        value = json.loads(client.get_secret_value(**kwargs)["SecretString"])
    except ValueError:
        raise RotationError(f"{stage} value of {arn} is not JSON") from None
    if not isinstance(value, dict):
        raise RotationError(f"{stage} value of {arn} is not a JSON object")
    missing = {"username", "password"} - value.keys()
    if missing:
        raise RotationError(f"{stage} value of {arn} lacks {sorted(missing)}")
    return value


def _with_current_endpoint(value: dict, current: dict) -> dict:
    """``value`` connecting where AWSCURRENT says the database is (newer than any pending copy)."""
    return {**value, **{k: current[k] for k in ENDPOINT_FIELDS if current.get(k) not in (None, "")}}


def is_multi_user(value: dict) -> bool:
    return bool(value.get("masterarn"))


def base_username(username: str) -> str:
    return username[: -len(CLONE_SUFFIX)] if username.endswith(CLONE_SUFFIX) else username


def alternate_username(username: str) -> str:
    if username.endswith(CLONE_SUFFIX):
        return base_username(username)
    clone = username + CLONE_SUFFIX
    if len(clone.encode()) > MAX_IDENTIFIER:
        raise RotationError(f"user name {username!r} leaves no room for {CLONE_SUFFIX!r} within {MAX_IDENTIFIER} bytes")
    return clone


# ---- the four steps ------------------------------------------------------------------


def create_secret(client, arn, token, connect):
    """Store AWSPENDING: AWSCURRENT with a new password (and, for the app secret, the other
    user), every other field kept."""
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
    if is_multi_user(current):
        pending["username"] = alternate_username(current["username"])
    client.put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(pending), VersionStages=["AWSPENDING"]
    )
    logger.info("createSecret: stored AWSPENDING version %s (user %s) for %s", token, pending["username"], arn)


def set_secret(client, arn, token, connect):
    current = _get(client, arn, "AWSCURRENT")
    pending = _with_current_endpoint(_get(client, arn, "AWSPENDING", token), current)
    if not pending.get("host"):
        raise RotationError(f"AWSPENDING of {arn} has no host: the endpoint was never written")
    if is_multi_user(current):
        _set_other_user(client, arn, current, pending, connect)
    else:
        _set_own_password(client, arn, pending, connect)


def _set_own_password(client, arn, pending, connect):
    """Single user: log in with whichever of AWSPENDING, AWSCURRENT, AWSPREVIOUS works."""
    conn = _try_login(connect, pending)
    if conn is not None:  # a retried step: already set
        conn.close()
        logger.info("setSecret: AWSPENDING already works for %s", arn)
        return
    for stage in ("AWSCURRENT", "AWSPREVIOUS"):
        try:
            old = _get(client, arn, stage)
        except client.exceptions.ResourceNotFoundException:
            continue
        conn = _try_login(connect, dict(pending, password=old["password"]))
        if conn is None:
            continue
        try:
            conn.run(f"ALTER ROLE {quote_ident(pending['username'])} WITH {password_clause(pending['password'])}")
        finally:
            conn.close()
        logger.info("setSecret: password set on %s:%s for %s", pending["host"], pending.get("port"), arn)
        return
    raise RotationError(f"setSecret: neither AWSCURRENT nor AWSPREVIOUS can log in to the database of {arn}")


def _set_other_user(client, arn, current, pending, connect):
    """Alternating users: as the master, make sure the base user exists (with the privileges
    and, when new, AWSCURRENT's password), then create or update the pending user."""
    master_arn = current["masterarn"]
    master = _with_current_endpoint(_get(client, master_arn, "AWSCURRENT"), pending)
    conn = _try_login(connect, master)
    if conn is None:
        raise RotationError(f"setSecret: the master secret {master_arn} cannot log in to the database of {arn}")
    base = base_username(current["username"])
    try:
        if not _role_exists(conn, base):
            if current["username"] != base:
                raise RotationError(f"setSecret: AWSCURRENT of {arn} names {current['username']} but {base} is gone")
            conn.run(f"CREATE ROLE {quote_ident(base)} WITH LOGIN {password_clause(current['password'])}")
            logger.info("setSecret: created user %s for %s", base, arn)
        _grant_app_privileges(conn, base, pending.get("dbname") or "postgres")
        user = pending["username"]
        if _role_exists(conn, user):
            conn.run(f"ALTER ROLE {quote_ident(user)} WITH LOGIN {password_clause(pending['password'])}")
        else:
            conn.run(f"CREATE ROLE {quote_ident(user)} WITH LOGIN {password_clause(pending['password'])}")
            conn.run(f"GRANT {quote_ident(base)} TO {quote_ident(user)}")
            logger.info("setSecret: created user %s (member of %s) for %s", user, base, arn)
    finally:
        conn.close()
    logger.info("setSecret: password of %s set for %s", pending["username"], arn)


def _role_exists(conn, name: str) -> bool:
    return bool(conn.run("SELECT 1 FROM pg_roles WHERE rolname = :name", name=name))


def _grant_app_privileges(conn, role: str, dbname: str) -> None:
    """Read and write the data, nothing else: no CREATEROLE, no CREATEDB, no schema changes
    (migrations run as their own role). Idempotent: GRANT of a held privilege is a no-op."""
    r = quote_ident(role)
    for sql in (
        f"GRANT CONNECT, TEMPORARY ON DATABASE {quote_ident(dbname)} TO {r}",
        f"GRANT USAGE ON SCHEMA public TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {r}",
    ):
        conn.run(sql)


def test_secret(client, arn, token, connect):
    """Log in with AWSPENDING wherever a host is known. Only a secret with no host at all (the
    configuration test AWS runs while terraform creates the rotation, before the orchestrator
    wrote the endpoint) has nothing to log in to."""
    current = _get(client, arn, "AWSCURRENT")
    pending = _with_current_endpoint(_get(client, arn, "AWSPENDING", token), current)
    if not pending.get("host"):
        logger.info("testSecret: %s has no host yet: configuration test only", arn)
        return
    conn = _try_login(connect, pending)
    if conn is None:
        raise RotationError(f"testSecret: AWSPENDING cannot log in to the database of {arn}")
    try:
        conn.run("SELECT 1")
    finally:
        conn.close()
    logger.info("testSecret: AWSPENDING (user %s) logs in for %s", pending["username"], arn)


def finish_secret(client, arn, token, connect):
    """AWSCURRENT to the pending version. When AWSCURRENT's endpoint moved during the
    rotation, the new AWSCURRENT is the pending credentials with that endpoint (a version of
    its own, its token derived from the rotation's), and AWSPENDING is taken off."""
    versions = client.describe_secret(SecretId=arn)["VersionIdsToStages"]
    current_id = next((v for v, stages in versions.items() if "AWSCURRENT" in stages), None)
    if current_id == token:
        return
    current = _get(client, arn, "AWSCURRENT")
    pending = _get(client, arn, "AWSPENDING", token)
    merged = _with_current_endpoint(pending, current)
    if merged != pending:
        # The orchestrator's prove_rotation derives the same id to see the rotation done.
        merged_token = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{token}/endpoint"))
        if current_id != merged_token:  # not already done by a retried step
            client.put_secret_value(
                SecretId=arn,
                ClientRequestToken=merged_token,
                SecretString=json.dumps(merged),
                VersionStages=["AWSCURRENT"],
            )
        client.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token)
        logger.info("finishSecret: version %s (with the current endpoint) is AWSCURRENT for %s", merged_token, arn)
        return
    client.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=current_id
    )
    logger.info("finishSecret: version %s is AWSCURRENT for %s", token, arn)


# ---- connections ---------------------------------------------------------------------


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
