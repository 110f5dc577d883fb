"""The run journal: per unit, the last status, input fingerprint and outputs,
kept in the state bucket (SSE-KMS, under its own prefix) so `deploy --resume`
can skip what already succeeded with the same inputs, and `status` can say
what ran when and by whom."""

from __future__ import annotations

import getpass
import json
import random
import socket
import threading
import time
import uuid

from orchestrator.aws.clients import Aws
from orchestrator.errors import error_code
from orchestrator.model.config import Environment
from orchestrator.redact import Redactor
from orchestrator.state.statestore import JOURNAL_NAME, put_run_record, run_key

JOURNAL_VERSION = 1


def who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


class Journal:
    @classmethod
    def of(cls, store, redactor: Redactor, run_id: str | None = None) -> Journal:
        """The journal of the store's environment copy (statestore.StateStore), encrypted with its key."""
        return cls(store.aws, store.env, store.key_arn(), redactor, run_id)

    def __init__(self, aws: Aws, env: Environment, key_arn: str, redactor: Redactor, run_id: str | None = None):
        self.s3 = aws.client("s3", env.backend.region)
        self.env = env
        self.bucket = env.backend.bucket
        self.key = run_key(env, JOURNAL_NAME)
        self.key_arn = key_arn
        self.redactor = redactor
        self.lock = threading.Lock()
        self.run_id = run_id or new_run_id()
        self.doc: dict | None = None
        self.writable = lambda: True  # the engine: only while this run holds the run lock

    def load(self) -> dict:
        if self.doc is None:
            try:
                body = self.s3.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
                self.doc = json.loads(body)
            except self.s3.exceptions.NoSuchKey:
                self.doc = {"version": JOURNAL_VERSION, "units": {}, "runs": []}
        return self.doc

    def _save(self) -> None:
        if not self.writable():
            return
        body = json.dumps(self.redactor.redact_obj(self.doc), indent=2, sort_keys=True).encode()
        put_run_record(self.s3, self.env, self.key, body, self.key_arn)

    def start(self, command: str) -> None:
        with self.lock:
            doc = self.load()
            doc["runs"] = (doc.get("runs") or [])[-19:] + [
                {"run_id": self.run_id, "command": command, "who": who(), "started": time.time(), "result": "running"}
            ]
            self._save()

    def finish(self, result: str) -> None:
        with self.lock:
            doc = self.load()
            for run in doc["runs"]:
                if run["run_id"] == self.run_id:
                    run["result"] = result
                    run["ended"] = time.time()
            self._save()

    def record_health(self, health: dict) -> None:
        """The copy's last health (orchestrator.core.health), written by the holder of the run lock."""
        with self.lock:
            doc = self.load()
            doc["health"] = health
            self._save()

    def _unit_record(
        self,
        *,
        command: str,
        status: str,
        fp: str | None,
        outputs: dict | None,
        detail: str = "",
        digests: dict | None = None,
    ) -> dict:
        """`digests`: after a successful apply, what `deploy --changed` compares next time (changes.record)."""
        return {
            "digests": digests,
            "status": status,
            "command": command,
            "fingerprint": fp,
            "outputs": outputs or {},
            "detail": detail,
            "run_id": self.run_id,
            "who": who(),
            "at": time.time(),
        }

    def record(self, unit: str, **fields) -> None:
        """The unit's record (the fields of _unit_record), written by the holder of the run lock."""
        with self.lock:
            doc = self.load()
            doc["units"][unit] = self._unit_record(**fields)
            self._save()

    def record_job(self, unit: str, **fields) -> None:
        """A pipeline job's record (`unit apply`): jobs of one run write side by side from different
        machines without the run lock, so the journal is read, changed and written back only if
        nobody wrote in between (If-Match on the ETag read); on a conflict it is read again.
        The run's entry (command "pipeline") takes the result of its latest job."""
        from botocore.exceptions import ClientError

        from orchestrator.aws.clients import CONDITION_FAILED
        from orchestrator.errors import BackendError

        record = self._unit_record(**fields)
        status = fields["status"]
        for attempt in range(30):
            try:
                obj = self.s3.get_object(Bucket=self.bucket, Key=self.key)
                doc, condition = json.loads(obj["Body"].read()), {"IfMatch": obj["ETag"]}
            except self.s3.exceptions.NoSuchKey:
                doc, condition = {"version": JOURNAL_VERSION, "units": {}, "runs": []}, {"IfNoneMatch": "*"}
            doc["units"][unit] = record
            runs = doc.setdefault("runs", [])
            run = next((r for r in runs if r.get("run_id") == self.run_id), None)
            if run is None:
                run = {"run_id": self.run_id, "command": "pipeline", "who": who(), "started": time.time()}
                doc["runs"] = runs[-19:] + [run]
            run.update(result="failed" if status == "failed" else "ok", ended=time.time())
            body = json.dumps(self.redactor.redact_obj(doc), indent=2, sort_keys=True).encode()
            try:
                put_run_record(self.s3, self.env, self.key, body, self.key_arn, **condition)
                self.doc = doc
                return
            except ClientError as exc:
                if error_code(exc) not in CONDITION_FAILED:
                    raise
            time.sleep(random.uniform(0.05, 0.25) * min(attempt + 1, 8))
        raise BackendError(
            f"the journal {self.key} kept changing under this job (30 attempts); unit {unit} not recorded"
        )
