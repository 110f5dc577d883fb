"""Shared real parts: a moto server process, a PostgreSQL server, the terraform binary."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator import local

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


@pytest.fixture(scope="session")
def aws(moto_url):
    """boto3 clients straight to the session's moto server, for checking what the CLI did."""
    import boto3

    def client(service):
        return boto3.client(
            service,
            endpoint_url=moto_url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    return client


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


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A real PostgreSQL server on 127.0.0.1 with password (scram) auth."""
    if not shutil.which("initdb") or not shutil.which("pg_ctl"):
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are not on PATH")
    import tempfile

    # Not under pytest's tmp (mode 0700): the postgres user must reach it.
    base = Path(tempfile.mkdtemp(prefix="orchestrator-pg-"))
    data = base / "data"
    port = _free_port()
    pwfile = base / "pw"
    pwfile.write_text("bootstrap-superuser-pw\n")
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
        shutil.chown(pwfile, "postgres")
    subprocess.run(
        [*prefix, "initdb", "-D", str(data), "-U", "postgres", "--pwfile", str(pwfile), "-A", "scram-sha-256"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *prefix,
            "pg_ctl",
            "-D",
            str(data),
            "-l",
            str(base / "pg.log"),
            "-w",
            "-o",
            f"-p {port} -h 127.0.0.1 -k {base}",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield {"host": "127.0.0.1", "port": port, "superuser": "postgres", "password": "bootstrap-superuser-pw"}
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


# Real plans of the platform (tests/integration/plans.py), shared by every module that reads them.
@pytest.fixture(scope="session")
def dev(moto_url, mirror, tmp_path_factory):
    from tests.integration.plans import plan_environment

    return plan_environment("dev", moto_url, mirror, tmp_path_factory.mktemp("plans-dev"))


@pytest.fixture(scope="session")
def prod(moto_url, mirror, tmp_path_factory):
    from tests.integration.plans import plan_environment

    return plan_environment("prod", moto_url, mirror, tmp_path_factory.mktemp("plans-prod"))


@pytest.fixture(scope="session")
def staging(moto_url, mirror, tmp_path_factory):
    from tests.integration.plans import plan_environment

    return plan_environment("staging", moto_url, mirror, tmp_path_factory.mktemp("plans-staging"))
