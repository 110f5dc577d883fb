# Each tier accepts traffic only from the tier in front of it:
# internet -> ALB -> app tasks -> database. Rules use aws_security_group_rule
# (source_security_group_id), which settles on plan where the newer
# aws_vpc_security_group_ingress_rule re-diffs on moto.

resource "aws_security_group" "alb" {
  # checkov:skip=CKV2_AWS_5: attached in the edge unit (aws_lb.main)
  name        = "${local.name.prefix}-alb-sg-${local.name.suffix}"
  description = "Load balancer: HTTP/HTTPS from the allowed CIDRs"
  vpc_id      = var.vpc_id

  tags = {
    Name = "${local.name.prefix}-alb-sg-${local.name.suffix}"
  }
}

resource "aws_security_group" "app" {
  # checkov:skip=CKV2_AWS_5: attached in the app unit (aws_ecs_service.api)
  name        = "${local.name.prefix}-app-sg-${local.name.suffix}"
  description = "API tasks: container port from the load balancer only"
  vpc_id      = var.vpc_id

  tags = {
    Name = "${local.name.prefix}-app-sg-${local.name.suffix}"
  }
}

resource "aws_security_group" "db" {
  # checkov:skip=CKV2_AWS_5: attached in the database unit (aws_rds_cluster.main)
  name        = "${local.name.prefix}-db-sg-${local.name.suffix}"
  description = "Database: PostgreSQL from the API tasks and the rotation function only"
  vpc_id      = var.vpc_id

  tags = {
    Name = "${local.name.prefix}-db-sg-${local.name.suffix}"
  }
}

resource "aws_security_group" "rotation" {
  # checkov:skip=CKV2_AWS_5: attached in the database unit (aws_lambda_function.rotation)
  name        = "${local.name.prefix}-rotation-sg-${local.name.suffix}"
  description = "Secret rotation function: PostgreSQL to the database, HTTPS to Secrets Manager"
  vpc_id      = var.vpc_id

  tags = {
    Name = "${local.name.prefix}-rotation-sg-${local.name.suffix}"
  }
}

resource "aws_security_group_rule" "alb_https_in" {
  description       = "HTTPS from the allowed CIDRs"
  security_group_id = aws_security_group.alb.id
  type              = "ingress"
  protocol          = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_blocks       = var.alb_ingress_cidrs
}

resource "aws_security_group_rule" "alb_http_in" {
  # checkov:skip=CKV_AWS_260: port 80 only answers with a redirect to HTTPS when a certificate is set (required outside dev by a validation of the edge unit)
  description       = "HTTP from the allowed CIDRs (redirected to HTTPS when a certificate is set)"
  security_group_id = aws_security_group.alb.id
  type              = "ingress"
  protocol          = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_blocks       = var.alb_ingress_cidrs
}

resource "aws_security_group_rule" "alb_to_app" {
  description              = "ALB to the API tasks"
  security_group_id        = aws_security_group.alb.id
  type                     = "egress"
  protocol                 = "tcp"
  from_port                = var.container_port
  to_port                  = var.container_port
  source_security_group_id = aws_security_group.app.id
}

resource "aws_security_group_rule" "app_from_alb" {
  description              = "API port from the ALB only"
  security_group_id        = aws_security_group.app.id
  type                     = "ingress"
  protocol                 = "tcp"
  from_port                = var.container_port
  to_port                  = var.container_port
  source_security_group_id = aws_security_group.alb.id
}

resource "aws_security_group_rule" "app_to_db" {
  description              = "API tasks to PostgreSQL"
  security_group_id        = aws_security_group.app.id
  type                     = "egress"
  protocol                 = "tcp"
  from_port                = var.db_port
  to_port                  = var.db_port
  source_security_group_id = aws_security_group.db.id
}

resource "aws_security_group_rule" "app_https_out" {
  description       = "API tasks to AWS APIs and the container registry over HTTPS, through the NAT"
  security_group_id = aws_security_group.app.id
  type              = "egress"
  protocol          = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_blocks       = ["0.0.0.0/0"]
}

resource "aws_security_group_rule" "db_from_app" {
  description              = "PostgreSQL from the API tasks"
  security_group_id        = aws_security_group.db.id
  type                     = "ingress"
  protocol                 = "tcp"
  from_port                = var.db_port
  to_port                  = var.db_port
  source_security_group_id = aws_security_group.app.id
}

resource "aws_security_group_rule" "db_from_rotation" {
  description              = "PostgreSQL from the secret rotation function"
  security_group_id        = aws_security_group.db.id
  type                     = "ingress"
  protocol                 = "tcp"
  from_port                = var.db_port
  to_port                  = var.db_port
  source_security_group_id = aws_security_group.rotation.id
}

resource "aws_security_group_rule" "rotation_to_db" {
  description              = "Rotation function to PostgreSQL"
  security_group_id        = aws_security_group.rotation.id
  type                     = "egress"
  protocol                 = "tcp"
  from_port                = var.db_port
  to_port                  = var.db_port
  source_security_group_id = aws_security_group.db.id
}

resource "aws_security_group_rule" "rotation_https_out" {
  description       = "Rotation function to Secrets Manager over HTTPS, through the NAT"
  security_group_id = aws_security_group.rotation.id
  type              = "egress"
  protocol          = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_blocks       = ["0.0.0.0/0"]
}
