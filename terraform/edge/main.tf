locals {
  https = var.certificate_domain != ""
}

# The certificate is issued outside this stack (ACM, DNS-validated in the
# shared zone): found by its domain, never created here. preflight checks
# that it is ISSUED and covers api.<domain_name> before anything applies.
data "aws_acm_certificate" "api" {
  count = local.https ? 1 : 0

  domain      = var.certificate_domain
  statuses    = ["ISSUED"]
  most_recent = true
}

resource "aws_lb" "main" {
  # checkov:skip=CKV2_AWS_20: HTTP redirects to HTTPS whenever certificate_domain is set, which a validation requires outside dev; only dev serves plain HTTP
  # checkov:skip=CKV2_AWS_76: the web ACL (enable_waf, required outside dev by a validation) carries AWSManagedRulesKnownBadInputsRuleSet (Log4j)
  name               = local.alb_name
  load_balancer_type = "application"
  internal           = false
  security_groups    = [var.alb_security_group_id]
  subnets            = var.public_subnet_ids

  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection

  dynamic "access_logs" {
    for_each = var.alb_access_logs ? [1] : []
    content {
      bucket  = aws_s3_bucket.alb_logs[0].id
      prefix  = local.alb_logs_prefix
      enabled = true
    }
  }

  # ELB checks on create that it may write to the bucket.
  depends_on = [aws_s3_bucket_policy.alb_logs]

  tags = {
    Name = "${local.name.prefix}-alb-${local.name.suffix}"
  }
}

resource "aws_lb_target_group" "api" {
  # checkov:skip=CKV_AWS_378: TLS ends at the load balancer; targets are tasks in private subnets reachable only from the ALB security group
  name        = local.tg_name
  port        = var.container_port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  deregistration_delay = 30

  health_check {
    enabled             = true
    path                = var.health_check_path
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = {
    Name = "${local.name.prefix}-api-tg-${local.name.suffix}"
  }
}

# HTTP: redirect to HTTPS when a certificate is given, else serve (dev only).
resource "aws_lb_listener" "http" {
  # checkov:skip=CKV_AWS_2: redirects to the HTTPS listener whenever a certificate is set (required outside dev by a validation)
  # checkov:skip=CKV_AWS_103: TLS policy lives on the HTTPS listener; this one only redirects when a certificate is set
  load_balancer_arn = aws_lb.main.arn
  port              = 80
  protocol          = "HTTP"

  dynamic "default_action" {
    for_each = local.https ? [1] : []
    content {
      type = "redirect"
      redirect {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }

  dynamic "default_action" {
    for_each = local.https ? [] : [1]
    content {
      type             = "forward"
      target_group_arn = aws_lb_target_group.api.arn
    }
  }
}

resource "aws_lb_listener" "https" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.main.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = data.aws_acm_certificate.api[0].arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}
