"""CKV_PAY_3: no secret-looking name in an ECS container's plain `environment`
(credentials belong in `secrets`, read from Secrets Manager or SSM)."""

import json
import re

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_KEY|API_KEY|ACCESS_KEY|CREDENTIAL)", re.I)


def _containers(raw):
    if isinstance(raw, list) and len(raw) == 1 and not isinstance(raw[0], dict):
        raw = raw[0]
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], list):
        raw = raw[0]
    if isinstance(raw, dict):
        raw = [raw]
    return raw if isinstance(raw, list) else None


class NoSecretsInContainerEnvironment(BaseResourceCheck):
    def __init__(self):
        super().__init__(
            name="ECS containers take credentials from secrets, never from plain environment",
            id="CKV_PAY_3",
            categories=[CheckCategories.SECRETS],
            supported_resources=["aws_ecs_task_definition"],
        )

    def scan_resource_conf(self, conf):
        containers = _containers(conf.get("container_definitions"))
        if containers is None:
            return CheckResult.UNKNOWN
        for c in containers:
            if not isinstance(c, dict):
                continue
            for env in c.get("environment") or []:
                if isinstance(env, dict) and SECRET_NAME.search(str(env.get("name", ""))):
                    self.details.append(f"container {c.get('name')}: environment {env.get('name')}")
                    return CheckResult.FAILED
        return CheckResult.PASSED


check = NoSecretsInContainerEnvironment()
