"""The state bucket at run time: where every object lives, and reading it.

The only module that knows the S3 key layout:
  <key_prefix>/<env_id>/<unit>.tfstate          a unit's state (terraform writes it)
  <key_prefix>/<env_id>/<unit>.tfstate.tflock   its lock file (lockfile locking)
  <key_prefix>/_runs/<env_id>/journal.json      the environment's journal
  <key_prefix>/_runs/<env_id>/run.lock          the run lock
  <key_prefix>/_runs/<env_id>/reviews/<run_id>/<unit>.json  what `unit plan` found (the review
                                                page of a pipeline run, `orchestrator report`)
  <key_prefix>/_plans/<env_id>/<run_id>/<unit>.tfplan  a saved plan of `unit plan` (and .json,
                                                what it was made against); expired by lifecycle
and, in the audit bucket ([audit] bucket, under Object Lock), written once, never rewritten:
  <key_prefix>/<env>/<YYYY-MM-DD>/<env_id>/<HHMMSS>/<run_id>/<part>.json  an audit record
                                                (part: start, end; a CI job's: job-<action>-<unit>[.N]-start/-end)
Provisioning the buckets is bootstrap.py's job.
"""

from __future__ import annotations

import json

from orchestrator.aws.clients import CONDITION_FAILED, Aws
from orchestrator.errors import BackendError, error_code
from orchestrator.model.config import Environment

RUNS = "_runs"
PLANS = "_plans"
JOURNAL_NAME = "journal.json"
RUN_LOCK_NAME = "run.lock"
KEPT_NAME = "kept.json"  # what teardown left in AWS on purpose (keep_on_teardown)


def state_key(env: Environment, unit: str) -> str:
    return f"{env.backend.key_prefix}/{env.env_id}/{unit}.tfstate"


def run_key(env: Environment, name: str) -> str:
    """Per-environment run records beside the states: journal.json, run.lock."""
    return f"{env.backend.key_prefix}/{RUNS}/{env.env_id}/{name}"


def review_key(env: Environment, run_id: str, unit: str = "") -> str:
    """A unit's plan summary of a pipeline run (or, without a unit, the run's folder of them)."""
    return run_key(env, f"reviews/{run_id}/" + (f"{unit}.json" if unit else ""))


def plans_prefix(env: Environment) -> str:
    """Every saved plan of every copy (the bucket's lifecycle rule expires them)."""
    return f"{env.backend.key_prefix}/{PLANS}/"


def plan_key(env: Environment, run_id: str, unit: str, ext: str) -> str:
    """A saved plan of `unit plan` (ext "tfplan") and what it was made against (ext "json")."""
    return f"{plans_prefix(env)}{env.env_id}/{run_id}/{unit}.{ext}"


def audit_prefix(env: Environment, day: str = "") -> str:
    """An environment's audit records (every copy), or one day's (YYYY-MM-DD)."""
    return f"{env.backend.key_prefix}/{env.name}/" + (f"{day}/" if day else "")


def audit_key(env: Environment, started: float, run_id: str, part: str) -> str:
    """One audit record: the run's start, its end, or a CI job's (orchestrator.state.audit)."""
    import time as _time

    day = _time.strftime("%Y-%m-%d", _time.gmtime(started))
    return (
        f"{audit_prefix(env, day)}{env.env_id}/{_time.strftime('%H%M%S', _time.gmtime(started))}/{run_id}/{part}.json"
    )


def parse_audit_key(env: Environment, key: str) -> dict | None:
    """day, copy, time, run_id and part of an audit record's key (None: not one)."""
    prefix = audit_prefix(env)
    parts = key[len(prefix) :].split("/") if key.startswith(prefix) else []
    if len(parts) != 5 or not parts[4].endswith(".json"):
        return None
    day, copy, hhmmss, run_id, name = parts
    return {"day": day, "copy": copy, "time": hhmmss, "run_id": run_id, "part": name[: -len(".json")]}


