locals {
  https = var.certificate_arn != ""
}

resource "aws_lb" "main" {
  # checkov:skip=CKV2_AWS_20: HTTP redirects to HTTPS whenever certificate_arn is set (staging, prod); dev copies have no certificate
  # checkov:skip=CKV2_AWS_76: the web ACL (enable_waf: staging, prod) carries AWSManagedRulesKnownBadInputsRuleSet (Log4j)
  name               = "${local.name.prefix}-alb-${local.name.suffix}"
  load_balancer_type = "application"
  internal           = false
  security_groups    = [var.alb_security_group_id]
  subnets            = var.public_subnet_ids

  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection

  dynamic "access_logs" {
    for_each = var.alb_access_logs_bucket == "" ? [] : [var.alb_access_logs_bucket]
    content {
      bucket  = access_logs.value
      prefix  = "${local.name.prefix}-alb-${local.name.suffix}"
      enabled = true
    }
  }

  tags = {
    Name = "${local.name.prefix}-alb-${local.name.suffix}"
  }
}

resource "aws_lb_target_group" "api" {
  # checkov:skip=CKV_AWS_378: TLS ends at the load balancer; targets are tasks in private subnets reachable only from the ALB security group
  name        = "${local.name.prefix}-api-${local.name.suffix}"
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
  # checkov:skip=CKV_AWS_2: redirects to the HTTPS listener whenever a certificate is set (staging, prod)
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
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}
