resource "aws_db_subnet_group" "main" {
  name        = "${local.name.prefix}-db-subnets-${local.name.suffix}"
  description = "Private subnets of the payments database"
  subnet_ids  = var.private_subnet_ids

  tags = {
    Name = "${local.name.prefix}-db-subnets-${local.name.suffix}"
  }
}

resource "aws_rds_cluster_parameter_group" "main" {
  name        = "${local.name.prefix}-db-params-${local.name.suffix}"
  family      = "aurora-postgresql${split(".", var.db_engine_version)[0]}"
  description = "TLS-only connections and statement logging"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
}

# RDS creates the export log group on first write, unencrypted and kept
# forever, unless it exists already: it is created here first, with the
# logs key and the retention of every other log group.
resource "aws_cloudwatch_log_group" "postgresql" {
  # checkov:skip=CKV_AWS_158: KMS-encrypted with the logs key when kms_encrypted_logs (a validation requires it outside dev); dev uses CloudWatch's default encryption
  name              = local.log_group_names.db
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn == "" ? null : var.logs_kms_key_arn
}

# Stable for the life of the cluster, new when it is created again: the final
# snapshot of one cluster never blocks the destroy of the next (snapshot names
# are unique per account and region).
resource "terraform_data" "cluster_created" {
  input = formatdate("YYYYMMDDhhmmss", timestamp())

  lifecycle {
    ignore_changes = [input]
  }
}

resource "aws_rds_cluster" "main" {
  # checkov:skip=CKV2_AWS_8: Aurora's own continuous backups (backup_retention_days >= 7, validated) with point-in-time restore; AWS Backup plans are account-level
  cluster_identifier = "${local.name.prefix}-db-${local.name.suffix}"
  engine             = "aurora-postgresql"
  engine_version     = var.db_engine_version
  database_name      = var.db_name
  port               = var.db_port
  master_username    = var.db_username

  # Write-only (Terraform 1.11): the password reaches RDS but never the state
  # or the plan. Bump the version to push a new one; rotation takes over after.
  master_password_wo         = var.db_master_password
  master_password_wo_version = 1

  db_subnet_group_name            = aws_db_subnet_group.main.name
  db_cluster_parameter_group_name = aws_rds_cluster_parameter_group.main.name
  vpc_security_group_ids          = [var.db_security_group_id]

  storage_encrypted                   = true
  kms_key_id                          = var.data_kms_key_arn
  iam_database_authentication_enabled = true
  backup_retention_period             = var.backup_retention_days
  preferred_backup_window             = "03:00-04:00"
  copy_tags_to_snapshot               = true
  enabled_cloudwatch_logs_exports     = ["postgresql"]

  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = !var.final_snapshot
  final_snapshot_identifier = var.final_snapshot ? "${local.name.prefix}-db-final-${local.name.suffix}-${terraform_data.cluster_created.output}" : null

  lifecycle {
    # Provisioned cluster: there is no serverless scaling configuration to
    # manage (the local emulator reports an empty one on every read).
    ignore_changes = [scaling_configuration]
  }

  # The password is kept in the secret before any cluster takes it: a first apply
  # that stops in between leaves the secret holding it, and the next run passes
  # that same value (stack.toml: secret_sources), never a second password.
  depends_on = [aws_cloudwatch_log_group.postgresql, aws_secretsmanager_secret_version.db]
}

resource "aws_rds_cluster_instance" "main" {
  count = var.db_instance_count

  identifier           = "${local.name.prefix}-db-${count.index + 1}-${local.name.suffix}"
  cluster_identifier   = aws_rds_cluster.main.id
  engine               = aws_rds_cluster.main.engine
  instance_class       = var.db_instance_class
  db_subnet_group_name = aws_db_subnet_group.main.name
  publicly_accessible  = false

  # Minor versions come from AWS: the cluster names only the major version
  # (db_engine_version), so an upgraded cluster never plans a downgrade.
  auto_minor_version_upgrade            = true
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  performance_insights_enabled          = var.performance_insights
  performance_insights_kms_key_id       = var.performance_insights ? var.data_kms_key_arn : null
  performance_insights_retention_period = var.performance_insights ? 7 : null
}

# Enhanced monitoring: RDS publishes OS metrics with this role.
data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name               = "${local.name.prefix}-rds-monitoring-${local.name.suffix}"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
}

data "aws_iam_policy_document" "monitoring" {
  statement {
    sid = "PublishOwnOsMetrics"
    actions = [
      "logs:CreateLogGroup",
      "logs:PutRetentionPolicy",
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:DescribeLogStreams",
      "logs:GetLogEvents",
    ]
    # RDS enhanced monitoring writes to this fixed log group only.
    resources = [
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:RDSOSMetrics",
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:RDSOSMetrics:log-stream:*",
    ]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = [local.region]
    }
  }
}

resource "aws_iam_role_policy" "monitoring" {
  name   = "publish-os-metrics"
  role   = aws_iam_role.monitoring.id
  policy = data.aws_iam_policy_document.monitoring.json
}