def parse_state_key(prefix: str, key: str) -> tuple[str, str] | None:
    """(env_id, unit) of a state object's key, None for anything else (run records, lock files)."""
    parts = key[len(prefix) + 1 :].split("/") if key.startswith(prefix + "/") else []
    if len(parts) != 2 or parts[0] == RUNS or not parts[1].endswith(".tfstate"):
        return None
    return parts[0], parts[1][: -len(".tfstate")]


def backend_config(env: Environment, unit: str, key_arn: str, emulator_url: str | None) -> dict[str, object]:
    """-backend-config values for one unit's state."""
    b = env.backend
    conf: dict[str, object] = {
        "bucket": b.bucket,
        "key": state_key(env, unit),
        "region": b.region,
        "encrypt": True,
        "kms_key_id": key_arn,
    }
    if b.locking == "dynamodb":
        conf["dynamodb_table"] = b.dynamodb_table
    else:
        conf["use_lockfile"] = True
    if emulator_url:
        conf.update(
            {
                "endpoints": f'{{s3="{emulator_url}",dynamodb="{emulator_url}",sts="{emulator_url}",iam="{emulator_url}"}}',
                "use_path_style": True,
                "skip_credentials_validation": True,
                "skip_requesting_account_id": True,
                "skip_metadata_api_check": True,
                "skip_region_validation": True,
            }
        )
    return conf


def resolve_key_arn(aws: Aws, env: Environment) -> str:
    kms = aws.client("kms", env.backend.region)
    try:
        return kms.describe_key(KeyId=env.backend.kms_alias)["KeyMetadata"]["Arn"]
    except kms.exceptions.NotFoundException:
        raise BackendError(
            f"state backend of {env.name} is not bootstrapped (no KMS key {env.backend.kms_alias}); run: orchestrator bootstrap --env {env.name}"
        ) from None


def require_bucket(aws: Aws, env: Environment) -> None:
    from botocore.exceptions import ClientError

    s3 = aws.client("s3", env.backend.region)
    try:
        s3.head_bucket(Bucket=env.backend.bucket)
    except ClientError as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise BackendError(
                f"state bucket {env.backend.bucket} does not exist; run: orchestrator bootstrap --env {env.name}"
            ) from None
        if code in ("403", "AccessDenied"):
            raise BackendError(f"state bucket {env.backend.bucket} is not accessible with these credentials") from None
        raise


