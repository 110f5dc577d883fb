"""The generated GitHub workflow, run job by job the way GitHub runs it, on this machine.

Each job gets a fresh checkout of the repository's tracked files, an empty work dir, an empty
HOME and its own environment; its `run:` steps run in bash as written. The only thing jobs
share is the moto server playing S3 and AWS. Jobs start when their `needs:` are done, up to
three at a time (the three plan jobs after `apply-security` run side by side), and their
`if:` is evaluated: GitHub's expressions that the generator writes are understood here, any
other expression fails the test. `uses:` steps are the runner's setup: checkout is the fresh
copy, setup-python and setup-terraform are this machine's, configure-aws-credentials points
the job at the emulator; an unknown action fails the test. The step that pip-installs the
orchestrator is not run (this test's own virtualenv is on PATH instead).

One apply job is killed with SIGKILL while terraform applies (its process group: the job's
shell and the orchestrator), then re-run from scratch as "Re-run failed jobs" would. Then the
teardown workflow runs for the closed pull request and leaves nothing.

The project is the fixture stack (four units, a diamond: base -> mid -> leaf, base -> side) with
a [ci] section and one smoke check: the runner is what is under test, and the platform's own
workflow text stays covered by the golden files and actionlint (tests/unit/test_pipeline.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from orchestrator.ci import pipeline
from orchestrator.model.config import Project, load_environment, load_stack
from tests.helpers import FIXTURE_STACK, Cli, CommentsApi, deployed

PR = 7
SUFFIX = f"pr{PR}"
JOB_TIMEOUT = 900.0
RUN_DEADLINE = 1800.0


@dataclass
class Event:
    name: str  # pull_request, push, workflow_dispatch
    number: int | None = None
    inputs: dict = field(default_factory=dict)
    run_id: str = "4242"


@dataclass
class JobRun:
    job: str
    result: str = "pending"  # success, failure, skipped
    started: float = 0.0
    ended: float = 0.0
    outputs: dict = field(default_factory=dict)
    summary: str = ""
    log: str = ""
    attempts: int = 0


# ---- the expressions the generator writes, evaluated as GitHub would ------------------------
_SUFFIX_RE = re.compile(
    r"^github\.event_name == 'pull_request' && format\('pr\{0\}', github\.event\.number\) \|\| (''|inputs\.suffix)$"
)
_NEEDS_RE = re.compile(r"^needs\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_]+) == '([^']*)'$")


RUNNER_TOKEN = "ghs_RUNNERTOKEN0123"  # what ${{ github.token }} is in this runner


def value(expr: str, event: Event, steps: dict) -> str:
    expr = expr.strip()
    if expr == "github.run_id":
        return event.run_id
    if expr == "github.token":
        return RUNNER_TOKEN
    m = _SUFFIX_RE.match(expr)
    if m:
        if event.name == "pull_request":
            return f"pr{event.number}"
        return "" if m.group(1) == "''" else event.inputs.get("suffix", "")
    m = re.fullmatch(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_]+)", expr)
    if m:
        return steps.get(m.group(1), {}).get(m.group(2), "")
    raise AssertionError(f"an expression this runner does not know: {expr!r}")


def render(text: str, event: Event, steps: dict | None = None) -> str:
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: value(m.group(1), event, steps or {}), str(text))


def condition(expr: str | None, failed_ancestor: bool, needs: dict[str, JobRun], event: Event) -> bool:
    if expr is None:  # GitHub's default: success() - every need succeeded
        return all(n.result == "success" for n in needs.values())
    inner = re.fullmatch(r"\$\{\{(.*)\}\}", expr.strip())
    assert inner, f"an if: this runner does not know: {expr!r}"
    ok = True
    for term in (t.strip() for t in inner.group(1).split("&&")):
        if term == "!cancelled()":
            continue
        if term == "!failure()":
            ok = ok and not failed_ancestor
            continue
        m = re.fullmatch(r"github\.event_name == '([a-z_]+)'", term)
        if m:
            ok = ok and event.name == m.group(1)
            continue
        m = _NEEDS_RE.match(term)
        assert m and m.group(1) in needs, f"an if: term this runner does not know: {term!r}"
        ok = ok and needs[m.group(1)].outputs.get(m.group(2)) == m.group(3)
    return ok


# ---- one job, on a machine of its own ---------------------------------------------------------
def checkout(source: Path, target: Path) -> None:
    """The repository's tracked files as they are in the working tree (what a clone holds)."""
    files = subprocess.run(["git", "-C", str(source), "ls-files", "-z"], capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = source / rel
        if src.is_file():
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)


