# The master credentials secret is created WITHOUT the host: the cluster does not
# depend on the secret nor the secret on the cluster (no cycle). After the
# database unit applies, the orchestrator merges host, port and dbname into the
# secret with boto3 (PutSecretValue, only when they differ).
resource "aws_secretsmanager_secret" "db" {
  name                    = "${local.name.prefix}-db-credentials-${local.name.suffix}"
  description             = "Master credentials of ${local.name.prefix}-db-${local.name.suffix} (the rotation function alone reads them); host added after apply by the orchestrator"
  kms_key_id              = var.data_kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days

  tags = {
    Name = "${local.name.prefix}-db-credentials-${local.name.suffix}"
  }
}

resource "aws_secretsmanager_secret_version" "db" {
  secret_id = aws_secretsmanager_secret.db.id

  # Write-only: the password never enters the state or the plan.
  secret_string_wo = jsonencode({
    engine   = "postgres"
    username = var.db_username
    password = var.db_master_password
    port     = var.db_port
    dbname   = var.db_name
  })
  secret_string_wo_version = 1

  lifecycle {
    # The orchestrator (host) and the rotation function (password) own the
    # value after creation.
    ignore_changes = [secret_string, secret_string_wo, version_stages]
  }
}

# The app's own credentials (where rotation is on): a least-privileged user
# that the rotation function creates inside the VPC on its first rotation
# (proved at deploy by the orchestrator's prove_rotation hook), rotated with
# alternating users (`<user>` / `<user>_clone`) so running tasks keep a valid
# login through every rotation. `masterarn` names the secret the function logs
# in with. The task definition reads this secret, never the master one.
resource "aws_secretsmanager_secret" "app" {
  count = var.enable_rotation ? 1 : 0

  name                    = "${local.name.prefix}-db-app-credentials-${local.name.suffix}"
  description             = "Credentials of the payments API's own database user on ${local.name.prefix}-db-${local.name.suffix}; host added after apply by the orchestrator"
  kms_key_id              = var.data_kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days

  tags = {
    Name = "${local.name.prefix}-db-app-credentials-${local.name.suffix}"
  }
}

resource "aws_secretsmanager_secret_version" "app" {
  count = var.enable_rotation ? 1 : 0

  secret_id = aws_secretsmanager_secret.app[0].id

  # Write-only: the password never enters the state or the plan.
  secret_string_wo = jsonencode({
    engine    = "postgres"
    username  = var.db_app_username
    password  = var.db_app_password
    port      = var.db_port
    dbname    = var.db_name
    masterarn = aws_secretsmanager_secret.db.arn
  })
  secret_string_wo_version = 1

  lifecycle {
    ignore_changes = [secret_string, secret_string_wo, version_stages]
  }
}
