"""The audit trail: who changed which environment, when, with which plan, under which policies.

One record when a run (deploy, teardown) or a CI job (unit plan, unit apply) starts and one when
it ends, each a new object in the environment's audit bucket ([audit] of env.toml), written once
(If-None-Match) under S3 Object Lock with a default retention (bootstrap provisions it; PCI DSS
10.5.1 asks for twelve months). A record is never rewritten: a run killed with kill -9 leaves
its start, and the next run of the same copy (which holds the run lock, so the dead one cannot
be running) writes the end it never wrote, saying so.

What a record holds: the run id, the command line, the environment and copy, the caller's AWS
identity (STS), the project's git commit and whether the tree was dirty, the CI actor when in a
pipeline; at the end, per unit: status, counts, the sha256 of the saved plan that was applied,
the policies' verdicts, overrides with their reasons, who confirmed the plan, hooks; the smoke
checks; the result. Every value passes through the run's redactor: no secret is ever in it.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import BackendError, ConfigError

RECORD_VERSION = 1
# A CI system's variables that say who ran the job and where (never a token).
CI_VARIABLES = (
    "GITHUB_ACTOR",
    "GITHUB_TRIGGERING_ACTOR",
    "GITHUB_REPOSITORY",
    "GITHUB_RUN_ID",
    "GITHUB_RUN_ATTEMPT",
    "GITHUB_WORKFLOW",
    "GITHUB_REF",
    "GITHUB_EVENT_NAME",
    "GITLAB_USER_LOGIN",
    "CI_PROJECT_PATH",
    "CI_PIPELINE_ID",
    "CI_JOB_ID",
    "CI_COMMIT_REF_NAME",
    "CI_ENVIRONMENT_NAME",
)


def sha256_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def git_state(root: Path) -> dict:
    """The project's commit and whether its tree has uncommitted changes (None: not a git checkout)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return {
            "commit": commit.stdout.strip(),
            "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None,
        }
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def ci_actor(environ=os.environ) -> dict:
    return {k: environ[k] for k in CI_VARIABLES if environ.get(k)}


def caller(aws) -> str:
    """The caller's identity as STS says (the ARN of the role or user)."""
    try:
        return aws.caller_identity()["Arn"]
    except Exception as exc:  # noqa: BLE001 - recorded as unknown, never fatal here (the account check ran)
        return f"unknown ({type(exc).__name__})"


def unit_record(r) -> dict:
    """What the trail says of one unit of a run: the report's fields, the plan applied, who let it."""
    return {
        **r.fields(),
        "plan_sha256": r.plan_digest,
        "confirmed_by": r.confirmed_by,
        "policies": [v.to_dict() for v in r.policies],
        "hooks": list(r.hooks),
    }


MAX_ATTEMPTS = 50  # one CI job re-run this many times within one second: refused


