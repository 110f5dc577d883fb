"""A generated secret the stack keeps (`secret_sources`) is passed again by the next run: a first
apply that stopped after the secret was written but before its consumer (the database, in the
platform) took the password finishes with that same password, never a second one.

On the fixture stack: a unit whose secret version is written first, then a gate that fails at
apply time (a local-exec) on the first run, then a consumer that takes the password the way the
cluster does (write-only)."""

from __future__ import annotations

import json
import shutil

from tests.helpers import FIXTURE_STACK, Cli
from tests.integration.conftest import clients_for

KEPT_UNIT = """
variable "password" {
  type      = string
  sensitive = true
  ephemeral = true
}

variable "fail_gate" {
  type = bool
}

resource "aws_secretsmanager_secret" "kept" {
  name                    = "fixture-kept-${var.environment_suffix}"
  recovery_window_in_days = 0
}

resource "aws_secretsmanager_secret_version" "kept" {
  secret_id                = aws_secretsmanager_secret.kept.id
  secret_string_wo         = jsonencode({ password = var.password })
  secret_string_wo_version = 1
}

# Fails the first apply after the secret holds the password (like an error, a SIGINT or an
# expired credential between the secret and the cluster).
resource "terraform_data" "gate" {
  input = var.fail_gate
  provisioner "local-exec" {
    command = var.fail_gate ? "exit 1" : "true"
  }
  depends_on = [aws_secretsmanager_secret_version.kept]
}

# Takes the password once, write-only, like the cluster's master_password_wo.
resource "aws_secretsmanager_secret" "consumer" {
  name                    = "fixture-consumer-${var.environment_suffix}"
  recovery_window_in_days = 0
}

resource "aws_secretsmanager_secret_version" "consumer" {
  secret_id                = aws_secretsmanager_secret.consumer.id
  secret_string_wo         = jsonencode({ password = var.password })
  secret_string_wo_version = 1
  depends_on               = [terraform_data.gate]
}
"""


def kept_project(tmp_path):
    project = tmp_path / "p"
    shutil.copytree(FIXTURE_STACK, project)
    unit = project / "terraform" / "kept"
    unit.mkdir()
    for f in ("providers.tf", "common_variables.tf", ".terraform.lock.hcl"):
        shutil.copy(project / "terraform" / "base" / f, unit / f)
    (unit / "main.tf").write_text(KEPT_UNIT)
    manifest = project / "terraform" / "stack.toml"
    text = manifest.read_text().replace('retention_days = "number"', 'retention_days = "number"\nfail_gate = "bool"')
    manifest.write_text(
        text
        + '\n[units.kept]\npath = "kept"\ngenerated_secrets = ["password"]\n'
        + 'secret_sources = { password = { secret = "fixture-kept-{env_id}", key = "password" } }\n'
    )
    for env in ("dev", "staging"):
        f = project / "environments" / env / "env.toml"
        f.write_text(f.read_text() + "fail_gate = true\n")
    return project


def test_a_stopped_first_apply_finishes_with_the_password_the_secret_keeps(moto_url, mirror, tmp_path):
    project = kept_project(tmp_path)
    cli = Cli(project, tmp_path / "w", moto_url, mirror)
    assert cli("bootstrap", "--env", "dev").exit_code == 0
    deploy = ("deploy", "--env", "dev", "--suffix", "ks", "--only", "kept", "--yes", "--no-smoke")
    first = cli(*deploy)
    assert first.exit_code != 0, first.output  # the gate failed after the secret was written
    sm = clients_for(moto_url)("secretsmanager")
    kept = json.loads(sm.get_secret_value(SecretId="fixture-kept-dev-ks")["SecretString"])["password"]
    env_file = project / "environments" / "dev" / "env.toml"
    env_file.write_text(env_file.read_text().replace("fail_gate = true", "fail_gate = false"))
    try:
        second = cli(*deploy)
        assert second.exit_code == 0, second.output
        consumer = json.loads(sm.get_secret_value(SecretId="fixture-consumer-dev-ks")["SecretString"])["password"]
        assert consumer == kept  # one password, not the second run's new one
        for text in (first.output, second.output):
            assert kept not in text
    finally:
        assert cli("teardown", "--env", "dev", "--suffix", "ks", "--yes").exit_code == 0
