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

variable "certificate_arn" {
  description = "ACM certificate for HTTPS; empty serves plain HTTP (dev only)."
  type        = string
}

variable "deletion_protection" {
  description = "Deletion protection on the load balancer."
  type        = bool
}

variable "enable_waf" {
  description = "WAFv2 web ACL (rate limit + AWS managed common rules) on the load balancer."
  type        = bool
}

variable "waf_rate_limit" {
  description = "Requests per 5 minutes per client IP before WAF blocks."
  type        = number
}

variable "domain_name" {
  description = "Existing public hosted zone; api.<domain> points at the load balancer. Empty: no DNS record."
  type        = string
}

variable "alb_access_logs_bucket" {
  description = "Existing bucket for load balancer access logs; empty turns them off."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the WAF log group."
  type        = number
}

variable "logs_kms_key_arn" {
  description = "KMS key for log groups (security unit); empty for the CloudWatch default encryption."
  type        = string
}
