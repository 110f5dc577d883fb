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


def main(argv: list[str] | None = None) -> None:
    for correction in CORRECTIONS:
        correction()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
