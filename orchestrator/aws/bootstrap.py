"""Provisions the state backend (KMS key, bucket, lock table): ensure_* steps, idempotent, never prompting.

Each piece is checked with Get*/Describe* first; a missing piece is created,
a weaker one is reported as drift and fixed only with repair=True. A second
run makes no mutating call. Its settings and the bucket and key policies ship
with the package (orchestrator/backend_defaults/); a project's bootstrap/
folder overrides any of the three files. Reading state at run time is
statestore.py's job.
"""

from __future__ import annotations

import json
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.aws.clients import Aws
from orchestrator.errors import BackendError, error_code
from orchestrator.model.config import Environment, read_toml
from orchestrator.state.statestore import plans_prefix

CREATED, IN_PLACE, REPAIRED, DRIFT, SKIPPED = "created", "in place", "repaired", "drift", "skipped"
# Tag on the state key naming the alias it is meant for: finds a key whose CreateKey reply was lost.
ALIAS_TAG = "orchestrator:alias"
THROTTLING = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}


@dataclass(frozen=True)
class Step:
    piece: str
    status: str
    detail: str = ""


@dataclass(frozen=True)
class BootstrapResult:
    steps: tuple[Step, ...]
    key_arn: str
    mutating_calls: tuple[tuple[str, str], ...]

    @property
    def drift(self) -> list[Step]:
        return [s for s in self.steps if s.status == DRIFT]


def _render(path: Path, **values: str) -> dict:
    return json.loads(string.Template(path.read_text()).substitute(values))


