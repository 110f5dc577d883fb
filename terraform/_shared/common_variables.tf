# Shared by every unit through a symlink. The orchestrator passes these from
# environments/<env>/env.toml.

variable "region" {
  description = "AWS region of this environment."
  type        = string
}

variable "account_id" {
  description = "AWS account this environment must be deployed to (allowed_account_ids)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "environment" {
  description = "Environment name: dev, staging or prod."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "environment_suffix" {
  description = "Suffix in every name: the environment, plus -<suffix> for a copy (e.g. dev-pr42)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.environment_suffix))
    error_message = "environment_suffix must be 2-20 characters of a-z, 0-9 and -."
  }
}

variable "name_prefix" {
  description = "Prefix in every name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.name_prefix))
    error_message = "name_prefix must be 2-10 characters of a-z and 0-9."
  }
}

variable "project" {
  description = "Project tag."
  type        = string
}

variable "repository" {
  description = "Repository tag: where this code lives."
  type        = string
}

variable "owner" {
  description = "Owner tag: the team on call for this environment."
  type        = string
}

variable "emulator_endpoint" {
  description = "Local emulator URL (moto server). Empty for real AWS."
  type        = string
  default     = ""
}
