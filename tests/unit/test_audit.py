"""orchestrator.state.audit without AWS: records written once, a killed run's end written by the next
run, secrets redacted, the trail read back as rows and CSV."""

from __future__ import annotations

import csv
import io
import subprocess
from dataclasses import replace

import pytest

from orchestrator.core.runner import Status, UnitResult
from orchestrator.errors import BackendError, ConfigError
from orchestrator.model.config import AuditSettings, BackendSettings, Environment
from orchestrator.policy import policies
from orchestrator.redact import Redactor
from orchestrator.state import audit
from orchestrator.state.statestore import audit_key, parse_audit_key

ENV = Environment(
    "prod", None, "us-east-1", "123456789012", "pay", "p", "r", "o", True,
    BackendSettings("bucket", "payments", "us-east-1", "alias/x"), {},
    audit=AuditSettings("bucket-audit"),
)  # fmt: skip


class MemoryStore:
    """put_audit refuses an existing key (False, nothing written), as S3's If-None-Match does."""

    def __init__(self):
        self.objects: dict[str, dict] = {}

    def put_audit(self, key, doc):
        if key in self.objects:
            return False
        self.objects[key] = doc
        return True

    def audit_keys(self, days=None):
        return sorted(self.objects)

    def get_audit(self, key):
        return self.objects[key]


def trail(store, env=ENV, redactor=None, t=1_800_000_000.0):
    clock = iter(t + i for i in range(1000))
    return audit.AuditTrail(
        store, env, redactor or Redactor(), identity="arn:aws:sts::123456789012:assumed-role/deploy/ci",
        git={"commit": "abc123", "dirty": False}, actor={"GITHUB_ACTOR": "octo"}, clock=lambda: next(clock),
    )  # fmt: skip


def applied(unit: str, digest: str) -> UnitResult:
    r = UnitResult(unit, status=Status.SUCCEEDED, add=2, plan_digest=digest, confirmed_by="CI (octo)")
    r.policies = [policies.Verdict("stateful_replace", "deny", f"aws_rds_cluster.{unit}", "replaces", "CHG-1 upgrade")]
    return r


def test_a_key_says_where_and_when_and_reads_back():
    key = audit_key(replace(ENV, suffix="pr7"), 1_800_000_000.0, "run.1_a", "job-apply-app-start")
    assert key == "payments/prod/2027-01-15/prod-pr7/080000/run.1_a/job-apply-app-start.json"
    assert parse_audit_key(ENV, key) == {
        "day": "2027-01-15",
        "copy": "prod-pr7",
        "time": "080000",
        "run_id": "run.1_a",
        "part": "job-apply-app-start",
    }
    assert parse_audit_key(ENV, "payments/staging/2027-01-15/x/1/r/start.json") is None


def test_a_run_leaves_a_start_and_an_end_and_neither_is_ever_rewritten():
    store = MemoryStore()
    t = trail(store)
    t.start("r1", "deploy", ["env=prod", "reason=CHG-1"])
    t.finish("changed", [applied("database", "d" * 64)])
    t.finish("changed", [])  # a second finish writes nothing
    assert [parse_audit_key(ENV, k)["part"] for k in store.objects] == ["start", "end"]  # in the order written
    end = next(v for k, v in store.objects.items() if k.endswith("/end.json"))
    assert end["units"][0]["plan_sha256"] == "d" * 64
    assert end["units"][0]["policies"][0]["override"] == "CHG-1 upgrade"
    before = dict(store.objects)
    again = trail(store)
    with pytest.raises(BackendError, match="the key exists"):
        again.start("r1", "deploy", [])  # the same run, the same second: refused, never replaced
    assert store.objects == before


def test_a_ci_job_re_run_in_the_same_second_is_the_next_attempt_and_its_end_follows_it():
    """GitHub's re-run and GitLab's retry keep the pipeline's run id: the second attempt of a job
    writes beside the first, never over it, and never fails the job."""
    store = MemoryStore()
    first = trail(store)
    first.start("4242", "unit plan", ["unit=app"], part="job-plan-app")  # refused later: no end
    second = trail(store)
    second.start("4242", "unit plan", ["unit=app"], part="job-plan-app")
    second.finish("no changes")
    parts = [parse_audit_key(ENV, k)["part"] for k in store.objects]
    assert parts == ["job-plan-app-start", "job-plan-app.2-start", "job-plan-app.2-end"]
    assert store.objects[next(k for k in store.objects if k.endswith(".2-start.json"))]["run_id"] == "4242"


