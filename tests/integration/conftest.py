"""Shared real parts: a moto server process, a PostgreSQL server, the terraform binary."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator.aws import local

MIRROR_CANDIDATES = ("/opt/tf-plugins",)


def provider_mirror() -> str | None:
    if os.environ.get("ORCHESTRATOR_PROVIDER_MIRROR"):
        return os.environ["ORCHESTRATOR_PROVIDER_MIRROR"]
    for c in MIRROR_CANDIDATES:
        if Path(c).is_dir():
            return c
    return None


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory):
    """One moto server for the session (its own process on 127.0.0.1)."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    server = local.start(log_path=log)
    yield server.url
    server.stop()


def clients_for(url: str):
    """boto3 clients straight to a moto server, for checking what the CLI did."""
    import boto3

    def client(service):
        return boto3.client(
            service,
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    return client


@contextlib.contextmanager
def own_emulator(log_dir: Path, *, like_aws: bool = False, timing: dict[str, str] | None = None):
    """A moto server of one's own, for tests that count what is in the account (like_aws: with
    AWS's timing, orchestrator/aws/emulator.py; timing: its ORCHESTRATOR_LIKE_AWS_* variables)."""
    server = local.start(log_path=log_dir / "moto.log", like_aws=like_aws, timing=timing)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def aws(moto_url):
    return clients_for(moto_url)


@pytest.fixture(scope="session")
def mirror():
    m = provider_mirror()
    if not m:
        pytest.fail("no provider mirror: set ORCHESTRATOR_PROVIDER_MIRROR")
    return m


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_ca(common_name: str):
    """A test certificate authority: (certificate, private key)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def pem(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def make_server_cert(ca_cert, ca_key, host: str = "127.0.0.1"):
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem(cert), key_pem


def platform_db_parameters() -> dict[str, str]:
    """The platform's cluster parameter group (terraform/database/main.tf, read with python-hcl2):
    the test server logs exactly what the real cluster logs."""
    import hcl2

    def unquote(v):
        return v[1:-1] if isinstance(v, str) and len(v) >= 2 and v[0] == v[-1] == '"' else v

    root = Path(__file__).resolve().parents[2]
    with open(root / "terraform" / "database" / "main.tf") as f:
        doc = hcl2.load(f)
    for block in doc["resource"]:
        for rtype, named in block.items():
            if unquote(rtype) == "aws_rds_cluster_parameter_group":
                (body,) = named.values()
                return {unquote(p["name"]): unquote(p["value"]) for p in body["parameter"]}
    raise AssertionError("terraform/database/main.tf has no aws_rds_cluster_parameter_group")


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A real PostgreSQL server on 127.0.0.1 that requires TLS (like rds.force_ssl = 1), with a
    server certificate from a test CA, password (scram) auth, and the platform's logging
    parameters (log_statement = ddl: every ALTER ROLE is logged verbatim). `ca_file` holds the
    CA, `log_file` the server's log."""
    if not shutil.which("initdb") or not shutil.which("pg_ctl"):
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are not on PATH")
    import tempfile

    # Not under pytest's tmp (mode 0700): the postgres user must reach it.
    base = Path(tempfile.mkdtemp(prefix="orchestrator-pg-"))
    data = base / "data"
    port = _free_port()
    pwfile = base / "pw"
    pwfile.write_text("bootstrap-superuser-pw\n")
    ca_cert, ca_key = make_ca("orchestrator test CA")
    ca_file = base / "test-ca.pem"
    ca_file.write_bytes(pem(ca_cert))
    server_cert, server_key = make_server_cert(ca_cert, ca_key)
    (base / "server.crt").write_bytes(server_cert)
    (base / "server.key").write_bytes(server_key)
    (base / "server.key").chmod(0o600)
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        prefix = ["runuser", "-u", "postgres", "--"]
        for f in (base, pwfile, base / "server.crt", base / "server.key"):
            shutil.chown(f, "postgres")
    subprocess.run(
        [*prefix, "initdb", "-D", str(data), "-U", "postgres", "--pwfile", str(pwfile), "-A", "scram-sha-256"],
        check=True,
        capture_output=True,
    )
    # TCP only over TLS: a plain connection is rejected, as by rds.force_ssl = 1.
    hba = data / "pg_hba.conf"
    hba.write_text(
        "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 0.0.0.0/0 reject\n"
    )
    params = platform_db_parameters()
    assert params.get("rds.force_ssl") == "1", "the platform requires TLS: the hba rules above mirror it"
    logging_params = " ".join(f"-c {k}={v}" for k, v in params.items() if not k.startswith("rds."))
    options = (
        f"-p {port} -h 127.0.0.1 -k {base} -c ssl=on "
        f"-c ssl_cert_file={base / 'server.crt'} -c ssl_key_file={base / 'server.key'} {logging_params}"
    )
    subprocess.run(
        [*prefix, "pg_ctl", "-D", str(data), "-l", str(base / "pg.log"), "-w", "-o", options, "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield {
            "host": "127.0.0.1",
            "port": port,
            "superuser": "postgres",
            "password": "bootstrap-superuser-pw",
            "ca_file": ca_file,
            "log_file": base / "pg.log",
            "parameters": params,
        }
    finally:
        subprocess.run([*prefix, "pg_ctl", "-D", str(data), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def wait_for(fn, timeout=30.0, interval=0.5):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval)


def shared_plans(tmp_path_factory, name: str, make, deadline_s: float = 1200.0):
    """A plan set made once per test session, whichever pytest-xdist worker needs it first: the
    others wait for it (a lock file beside the workers' temp dirs, 20 min at most) and read it.
    Nothing in a plan set belongs to the emulator of the worker that made it (plans only, nothing
    applied; the zone id it holds is compared with the plans' own)."""
    import fcntl
    import pickle

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    made = shared / f"plans-{name}.pickle"
    with open(shared / f"plans-{name}.lock", "w") as lock:
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, f"plan set {name}: another worker held it {deadline_s:.0f} s"
                time.sleep(0.5)
        if made.exists():
            return pickle.loads(made.read_bytes())
        plans = make(tmp_path_factory.mktemp(f"plans-{name}"))
        made.write_bytes(pickle.dumps(plans))
        return plans


# Real plans of the platform (tests/integration/plans.py), shared by every module that reads them,
# made once per session (whichever worker first needs them).
@pytest.fixture(scope="session")
def dev(moto_url, mirror, tmp_path_factory):
    from tests.integration.plans import plan_environment

    return shared_plans(tmp_path_factory, "dev", lambda work: plan_environment("dev", moto_url, mirror, work))


@pytest.fixture(scope="session")
def prod(moto_url, mirror, tmp_path_factory):
    from tests.integration.plans import plan_environment

    return shared_plans(tmp_path_factory, "prod", lambda work: plan_environment("prod", moto_url, mirror, work))


@pytest.fixture(scope="session")
def staging(moto_url, mirror, tmp_path_factory):
    from tests.integration.plans import plan_environment

    return shared_plans(tmp_path_factory, "staging", lambda work: plan_environment("staging", moto_url, mirror, work))
