"""`health` on the fixture stack: a failing smoke check remembered in the journal (shown by
`status` and `envs`), told to an SNS topic (read back through an SQS subscription) and a webhook
(a local HTTP server); a webhook that times out is said, the run finishes; the same state again
tells nobody; put right, "healthy" is told once. A rule opened by hand (drift only the plan's
refresh of the rules shows) runs on the platform (tests/integration/test_platform.py)."""

from __future__ import annotations

import json
import time

import pytest

from tests.helpers import Cli, Webhook, fixture_without_aws, sns_messages

SUFFIX = "hl"
BY_HAND = f"/fixture/made-by-hand-{SUFFIX}"


@pytest.fixture(scope="module")
def world(moto_url, mirror, aws, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("health")
    topic = aws("sns").create_topic(Name=f"fixture-alerts-{SUFFIX}")["TopicArn"]
    queue = aws("sqs").create_queue(QueueName=f"fixture-alerts-{SUFFIX}")["QueueUrl"]
    queue_arn = aws("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    aws("logs").create_log_group(logGroupName=BY_HAND)

    project = fixture_without_aws(tmp / "project")  # what health does with what it finds is tested here
    manifest = project / "terraform" / "stack.toml"
    manifest.write_text(
        manifest.read_text().replace(
            '[units.base]\npath = "base"\n',
            '[units.base]\npath = "base"\nsmoke = [{ check = "log_group_exists", name = "made by hand", '
            f'log_group_name = {{ value = "{BY_HAND}" }} }}]\n',
            1,
        )
    )
    env_file = project / "environments" / "dev" / "env.toml"
    env_file.write_text(
        env_file.read_text()
        + f'\n[notify]\nsns_topic = "{topic}"\nwebhook_url_env = "FIXTURE_WEBHOOK_URL"\nwebhook_timeout_seconds = 1\n'
    )
    hook = Webhook()
    cli = Cli(project, tmp / "work", moto_url, mirror)
    assert cli("bootstrap", "--env", "dev").exit_code == 0
    r = cli("deploy", "--env", "dev", "--suffix", SUFFIX, "--yes", "--no-smoke")
    assert r.exit_code == 0, r.output
    yield {"cli": cli, "hook": hook, "queue": queue}
    hook.close()


def health(world):
    r = world["cli"](
        "health", "--env", "dev", "--suffix", SUFFIX, "--json", env={"FIXTURE_WEBHOOK_URL": world["hook"].url}
    )
    return r, json.loads(r.stdout)


def test_a_failing_check_is_told_once_and_healthy_again_once_and_a_webhook_timing_out_does_not_stop_the_run(world, aws):
    """A copy's first health finds a smoke check failing while the webhook is slower than its 1 s
    timeout; the same failure again tells nobody; the check put right, "healthy" is told once."""
    hook, queue, logs = world["hook"], world["queue"], aws("logs")

    # A smoke check failing, and the webhook slower than its 1 s timeout: the run finishes,
    # says the notification failed, SNS still gets it.
    logs.delete_log_group(logGroupName=BY_HAND)
    hook.delay = 120.0
    r, doc = health(world)
    assert r.exit_code == 13, r.output
    assert hook.bodies == []  # the run returned while the webhook still held its request
    hook.release.set()
    assert (doc["state"], doc["was"], doc["failing"], doc["drifted"]) == ("failing", "unknown", ["made by hand"], {})
    by_target = {n["target"]: n for n in doc["notifications"]}
    assert by_target["sns"]["sent"] is True
    assert (by_target["webhook"]["sent"], by_target["webhook"]["detail"]) == (False, "timed out after 1 s")
    assert "notification webhook: FAILED: timed out after 1 s" in r.stderr
    [sent] = sns_messages(aws, queue)
    assert (sent["state"], sent["failing"]) == ("failing", ["made by hand"])
    assert "SECRETPART" not in r.stderr + r.stdout  # the webhook URL is a credential

    status = world["cli"]("status", "--env", "dev", "--suffix", SUFFIX)
    assert "health: failing at " in status.stdout and "failing: made by hand" in status.stdout
    envs = world["cli"]("envs", "--env", "dev", "--json")
    copy = next(c for c in json.loads(envs.stdout)["copies"] if c["environment"] == f"dev-{SUFFIX}")
    assert copy["health"]["state"] == "failing"

    # The same failure again: nothing new to tell (the first run's webhook call, released above,
    # arrives late: it is the only one).
    hook.delay = 0.0
    deadline = time.monotonic() + 30
    while not hook.bodies and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hook.bodies == [sent]
    r, doc = health(world)
    assert r.exit_code == 13, r.output
    assert (doc["state"], doc["was"], doc["notifications"]) == ("failing", "failing", [])
    assert sns_messages(aws, queue) == [] and len(hook.bodies) == 1

    # Put right: healthy, told once to each target.
    logs.create_log_group(logGroupName=BY_HAND)
    r, doc = health(world)
    assert r.exit_code == 0, r.output
    assert (doc["state"], doc["was"], doc["failing"], doc["drifted"]) == ("healthy", "failing", [], {})
    [sent] = sns_messages(aws, queue)
    assert (sent["state"], sent["was"]) == ("healthy", "failing")
    assert hook.bodies[1:] == [sent]
