"""CKV_PAY_2: an RDS/Aurora cluster keeps automated backups for at least 7 days."""

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

MIN_DAYS = 7


class BackupRetentionAtLeastSevenDays(BaseResourceCheck):
    def __init__(self):
        super().__init__(
            name="RDS clusters keep automated backups for at least 7 days",
            id="CKV_PAY_2",
            categories=[CheckCategories.BACKUP_AND_RECOVERY],
            supported_resources=["aws_rds_cluster", "aws_db_instance"],
        )

    def scan_resource_conf(self, conf):
        value = conf.get("backup_retention_period", [None])
        value = value[0] if isinstance(value, list) else value
        if value is None:
            # The AWS default is 1 day.
            return CheckResult.FAILED
        try:
            return CheckResult.PASSED if int(value) >= MIN_DAYS else CheckResult.FAILED
        except (TypeError, ValueError):
            # A variable: its validation block enforces the minimum; the plan scan sees the value.
            return CheckResult.UNKNOWN


check = BackupRetentionAtLeastSevenDays()
