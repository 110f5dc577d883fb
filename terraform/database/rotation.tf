# Rotation of the credentials secrets (staging, prod): a Lambda function whose
# source is lambda/rotation/, packaged by the orchestrator (no archive
# provider). It rotates the master secret (single user) and the app secret
# (alternating users, logging in with the master secret).

locals {
  rotation_name = "${local.name.prefix}-db-rotation-${local.name.suffix}"
  # Every secret the function rotates, by purpose.
  rotated_secrets = var.enable_rotation ? {
    master = aws_secretsmanager_secret.db.arn
    app    = aws_secretsmanager_secret.app[0].arn
  } : {}
}

data "aws_iam_policy_document" "rotation_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "rotation" {
  count = var.enable_rotation ? 1 : 0

  name               = local.rotation_name
  assume_role_policy = data.aws_iam_policy_document.rotation_assume.json
}

data "aws_iam_policy_document" "rotation" {
  statement {
    sid = "RotateOnlyTheseSecrets"
    actions = [
      "secretsmanager:DescribeSecret",
      "secretsmanager:GetSecretValue",
      "secretsmanager:PutSecretValue",
      "secretsmanager:UpdateSecretVersionStage",
    ]
    # The master secret is also the login of the app secret's rotation.
    resources = var.enable_rotation ? values(local.rotated_secrets) : [aws_secretsmanager_secret.db.arn]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = [local.region]
    }
  }

  statement {
    sid     = "GeneratePasswords"
    actions = ["secretsmanager:GetRandomPassword"]
    # GetRandomPassword has no resource type: AWS allows only "*".
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = [local.region]
    }
  }

  statement {
    sid       = "UseDataKeyThroughSecretsManager"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.data_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid = "VpcNetworkInterfaces"
    actions = [
      "ec2:CreateNetworkInterface",
      "ec2:DeleteNetworkInterface",
      "ec2:DescribeNetworkInterfaces",
      "ec2:AssignPrivateIpAddresses",
      "ec2:UnassignPrivateIpAddresses",
    ]
    # ENI actions of a VPC function: Describe* has no resource type and the
    # interfaces do not exist yet, so AWS allows only "*". Region-pinned.
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = [local.region]
    }
  }

  statement {
    sid = "ActiveTracing"
    # tracing_config { mode = "Active" } needs these; X-Ray has no resource
    # types for them, so AWS allows only "*". Region-pinned.
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = [local.region]
    }
  }

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_names.rotation}:*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = [local.region]
    }
  }
}

resource "aws_iam_role_policy" "rotation" {
  count = var.enable_rotation ? 1 : 0

  name   = "rotate-db-secret"
  role   = aws_iam_role.rotation[0].id
  policy = data.aws_iam_policy_document.rotation.json
}

resource "aws_cloudwatch_log_group" "rotation" {
  count = var.enable_rotation ? 1 : 0

  name              = local.log_group_names.rotation
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn == "" ? null : var.logs_kms_key_arn
}

resource "aws_lambda_function" "rotation" {
  # checkov:skip=CKV_AWS_116: Secrets Manager invokes rotation synchronously; a DLQ only serves asynchronous invocations
  # checkov:skip=CKV_AWS_272: the package is built by the orchestrator from source in this repository and pinned by source_code_hash
  # checkov:skip=CKV_AWS_115: no reserved concurrency: new accounts have an account limit of 10 and AWS refuses a reservation that leaves fewer than 10 unreserved; Secrets Manager runs one rotation of a secret at a time
  count = var.enable_rotation ? 1 : 0

  function_name    = local.rotation_name
  description      = "Rotates the database's master and app secrets; keeps host, port and dbname"
  role             = aws_iam_role.rotation[0].arn
  runtime          = "python3.12"
  handler          = "rotate.handler"
  filename         = var.rotation_lambda_zip
  source_code_hash = filebase64sha256(var.rotation_lambda_zip)
  timeout          = 60
  memory_size      = 256

  kms_key_arn = var.data_kms_key_arn

  vpc_config {
    subnet_ids         = var.private_subnet_ids
    security_group_ids = [var.rotation_security_group_id]
  }

  environment {
    variables = {
      SECRETS_MANAGER_ENDPOINT = "https://secretsmanager.${local.region}.amazonaws.com"
    }
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [aws_iam_role_policy.rotation, aws_cloudwatch_log_group.rotation]
}

resource "aws_lambda_permission" "rotation" {
  for_each = local.rotated_secrets

  statement_id   = "AllowSecretsManager-${each.key}"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.rotation[0].function_name
  principal      = "secretsmanager.amazonaws.com"
  source_arn     = each.value
  source_account = local.account_id
}

resource "aws_secretsmanager_secret_rotation" "db" {
  count = var.enable_rotation ? 1 : 0

  secret_id           = aws_secretsmanager_secret.db.id
  rotation_lambda_arn = aws_lambda_function.rotation[0].arn
  # AWS runs testSecret as a configuration test now; the orchestrator's
  # prove_rotation hook runs one full rotation after the host is written.
  rotate_immediately = false

  rotation_rules {
    automatically_after_days = var.rotation_days
  }

  depends_on = [aws_lambda_permission.rotation, aws_secretsmanager_secret_version.db]
}

resource "aws_secretsmanager_secret_rotation" "app" {
  count = var.enable_rotation ? 1 : 0

  secret_id           = aws_secretsmanager_secret.app[0].id
  rotation_lambda_arn = aws_lambda_function.rotation[0].arn
  rotate_immediately  = false

  rotation_rules {
    automatically_after_days = var.rotation_days
  }

  depends_on = [aws_lambda_permission.rotation, aws_secretsmanager_secret_version.app]
}