def test_a_killed_runs_end_is_written_by_the_next_run_of_the_same_copy_only():
    store = MemoryStore()
    trail(store).start("dead", "deploy", [])  # kill -9: no end
    other = trail(store, env=replace(ENV, suffix="pr1"))
    other.start("elsewhere", "deploy", [])  # another copy's run, maybe still running
    nxt = trail(store, t=1_800_000_100.0)
    nxt.start("next", "deploy", [])
    assert nxt.recover() == ["dead"]
    ends = [v for k, v in store.objects.items() if k.endswith("/end.json")]
    assert [(e["run_id"], e["result"], e["recovered_by"]) for e in ends] == [("dead", "never finished", "next")]
    assert nxt.recover() == []  # written once


def test_no_secret_reaches_a_record():
    store = MemoryStore()
    redactor = Redactor()
    redactor.add("s3cr3t-Passw0rd-value")
    t = trail(store, redactor=redactor)
    t.start("r2", "deploy", ["reason=rotated s3cr3t-Passw0rd-value"])
    r = UnitResult("database", status=Status.FAILED, detail="error near s3cr3t-Passw0rd-value")
    t.finish("failed", [r], error="boom s3cr3t-Passw0rd-value")
    assert "s3cr3t-Passw0rd-value" not in repr(store.objects)


def test_the_trail_reads_back_as_one_row_per_unit_and_csv():
    store = MemoryStore()
    t = trail(store)
    t.start("r3", "deploy", [])
    t.finish("changed", [applied("database", "a" * 64), applied("app", "b" * 64)])
    killed = trail(store, t=1_800_000_500.0)
    killed.start("r4", "teardown", [])
    other = trail(store, env=replace(ENV, suffix="pr7"), t=1_800_090_000.0)  # the next day, another copy
    other.start("r5", "deploy", [])
    assert [r["run_id"] for r in audit.select(store, ENV, until="2027-01-15")] == ["r3", "r3", "r4"]
    assert [r["run_id"] for r in audit.select(store, ENV, since="2027-01-16")] == ["r5"]
    assert [r["run_id"] for r in audit.select(store, ENV, copy="prod-pr7")] == ["r5"]
    records = audit.select(store, ENV, copy="prod")
    assert {r["_part"] for r in records} == {""}
    joined = audit.runs(records)
    assert [r["run_id"] for r in joined] == ["r3", "r4"]
    table = audit.rows(joined)
    assert [(r["run_id"], r["unit"], r["plan_sha256"][:1]) for r in table] == [
        ("r3", "database", "a"),
        ("r3", "app", "b"),
        ("r4", "", ""),
    ]
    assert table[2]["result"] == "running or killed (no end record yet)"
    assert [r["unit"] for r in audit.rows(joined, unit="app")] == ["app"]
    assert [r["run_id"] for r in audit.touching(joined, "app")] == ["r3"]  # r4 reached no unit
    assert audit.touching(joined, None) == joined
    lines = audit.to_table(table, "prod").splitlines()
    assert lines[0].split() == ["STARTED", "(UTC)", "COPY", "RUN", "COMMAND", "UNIT", "STATUS", "PLAN", "BY"]
    assert lines[1].split()[1:7] == ["prod", "r3", "deploy", "database", "succeeded", "aaaaaaaaaaaa"], lines[1]
    assert audit.to_table([], "prod").splitlines()[1:] == ["no audit record for prod in that range"]
    parsed = list(csv.DictReader(io.StringIO(audit.to_csv(table))))
    assert parsed[0]["overrides"] == "stateful_replace:aws_rds_cluster.database: CHG-1 upgrade"
    assert parsed[0]["identity"].endswith("assumed-role/deploy/ci") and parsed[0]["ci_actor"] == "octo"


def test_git_state_names_the_commit_and_a_dirty_tree(tmp_path):
    assert audit.git_state(tmp_path) == {"commit": None, "dirty": None}
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "f").write_text("1")
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    clean = audit.git_state(tmp_path)
    assert len(clean["commit"]) == 40 and clean["dirty"] is False
    (tmp_path / "f").write_text("2")
    assert audit.git_state(tmp_path)["dirty"] is True


def test_a_day_is_yyyy_mm_dd_or_one_clear_line():
    audit.check_days("2027-01-15", None)
    with pytest.raises(ConfigError, match=r"^--until 'last week': a day as YYYY-MM-DD$"):
        audit.check_days("2027-01-15", "last week")
