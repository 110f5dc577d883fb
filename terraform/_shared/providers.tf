# Shared by every unit through a symlink: one provider configuration, one set
# of default tags. Units never set per-resource tags other than Name.
terraform {
  required_version = ">= 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Every setting is injected by the orchestrator with -backend-config.
  backend "s3" {}
}

locals {
  # Emulator mode (moto server) only: real AWS leaves emulator_endpoint empty.
  emulated = var.emulator_endpoint != ""
}

provider "aws" {
  region = var.region
  # Refuse any other account. The emulator skips the account lookup, so
  # there is nothing to compare against there.
  allowed_account_ids = local.emulated ? null : [var.account_id]

  skip_credentials_validation = local.emulated
  skip_requesting_account_id  = local.emulated
  skip_metadata_api_check     = local.emulated
  skip_region_validation      = local.emulated
  s3_use_path_style           = local.emulated

  dynamic "endpoints" {
    for_each = local.emulated ? [var.emulator_endpoint] : []
    content {
      acm            = endpoints.value
      cloudwatch     = endpoints.value
      cloudwatchlogs = endpoints.value
      dynamodb       = endpoints.value
      ec2            = endpoints.value
      ecs            = endpoints.value
      elb            = endpoints.value
      elbv2          = endpoints.value
      events         = endpoints.value
      iam            = endpoints.value
      kms            = endpoints.value
      lambda         = endpoints.value
      rds            = endpoints.value
      route53        = endpoints.value
      s3             = endpoints.value
      secretsmanager = endpoints.value
      sns            = endpoints.value
      sqs            = endpoints.value
      sts            = endpoints.value
      wafv2          = endpoints.value
    }
  }

  default_tags {
    tags = {
      Environment       = var.environment
      EnvironmentSuffix = var.environment_suffix
      Project           = var.project
      ManagedBy         = "Terraform"
      Repository        = var.repository
      Owner             = var.owner
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  # ${name_prefix}-<what>-${environment_suffix}: several dev copies share an account.
  name = {
    prefix = var.name_prefix
    suffix = var.environment_suffix
  }

  # Names that more than one unit must agree on, in one place (this file is
  # shared by every unit). The logs key admits exactly these log groups.
  log_group_names = {
    flow_logs = "/vpc/${var.name_prefix}-flow-logs-${var.environment_suffix}"
    app       = "/ecs/${var.name_prefix}-api-${var.environment_suffix}"
    waf       = "aws-waf-logs-${var.name_prefix}-${var.environment_suffix}"
    rotation  = "/aws/lambda/${var.name_prefix}-db-rotation-${var.environment_suffix}"
    db        = "/aws/rds/cluster/${var.name_prefix}-db-${var.environment_suffix}/postgresql"
    # Container Insights writes here; created by the stack first (encrypted, kept
    # for log_retention_days) instead of by ECS (unencrypted, kept forever).
    container_insights = "/aws/ecs/containerinsights/${var.name_prefix}-cluster-${var.environment_suffix}/performance"
  }

  # Load balancers and target groups allow 32 characters. The longest prefix
  # (10) and suffix (staging-<10>) do not fit: such names keep their start and
  # end in a hash, deterministic and distinct per environment copy.
  alb_full_name = "${var.name_prefix}-alb-${var.environment_suffix}"
  tg_full_name  = "${var.name_prefix}-api-${var.environment_suffix}"
  alb_name      = length(local.alb_full_name) <= 32 ? local.alb_full_name : "${substr(local.alb_full_name, 0, 23)}-${substr(sha1(local.alb_full_name), 0, 8)}"
  tg_name       = length(local.tg_full_name) <= 32 ? local.tg_full_name : "${substr(local.tg_full_name, 0, 23)}-${substr(sha1(local.tg_full_name), 0, 8)}"
}
