"""Post-apply actions, natively in boto3 (no null_resource / local-exec).

A hook gets the unit's outputs and returns a HookResult. Registry by name,
referenced from terraform/stack.toml (post_apply = [...]).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.aws import Aws, error_code
from orchestrator.errors import HookError
from orchestrator.redact import Redactor


@dataclass(frozen=True)
class HookResult:
    name: str
    changed: bool
    detail: str


def write_db_endpoint(aws: Aws, outputs: dict, redactor: Redactor) -> HookResult:
    """Merge host, port and dbname into the credentials secret; a new version only when they differ.
    The password and every other field are kept as they are."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        secret_arn = outputs["secret_arn"]
        wanted = {"host": outputs["cluster_endpoint"], "port": int(outputs["db_port"]), "dbname": outputs["db_name"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise HookError(f"write_db_endpoint: database outputs lack {exc}") from None
    sm = aws.client("secretsmanager")
    try:
        current = sm.get_secret_value(SecretId=secret_arn, VersionStage="AWSCURRENT")
        value = json.loads(current["SecretString"])
        if not isinstance(value, dict):
            raise HookError(f"write_db_endpoint: secret {secret_arn} is not a JSON object")
        redactor.add(value.get("password"))
        if all(value.get(k) == v for k, v in wanted.items()):
            return HookResult("write_db_endpoint", False, f"secret already has host {wanted['host']}")
        merged = {**value, **wanted}
        sm.put_secret_value(SecretId=secret_arn, SecretString=json.dumps(merged))
    except HookError:
        raise
    except ValueError:
        raise HookError(f"write_db_endpoint: secret {secret_arn} does not hold JSON") from None
    except ClientError as exc:
        raise HookError(f"write_db_endpoint: {error_code(exc)} on {secret_arn}") from None
    except BotoCoreError as exc:
        raise HookError(f"write_db_endpoint: {type(exc).__name__} on {secret_arn}") from None
    return HookResult("write_db_endpoint", True, f"secret now has host {wanted['host']}, port {wanted['port']}")


HOOKS: dict[str, Callable[[Aws, dict, Redactor], HookResult]] = {
    "write_db_endpoint": write_db_endpoint,
}
