variable "vpc_id" {
  description = "VPC (network unit)."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets for the load balancer (network unit)."
  type        = list(string)
}

variable "alb_security_group_id" {
  description = "Load balancer security group (security unit)."
  type        = string
}

variable "container_port" {
  description = "Port the API container listens on."
  type        = number
}

variable "health_check_path" {
  description = "Target group health check path."
  type        = string

  validation {
    condition     = startswith(var.health_check_path, "/")
    error_message = "health_check_path must start with /."
  }
}

variable "certificate_domain" {
  description = "Domain of the issued ACM certificate for HTTPS (e.g. *.acme-payments.com), looked up by data source; empty serves plain HTTP (dev only)."
  type        = string

  validation {
    condition     = var.environment == "dev" || var.certificate_domain != ""
    error_message = "certificate_domain is required outside dev: staging and prod serve HTTPS only."
  }
}

variable "deletion_protection" {
  description = "Deletion protection on the load balancer."
  type        = bool
}

variable "enable_waf" {
  description = "WAFv2 web ACL (rate limit + AWS managed common rules) on the load balancer."
  type        = bool

  validation {
    condition     = var.environment == "dev" || var.enable_waf
    error_message = "enable_waf must be true outside dev."
  }
}

variable "waf_rate_limit" {
  description = "Requests per 5 minutes per client IP before WAF blocks."
  type        = number
}

variable "domain_name" {
  description = "Existing public hosted zone; api.<domain> points at the load balancer. Empty: no DNS record."
  type        = string
}

variable "alb_access_logs" {
  description = "Load balancer access logs into a bucket of this unit (SSE-S3, versioned, expired after log_retention_days)."
  type        = bool

  validation {
    condition     = var.environment == "dev" || var.alb_access_logs
    error_message = "alb_access_logs must be true outside dev."
  }
}

variable "tls_only_bucket_policy" {
  description = "Deny every request to the access-log bucket that does not use TLS (off only on the local emulator, which denies everything under such a policy)."
  type        = bool
}

variable "log_retention_days" {
  description = "Retention of the WAF log group and of the access logs."
  type        = number
}

variable "logs_kms_key_arn" {
  description = "KMS key for log groups (security unit); empty for the CloudWatch default encryption."
  type        = string
}
