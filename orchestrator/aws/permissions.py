"""Which IAM actions the orchestrator's commands need, as recorded by the emulator.

The emulator (orchestrator/emulator.py, ORCHESTRATOR_EMULATOR_RECORD=<file>) writes one line per
distinct request it served: the API operation, its service, and the orchestrator command that sent
it (every boto3 client and every terraform run carry `orchestrator-command/<command>` in their
User-Agent, which also shows in CloudTrail's userAgent). This module turns a request into its
operation, an operation into its IAM action, and recorded calls into the lists per role that
docs/permissions.md publishes (scripts/permissions_doc.py writes it; a test fails when a recorded
call is missing from it).

Pure: no AWS, no terraform.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from urllib.parse import parse_qs

USER_AGENT_TOKEN = "orchestrator-command"
_UA_RE = re.compile(USER_AGENT_TOKEN + r"/([a-z0-9-]+)")

# Who runs which command (docs/ci.md, "What the roles may do").
ROLES = {
    "bootstrap": ("bootstrap",),
    "plan": ("preflight", "plan", "unit-plan", "smoke", "drift", "status", "outputs", "envs", "orphans"),
    "deploy": ("deploy", "teardown", "unit-apply", "tf"),
}
# Commands that only exist for the emulator (never run against AWS).
EMULATOR_ONLY = ("local-seed", "local-up", "local-down")

# SigV4 signing name -> IAM service prefix, where they differ.
_IAM_PREFIX = {"monitoring": "cloudwatch", "tagging": "tag", "email": "ses"}
# botocore service name for a signing name, where they differ (for REST routing).
_BOTOCORE = {"monitoring": "cloudwatch", "tagging": "resourcegroupstaggingapi", "elasticloadbalancing": "elbv2"}

# API operations whose IAM action has another name
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html ...).
_ACTION_FOR = {
    "s3": {
        "HeadBucket": "ListBucket",
        "HeadObject": "GetObject",
        "ListObjects": "ListBucket",
        "ListObjectsV2": "ListBucket",
        "ListObjectVersions": "ListBucketVersions",
        "ListBuckets": "ListAllMyBuckets",
        "DeleteObjects": "DeleteObject",
        "GetBucketLifecycleConfiguration": "GetLifecycleConfiguration",
        "PutBucketLifecycleConfiguration": "PutLifecycleConfiguration",
        "DeleteBucketLifecycle": "PutLifecycleConfiguration",
        "GetBucketLifecycle": "GetLifecycleConfiguration",  # the deprecated twins of the same route
        "PutBucketLifecycle": "PutLifecycleConfiguration",
        "GetBucketNotification": "GetBucketNotification",
        "GetBucketEncryption": "GetEncryptionConfiguration",
        "PutBucketEncryption": "PutEncryptionConfiguration",
        "DeleteBucketEncryption": "PutEncryptionConfiguration",
        "GetPublicAccessBlock": "GetBucketPublicAccessBlock",
        "PutPublicAccessBlock": "PutBucketPublicAccessBlock",
        "DeletePublicAccessBlock": "PutBucketPublicAccessBlock",
        "GetObjectLockConfiguration": "GetBucketObjectLockConfiguration",
        "PutObjectLockConfiguration": "PutBucketObjectLockConfiguration",
        "GetBucketAccelerateConfiguration": "GetAccelerateConfiguration",
        "GetBucketReplication": "GetReplicationConfiguration",
        "GetBucketCors": "GetBucketCORS",
        "GetBucketNotificationConfiguration": "GetBucketNotification",
        "PutBucketNotificationConfiguration": "PutBucketNotification",
        "DeleteBucketOwnershipControls": "PutBucketOwnershipControls",
        "DeleteBucketTagging": "PutBucketTagging",
        "GetObjectAttributes": "GetObject",
    },
    "lambda": {
        "ListVersionsByFunction": "ListVersionsByFunction",
        "GetFunctionConfiguration": "GetFunctionConfiguration",
    },
}


def command_of(user_agent: str) -> str:
    """The orchestrator command a User-Agent names, "" for anyone else (a test's own client)."""
    m = _UA_RE.search(user_agent or "")
    return m.group(1) if m else ""


def user_agent_token(command: str) -> str:
    """What the CLI appends to every User-Agent: `orchestrator-command/unit-plan`."""
    return f"{USER_AGENT_TOKEN}/{re.sub(r'[^a-z0-9]+', '-', command.lower()).strip('-') or 'none'}"


def signing_name(authorization: str) -> str:
    """The service of a SigV4 request: Credential=<key>/<date>/<region>/<service>/aws4_request."""
    m = re.search(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request", authorization or "")
    return m.group(1) if m else ""


def operation_of(
    service: str,
    method: str,
    path: str,
    query: str,
    target: str,
    form: bytes | None,
    headers: frozenset[str] = frozenset(),
) -> str:
    """The API operation of one request: X-Amz-Target (JSON protocols), Action= (query
    protocols), else the REST route of the service's model (S3, Lambda, Route 53), told apart by
    the query keys and headers each operation requires (headers: lowercase names)."""
    if target:
        return target.rsplit(".", 1)[-1]
    for source in (query, (form or b"").decode("utf-8", "replace")):
        action = parse_qs(source).get("Action")
        if action:
            return action[0]
    return _rest_operation(_BOTOCORE.get(service, service), method, path, query, headers)


@cache
def _routes(botocore_service: str) -> list[tuple[str, re.Pattern, frozenset[str], frozenset[str], int, str]]:
    """(method, path pattern, query keys and headers the operation requires, literal length,
    operation) per operation."""
    import botocore.session

    try:
        model = botocore.session.get_session().get_service_model(botocore_service)
    except Exception:  # noqa: BLE001 - an unknown service: no routes
        return []
    routes = []
    for name in model.operation_names:
        op = model.operation_model(name)
        http = op.http
        uri = http.get("requestUri", "/")
        path, _, q = uri.partition("?")
        keys = {k.split("=", 1)[0] for k in q.split("&") if k}
        headers = set()
        shape = op.input_shape
        for member in shape.required_members if shape is not None else ():
            where = shape.members[member].serialization
            if where.get("location") == "querystring":
                keys.add(where.get("name", member))
            elif where.get("location") == "header":
                headers.add(where.get("name", member).lower())
        path = path.rstrip("/") or "/"
        pattern = ""
        literal = 0
        for part in re.split(r"(\{[^}]+\})", path):
            if part.startswith("{"):
                pattern += ".+" if part.endswith("+}") else "[^/]+"
            else:
                pattern += re.escape(part)
                literal += len(part)
        routes.append(
            (
                http.get("method", "POST"),
                re.compile(pattern + "/?$"),
                frozenset(keys),
                frozenset(headers),
                literal,
                name,
            )
        )
    return routes


def _rest_operation(botocore_service: str, method: str, path: str, query: str, headers: frozenset[str]) -> str:
    present = set(parse_qs(query, keep_blank_values=True))
    best = None
    for m, pattern, keys, needs, literal, name in _routes(botocore_service):
        if m != method or not keys <= present or not needs <= headers or not pattern.match(path):
            continue
        score = (len(keys) + len(needs), literal)
        if best is None or score > best[0]:
            best = (score, name)
    return best[1] if best else f"{method} {path}"


def iam_action(service: str, operation: str) -> str:
    prefix = _IAM_PREFIX.get(service, service)
    return f"{prefix}:{_ACTION_FOR.get(prefix, {}).get(operation, operation)}"


def role_of(command: str) -> str | None:
    return next((role for role, commands in ROLES.items() if command in commands), None)


def needed(records: Iterable[dict]) -> dict[str, list[str]]:
    """Recorded calls -> {role: sorted IAM actions}. The deploy role runs plans too (deploy,
    teardown): its list holds every action of its commands; the plan role's only those of its
    read-only commands."""
    out: dict[str, set[str]] = {role: set() for role in ROLES}
    for r in records:
        role = role_of(r.get("command", ""))
        if role is None:
            continue
        out[role].add(iam_action(r["service"], r["operation"]))
    return {role: sorted(actions) for role, actions in out.items()}


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def missing(recorded: dict[str, list[str]], listed: dict[str, list[str]]) -> dict[str, list[str]]:
    """What each role needed that its published list lacks."""
    return {
        role: sorted(set(actions) - set(listed.get(role, [])))
        for role, actions in recorded.items()
        if set(actions) - set(listed.get(role, []))
    }


def render(listed: dict[str, list[str]]) -> str:
    """docs/permissions.md from docs/permissions.json."""
    intro = {
        "bootstrap": "An administrator, once per environment (`orchestrator bootstrap`).",
        "plan": "The plan role: `preflight`, `plan`, `unit plan`, `smoke`, `drift` (and the read-only views).",
        "deploy": "The deploy role: `deploy`, `teardown`, `unit apply` (each plans too, so it also needs the plan "
        "role's actions).",
    }
    lines = [
        "# IAM actions per role",
        "",
        "Generated by `scripts/permissions_doc.py` from the calls the test suite's emulator served to",
        "each orchestrator command (prod's full life: bootstrap, preflight, deploy with rotation,",
        "smoke, plan, teardown). Do not edit by hand: a test fails when a command makes a call",
        "that the list of its role lacks. Resource scoping (which bucket, which secret) is in",
        "docs/ci.md and docs/operations.md; this page is the complete list of actions.",
        "",
    ]
    for role in ROLES:
        actions = listed.get(role, [])
        lines += [f"## {role}", "", intro[role], ""]
        by_service: dict[str, list[str]] = {}
        for a in actions:
            by_service.setdefault(a.split(":", 1)[0], []).append(a.split(":", 1)[1])
        lines += ["| service | actions |", "| --- | --- |"]
        lines += [f"| `{s}` | {', '.join(f'`{a}`' for a in acts)} |" for s, acts in sorted(by_service.items())]
        lines.append("")
    return "\n".join(lines)
