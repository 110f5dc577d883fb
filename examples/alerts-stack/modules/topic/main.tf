# An ordinary module: an encrypted SNS topic that only this account may publish to.
variable "name" {
  description = "Topic name."
  type        = string
}

variable "kms_key" {
  description = "KMS key (id, ARN or alias) that encrypts messages at rest."
  type        = string
  default     = "alias/aws/sns"
}

resource "aws_sns_topic" "this" {
  name              = var.name
  kms_master_key_id = var.kms_key
}

output "arn" {
  value = aws_sns_topic.this.arn
}

output "name" {
  value = aws_sns_topic.this.name
}
