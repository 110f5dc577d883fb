"""orchestrator.core.health without AWS: the state, its exit code, when a change is worth telling."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from orchestrator.core import health
from orchestrator.core.runner import RunReport, Status, UnitResult


def report(**changed) -> RunReport:
    units = {}
    for unit in ("network", "app"):
        r = UnitResult(unit, status=Status.NO_CHANGES)
        if unit in changed:
            r.status, r.change = Status.SUCCEEDED, 1
            r.changes = [{"address": changed[unit], "attributes": ["ingress"]}]
        units[unit] = r
    return RunReport("drift", "prod", units, 0.0)


def checks(*failing):
    names = ["nat", "ecs", *failing]
    return [SimpleNamespace(name=n, passed=n not in failing) for n in names]


@pytest.mark.parametrize(
    ("drifted", "failing", "state", "code"),
    [
        ({}, (), "healthy", 0),
        ({"network": "aws_security_group.db"}, (), "drifted", 2),
        ({}, ("ecs",), "failing", 13),
        ({"network": "aws_security_group.db"}, ("ecs",), "drifted and failing", 14),
    ],
)
def test_state_and_exit_code(drifted, failing, state, code):
    now = health.judge("prod", "r1", report(**drifted), checks(*failing), clock=lambda: 5.0)
    assert (now.state, now.exit_code) == (state, code)
    if drifted:
        assert now.drifted == {"network": ["aws_security_group.db (ingress)"]}


def test_only_a_change_of_state_is_told():
    healthy = health.judge("prod", "r1", report(), checks())
    drifted = health.judge("prod", "r2", report(network="aws_security_group.db"), checks())
    other = health.judge("prod", "r3", report(app="aws_ecs_service.app"), checks())
    assert not health.changed(None, healthy)  # a first health that finds nothing
    assert health.changed(None, drifted)
    assert health.changed(healthy.record(), drifted)
    assert not health.changed(drifted.record(), drifted)
    assert health.changed(drifted.record(), other)  # other units drifted: new
    assert health.changed(drifted.record(), healthy)
    msg = health.message(drifted, healthy.record())
    assert msg["text"] == (
        "orchestrator: prod is drifted (was healthy) - drift: network: aws_security_group.db (ingress) - run r2"
    )


def test_a_webhook_that_cannot_be_reached_is_reported_not_raised():
    sent = health.Notifier(webhook_url="http://127.0.0.1:9/nothing-listens", timeout=1).send({"text": "x"})
    assert [(s.target, s.ok) for s in sent] == [("webhook", False)]


def test_the_targets_come_from_the_settings_the_outputs_and_the_environment():
    """[notify]: the topic by ARN or as "<unit>.<output>" of what is deployed; the webhook's URL
    from the variable it names, a credential from then on; nothing is sent without a change
    (here: the same state as last time, so no target is reached)."""
    from orchestrator.model.config import NotifySettings
    from orchestrator.redact import Redactor

    outputs = {"observability": {"alerts_topic_arn": "arn:aws:sns:us-east-1:1:alerts"}}
    assert health.topic_of(NotifySettings(sns_topic="observability.alerts_topic_arn"), outputs) == (
        "arn:aws:sns:us-east-1:1:alerts"
    )
    assert (
        health.topic_of(NotifySettings(sns_topic="arn:aws:sns:us-east-1:1:x"), outputs) == "arn:aws:sns:us-east-1:1:x"
    )
    assert health.topic_of(NotifySettings(sns_topic="observability.gone"), outputs) is None
    assert health.topic_of(NotifySettings(), outputs) is None

    redactor = Redactor()
    now = health.judge("prod", "r2", report(), checks("ecs"))
    notify = NotifySettings(sns_topic="observability.alerts_topic_arn", webhook_url_env="HOOK")
    url = "https://hooks.example.com/T000/SECRETPART"
    assert health.tell(None, notify, outputs, now.record(), now, redactor, environ={"HOOK": url}) == []
    assert "SECRETPART" not in redactor.redact(f"posting to {url}")
