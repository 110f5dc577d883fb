# ECS creates Container Insights' log group on first write, unencrypted and kept
# forever, unless it exists already: created here first, like every other.
resource "aws_cloudwatch_log_group" "container_insights" {
  # checkov:skip=CKV_AWS_158: KMS-encrypted with the logs key when kms_encrypted_logs (a validation requires it outside dev); dev uses CloudWatch's default encryption
  name              = local.log_group_names.container_insights
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn == "" ? null : var.logs_kms_key_arn
}

resource "aws_ecs_cluster" "main" {
  name = "${local.name.prefix}-cluster-${local.name.suffix}"

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  depends_on = [aws_cloudwatch_log_group.container_insights]
}

locals {
  container_name = "${local.name.prefix}-api"
}

resource "aws_ecs_task_definition" "api" {
  family                   = "${local.name.prefix}-api-${local.name.suffix}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  container_definitions = jsonencode([{
    name                   = local.container_name
    image                  = var.container_image
    essential              = true
    readonlyRootFilesystem = true
    portMappings = [{
      containerPort = var.container_port
      protocol      = "tcp"
    }]
    # Plain settings only: credentials come through `secrets` below.
    environment = [
      { name = "ENVIRONMENT", value = var.environment },
      { name = "PORT", value = tostring(var.container_port) },
    ]
    secrets = [
      { name = "DB_HOST", valueFrom = "${var.db_secret_arn}:host::" },
      { name = "DB_PORT", valueFrom = "${var.db_secret_arn}:port::" },
      { name = "DB_NAME", valueFrom = "${var.db_secret_arn}:dbname::" },
      { name = "DB_USERNAME", valueFrom = "${var.db_secret_arn}:username::" },
      { name = "DB_PASSWORD", valueFrom = "${var.db_secret_arn}:password::" },
    ]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = var.log_group_name
        "awslogs-region"        = local.region
        "awslogs-stream-prefix" = "api"
      }
    }
  }])
}

# The listener lives in the edge unit (applied first by the orchestrator);
# this anchor makes the service's dependency on it explicit here too.
resource "terraform_data" "listener" {
  input = var.listener_arn
}

resource "aws_ecs_service" "api" {
  name            = "${local.name.prefix}-api-${local.name.suffix}"
  cluster         = aws_ecs_cluster.main.id
  task_definition = aws_ecs_task_definition.api.arn
  desired_count   = var.desired_count
  launch_type     = "FARGATE"

  health_check_grace_period_seconds = var.health_check_grace_period_seconds
  availability_zone_rebalancing     = "ENABLED"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.app_security_group_id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = var.target_group_arn
    container_name   = local.container_name
    container_port   = var.container_port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  depends_on = [
    terraform_data.listener,
    aws_iam_role_policy.execution,
    aws_iam_role_policy.task,
  ]
}
