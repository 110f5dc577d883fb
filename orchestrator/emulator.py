"""moto server, with what it does differently from AWS put right where the product relies on it.

`orchestrator.local` runs this module instead of `moto.server` (same arguments). Each
correction names the AWS behaviour it reproduces and where AWS documents it; each has a test
that fails on plain moto. Differences that are worked around in settings instead
(environments/emulator.toml) are listed in the README's "Local emulator" section.
"""

from __future__ import annotations

import sys


def current_version_follows_its_label() -> None:
    """UpdateSecretVersionStage moving AWSCURRENT makes that version the secret's current one:
    a later PutSecretValue labels *it* AWSPREVIOUS and takes AWSCURRENT off it ("Secrets
    Manager automatically moves the label AWSPREVIOUS to the version that AWSCURRENT was
    removed from",
    https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_UpdateSecretVersionStage.html
    and API_PutSecretValue.html). moto moves the label but keeps its own idea of the current
    version, so after a rotation's finishSecret a PutSecretValue leaves AWSCURRENT on two
    versions and labels the wrong one AWSPREVIOUS."""
    from moto.secretsmanager.models import SecretsManagerBackend

    original = SecretsManagerBackend.update_secret_version_stage
    if getattr(original, "_follows_label", False):
        return

    def update_secret_version_stage(self, secret_id, version_stage, remove_from_version_id, move_to_version_id):
        result = original(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
        if version_stage == "AWSCURRENT" and move_to_version_id:
            self.secrets[secret_id].set_default_version_id(move_to_version_id)
        return result

    update_secret_version_stage._follows_label = True
    SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage


CORRECTIONS = (current_version_follows_its_label,)


# ---- like-AWS mode: AWS's asynchronous timing, where moto answers at once -------------
# On with ORCHESTRATOR_LIKE_AWS=1 (`orchestrator local up --like-aws`; the platform tests);
# each delay is an environment variable of its own, in seconds.
LIKE_AWS = "ORCHESTRATOR_LIKE_AWS"


def _seconds(name: str, default: float) -> float:
    import os

    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


def continuous_backups_unavailable_after_create() -> None:
    """Right after CreateTable, AWS refuses UpdateContinuousBackups with
    ContinuousBackupsUnavailableException ("Backups are being enabled for the table") for a
    while (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateContinuousBackups.html,
    Errors). moto enables point-in-time recovery at once.
    ORCHESTRATOR_LIKE_AWS_PITR_SECONDS (default 5)."""
    from moto.core.utils import utcnow
    from moto.dynamodb.exceptions import DynamodbException
    from moto.dynamodb.models import DynamoDBBackend

    delay = _seconds("ORCHESTRATOR_LIKE_AWS_PITR_SECONDS", 5.0)
    original = DynamoDBBackend.update_continuous_backups

    class ContinuousBackupsUnavailable(DynamodbException):
        def __init__(self) -> None:
            super().__init__("ContinuousBackupsUnavailableException", "Backups are being enabled for the table")

    def update_continuous_backups(self, table_name, point_in_time_spec):
        table = self.tables.get(table_name)
        if table is not None and (utcnow() - table.created_at).total_seconds() < delay:
            raise ContinuousBackupsUnavailable()
        return original(self, table_name, point_in_time_spec)

    DynamoDBBackend.update_continuous_backups = update_continuous_backups


def email_subscriptions_wait_for_confirmation() -> None:
    """An e-mail subscription stays pending until its recipient follows the link AWS mailed
    (https://docs.aws.amazon.com/sns/latest/dg/sns-email-notifications.html): the topic's
    subscription list shows its SubscriptionArn as "PendingConfirmation"
    (https://docs.aws.amazon.com/sns/latest/api/API_Subscription.html) and its attributes say
    PendingConfirmation "true". moto confirms at once. Here ConfirmSubscription on the topic
    (AWS checks the mailed token; here any token) confirms its pending subscriptions."""
    import copy

    from moto.sns.models import SNSBackend
    from moto.sns.responses import SNSResponse

    subscribe, by_topic, everything = (
        SNSBackend.subscribe,
        SNSBackend.list_subscriptions_by_topic,
        SNSBackend.list_subscriptions,
    )

    def like_aws_subscribe(self, topic_arn, endpoint, protocol):
        sub = subscribe(self, topic_arn, endpoint, protocol)
        if protocol in ("email", "email-json") and not hasattr(sub, "like_aws_pending"):
            sub.like_aws_pending = True
            sub.attributes["PendingConfirmation"] = "true"
            sub.attributes["ConfirmationWasAuthenticated"] = "false"
        return sub

    def shown(subs):
        out = []
        for sub in subs:
            if getattr(sub, "like_aws_pending", False):
                sub = copy.copy(sub)
                sub.arn = "PendingConfirmation"
            out.append(sub)
        return out

    def like_aws_by_topic(self, topic_arn, next_token=None):
        subs, token = by_topic(self, topic_arn, next_token=next_token)
        return shown(subs), token

    def like_aws_everything(self, next_token=None):
        subs, token = everything(self, next_token=next_token)
        return shown(subs), token

    confirm = SNSResponse.confirm_subscription

    def like_aws_confirm(self):
        topic_arn = self._get_param("TopicArn")
        for sub in self.backend.subscriptions.values():
            if sub.topic.arn == topic_arn and getattr(sub, "like_aws_pending", False):
                sub.like_aws_pending = False
                sub.attributes["PendingConfirmation"] = "false"
        return confirm(self)

    SNSBackend.subscribe = like_aws_subscribe
    SNSBackend.list_subscriptions_by_topic = like_aws_by_topic
    SNSBackend.list_subscriptions = like_aws_everything
    SNSResponse.confirm_subscription = like_aws_confirm


def force_deleted_secret_keeps_its_name_a_while() -> None:
    """DeleteSecret with ForceDeleteWithoutRecovery: "Secrets Manager performs the actual
    deletion with an asynchronous and separate mechanism", so the name stays taken for a
    short while (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DeleteSecret.html).
    moto frees it at once. Here the secret shows DeletedDate and keeps its name for
    ORCHESTRATOR_LIKE_AWS_SECRET_PURGE_SECONDS (default 5), then it is gone."""
    import time

    from moto.core.utils import utcnow
    from moto.secretsmanager.models import SecretsManagerBackend

    delay = _seconds("ORCHESTRATOR_LIKE_AWS_SECRET_PURGE_SECONDS", 5.0)
    delete = SecretsManagerBackend.delete_secret

    def purge(self) -> None:
        now = time.monotonic()
        for key, secret in list(self.secrets.items()):
            if getattr(secret, "like_aws_purge_at", now + 1) <= now:
                self.secrets.pop(key)

    def like_aws_delete(self, secret_id, recovery_window_in_days, force_delete_without_recovery):
        purge(self)
        if force_delete_without_recovery and self._is_valid_identifier(secret_id):
            secret = self.secrets[secret_id]
            if not hasattr(secret, "like_aws_purge_at"):
                secret.delete(self._unix_time_secs(utcnow()))
                secret.like_aws_purge_at = time.monotonic() + delay
            return secret.arn, secret.name, self._unix_time_secs(utcnow())
        return delete(self, secret_id, recovery_window_in_days, force_delete_without_recovery)

    SecretsManagerBackend.delete_secret = like_aws_delete
    for name in ("create_secret", "describe_secret", "get_secret_value", "list_secrets", "restore_secret"):
        original = getattr(SecretsManagerBackend, name)

        def purged(self, *args, _original=original, **kwargs):
            purge(self)
            return _original(self, *args, **kwargs)

        setattr(SecretsManagerBackend, name, purged)


LIKE_AWS_CORRECTIONS = (
    continuous_backups_unavailable_after_create,
    email_subscriptions_wait_for_confirmation,
    force_deleted_secret_keeps_its_name_a_while,
)


def main(argv: list[str] | None = None) -> None:
    import os

    for correction in CORRECTIONS:
        correction()
    if os.environ.get(LIKE_AWS) == "1":
        for correction in LIKE_AWS_CORRECTIONS:
            correction()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