def read_state(aws: Aws, env: Environment, unit: str) -> dict | None:
    """A unit's state object from S3, None when there is none."""
    s3 = aws.client("s3", env.backend.region)
    try:
        return json.loads(s3.get_object(Bucket=env.backend.bucket, Key=state_key(env, unit))["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def read_kept(aws: Aws, env: Environment) -> list[dict]:
    """What teardown kept in AWS for this copy: unit, address, arn, id, why, run_id, at."""
    s3 = aws.client("s3", env.backend.region)
    try:
        body = s3.get_object(Bucket=env.backend.bucket, Key=run_key(env, KEPT_NAME))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return []
    return json.loads(body).get("kept", [])


def read_state_outputs(aws: Aws, env: Environment, unit: str) -> dict | None:
    """A unit's outputs straight from its state object in S3 (no init, no provider start).
    None when the unit has no state."""
    return outputs_of(read_state(aws, env, unit))


def outputs_of(state: dict | None) -> dict | None:
    """The output values of a state document; None when it holds nothing (not deployed)."""
    if state is None or (not state.get("resources") and not state.get("outputs")):
        return None
    return {k: v.get("value") for k, v in state.get("outputs", {}).items()}


def put_run_record(s3, env: Environment, key: str, body: bytes, key_arn: str, **condition) -> str:
    """A run record (journal, run lock) into the state bucket, SSE-KMS with the backend's key; its ETag."""
    return s3.put_object(
        Bucket=env.backend.bucket,
        Key=key,
        Body=body,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=key_arn,
        ContentType="application/json",
        **condition,
    )["ETag"]


def read_state_lock(aws: Aws, env: Environment, unit: str) -> dict | None:
    """The terraform lock on a unit's state, if one is held: its Info (ID, Who, Operation, Created),
    from the lock file beside the state or the DynamoDB lock table."""
    b = env.backend
    key = state_key(env, unit)
    if b.locking == "dynamodb":
        ddb = aws.client("dynamodb", b.region)
        item = ddb.get_item(TableName=b.dynamodb_table, Key={"LockID": {"S": f"{b.bucket}/{key}"}}).get("Item")
        return json.loads(item["Info"]["S"]) if item and "Info" in item else None
    s3 = aws.client("s3", b.region)
    try:
        return json.loads(s3.get_object(Bucket=b.bucket, Key=key + ".tflock")["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def copies(aws: Aws, env: Environment) -> list[str]:
    """env_ids of the environment's copies with any state object (keys only: one listing)."""
    s3 = aws.client("s3", env.backend.region)
    found = set()
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=env.backend.bucket, Prefix=env.backend.key_prefix + "/"
    ):
        for obj in page.get("Contents", []):
            parsed = parse_state_key(env.backend.key_prefix, obj["Key"])
            if parsed and _mine(env, parsed[0]):
                found.add(parsed[0])
    return sorted(found)


def units_with_state(aws: Aws, env: Environment, skip=()) -> list[str]:
    """Every unit of this copy, but those in `skip`, whose state object holds resources or
    outputs (one listing, then a read of each unit not skipped: a deploy reads none of its own)."""
    skip = set(skip)
    s3 = aws.client("s3", env.backend.region)
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=env.backend.bucket, Prefix=f"{env.backend.key_prefix}/{env.env_id}/"
    ):
        for obj in page.get("Contents", []):
            parsed = parse_state_key(env.backend.key_prefix, obj["Key"])
            if not parsed or parsed[0] != env.env_id or parsed[1] in skip:
                continue
            if read_state_outputs(aws, env, parsed[1]) is not None:
                found.append(parsed[1])
    return sorted(found)


def stranded_units(aws: Aws, env: Environment, known) -> list[str]:
    """Units with state in the bucket that the manifest does not name (renamed or removed)."""
    return units_with_state(aws, env, skip=known)


def stranded_message(env: Environment, units: list[str]) -> str:
    """What is stranded, and the commands that fix it (said once, here)."""
    keys = ", ".join(f"s3://{env.backend.bucket}/{state_key(env, u)}" for u in units)
    first = units[0]
    return (
        f"state of unit(s) {', '.join(units)} that the manifest does not name: {keys}. Renamed? Move the state "
        f"to the new name before deploying it: aws s3 mv s3://{env.backend.bucket}/{state_key(env, first)} "
        f"s3://{env.backend.bucket}/{state_key(env, '<new name>')}. Removed? Restore its [units.{first}] table and "
        f"run: orchestrator teardown {env.cli_args} --only {first}"
    )


def require_deployed(aws: Aws, env: Environment, units) -> dict[str, dict | None]:
    """Each unit's outputs (None: no state); NotDeployed when no unit of this copy has state."""
    from orchestrator.errors import NotDeployed

    require_bucket(aws, env)
    outputs = {u: read_state_outputs(aws, env, u) for u in units}
    if all(v is None for v in outputs.values()):
        others = [c for c in copies(aws, env) if c != env.env_id]
        raise NotDeployed(
            f"{env.env_id} is not deployed: no unit has state in {env.backend.bucket}"
            + (f" (deployed copies of {env.name}: {', '.join(others)})" if others else "")
        )
    return outputs


def parse_run_key(prefix: str, key: str) -> tuple[str, str] | None:
    """(env_id, name) of a run record's key (journal.json, run.lock), None for anything else."""
    parts = key[len(prefix) + 1 :].split("/") if key.startswith(prefix + "/") else []
    return (parts[1], parts[2]) if len(parts) == 3 and parts[0] == RUNS else None


def _mine(env: Environment, env_id: str) -> bool:
    return env_id == env.name or env_id.startswith(env.name + "-")


def inventory(aws: Aws, env: Environment, env_id: str | None = None) -> list[dict]:
    """Every copy of the environment (or the one copy env_id) that has state, a run recorded or a
    lock: {environment, units (with state), last_run, health (the last `health`), run_lock,
    state_locks {unit: lock info}}.
    A copy whose last run was a teardown that finished, with nothing left and no lock, is gone."""
    b = env.backend
    s3 = aws.client("s3", b.region)
    found: dict[str, dict] = {}

    def copy(eid: str) -> dict:
        return found.setdefault(
            eid,
            {"environment": eid, "units": [], "last_run": None, "health": None, "run_lock": None, "state_locks": {}},
        )

    def read(key: str) -> dict:
        return json.loads(s3.get_object(Bucket=b.bucket, Key=key)["Body"].read())

    prefixes = [f"{b.key_prefix}/{env_id}/", f"{b.key_prefix}/{RUNS}/{env_id}/"] if env_id else [b.key_prefix + "/"]
    for prefix in prefixes:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                lock = key.endswith(".tfstate.tflock")
                state = parse_state_key(b.key_prefix, key[: -len(".tflock")] if lock else key)
                run = None if state else parse_run_key(b.key_prefix, key)
                eid = (state or run or ("",))[0]
                if not eid or not _mine(env, eid) or (env_id and eid != env_id):
                    continue
                try:
                    doc = read(key)
                except s3.exceptions.NoSuchKey:  # released or deleted since the listing
                    continue
                if lock:
                    copy(eid)["state_locks"][state[1]] = _lock_info(doc)
                elif state:
                    if doc.get("resources"):
                        copy(eid)["units"].append(state[1])
                elif run[1] == JOURNAL_NAME and doc.get("runs"):
                    copy(eid)["last_run"] = doc["runs"][-1]
                    copy(eid)["health"] = doc.get("health")
                elif run[1] == RUN_LOCK_NAME:
                    copy(eid)["run_lock"] = doc
    if b.locking == "dynamodb":
        _dynamodb_locks(aws, env, env_id, copy)
    out = []
    for c in sorted(found.values(), key=lambda c: c["environment"]):
        last = c["last_run"] or {}
        gone = not c["units"] and not c["run_lock"] and not c["state_locks"]
        if gone and (not last or (last.get("command") == "teardown" and last.get("result") == "ok")):
            continue
        c["units"].sort()
        out.append(c)
    return out


def _lock_info(doc: dict) -> dict:
    return {k: doc.get(k) for k in ("ID", "Operation", "Who", "Created")}


def _dynamodb_locks(aws: Aws, env: Environment, env_id: str | None, copy) -> None:
    b = env.backend
    ddb = aws.client("dynamodb", b.region)
    for page in ddb.get_paginator("scan").paginate(TableName=b.dynamodb_table):
        for item in page.get("Items", []):
            lock_id, info = item.get("LockID", {}).get("S", ""), item.get("Info", {}).get("S")
            parsed = parse_state_key(b.key_prefix, lock_id.removeprefix(b.bucket + "/"))
            if info and parsed and _mine(env, parsed[0]) and (not env_id or parsed[0] == env_id):
                copy(parsed[0])["state_locks"][parsed[1]] = _lock_info(json.loads(info))


class StateStore:
    """One environment's objects in the state bucket, as a run reads and writes them."""

    def __init__(self, aws: Aws, env: Environment, emulator_url: str | None = None):
        self.aws = aws
        self.env = env
        self.emulator_url = emulator_url
        self._key_arn: str | None = None

    def key_arn(self) -> str:
        """The backend's KMS key; first checks that the bucket is there (one clear error if not)."""
        if self._key_arn is None:
            require_bucket(self.aws, self.env)
            self._key_arn = resolve_key_arn(self.aws, self.env)
        return self._key_arn

    def outputs(self, unit: str) -> dict | None:
        return read_state_outputs(self.aws, self.env, unit)

    def lock(self, unit: str) -> dict | None:
        return read_state_lock(self.aws, self.env, unit)

    def state_version(self, unit: str) -> tuple[str, int] | None:
        """(lineage, serial) of the unit's state: any write to it changes this."""
        state = read_state(self.aws, self.env, unit)
        if state is None:
            return None
        return state.get("lineage", ""), state.get("serial", 0)

    def backend_config(self, unit: str) -> dict[str, object]:
        return backend_config(self.env, unit, self.key_arn(), self.emulator_url)

    def state(self, unit: str) -> dict | None:
        return read_state(self.aws, self.env, unit)

    def stranded(self, known) -> list[str]:
        return stranded_units(self.aws, self.env, known)

    # ---- what teardown kept (keep_on_teardown) ------------------------------------------
    def kept(self) -> list[dict]:
        return read_kept(self.aws, self.env)

    def add_kept(self, entries: list[dict]) -> None:
        """Records resources teardown leaves in AWS (before it takes them out of state: a run that
        dies between the two leaves a record of a resource still in state, never an unrecorded one)."""
        have = self.kept()
        known = {(e["unit"], e["address"], e["arn"]) for e in have}
        new = have + [e for e in entries if (e["unit"], e["address"], e["arn"]) not in known]
        s3 = self.aws.client("s3", self.env.backend.region)
        body = json.dumps({"kept": new}, indent=2, sort_keys=True).encode()
        put_run_record(s3, self.env, run_key(self.env, KEPT_NAME), body, self.key_arn())

    # ---- saved plans of `unit plan` / `unit apply` --------------------------------------
    def put_plan(self, run_id: str, unit: str, plan_file, meta: dict) -> None:
        """The plan file (None: a plan without changes, the record says so) and its record, SSE-KMS
        with the backend's key (the record last: a record names a plan that is there)."""
        s3 = self.aws.client("s3", self.env.backend.region)
        if plan_file is not None:
            body = plan_file.read_bytes()
            put_run_record(s3, self.env, plan_key(self.env, run_id, unit, "tfplan"), body, self.key_arn())
        doc = json.dumps(meta, indent=2, sort_keys=True).encode()
        put_run_record(s3, self.env, plan_key(self.env, run_id, unit, "json"), doc, self.key_arn())

    def plan_meta(self, run_id: str, unit: str) -> dict | None:
        s3 = self.aws.client("s3", self.env.backend.region)
        try:
            body = s3.get_object(Bucket=self.env.backend.bucket, Key=plan_key(self.env, run_id, unit, "json"))
        except s3.exceptions.NoSuchKey:
            return None
        return json.loads(body["Body"].read())

    def get_plan(self, run_id: str, unit: str, target) -> None:
        s3 = self.aws.client("s3", self.env.backend.region)
        body = s3.get_object(Bucket=self.env.backend.bucket, Key=plan_key(self.env, run_id, unit, "tfplan"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body["Body"].read())

    def delete_plans(self) -> int:
        """Every saved plan of this copy, every version (after its teardown); how many objects."""
        return self._delete_every_version(f"{plans_prefix(self.env)}{self.env.env_id}/")

    def put_review(self, run_id: str, unit: str, doc: dict) -> None:
        s3 = self.aws.client("s3", self.env.backend.region)
        body = json.dumps(doc, indent=2, sort_keys=True).encode()
        put_run_record(s3, self.env, review_key(self.env, run_id, unit), body, self.key_arn())

    def reviews(self, run_id: str) -> list[dict]:
        """Every unit's plan summary of a pipeline run, by unit name."""
        s3 = self.aws.client("s3", self.env.backend.region)
        prefix = review_key(self.env, run_id)
        out = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.env.backend.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                out.append(json.loads(s3.get_object(Bucket=self.env.backend.bucket, Key=obj["Key"])["Body"].read()))
        return sorted(out, key=lambda d: d.get("unit", ""))

    def delete_reviews(self) -> int:
        """Every plan summary of this copy, every version (after its teardown); how many objects."""
        return self._delete_every_version(run_key(self.env, "reviews/"))

    def _delete_every_version(self, prefix: str) -> int:
        """Every version and delete marker under the prefix; how many objects were live."""
        s3 = self.aws.client("s3", self.env.backend.region)
        live = 0
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=self.env.backend.bucket, Prefix=prefix):
            live += sum(1 for v in page.get("Versions", []) if v.get("IsLatest"))
            for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                s3.delete_object(Bucket=self.env.backend.bucket, Key=v["Key"], VersionId=v["VersionId"])
        return live

    def delete_plan(self, run_id: str, unit: str) -> None:
        """Every version of the plan and its record: a plan applied is gone, not a noncurrent version."""
        s3 = self.aws.client("s3", self.env.backend.region)
        for ext in ("tfplan", "json"):
            key = plan_key(self.env, run_id, unit, ext)
            listing = s3.list_object_versions(Bucket=self.env.backend.bucket, Prefix=key)
            for v in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
                if v["Key"] == key:
                    s3.delete_object(Bucket=self.env.backend.bucket, Key=key, VersionId=v["VersionId"])

    # ---- the audit bucket: records written once (If-None-Match), under Object Lock --------------
    def put_audit(self, key: str, doc: dict) -> bool:
        """A new audit record; False (nothing written) if the key exists: S3 refuses it (412), a
        record is never rewritten."""
        try:
            self.aws.client("s3").put_object(
                Bucket=self.env.audit.bucket,
                Key=key,
                Body=json.dumps(doc, sort_keys=True).encode(),
                ServerSideEncryption="aws:kms",
                SSEKMSKeyId=self.key_arn(),
                ContentType="application/json",
                IfNoneMatch="*",
                # S3 requires an integrity checksum on every upload to a bucket with Object Lock
                # (docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html); boto3
                # before 1.36 sends none by default, and pyproject allows >= 1.34.
                ChecksumAlgorithm="SHA256",
            )
        except Exception as exc:  # noqa: BLE001 - named below, one line
            code = error_code(exc) if hasattr(exc, "response") else type(exc).__name__
            if code in CONDITION_FAILED:
                return False
            if code in ("NoSuchBucket", "404"):
                raise BackendError(
                    f"audit bucket {self.env.audit.bucket} does not exist; run: orchestrator bootstrap {self.env.cli_args}"
                ) from None
            raise BackendError(f"cannot write audit record {key} to {self.env.audit.bucket}: {code}") from None
        return True

    def audit_keys(self, days: list[str] | None = None) -> list[str]:
        """Every audit record's key of this environment (or of these days), oldest first."""
        s3 = self.aws.client("s3")
        out = []
        for prefix in [audit_prefix(self.env, d) for d in days] if days else [audit_prefix(self.env)]:
            try:
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.env.audit.bucket, Prefix=prefix):
                    out += [o["Key"] for o in page.get("Contents", [])]
            except Exception as exc:  # noqa: BLE001
                if error_code(exc) in ("NoSuchBucket", "404"):
                    raise BackendError(
                        f"audit bucket {self.env.audit.bucket} does not exist; run: orchestrator bootstrap {self.env.cli_args}"
                    ) from None
                raise
        return sorted(out)

    def get_audit(self, key: str) -> dict:
        body = self.aws.client("s3").get_object(Bucket=self.env.audit.bucket, Key=key)["Body"].read()
        return json.loads(body)