@dataclass
class AuditTrail:
    """One run's (or one CI job's) records in the environment's audit bucket."""

    store: object  # statestore.StateStore: put_audit, audit_keys, get_audit
    env: object
    redactor: object
    identity: str
    git: dict
    actor: dict
    clock: Callable[[], float] = time.time
    run_id: str = ""
    part: str = ""  # "" for a run; "job-<action>-<unit>" for a CI job
    started: float = 0.0
    finished: bool = False

    def _key(self, run_id: str, started: float, end: bool, part: str = "") -> str:
        from orchestrator.state.statestore import audit_key

        base = part or self.part
        name = f"{base}-end" if base and end else (f"{base}-start" if base else ("end" if end else "start"))
        return audit_key(self.env, started, run_id, name)

    def _put(self, key: str, doc: dict) -> bool:
        return self.store.put_audit(key, self.redactor.redact_obj({"version": RECORD_VERSION, **doc}))

    def start(self, run_id: str, command: str, argv: list[str], part: str = "") -> None:
        """The start record. A CI job re-run keeps its pipeline's run id (GitHub's re-run attempts,
        GitLab's retries): if this second's key is taken, the job is the next attempt
        (`job-plan-app.2`), and its end follows it. A run's id is new, so its key is never taken."""
        self.run_id, self.started = run_id, self.clock()
        doc = {
            "kind": "start",
            "run_id": run_id,
            "command": command,
            "argv": list(argv),
            "environment": self.env.name,
            "copy": self.env.env_id,
            "identity": self.identity,
            "git": self.git,
            "ci": self.actor,
            "started": _iso(self.started),
        }
        for attempt in range(1, MAX_ATTEMPTS + 1) if part else [1]:
            self.part = part if attempt == 1 else f"{part}.{attempt}"
            if self._put(self._key(run_id, self.started, False), doc):
                return
        raise BackendError(f"cannot write audit record {self._key(run_id, self.started, False)}: the key exists")

    def finish(self, result: str, units=(), smoke=(), preflight: str | None = None, error: str = "") -> None:
        """The end record (once): the result, each unit, the smoke checks."""
        if self.finished or not self.run_id:
            return
        self.finished = True
        self._put(
            self._key(self.run_id, self.started, True),
            {
                "kind": "end",
                "run_id": self.run_id,
                "copy": self.env.env_id,
                "identity": self.identity,
                "result": result,
                **({"error": error} if error else {}),
                "units": [unit_record(r) for r in units],
                "smoke": [{"check": c.name, "passed": c.passed, "reason": c.reason} for c in smoke],
                **({"preflight": preflight} if preflight else {}),
                "started": _iso(self.started),
                "ended": _iso(self.clock()),
            },
        )

    def recover(self) -> list[str]:
        """Runs of this copy that started and never ended (killed): their end, written now. Only
        the holder of the copy's run lock calls this, so none of them can still be running."""
        from orchestrator.state.statestore import parse_audit_key

        keys = self.store.audit_keys()
        parsed = [(k, parse_audit_key(self.env, k)) for k in keys]
        ends = {(p["run_id"], p["copy"]) for k, p in parsed if p and p["part"] == "end"}
        done = []
        for key, p in parsed:
            if not p or p["part"] != "start" or p["copy"] != self.env.env_id or p["run_id"] == self.run_id:
                continue
            if (p["run_id"], p["copy"]) in ends:
                continue
            start = self.store.get_audit(key)
            started = _parse_iso(start.get("started"))
            self._put(
                self._key(p["run_id"], started, True),
                {
                    "kind": "end",
                    "run_id": p["run_id"],
                    "copy": self.env.env_id,
                    "identity": self.identity,
                    "result": "never finished",
                    "recovered_by": self.run_id,
                    "units": [],
                    "smoke": [],
                    "started": start.get("started"),
                    "ended": None,
                },
            )
            done.append(p["run_id"])
        return done


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _parse_iso(text) -> float:
    import calendar

    try:
        return float(calendar.timegm(time.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return time.time()


# ---- reading the trail (`orchestrator audit`) -----------------------------------------------------
def runs(records: list[dict]) -> list[dict]:
    """Start and end records joined per run (and per CI job), oldest first."""
    by: dict[tuple, dict] = {}
    for rec in records:
        ident = (rec.get("run_id"), rec.get("copy"), rec.get("_part", ""))
        entry = by.setdefault(ident, {"run_id": rec.get("run_id"), "copy": rec.get("copy"), "start": None, "end": None})
        entry[rec["kind"]] = rec
    return sorted(by.values(), key=lambda e: (e["start"] or e["end"] or {}).get("started") or "")


CSV_COLUMNS = (
    "started",
    "ended",
    "copy",
    "run_id",
    "command",
    "identity",
    "git_commit",
    "git_dirty",
    "ci_actor",
    "result",
    "unit",
    "status",
    "plan_sha256",
    "add",
    "change",
    "destroy",
    "replace",
    "confirmed_by",
    "policies",
    "overrides",
)


def rows(joined: list[dict], unit: str | None = None) -> list[dict]:
    """One row per unit of each run (a run that reached no unit: one row without one)."""
    out = []
    for run in touching(joined, unit):
        start, end = run["start"] or {}, run["end"] or {}
        base = {
            "started": start.get("started") or end.get("started"),
            "ended": end.get("ended") or "",
            "copy": run["copy"],
            "run_id": run["run_id"],
            "command": start.get("command", ""),
            "identity": start.get("identity") or end.get("identity", ""),
            "git_commit": (start.get("git") or {}).get("commit") or "",
            "git_dirty": (start.get("git") or {}).get("dirty"),
            "ci_actor": (start.get("ci") or {}).get("GITHUB_ACTOR")
            or (start.get("ci") or {}).get("GITLAB_USER_LOGIN", ""),
            "result": end.get("result", "running or killed (no end record yet)"),
        }
        units = [u for u in end.get("units") or [] if not unit or u["unit"] == unit]
        for u in units or [None]:
            row = dict(base)
            if u:
                row.update(
                    unit=u["unit"],
                    status=u["status"],
                    plan_sha256=u.get("plan_sha256") or "",
                    add=u["add"],
                    change=u["change"],
                    destroy=u["destroy"],
                    replace=u["replace"],
                    confirmed_by=u.get("confirmed_by") or "",
                    policies="; ".join(f"{p['policy']}:{p['level']}:{p['address']}" for p in u.get("policies", [])),
                    overrides="; ".join(
                        f"{p['policy']}:{p['address']}: {p['override']}"
                        for p in u.get("policies", [])
                        if p.get("override")
                    ),
                )
            out.append({c: row.get(c, "") for c in CSV_COLUMNS})
    return out


def to_csv(table: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    return buf.getvalue()


def to_table(table: list[dict], env_name: str) -> str:
    """`audit`'s table: one line per unit of each run (the newest last)."""
    lines = [
        f"{'STARTED (UTC)':<21} {'COPY':<12} {'RUN':<13} {'COMMAND':<12} {'UNIT':<14} {'STATUS':<11} {'PLAN':<14} BY"
    ]
    for row in table:
        lines.append(
            f"{row['started']:<21} {row['copy']:<12} {row['run_id']:<13} {row['command']:<12} "
            f"{row['unit'] or '-':<14} {row['status'] or row['result']:<11} "
            f"{(row['plan_sha256'] or '-')[:12]:<14} {row['identity']}"
        )
    if not table:
        lines.append(f"no audit record for {env_name} in that range")
    return "\n".join(lines) + "\n"


def check_days(since: str | None, until: str | None) -> None:
    """--since and --until: each a day as YYYY-MM-DD, or one clear line."""
    for name, day in (("--since", since), ("--until", until)):
        if day is not None:
            try:
                datetime.date.fromisoformat(day)
            except ValueError:
                raise ConfigError(f"{name} {day!r}: a day as YYYY-MM-DD") from None


def touching(joined: list[dict], unit: str | None) -> list[dict]:
    """The runs that planned or applied `unit` (every run when it is None)."""
    return [r for r in joined if not unit or any(u["unit"] == unit for u in (r["end"] or {}).get("units", []))]


def select(store, env, since: str | None = None, until: str | None = None, copy: str | None = None) -> list[dict]:
    """The environment's records from `since` to `until` (days, YYYY-MM-DD, both included), of one
    copy (an env_id) or every copy, oldest first; each with `_part` (a CI job's name, or "")."""
    from orchestrator.state.statestore import parse_audit_key

    records = []
    for key in store.audit_keys():
        where = parse_audit_key(env, key)
        if not where or (since and where["day"] < since) or (until and where["day"] > until):
            continue
        if copy and where["copy"] != copy:
            continue
        rec = store.get_audit(key)
        part = where["part"]
        rec["_part"] = "" if part in ("start", "end") else part.rsplit("-", 1)[0]
        records.append(rec)
    return records
