"""Day two: an environment's health (drift and smoke checks in one run), remembered in the
journal, and a notification when it changes state: healthy -> drifted, drifted -> healthy, a
smoke check starting or stopping to fail. Never on every run, never a value: what is sent names
units, resource addresses, attribute names and checks, nothing a plan holds.

Targets ([notify] of env.toml): an SNS topic (an ARN, or "<unit>.<output>" of the stack, e.g.
the platform's own alerts topic) and a webhook whose URL is read from an environment variable
(a Slack or Teams incoming-webhook URL is itself a secret): Slack-compatible JSON ({"text": ...}).
A target that fails (a webhook timing out) is said in the run's summary; the run still finishes.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from orchestrator.tf.terraform import describe_change

HEALTHY, DRIFTED, FAILING, BOTH = "healthy", "drifted", "failing", "drifted and failing"


@dataclass(frozen=True)
class Health:
    """What one `health` run found."""

    environment: str
    run_id: str
    at: float
    drifted: dict[str, list[str]]  # unit -> addresses that moved (attributes named, never values)
    failing: list[str]  # smoke checks that failed
    passed: int = 0  # smoke checks that passed

    @property
    def state(self) -> str:
        if self.drifted and self.failing:
            return BOTH
        return DRIFTED if self.drifted else (FAILING if self.failing else HEALTHY)

    @property
    def exit_code(self) -> int:
        """0 healthy, 2 drift found (as `drift`), 13 smoke checks failing, 14 both."""
        return {HEALTHY: 0, DRIFTED: 2, FAILING: 13, BOTH: 14}[self.state]

    def record(self) -> dict:
        """What the journal keeps (the last health of the copy)."""
        return {
            "state": self.state,
            "at": self.at,
            "run_id": self.run_id,
            "drifted": {u: list(a) for u, a in sorted(self.drifted.items())},
            "failing": list(self.failing),
        }


def judge(environment: str, run_id: str, drift_report, smoke_results, clock=time.time) -> Health:
    """The drift run's changed units (each with its addresses and attributes) and the failed checks."""
    drifted = {}
    for unit, r in drift_report.units.items():
        if r.add or r.change or r.destroy or r.replace or r.changes:
            drifted[unit] = sorted(describe_change(c) for c in r.changes) or [r.detail]
    failing = [c.name for c in smoke_results if not c.passed]
    return Health(environment, run_id, clock(), drifted, failing, sum(1 for c in smoke_results if c.passed))


def changed(previous: dict | None, now: Health) -> bool:
    """A change of state worth telling someone: a different state, or other units drifted or
    other checks failing than last time. The first health of a copy tells only if unhealthy."""
    if previous is None:
        return now.state != HEALTHY
    before = (previous.get("state"), sorted(previous.get("drifted") or {}), sorted(previous.get("failing") or []))
    return before != (now.state, sorted(now.drifted), sorted(now.failing))


def message(now: Health, previous: dict | None) -> dict:
    """The notification: one line of text for people, the same facts as fields for machines."""
    was = (previous or {}).get("state", "unknown")
    parts = [f"orchestrator: {now.environment} is {now.state} (was {was})"]
    if now.drifted:
        parts.append("drift: " + "; ".join(f"{u}: {', '.join(a[:5])}" for u, a in sorted(now.drifted.items())))
    if now.failing:
        parts.append("smoke checks failing: " + ", ".join(now.failing))
    parts.append(f"run {now.run_id}")
    return {
        "text": " - ".join(parts),
        "environment": now.environment,
        "state": now.state,
        "was": was,
        "drifted": now.drifted,
        "failing": now.failing,
        "run_id": now.run_id,
    }


@dataclass
class Sent:
    target: str
    ok: bool
    detail: str = ""


@dataclass
class Notifier:
    """Sends one message to each configured target; a failure is reported, never raised."""

    aws: object = None
    topic_arn: str | None = None
    webhook_url: str | None = None
    timeout: float = 5.0
    sent: list[Sent] = field(default_factory=list)

    def send(self, msg: dict) -> list[Sent]:
        if self.topic_arn:
            try:
                self.aws.client("sns").publish(
                    TopicArn=self.topic_arn, Subject=msg["text"][:99], Message=json.dumps(msg, sort_keys=True)
                )
                self.sent.append(Sent("sns", True, self.topic_arn))
            except Exception as exc:  # noqa: BLE001 - said in the summary, the run goes on
                self.sent.append(Sent("sns", False, f"{self.topic_arn}: {type(exc).__name__}"))
        if self.webhook_url:
            request = urllib.request.Request(
                self.webhook_url,
                data=json.dumps(msg).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as reply:  # noqa: S310 - operator's URL
                    self.sent.append(Sent("webhook", 200 <= reply.status < 300, f"HTTP {reply.status}"))
            except TimeoutError:
                self.sent.append(Sent("webhook", False, f"timed out after {self.timeout:g} s"))
            except urllib.error.HTTPError as exc:
                self.sent.append(Sent("webhook", False, f"HTTP {exc.code}"))
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                timed_out = isinstance(reason, TimeoutError) or "timed out" in str(reason)
                detail = f"timed out after {self.timeout:g} s" if timed_out else type(reason).__name__
                self.sent.append(Sent("webhook", False, detail))
        return self.sent


def topic_of(notify, outputs: dict) -> str | None:
    """[notify]'s SNS topic: its ARN, or the "<unit>.<output>" of what is deployed (None if absent)."""
    topic = notify.sns_topic
    if topic and not topic.startswith("arn:"):
        unit, name = topic.split(".")
        return (outputs.get(unit) or {}).get(name)
    return topic or None


def tell(aws, notify, outputs: dict, previous: dict | None, now: Health, redactor, environ=None) -> list[Sent]:
    """Sends `now` to [notify]'s targets when it differs from `previous` (`changed`); what was sent.
    The topic is an ARN or "<unit>.<output>" of the deployed stack; the webhook's URL is read from
    the environment variable [notify] names, and redacted from everything after (a credential)."""
    topic = topic_of(notify, outputs)
    environ = os.environ if environ is None else environ
    url = environ.get(notify.webhook_url_env) if notify.webhook_url_env else None
    if url:
        redactor.add(url)
    if not changed(previous, now):
        return []
    notifier = Notifier(aws, topic, url, notify.webhook_timeout_seconds)
    return notifier.send(redactor.redact_obj(message(now, previous)))
