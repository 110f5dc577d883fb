"""`orchestrator init-project DIR`: a minimal working project (one unit, one environment, the manifest).

Nothing else is needed beside it: the backend's definition ships with the
package, and `orchestrator lock` writes the unit's provider lock file.
"""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.errors import ConfigError
from orchestrator.model.config import ACCOUNT_RE, NAME_PREFIX_RE

MANIFEST = """\
# The unit manifest: each unit is a root module with its own state. Inputs wire
# an upstream unit's output into a variable (inputs = {{ var = "unit.output" }});
# smoke names checks from the orchestrator's library or your own entry points.

[settings]
log_retention_days = "number"

[units.logs]
path = "logs"
smoke = [
  {{ check = "log_group_exists", log_group_name = "log_group_name", retention_days = "settings.log_retention_days" }},
]

[ownership]
tags = {{ EnvironmentSuffix = "environment_suffix", Project = "project" }}
"""

UNIT = """\
terraform {{
  required_version = ">= 1.11.0"
  required_providers {{
    aws = {{
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }}
  }}
  # Every setting is injected by the orchestrator with -backend-config.
  backend "s3" {{}}
}}

variable "region" {{ type = string }}
variable "account_id" {{ type = string }}
variable "environment_suffix" {{ type = string }}
variable "name_prefix" {{ type = string }}
variable "project" {{ type = string }}
variable "log_retention_days" {{ type = number }}
variable "emulator_endpoint" {{
  description = "Local emulator URL (orchestrator --local); empty on real AWS."
  type        = string
  default     = ""
}}

locals {{
  emulated = var.emulator_endpoint != ""
}}

provider "aws" {{
  region                      = var.region
  allowed_account_ids         = local.emulated ? null : [var.account_id]
  skip_credentials_validation = local.emulated
  skip_requesting_account_id  = local.emulated
  skip_metadata_api_check     = local.emulated
  dynamic "endpoints" {{
    for_each = local.emulated ? [var.emulator_endpoint] : []
    content {{
      cloudwatchlogs = endpoints.value
      sts            = endpoints.value
    }}
  }}
  default_tags {{
    tags = {{
      EnvironmentSuffix = var.environment_suffix
      Project           = var.project
      ManagedBy         = "Terraform"
    }}
  }}
}}

resource "aws_cloudwatch_log_group" "app" {{
  name              = "/${{var.name_prefix}}/app-${{var.environment_suffix}}"
  retention_in_days = var.log_retention_days
}}

output "log_group_name" {{
  value = aws_cloudwatch_log_group.app.name
}}
"""

ENVIRONMENT = """\
region = "{region}"
account_id = "{account_id}"
name_prefix = "{name_prefix}"
project = "{name_prefix}"
repository = "{repository}"
owner = "{owner}"
protected = false

[backend]
bucket = "{name_prefix}-tfstate-dev-{account_id}"
key_prefix = "{name_prefix}"
region = "{region}"
kms_alias = "alias/{name_prefix}-tfstate-dev"
locking = "lockfile"

[settings]
log_retention_days = 14
"""


def write_project(
    directory: Path,
    *,
    name_prefix: str,
    account_id: str,
    region: str,
    owner: str = "platform-team",
) -> list[Path]:
    """Writes the files; refuses a folder that already holds a manifest or environments."""
    if not NAME_PREFIX_RE.match(name_prefix):
        raise ConfigError(
            f"invalid --name-prefix {name_prefix!r}: 2-10 characters, a lowercase letter first, then a-z or 0-9"
        )
    if not ACCOUNT_RE.match(account_id):
        raise ConfigError(f"invalid --account-id {account_id!r}: 12 digits")
    if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", region):
        raise ConfigError(f"invalid --region {region!r} (e.g. us-east-1)")
    for taken in ("terraform/stack.toml", "environments"):
        if (directory / taken).exists():
            raise ConfigError(f"{directory / taken} already exists: init-project writes only into a new project")
    values = dict(
        name_prefix=name_prefix, account_id=account_id, region=region, owner=owner, repository=str(directory.name)
    )
    files = {
        "terraform/stack.toml": MANIFEST.format(),
        "terraform/logs/main.tf": UNIT.format(),
        "environments/dev/env.toml": ENVIRONMENT.format(**values),
        ".gitignore": ".orchestrator/\n.terraform/\n",
    }
    written = []
    for rel, text in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel == ".gitignore" and path.exists():
            continue
        path.write_text(text)
        written.append(path)
    return written