class Runner:
    def __init__(
        self, project: Path, workflow: dict, event: Event, moto_url: str, mirror: str, base: Path, role: str, api: str
    ):
        self.project, self.wf, self.event, self.moto_url, self.mirror, self.base, self.role = (
            project,
            workflow,
            event,
            moto_url,
            mirror,
            base,
            role,
        )
        self.api = api  # GitHub's REST API, as the runner's GITHUB_API_URL
        self.runs: dict[str, JobRun] = {j: JobRun(j) for j in workflow["jobs"]}
        self.kill: dict[str, str] = {}  # job -> unit whose terraform apply is the moment to kill it
        self.killed: list[str] = []
        self._n = 0
        self._lock = threading.Lock()

    def _needs(self, job: str) -> list[str]:
        return list(self.wf["jobs"][job].get("needs", []))

    def _failed_ancestor(self, job: str) -> bool:
        return any(self.runs[n].result == "failure" or self._failed_ancestor(n) for n in self._needs(job))

    def run(self) -> dict[str, JobRun]:
        deadline = time.monotonic() + RUN_DEADLINE
        pending, running = set(self.runs), {}
        with ThreadPoolExecutor(max_workers=3) as pool:
            while pending or running:
                decided = True
                while decided:  # a skipped job decides the jobs that need it at once
                    decided = False
                    for job in sorted(pending):
                        needs = self._needs(job)
                        if any(self.runs[n].result == "pending" for n in needs):
                            continue
                        pending.discard(job)
                        decided = True
                        spec = self.wf["jobs"][job]
                        needed = {n: self.runs[n] for n in needs}
                        if condition(spec.get("if"), self._failed_ancestor(job), needed, self.event):
                            running[pool.submit(self._job, job)] = job
                        else:
                            self.runs[job].result = "skipped"
                if not running:
                    assert not pending, f"jobs that can never start: {sorted(pending)}"
                    break
                done, _ = wait(running, timeout=max(1.0, deadline - time.monotonic()), return_when=FIRST_COMPLETED)
                assert done, f"the workflow ran past {RUN_DEADLINE:.0f} s; still running: {sorted(running.values())}"
                for f in done:
                    f.result()  # an error in the runner itself fails the test here
                    del running[f]
        return self.runs

    def _job(self, job: str) -> None:
        run = self.runs[job]
        run.started = time.monotonic()
        result = self._attempt(job, kill=self.kill.get(job))
        if result == "killed":  # "Re-run failed jobs": the job again, from scratch, elsewhere
            self.killed.append(job)
            result = self._attempt(job)
        run.result, run.ended = result, time.monotonic()

    def _attempt(self, job: str, kill: str | None = None) -> str:
        run, spec = self.runs[job], self.wf["jobs"][job]
        with self._lock:
            self._n += 1
            home = self.base / f"{self._n:02d}-{job}"
        run.attempts += 1
        repo, work = home / "repo", home / "work"
        for d in (repo, work, home / "home"):
            d.mkdir(parents=True)
        out_file, summary_file, event_file = home / "github_output", home / "step_summary.md", home / "event.json"
        out_file.touch()
        summary_file.touch()
        event_file.write_text(json.dumps({"pull_request": {"number": self.event.number}} if self.event.number else {}))
        env = {
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "HOME": str(home / "home"),
            "LANG": "C.UTF-8",
            "ORCHESTRATOR_WORK_DIR": str(work),
            # the runner image's provider mirror (a real runner downloads from the registry)
            "ORCHESTRATOR_PROVIDER_MIRROR": self.mirror,
            "GITHUB_OUTPUT": str(out_file),
            "GITHUB_STEP_SUMMARY": str(summary_file),
            # what GitHub gives every job
            "GITHUB_ACTIONS": "true",
            "GITHUB_API_URL": self.api,
            "GITHUB_REPOSITORY": "acme-payments/payment-platform",
            "GITHUB_RUN_ID": self.event.run_id,
            "GITHUB_EVENT_NAME": self.event.name,
            "GITHUB_EVENT_PATH": str(event_file),
            **{k: render(v, self.event) for k, v in self.wf.get("env", {}).items()},
        }
        steps: dict[str, dict] = {}
        log = []
        for step in spec["steps"]:
            if "uses" in step:
                self._uses(step, repo, env)
                continue
            if step.get("name") == "install the orchestrator":
                assert step["run"] == "python -m pip install --quiet ."
                continue
            script = render(step["run"], self.event, steps)
            before = out_file.read_text()
            step_env = {**env, **{k: render(v, self.event, steps) for k, v in step.get("env", {}).items()}}
            rc, text = self._shell(script, repo, step_env, kill=(kill, work) if kill else None)
            log.append(f"$ {script}\n{text}")
            if rc == "killed":
                run.log = "\n".join(log)
                return "killed"
            if step.get("id"):
                new = out_file.read_text()[len(before) :]
                steps[step["id"]] = dict(line.split("=", 1) for line in new.splitlines() if "=" in line)
            if rc != 0:
                run.log = "\n".join(log)
                return "failure"
        run.outputs = {k: render(v, self.event, steps) for k, v in spec.get("outputs", {}).items()}
        run.summary, run.log = summary_file.read_text(), "\n".join(log)
        return "success"

    def _uses(self, step: dict, repo: Path, env: dict) -> None:
        action = step["uses"]
        if action == "actions/checkout@v4":
            checkout(self.project, repo)
        elif action == "actions/setup-python@v5":
            assert sys.version_info >= (3, 11)
        elif action == "hashicorp/setup-terraform@v3":
            assert step["with"]["terraform_wrapper"] is False  # the wrapper would swallow exit codes
            assert shutil.which("terraform")
        elif action == "aws-actions/configure-aws-credentials@v4":
            assert step["with"]["role-to-assume"] == self.role
            env.update(
                AWS_ACCESS_KEY_ID="test",
                AWS_SECRET_ACCESS_KEY="test",
                AWS_REGION=step["with"]["aws-region"],
                ORCHESTRATOR_EMULATOR_URL=self.moto_url,
            )
        else:
            raise AssertionError(f"an action this runner does not know: {action}")

    def _shell(self, script: str, cwd: Path, env: dict, kill=None):
        proc = subprocess.Popen(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        chunks: list[str] = []
        reader = threading.Thread(target=lambda: chunks.extend(proc.stdout), daemon=True)
        reader.start()
        deadline = time.monotonic() + JOB_TIMEOUT
        killed = False
        while proc.poll() is None:
            if kill and not killed and self._applying(*kill):
                os.killpg(
                    proc.pid, signal.SIGKILL
                )  # the job's shell and the orchestrator; terraform has its own session
                killed = True
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise AssertionError(f"a step ran past {JOB_TIMEOUT:.0f} s: {script}")
            time.sleep(0.05)
        reader.join(timeout=30)
        text = "".join(chunks)
        if kill:
            assert killed, f"the job finished before terraform's apply was seen: {text[-2000:]}"
            return "killed", text
        return proc.returncode, text

    @staticmethod
    def _applying(unit: str, work: Path) -> bool:
        for marker in work.glob(f"envs/*/{unit}/running.json"):
            try:
                if json.loads(marker.read_text()).get("command") == "apply":
                    return True
            except (OSError, ValueError):
                pass
        return False


# ---- the test -------------------------------------------------------------------------------
CI_SECTION = '\n[ci]\nrole_arn = "arn:aws:iam::123456789012:role/fixture-dev-deploy"\n'
SMOKE = '\nsmoke = [{ check = "log_group_exists", name = "base log group", log_group_name = "log_group_name" }]\n'
BUCKET = "fixture-tfstate-dev-123456789012"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The fixture stack as a repository of its own, with a [ci] section and a smoke check."""
    root = tmp_path_factory.mktemp("pipeline-repo") / "repo"
    shutil.copytree(FIXTURE_STACK, root, ignore=shutil.ignore_patterns(".terraform"))
    env = root / "environments" / "dev" / "env.toml"
    env.write_text(env.read_text() + CI_SECTION)
    manifest = root / "terraform" / "stack.toml"
    text = manifest.read_text()
    manifest.write_text(text.replace('[units.base]\npath = "base"\n', '[units.base]\npath = "base"' + SMOKE, 1))
    assert "log_group_exists" in manifest.read_text()
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "fixture"], check=True)
    return root


@pytest.fixture(scope="module")
def cli(project, moto_url, mirror, tmp_path_factory):
    c = Cli(project, tmp_path_factory.mktemp("pipeline-admin"), moto_url, mirror)
    # once, by an administrator, outside the pipeline: the state backend
    assert c("bootstrap", "--env", "dev").exit_code == 0
    return c


def generated(project: Path, name: str) -> tuple[dict, str]:
    found = Project.find(str(project))
    stack = load_stack(found.terraform_dir)
    env = load_environment(found.environments_dir, "dev", stack)
    files = pipeline.files(stack, env, "github")
    return yaml.safe_load(files[f".github/workflows/{name}"]), env.ci.role_arn


def test_the_generated_workflow_deploys_a_copy_job_by_job_and_its_teardown_leaves_nothing(
    project, cli, aws, moto_url, mirror, tmp_path
):
    workflow, role = generated(project, "orchestrator-dev.yml")
    event = Event("pull_request", number=PR, run_id="9001")
    api = CommentsApi(["Looks fine to me"])
    try:
        runner = Runner(project, workflow, event, moto_url, mirror, tmp_path / "deploy", role, api.url)
        runner.kill["apply-base"] = "base"
        runs = runner.run()
    finally:
        api.close()

    failed = {j: r.log[-3000:] for j, r in runs.items() if r.result != "success"}
    assert not failed, failed
    assert runner.killed == ["apply-base"] and runs["apply-base"].attempts == 2
    # every job on a machine of its own: one work dir per attempt
    assert len(list((tmp_path / "deploy").iterdir())) == len(runs) + 1
    # two plan jobs at the same time (mid and side, after apply-base)
    plans = [r for j, r in runs.items() if j.startswith("plan-")]
    overlaps = [
        (a.job, b.job) for a in plans for b in plans if a.job < b.job and a.started < b.ended and b.started < a.ended
    ]
    assert overlaps, [(r.job, r.started, r.ended) for r in plans]
    # what the reviewers read first: every unit's plan, the three whose upstream has no state yet previewed
    assert "### plan `dev-pr7`: 4 unit(s), 3 of them previews" in runs["preview"].summary, runs["preview"].log[-3000:]
    assert "| `leaf` | would change (preview) |" in runs["preview"].summary, runs["preview"].summary
    # then each plan job's summary
    assert "### plan `base` (dev-pr7)" in runs["plan-base"].summary
    assert "aws_cloudwatch_log_group.base" in runs["plan-base"].summary
    # the killed apply, re-run elsewhere: it waited for the terraform that outlived it, found the
    # plan applied and did not apply it twice
    assert re.search(r"apply base \(dev-pr7, run 9001\): (no changes|succeeded)", runs["apply-base"].log)
    assert "PASS" in runs["smoke"].log and "FAIL" not in runs["smoke"].log
    # the review job: one comment on the pull request, the run's review page, posted with the
    # job's token, which its output never shows
    assert (
        runs["review"].result == "success" and "review comment created on GitHub pull request 7" in runs["review"].log
    )
    page = api.comments[1]["body"]
    assert len(api.comments) == 2 and page.startswith("<!-- orchestrator-review:dev-pr7 -->\n")
    assert all(f"| `{u}` |" in page for u in ("base", "mid", "side", "leaf")), page
    assert {h["authorization"] for _, _, h in api.calls} == {f"Bearer {RUNNER_TOKEN}"}
    assert RUNNER_TOKEN not in "".join(r.log for r in runs.values())

    assert deployed(cli("envs", "--env", "dev", "--json").stdout)["dev-pr7"] == sorted(("base", "mid", "side", "leaf"))
    status = json.loads(cli("status", "--env", "dev", "--suffix", SUFFIX, "--json").stdout)
    assert {u: r["run_id"] for u, r in status["units"].items()} == dict.fromkeys(status["units"], "9001")
    assert all(r["status"] in ("succeeded", "no changes") for r in status["units"].values())
    # every saved plan applied is gone
    left = aws("s3").list_object_versions(Bucket=BUCKET, Prefix="fixture/_plans/dev-pr7/")
    assert not left.get("Versions") and not left.get("DeleteMarkers")

    teardown, _ = generated(project, "orchestrator-dev-teardown.yml")
    closed = Runner(
        project, teardown, Event("pull_request", number=PR, run_id="9002"), moto_url, mirror, tmp_path / "td", role, ""
    )
    result = closed.run()["teardown"]
    assert result.result == "success", result.log[-3000:]
    assert "teardown left nothing: no live resource is tagged for dev-pr7" in result.log
    assert "dev-pr7" not in deployed(cli("envs", "--env", "dev", "--json").stdout)