class Bootstrapper:
    def __init__(
        self,
        aws: Aws,
        env: Environment,
        files: Callable[[str], Path],
        *,
        emulated: bool,
        repair: bool,
        verify_only: bool,
    ):
        self.aws = aws
        self.env = env
        self.backend = env.backend
        self.files = files  # file name -> the project's override or the packaged default
        self.settings = read_toml(files("backend.toml"))
        self.emulated = emulated
        self.repair = repair
        self.verify_only = verify_only
        self.steps: list[Step] = []
        self.s3 = aws.client("s3", self.backend.region)
        self.kms = aws.client("kms", self.backend.region)
        self.account_id = env.account_id
        self.partition = "aws"

    # A piece found weaker than wanted: fix it only when asked.
    def _fix(self, piece: str, detail: str, apply) -> None:
        if self.repair and not self.verify_only:
            apply()
            self.steps.append(Step(piece, REPAIRED, detail))
        else:
            self.steps.append(Step(piece, DRIFT, detail))

    def _tags(self) -> dict[str, str]:
        tags = dict(self.settings.get("tags", {}))
        tags.update(Project=self.env.project, Environment=self.env.name, Owner=self.env.owner)
        return tags

    def run(self) -> BootstrapResult:
        key_arn = self.ensure_kms_key()
        self.ensure_state_bucket(key_arn)
        self.ensure_audit_bucket(key_arn)
        if self.backend.locking == "dynamodb":
            self.ensure_lock_table(key_arn)
        else:
            self.steps.append(Step("lock", IN_PLACE, "S3 native lockfile (use_lockfile): nothing to create"))
        return BootstrapResult(tuple(self.steps), key_arn, tuple(self.aws.call_log.mutating()))

    # ---- KMS ---------------------------------------------------------------
    def ensure_kms_key(self) -> str:
        alias = self.backend.kms_alias
        key_id = None
        try:
            meta = self.kms.describe_key(KeyId=alias)["KeyMetadata"]
            key_id = meta["KeyId"]
            if meta.get("KeyState") != "Enabled":
                raise BackendError(f"KMS key {alias} is {meta.get('KeyState')}; enable it or choose another alias")
        except self.kms.exceptions.NotFoundException:
            pass
        if key_id is None:
            if self.verify_only:
                self.steps.append(Step("kms key", DRIFT, f"{alias} does not exist"))
                return ""
            policy = _render(
                self.files("state-key-policy.json"),
                partition=self.partition,
                account_id=self.account_id,
                region=self.backend.region,
            )
            desc = string.Template(self.settings["kms"]["description"]).substitute(
                project=self.env.project, environment=self.env.name
            )
            meta, adopted = self._create_key_once(alias, desc, policy)
            key_id = meta["KeyId"]
            self.kms.enable_key_rotation(
                KeyId=key_id, RotationPeriodInDays=self.settings["kms"]["rotation_period_days"]
            )
            try:
                self.kms.create_alias(AliasName=alias, TargetKeyId=key_id)
            except self.kms.exceptions.AlreadyExistsException:
                # a retried CreateAlias whose first reply was lost: fine if it is ours
                if self.kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] != key_id:
                    raise BackendError(f"alias {alias} appeared for another key while bootstrapping") from None
            note = " (adopted the key an interrupted run created)" if adopted else ""
            self.steps.append(Step("kms key", CREATED, f"{alias} -> {key_id}, rotation on{note}"))
            return meta["Arn"]
        rotation = self.kms.get_key_rotation_status(KeyId=key_id).get("KeyRotationEnabled")
        if rotation:
            self.steps.append(Step("kms key", IN_PLACE, f"{alias} -> {key_id}, rotation on"))
        else:
            self._fix(
                "kms key rotation",
                f"{alias}: rotation off",
                lambda: self.kms.enable_key_rotation(
                    KeyId=key_id, RotationPeriodInDays=self.settings["kms"]["rotation_period_days"]
                ),
            )
        return meta["Arn"]

    def _orphaned_key(self, alias: str) -> dict | None:
        """A key a previous attempt created for this alias but never aliased (its reply was lost)."""
        from botocore.exceptions import ClientError

        try:
            pages = self.aws.client("resourcegroupstaggingapi", self.backend.region).get_paginator("get_resources")
            arns = [
                r["ResourceARN"]
                for page in pages.paginate(
                    ResourceTypeFilters=["kms:key"], TagFilters=[{"Key": ALIAS_TAG, "Values": [alias]}]
                )
                for r in page["ResourceTagMappingList"]
            ]
        except ClientError:
            return None  # no tag:GetResources permission: nothing to adopt
        for arn in arns:
            meta = self.kms.describe_key(KeyId=arn)["KeyMetadata"]
            if meta["KeyState"] == "Enabled" and not self.kms.list_aliases(KeyId=meta["KeyId"])["Aliases"]:
                return meta
        return None

    def _create_key_once(self, alias: str, desc: str, policy: dict) -> tuple[dict, bool]:
        """CreateKey is not idempotent: it is sent without botocore's retries, and after a
        failure that may have reached KMS, an orphan tagged for this alias is adopted
        instead of creating a second key."""
        from botocore.exceptions import BotoCoreError, ClientError

        orphan = self._orphaned_key(alias)
        if orphan:
            return orphan, True
        once = self.aws.client_once("kms", self.backend.region)
        tags = {**self._tags(), ALIAS_TAG: alias}
        last: Exception | None = None
        for attempt in range(3):
            try:
                meta = once.create_key(
                    Description=desc,
                    KeyUsage="ENCRYPT_DECRYPT",
                    Policy=json.dumps(policy),
                    Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()],
                )["KeyMetadata"]
                return meta, False
            except (BotoCoreError, ClientError) as exc:
                status = (getattr(exc, "response", None) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if isinstance(exc, ClientError) and status < 500 and error_code(exc) not in THROTTLING:
                    raise
                last = exc
                orphan = self._orphaned_key(alias)
                if orphan:
                    return orphan, True
                time.sleep(min(2**attempt, 5))
        raise BackendError(f"cannot create the KMS key for {alias}: {type(last).__name__}")

    # ---- S3 ----------------------------------------------------------------
    def _bucket_exists(self, bucket: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=self.account_id)
        except ClientError as exc:
            code = error_code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                return False
            if code in ("403", "AccessDenied", "Forbidden"):
                raise BackendError(
                    f"state bucket {bucket} exists but is not owned by account {self.account_id}; choose another name"
                ) from None
            raise
        # Belt and braces (some S3 implementations ignore ExpectedBucketOwner):
        # a bucket of ours is in our own bucket list.
        try:
            names = {b["Name"] for b in self.s3.list_buckets().get("Buckets", [])}
        except ClientError:
            return True  # no s3:ListAllMyBuckets: the owner check above stands
        if bucket not in names:
            raise BackendError(
                f"state bucket {bucket} exists but is not owned by account {self.account_id}; choose another name"
            )
        return True

    def _create_bucket(self, bucket: str, object_lock: bool = False) -> None:
        kwargs = {"Bucket": bucket, "ObjectOwnership": "BucketOwnerEnforced"}
        if object_lock:  # versioning comes with it
            kwargs["ObjectLockEnabledForBucket"] = True
        # us-east-1 rejects a LocationConstraint naming itself.
        if self.backend.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.backend.region}
        try:
            self.s3.create_bucket(**kwargs)
        except self.s3.exceptions.BucketAlreadyExists:
            raise BackendError(f"bucket name {bucket} is taken by another account; choose another name") from None
        except self.s3.exceptions.BucketAlreadyOwnedByYou:
            pass

    def ensure_state_bucket(self, key_arn: str) -> None:
        self._ensure_bucket("state bucket", self.backend.bucket, self._bucket_pieces(self.backend.bucket, key_arn))

    def ensure_audit_bucket(self, key_arn: str) -> None:
        """Where each run's audit record is kept (orchestrator.state.audit): Object Lock with a default
        retention, the backend's key, the state bucket's protections, and a policy that denies
        every principal a delete, a retention change or a governance bypass. A bucket of its
        own, so state and journal objects never inherit the retention."""
        audit = self.env.audit
        pieces = [("object lock", *self._object_lock_piece(audit.bucket))]
        pieces += self._bucket_pieces(audit.bucket, key_arn, policy_file="audit-bucket-policy.json", state=False)
        pieces = [(f"audit {name}".replace("tls-only policy", "bucket policy"), c, a) for name, c, a in pieces]
        self._ensure_bucket("audit bucket", audit.bucket, pieces, object_lock=True)

    def _ensure_bucket(self, what: str, bucket: str, pieces, object_lock: bool = False) -> None:
        created = False
        if not self._bucket_exists(bucket):
            if self.verify_only:
                self.steps.append(Step(what, DRIFT, f"{bucket} does not exist"))
                return
            self._create_bucket(bucket, object_lock=object_lock)
            created = True
            self.steps.append(Step(what, CREATED, bucket))
        else:
            self.steps.append(Step(what, IN_PLACE, bucket))

        for piece, check, apply in pieces:
            if created and not (self.emulated and piece.endswith(" policy")):
                apply()
                self.steps.append(Step(piece, CREATED))
                continue
            problem = check()
            if created and problem and problem.startswith("skip:"):
                self.steps.append(Step(piece, SKIPPED, problem[5:]))
            elif problem is None:
                self.steps.append(Step(piece, IN_PLACE))
            elif problem.startswith("skip:"):
                self.steps.append(Step(piece, SKIPPED, problem[5:]))
            else:
                self._fix(piece, problem, apply)

    def _object_lock_piece(self, bucket: str):
        """Object Lock on, with the configured default retention (mode and days). AWS lets a
        versioned bucket turn it on later (PutObjectLockConfiguration), never off."""
        from botocore.exceptions import ClientError

        audit = self.env.audit
        wanted = {"DefaultRetention": {"Mode": audit.mode, "Days": audit.retention_days}}

        def check():
            try:
                conf = self.s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
            except ClientError as exc:
                if error_code(exc) == "ObjectLockConfigurationNotFoundError":
                    return "object lock is off"
                raise
            if conf.get("ObjectLockEnabled") != "Enabled":
                return "object lock is off"
            rule = conf.get("Rule", {}).get("DefaultRetention", {})
            if rule.get("Mode") != audit.mode or rule.get("Days") != audit.retention_days or rule.get("Years"):
                return (
                    f"default retention is {rule.get('Mode') or 'none'} {rule.get('Days') or rule.get('Years') or 0}"
                    f"{' years' if rule.get('Years') else ' days'}, not {audit.mode} {audit.retention_days} days"
                )
            return None

        def apply():
            self.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            self.s3.put_object_lock_configuration(
                Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": wanted}
            )

        return check, apply

    def _bucket_pieces(self, bucket: str, key_arn: str, policy_file: str = "state-bucket-policy.json", state=True):
        """Each protection of a bucket: (name, check -> problem or None, apply). The state bucket
        also gets its lifecycle and access logging; the audit bucket, its own policy."""
        s3 = self.s3
        wanted_sids = {
            s.get("Sid") for s in _render(self.files(policy_file), partition="aws", bucket=bucket)["Statement"]
        }
        from botocore.exceptions import ClientError

        def get(fn, **kw):
            try:
                return fn(Bucket=bucket, **kw)
            except ClientError as exc:
                if error_code(exc) in (
                    "NoSuchPublicAccessBlockConfiguration",
                    "ServerSideEncryptionConfigurationNotFoundError",
                    "OwnershipControlsNotFoundError",
                    "NoSuchBucketPolicy",
                    "NoSuchLifecycleConfiguration",
                ):
                    return None
                raise

        def check_versioning():
            status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
            return None if status == "Enabled" else f"versioning is {status or 'off'}"

        def check_encryption():
            conf = get(s3.get_bucket_encryption)
            rules = (conf or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
            for rule in rules:
                default = rule.get("ApplyServerSideEncryptionByDefault", {})
                if (
                    default.get("SSEAlgorithm") == "aws:kms"
                    and default.get("KMSMasterKeyID") in (key_arn, key_arn.split("/")[-1], self.backend.kms_alias)
                    and rule.get("BucketKeyEnabled")
                ):
                    return None
            return "default encryption is not SSE-KMS with the state key and a bucket key"

        def check_public_access():
            conf = (get(s3.get_public_access_block) or {}).get("PublicAccessBlockConfiguration", {})
            flags = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
            off = [f for f in flags if not conf.get(f)]
            return None if not off else f"public access block off: {', '.join(off)}"

        def check_ownership():
            conf = get(s3.get_bucket_ownership_controls) or {}
            rules = conf.get("OwnershipControls", {}).get("Rules", [])
            return (
                None
                if any(r.get("ObjectOwnership") == "BucketOwnerEnforced" for r in rules)
                else "object ownership is not BucketOwnerEnforced"
            )

        def check_policy():
            if self.emulated:
                return "skip:the emulator denies every request under a Deny+Condition policy; real AWS gets it"
            conf = get(s3.get_bucket_policy)
            if not conf:
                return "no bucket policy (TLS-only)"
            policy = json.loads(conf["Policy"])
            sids = {s.get("Sid") for s in policy.get("Statement", [])}
            missing = sorted(wanted_sids - sids)
            return None if not missing else f"bucket policy lacks {', '.join(missing)} ({policy_file})"

        plans = plans_prefix(self.env)
        plan_days = self.settings["bucket"]["saved_plan_days"]

        def check_lifecycle():
            rules = [
                r
                for r in (get(s3.get_bucket_lifecycle_configuration) or {}).get("Rules", [])
                if r.get("Status") == "Enabled"
            ]
            versions = any(
                r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") == self.backend.noncurrent_version_days
                for r in rules
            )
            if not versions:
                return (
                    f"no lifecycle rule expiring noncurrent versions after {self.backend.noncurrent_version_days} days"
                )
            saved = any(
                r.get("Filter", {}).get("Prefix") == plans and r.get("Expiration", {}).get("Days") == plan_days
                for r in rules
            )
            return None if saved else f"no lifecycle rule expiring saved plans ({plans}) after {plan_days} days"

        def check_logging():
            conf = s3.get_bucket_logging(Bucket=bucket).get("LoggingEnabled") or {}
            return None if conf.get("TargetBucket") == self.backend.access_log_bucket else "access logging off"

        def apply_versioning():
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

        def apply_encryption():
            s3.put_bucket_encryption(
                Bucket=bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": key_arn,
                            },
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
            )

        def apply_public_access():
            s3.put_public_access_block(
                Bucket=bucket,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )

        def apply_ownership():
            s3.put_bucket_ownership_controls(
                Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
            )

        def apply_policy():
            if self.emulated:
                return
            policy = _render(self.files(policy_file), partition=self.partition, bucket=bucket)
            s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))

        def apply_lifecycle():
            conf = self.settings["bucket"]
            s3.put_bucket_lifecycle_configuration(
                Bucket=bucket,
                LifecycleConfiguration={
                    "Rules": [
                        {
                            "ID": "expire-old-state-versions",
                            "Status": "Enabled",
                            "Filter": {"Prefix": ""},
                            "NoncurrentVersionExpiration": {
                                "NoncurrentDays": self.backend.noncurrent_version_days,
                                "NewerNoncurrentVersions": conf["newer_noncurrent_versions_kept"],
                            },
                            "AbortIncompleteMultipartUpload": {
                                "DaysAfterInitiation": conf["abort_incomplete_multipart_days"]
                            },
                        },
                        {
                            # `unit plan`'s saved plans: a pipeline applies them within the hour;
                            # one never applied (a cancelled pipeline) goes, every version of it
                            "ID": "expire-saved-plans",
                            "Status": "Enabled",
                            "Filter": {"Prefix": plans},
                            "Expiration": {"Days": plan_days},
                            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                        },
                    ]
                },
            )

        def apply_logging():
            self._ensure_log_bucket(self.backend.access_log_bucket)
            s3.put_bucket_logging(
                Bucket=bucket,
                BucketLoggingStatus={
                    "LoggingEnabled": {"TargetBucket": self.backend.access_log_bucket, "TargetPrefix": f"{bucket}/"}
                },
            )

        pieces = [
            ("versioning", check_versioning, apply_versioning),
            ("encryption", check_encryption, apply_encryption),
            ("public access block", check_public_access, apply_public_access),
            ("object ownership", check_ownership, apply_ownership),
            ("tls-only policy", check_policy, apply_policy),
        ]
        if state:
            pieces.append(("lifecycle", check_lifecycle, apply_lifecycle))
        if state and self.backend.access_log_bucket:
            pieces.append(("access logging", check_logging, apply_logging))
        if self.emulated:
            # Never call put_bucket_policy on the emulator (see check_policy).
            pieces = [(p, c, (lambda: None) if p == "tls-only policy" else a) for p, c, a in pieces]
        return pieces

    def _ensure_log_bucket(self, log_bucket: str) -> None:
        if self._bucket_exists(log_bucket):
            return
        self._create_bucket(log_bucket)
        self.s3.put_public_access_block(
            Bucket=log_bucket,
            PublicAccessBlockConfiguration={
                k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
            },
        )
        # Server access logs support SSE-S3 only.
        self.s3.put_bucket_encryption(
            Bucket=log_bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "S3ServerAccessLogs",
                    "Effect": "Allow",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": f"arn:{self.partition}:s3:::{log_bucket}/*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": self.account_id}},
                }
            ],
        }
        self.s3.put_bucket_policy(Bucket=log_bucket, Policy=json.dumps(policy))
        self.steps.append(Step("access log bucket", CREATED, log_bucket))

    # ---- DynamoDB lock table ------------------------------------------------
    PITR_WAIT = 120.0  # seconds; AWS gives no bound, minutes at most in practice

    def _enable_pitr(self, ddb, table: str, clock=time.monotonic, sleep=time.sleep) -> None:
        """Point-in-time recovery on, and read back. Right after CreateTable, AWS refuses it
        with ContinuousBackupsUnavailableException ("Backups are being enabled for the table")
        for a while (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateContinuousBackups.html);
        a 400 that boto3 does not retry: retried here, bounded."""
        deadline = clock() + self.PITR_WAIT
        delay = 1.0
        while True:
            try:
                ddb.update_continuous_backups(
                    TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
                )
            except Exception as exc:  # noqa: BLE001 - one error code is retried, every other raised
                if error_code(exc) != "ContinuousBackupsUnavailableException" or clock() >= deadline:
                    raise BackendError(
                        f"lock table {table}: point-in-time recovery could not be enabled ({error_code(exc) or exc})"
                    ) from None
                sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            desc = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
            if desc.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") == "ENABLED":
                return
            if clock() >= deadline:
                raise BackendError(
                    f"lock table {table}: point-in-time recovery still not enabled after {self.PITR_WAIT:.0f} s"
                )
            sleep(delay)

    def ensure_lock_table(self, key_arn: str) -> None:
        ddb = self.aws.client("dynamodb", self.backend.region)
        table = self.backend.dynamodb_table
        try:
            desc = ddb.describe_table(TableName=table)["Table"]
        except ddb.exceptions.ResourceNotFoundException:
            desc = None
        if desc is None:
            if self.verify_only:
                self.steps.append(Step("lock table", DRIFT, f"{table} does not exist"))
                return
            ddb.create_table(
                TableName=table,
                AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
                BillingMode=self.settings["lock_table"]["billing_mode"],
                SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn},
                Tags=[{"Key": k, "Value": v} for k, v in self._tags().items()],
            )
            ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            self._enable_pitr(ddb, table)
            self.steps.append(Step("lock table", CREATED, f"{table}: on-demand, PITR, SSE-KMS"))
            return
        problems = []
        if desc.get("BillingModeSummary", {}).get("BillingMode") != "PAY_PER_REQUEST":
            problems.append("billing mode is not PAY_PER_REQUEST")
        if desc.get("SSEDescription", {}).get("SSEType") != "KMS":
            problems.append("not SSE-KMS")
        pitr = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        pitr_on = pitr.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") == "ENABLED"
        if not problems and pitr_on:
            self.steps.append(Step("lock table", IN_PLACE, table))
            return
        if not pitr_on:
            self._fix(
                "lock table PITR",
                f"{table}: point-in-time recovery off",
                lambda: self._enable_pitr(ddb, table),
            )
        if problems:
            self._fix(
                "lock table",
                f"{table}: {', '.join(problems)}",
                lambda: ddb.update_table(
                    TableName=table,
                    BillingMode="PAY_PER_REQUEST",
                    SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn},
                ),
            )
