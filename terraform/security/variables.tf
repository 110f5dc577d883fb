variable "vpc_id" {
  description = "VPC of this environment (network unit)."
  type        = string
}

variable "alb_ingress_cidrs" {
  description = "CIDRs allowed to reach the load balancer (the public internet for a public API; WAF filters it in prod)."
  type        = list(string)
}

variable "container_port" {
  description = "Port the API container listens on."
  type        = number
}

variable "db_port" {
  description = "PostgreSQL port."
  type        = number
}

variable "kms_encrypted_logs" {
  description = "Encrypt CloudWatch log groups with a customer KMS key."
  type        = bool

  validation {
    condition     = var.environment == "dev" || var.kms_encrypted_logs
    error_message = "kms_encrypted_logs must be true outside dev."
  }
}

variable "kms_deletion_window_days" {
  description = "Waiting period before a destroyed KMS key is deleted (7-30)."
  type        = number

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

variable "log_retention_days" {
  description = "Retention of the VPC flow log group."
  type        = number
}
