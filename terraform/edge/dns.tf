# The hosted zone is shared and already exists: found, never created here.
data "aws_route53_zone" "main" {
  count = var.domain_name == "" ? 0 : 1

  name         = var.domain_name
  private_zone = false
}

resource "aws_route53_record" "api" {
  count = var.domain_name == "" ? 0 : 1

  zone_id = data.aws_route53_zone.main[0].zone_id
  name    = "api.${var.domain_name}"
  type    = "A"

  alias {
    name                   = aws_lb.main.dns_name
    zone_id                = aws_lb.main.zone_id
    evaluate_target_health = true
  }
}
