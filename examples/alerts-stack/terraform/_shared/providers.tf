# Shared by both units through a symlink.
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

variable "region" {
  type = string
}

variable "account_id" {
  type = string
}

variable "environment_suffix" {
  type = string
}

variable "name_prefix" {
  type = string
}

variable "project" {
  type = string
}

variable "emulator_endpoint" {
  description = "Local emulator URL (orchestrator --local); empty on real AWS."
  type        = string
  default     = ""
}

locals {
  emulated = var.emulator_endpoint != ""
  name     = "${var.name_prefix}-${var.environment_suffix}"
}

provider "aws" {
  region                      = var.region
  allowed_account_ids         = local.emulated ? null : [var.account_id]
  skip_credentials_validation = local.emulated
  skip_requesting_account_id  = local.emulated
  skip_metadata_api_check     = local.emulated

  dynamic "endpoints" {
    for_each = local.emulated ? [var.emulator_endpoint] : []
    content {
      cloudwatch     = endpoints.value
      cloudwatchlogs = endpoints.value
      sns            = endpoints.value
      sts            = endpoints.value
    }
  }

  default_tags {
    tags = {
      EnvironmentSuffix = var.environment_suffix
      Project           = var.project
      ManagedBy         = "Terraform"
    }
  }
}
