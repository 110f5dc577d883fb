"""The only module that builds boto3 sessions and clients.

Retries: botocore's own ("standard" mode: throttling, 5xx, connection errors,
with backoff), configured once here; nothing stacks tenacity on top of boto3.
Every API call is recorded (service, operation) so callers can prove a run
made no mutating call.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from orchestrator.errors import PrerequisiteError
from orchestrator.model.config import SECRET_ENV_PREFIX

READ_PREFIXES = ("Get", "Head", "List", "Describe", "Lookup")
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_SESSION_TOKEN": "",
}


@dataclass
class CallLog:
    calls: list[tuple[str, str]] = field(default_factory=list)
    attempts: int = 0  # HTTP requests sent: calls + botocore's retries
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, service: str, operation: str) -> None:
        with self.lock:
            self.calls.append((service, operation))

    def attempt(self) -> None:
        with self.lock:
            self.attempts += 1

    @property
    def retries(self) -> int:
        with self.lock:
            return max(0, self.attempts - len(self.calls))

    def mutating(self) -> list[tuple[str, str]]:
        with self.lock:
            return [c for c in self.calls if not c[1].startswith(READ_PREFIXES)]


class Aws:
    """Sessions and clients for one region, optionally against the local emulator."""

    def __init__(
        self,
        region: str,
        *,
        endpoint_url: str | None = None,
        max_attempts: int = 5,
        profile: str | None = None,
        user_agent: str | None = None,
    ):
        import boto3
        from botocore.config import Config

        self.region = region
        self.endpoint_url = endpoint_url
        self.call_log = CallLog()
        self._identity: dict | None = None  # STS GetCallerIdentity, once (caller_identity)
        kwargs = {"region_name": region}
        if endpoint_url:
            kwargs.update(aws_access_key_id="test", aws_secret_access_key="test")
        elif profile:
            kwargs["profile_name"] = profile
        from botocore.exceptions import ProfileNotFound

        try:
            self._session = boto3.session.Session(**kwargs)
        except ProfileNotFound as exc:
            raise PrerequisiteError(
                f"AWS profile {exc.kwargs.get('profile')!r} not found (check AWS_PROFILE and ~/.aws/config)"
            ) from None
        self._config = Config(
            retries={"mode": "standard", "total_max_attempts": max_attempts},  # attempts, first one included
            connect_timeout=10,
            read_timeout=60,
            # S3 path-style for the emulator (no wildcard DNS on 127.0.0.1).
            s3={"addressing_style": "path"} if endpoint_url else None,
            # e.g. orchestrator-command/deploy: CloudTrail's userAgent names the command that called
            user_agent_extra=user_agent,
        )
        self._clients: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    def client_once(self, service: str, region: str | None = None):
        """A client that never retries: for calls that are not idempotent (e.g. kms
        CreateKey), where a retry after a lost reply would create a duplicate."""
        from botocore.config import Config

        key = (service + "#once", region or self.region)
        with self._lock:
            if key not in self._clients:
                c = self._session.client(
                    service,
                    region_name=key[1],
                    endpoint_url=self.endpoint_url,
                    config=self._config.merge(Config(retries={"mode": "standard", "total_max_attempts": 1})),
                )
                c.meta.events.register("before-call", self._record)
                c.meta.events.register("request-created", self._attempt)
                self._clients[key] = c
            return self._clients[key]

    def client(self, service: str, region: str | None = None):
        key = (service, region or self.region)
        with self._lock:
            if key not in self._clients:
                c = self._session.client(
                    service, region_name=key[1], endpoint_url=self.endpoint_url, config=self._config
                )
                c.meta.events.register("before-call", self._record)
                c.meta.events.register("request-created", self._attempt)
                self._clients[key] = c
            return self._clients[key]

    def _record(self, model=None, **_):
        self.call_log.record(model.service_model.service_name, model.name)

    def _attempt(self, **_):
        self.call_log.attempt()

    def account_id(self) -> str:
        return self.caller_identity()["Account"]

    def caller_identity(self) -> dict:
        """STS GetCallerIdentity, asked once per session (the account check and the audit trail
        both need it)."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        if self._identity is not None:
            return self._identity
        try:
            self._identity = self.client("sts").get_caller_identity()
            return self._identity
        except NoCredentialsError:
            raise PrerequisiteError(
                "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use --local)"
            ) from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise PrerequisiteError(f"AWS credentials rejected by STS ({code})") from None
        except BotoCoreError as exc:
            raise PrerequisiteError(f"cannot reach AWS STS: {type(exc).__name__}") from None

    def check_account(self, expected: str, env_name: str) -> str:
        actual = self.account_id()
        if actual != expected:
            raise PrerequisiteError(
                f"AWS account {actual} is not environment {env_name}'s account {expected}; "
                "switch credentials (AWS_PROFILE) before anything changes"
            )
        return actual

    def terraform_env(self) -> dict[str, str]:
        """Environment for terraform children: same credentials, same region, same endpoint."""
        # Supplied secrets reach terraform only as the TF_VAR_ of the unit that needs them.
        env = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_ENV_PREFIX)}
        env["AWS_REGION"] = self.region
        env["AWS_DEFAULT_REGION"] = self.region
        if self.endpoint_url:
            for k, v in LOCAL_CREDENTIALS.items():
                if v:
                    env[k] = v
                else:
                    env.pop(k, None)
            env.pop("AWS_PROFILE", None)
        return env


# S3's answers to a conditional write (If-Match / If-None-Match) that lost: someone wrote first.
CONDITION_FAILED = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")
