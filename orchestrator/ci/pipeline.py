"""The unit graph as a CI pipeline (`orchestrator pipeline`): pure, no I/O.

Per unit a plan job and an apply job; a unit's plan needs the apply of each unit it depends on,
its apply needs its plan; a smoke job needs every apply. Each job runs on its own runner and
shares nothing with the others but the state bucket (`unit plan` saves the plan there under
the pipeline's id, `unit apply` takes it from there). Credentials: OIDC, the role named in
[ci] of env.toml. One pipeline per environment copy at a time (GitHub: a concurrency group
that never cancels a run in progress; GitLab: a resource group on the job that starts the
child pipeline). A protected environment's applies wait for an approval (GitHub: the
environment's required reviewers; GitLab: `when: manual` jobs of a protected environment).
Copies of an unprotected environment (pull/merge requests) are torn down when the request
closes.

The output is a function of the manifest and env.toml alone: generating it again gives the
same bytes (tests/golden/ci compares).
"""

from __future__ import annotations

import json
import re

from orchestrator.errors import ConfigError
from orchestrator.model.config import Environment, Stack

FORMATS = ("github", "gitlab")
TERRAFORM = "1.11.4"  # the version these units are tested with (terraform/*/versions.tf: >= 1.11)
PYTHON = "3.12"
LOCK_WAIT = "20m"  # a job waits this long for a state lock or another run of the environment

GITHUB_SUFFIX = "${{ github.event_name == 'pull_request' && format('pr{0}', github.event.number) || '' }}"
GITHUB_TEARDOWN_SUFFIX = (
    "${{ github.event_name == 'pull_request' && format('pr{0}', github.event.number) || inputs.suffix }}"
)


# ---- YAML, written by hand: the same input gives the same bytes, key order as built ----
_INDICATORS = "-?:,[]{}#&*!|>'\"%@`"
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~", ""}


def _scalar(value) -> str:
    """A plain scalar when YAML reads it back as the same string, else double-quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    plain = (
        text.lower() not in _RESERVED
        and text[0] not in _INDICATORS
        and text == text.strip()
        and ": " not in text
        and " #" not in text
        and not text.endswith(":")
        and "\n" not in text
        and not re.fullmatch(r"[-+]?(\.?[0-9][0-9_.:]*([eE][-+]?[0-9]+)?|\.inf|\.nan)", text, re.I)
    )
    return text if plain else json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def _inline(items: list) -> bool:
    """A flow list ([a, b]) only of names: anything else in block style."""
    return all(isinstance(i, str) and re.fullmatch(r"[A-Za-z0-9_.:/-]+", i) for i in items)


def to_yaml(value, indent: int = 0) -> str:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            k = _scalar(key)
            if isinstance(item, str) and "\n" in item and not item.endswith("\n\n") and not item[0].isspace():
                body = "\n".join((pad + "  " + line) if line else "" for line in item.rstrip("\n").split("\n"))
                lines.append(f"{pad}{k}: {'|' if item.endswith(chr(10)) else '|-'}\n{body}")
            elif (isinstance(item, dict) and item) or (isinstance(item, list) and not _inline(item)):
                lines.append(f"{pad}{k}:\n{to_yaml(item, indent + 2)}")
            elif isinstance(item, list):
                lines.append(f"{pad}{k}: [{', '.join(_scalar(i) for i in item)}]")
            elif isinstance(item, dict):
                lines.append(f"{pad}{k}: {{}}")
            elif item is None:
                lines.append(f"{pad}{k}:")
            else:
                lines.append(f"{pad}{k}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                inner = to_yaml(item, indent + 2).split("\n")
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines.extend(inner[1:])
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    return "\n".join(lines)


def document(header: str, body: dict) -> str:
    comments = "".join(f"# {line}".rstrip() + "\n" for line in header.strip("\n").split("\n"))
    return comments + to_yaml(body) + "\n"


# ---- what both engines share ------------------------------------------------------------
def job_id(action: str, unit: str) -> str:
    return f"{action}-{re.sub(r'[^A-Za-z0-9_-]', '-', unit)}"


def _require_ci(env: Environment) -> None:
    if env.ci is None:
        raise ConfigError(
            f"{env.path}: no [ci] table: name the role CI jobs assume by OIDC, e.g. "
            f'[ci] role_arn = "arn:aws:iam::{env.account_id}:role/{env.name_prefix}-{env.name}-deploy" (docs/ci.md)'
        )


def _header(env: Environment, fmt: str, what: str, extra: str = "") -> str:
    return (
        f"{what}\n"
        f"Written by `orchestrator pipeline --env {env.name} --format {fmt}{extra}` from terraform/stack.toml and\n"
        f"environments/{env.name}/env.toml: change those and write it again, do not edit it (docs/ci.md)."
    )


def _cmd(env: Environment, rest: str) -> str:
    return f'orchestrator {rest} --env {env.name} --suffix "$ORCHESTRATOR_SUFFIX"'


# ---- GitHub Actions ----------------------------------------------------------------------
def _role(env: Environment, reads: bool) -> str:
    """Jobs that change nothing in AWS (preflight, plans, smoke) take [ci] plan_role_arn when set."""
    assert env.ci is not None
    return (env.ci.plan_role_arn or env.ci.role_arn) if reads else env.ci.role_arn


def _github_setup(env: Environment, reads: bool = False) -> list[dict]:
    assert env.ci is not None
    return [
        {"uses": "actions/checkout@v4"},
        {"uses": "actions/setup-python@v5", "with": {"python-version": PYTHON}},
        {"uses": "hashicorp/setup-terraform@v3", "with": {"terraform_version": TERRAFORM, "terraform_wrapper": False}},
        {"name": "install the orchestrator", "run": "python -m pip install --quiet ."},
        {
            "uses": "aws-actions/configure-aws-credentials@v4",
            "with": {"role-to-assume": _role(env, reads), "aws-region": env.region},
        },
    ]


def github(stack: Stack, env: Environment) -> str:
    """The deploy workflow: plan and apply per unit in graph order, then the smoke checks."""
    _require_ci(env)
    assert env.ci is not None
    graph = stack.graph
    copies = {} if env.protected else {"pull_request": None}  # a protected environment has no request copies
    on: dict = {"push": {"branches": ["main"]}, **copies, "workflow_dispatch": None}
    ok = "${{ !cancelled() && !failure() }}"
    jobs: dict = {
        # what would fail minutes into an apply (names, image, zone, certificate, quotas), in seconds
        "preflight": {
            "name": "preflight checks",
            "runs-on": env.ci.runs_on,
            "steps": _github_setup(env, reads=True) + [{"run": _cmd(env, "preflight")}],
        }
    }
    # Every unit's plan in the run's summary before anything is applied: on a copy never deployed,
    # the units whose upstream has no state yet are previews (never applied); --changed: a daily
    # run plans only what moved.
    jobs["preview"] = {
        "name": "plan of every unit",
        "runs-on": env.ci.runs_on,
        "steps": _github_setup(env, reads=True)
        + [{"run": _cmd(env, "plan") + ' --changed --summary "$GITHUB_STEP_SUMMARY" || test $? -eq 2'}],
    }
    for unit in graph.order():
        plan, apply = job_id("plan", unit), job_id("apply", unit)
        needs = sorted(job_id("apply", d) for d in graph.dependencies(unit)) or ["preflight"]
        jobs[plan] = {
            "name": f"plan {unit}",
            "needs": needs,
            "if": ok,
            "runs-on": env.ci.runs_on,
            "outputs": {"changed": "${{ steps.plan.outputs.changed }}"},
            "steps": _github_setup(env, reads=True)
            + [
                {
                    "id": "plan",
                    "run": _cmd(env, f"unit plan {unit}")
                    + f' --lock-timeout {LOCK_WAIT} --summary "$GITHUB_STEP_SUMMARY" --step-output "$GITHUB_OUTPUT"',
                }
            ],
        }
        jobs[apply] = {
            "name": f"apply {unit}",
            "needs": [plan],
            # nothing to apply: no job (and no approval to wait for); what needs it still runs
            "if": "${{ !cancelled() && !failure() && needs." + plan + ".outputs.changed == 'true' }}",
            "runs-on": env.ci.runs_on,
            "environment": env.name,
            "steps": _github_setup(env)
            + [
                {
                    "run": _cmd(env, f"unit apply {unit}")
                    + f' --lock-timeout {LOCK_WAIT} --summary "$GITHUB_STEP_SUMMARY"'
                }
            ],
        }
    jobs["smoke"] = {
        "name": "smoke checks",
        "needs": sorted(job_id("apply", u) for u in graph.order()),
        "if": ok,
        "runs-on": env.ci.runs_on,
        "steps": _github_setup(env, reads=True) + [{"run": _cmd(env, "smoke")}],
    }
    if not env.protected:
        # One review page of the run's plans, as the pull request's comment: the same comment
        # edited on every push (its first line names the copy), also when a job failed.
        jobs["review"] = {
            "name": "review page",
            "needs": sorted(job_id("plan", u) for u in graph.order()),
            "if": "${{ !cancelled() && github.event_name == 'pull_request' }}",
            "runs-on": env.ci.runs_on,
            "permissions": {"id-token": "write", "contents": "read", "pull-requests": "write"},
            "steps": _github_setup(env, reads=True)
            + [
                {
                    "env": {"GITHUB_TOKEN": "${{ github.token }}"},
                    "run": _cmd(env, 'report --run-id "$ORCHESTRATOR_RUN_ID"') + " --post",
                }
            ],
        }
    body = {
        "name": f"orchestrator: deploy {env.name}",
        "on": on,
        # One run per copy of the environment; a run in progress is never cancelled (an apply
        # cut short leaves a state lock and resources outside state).
        "concurrency": {"group": f"orchestrator-{env.name}-{GITHUB_SUFFIX}", "cancel-in-progress": False},
        "permissions": {"id-token": "write", "contents": "read"},
        "env": {
            "CI": "true",
            "ORCHESTRATOR_RUN_ID": "${{ github.run_id }}",
            "ORCHESTRATOR_SUFFIX": GITHUB_SUFFIX if not env.protected else "",
        },
        "jobs": jobs,
    }
    what = f"Deploys environment {env.name}" + (
        " (protected: each apply waits for the reviewers of GitHub environment " + env.name + ")."
        if env.protected
        else "; a pull request deploys its own copy (suffix pr<number>)."
    )
    return document(_header(env, "github", what), body)


def github_teardown(stack: Stack, env: Environment) -> str:
    """Tears down a pull request's copy when the request closes (or a named copy, by hand)."""
    _require_ci(env)
    assert env.ci is not None
    if env.protected:
        raise ConfigError(f"environment {env.name} is protected: no teardown workflow is written for it")
    guard = (
        'test -n "$ORCHESTRATOR_SUFFIX" || { echo "error: no suffix: this workflow tears down copies only"; exit 1; }'
    )
    body = {
        "name": f"orchestrator: tear down a copy of {env.name}",
        "on": {
            "pull_request": {"types": ["closed"]},
            "workflow_dispatch": {
                "inputs": {
                    "suffix": {"description": "the copy to tear down, e.g. pr42", "required": True, "type": "string"}
                }
            },
        },
        "concurrency": {"group": f"orchestrator-{env.name}-{GITHUB_TEARDOWN_SUFFIX}", "cancel-in-progress": False},
        "permissions": {"id-token": "write", "contents": "read"},
        "env": {"CI": "true", "ORCHESTRATOR_SUFFIX": GITHUB_TEARDOWN_SUFFIX},
        "jobs": {
            "teardown": {
                "name": "teardown",
                "runs-on": env.ci.runs_on,
                "environment": env.name,
                "steps": _github_setup(env)
                + [{"run": guard + "\n" + _cmd(env, "teardown") + f" --yes --lock-timeout {LOCK_WAIT}\n"}],
            }
        },
    }
    what = f"Tears down the copy of {env.name} that a pull request deployed, when the request closes."
    return document(_header(env, "github", what), body)


# ---- GitLab CI ---------------------------------------------------------------------------
def _gitlab_base(env: Environment) -> dict:
    assert env.ci is not None
    return {
        "image": env.ci.gitlab_image,
        # OIDC: the job's ID token, which boto3 and terraform exchange for the role's credentials
        "id_tokens": {"AWS_ID_TOKEN": {"aud": "sts.amazonaws.com"}},
        "variables": {
            "AWS_ROLE_ARN": env.ci.role_arn,
            "AWS_WEB_IDENTITY_TOKEN_FILE": "$CI_PROJECT_DIR/.aws-web-identity-token",
            "AWS_REGION": env.region,
            "CI": "true",
            "ORCHESTRATOR_RUN_ID": "$CI_PIPELINE_ID",
        },
        "before_script": [
            'printf "%s" "$AWS_ID_TOKEN" > "$AWS_WEB_IDENTITY_TOKEN_FILE"',
            f'curl -fsSLo /tmp/terraform.zip "https://releases.hashicorp.com/terraform/{TERRAFORM}/terraform_{TERRAFORM}_linux_amd64.zip"',
            "python -m zipfile -e /tmp/terraform.zip /usr/local/bin/ && chmod +x /usr/local/bin/terraform",
            "python -m pip install --quiet .",
        ],
    }


def gitlab(stack: Stack, env: Environment) -> str:
    """The child pipeline: plan and apply per unit (`needs:` from the graph), smoke, and the
    teardown of a merge request's copy. Started by the job of gitlab_trigger, which holds the
    environment's resource group for the whole child pipeline."""
    _require_ci(env)
    graph = stack.graph
    base = f".orchestrator-{env.name}"
    body: dict = {"stages": ["check", "deploy", "verify", "teardown"], base: _gitlab_base(env)}
    preflight = f"{env.name}:preflight"
    reads = {"AWS_ROLE_ARN": _role(env, True)} if _role(env, True) != _role(env, False) else {}
    body[preflight] = {"extends": base, "stage": "check", "needs": [], "script": [_cmd(env, "preflight")]}
    if reads:
        body[preflight]["variables"] = reads
    # every unit's plan in the job log before anything is applied (previews on a new copy)
    body[f"{env.name}:preview"] = {
        "extends": base,
        "stage": "check",
        "needs": [],
        "script": [_cmd(env, "plan") + " --changed --show || test $? -eq 2"],
        **({"variables": reads} if reads else {}),
    }
    name = "$ORCHESTRATOR_ENVIRONMENT"  # set by the trigger job: dev, or dev/mr<iid> for a request's copy
    for unit in graph.order():
        plan, apply = f"{env.name}:{job_id('plan', unit)}", f"{env.name}:{job_id('apply', unit)}"
        needs = sorted(f"{env.name}:{job_id('apply', d)}" for d in graph.dependencies(unit)) or [preflight]
        body[plan] = {
            "extends": base,
            "stage": "deploy",
            "needs": needs,
            "script": [
                _cmd(env, f"unit plan {unit}") + f" --lock-timeout {LOCK_WAIT} --report plan-{unit}.json",
            ],
            "artifacts": {"reports": {"terraform": f"plan-{unit}.json"}},
            **({"variables": reads} if reads else {}),
        }
        apply_job: dict = {
            "extends": base,
            "stage": "deploy",
            "needs": [plan],
            "script": [_cmd(env, f"unit apply {unit}") + f" --lock-timeout {LOCK_WAIT}"],
            "environment": {"name": name},
        }
        if env.protected:
            # approval: a manual job of a protected environment (allowed deployers and approvers
            # are the protected environment's settings); the pipeline waits for it
            apply_job["when"] = "manual"
            apply_job["allow_failure"] = False
        body[apply] = apply_job
    smoke: dict = {
        "extends": base,
        "stage": "verify",
        "needs": sorted(f"{env.name}:{job_id('apply', u)}" for u in graph.order()),
        "script": [_cmd(env, "smoke")],
        "environment": {"name": name},
        **({"variables": reads} if reads else {}),
    }
    if not env.protected:
        smoke["environment"]["on_stop"] = f"{env.name}:teardown"
        body[f"{env.name}:teardown"] = {
            "extends": base,
            "stage": "teardown",
            "needs": [],
            "rules": [{"if": '$ORCHESTRATOR_SUFFIX != ""', "when": "manual"}],
            "allow_failure": True,
            "script": [
                'test -n "$ORCHESTRATOR_SUFFIX" || { echo "error: no suffix: this job tears down copies only"; exit 1; }',
                _cmd(env, "teardown") + f" --yes --lock-timeout {LOCK_WAIT}",
            ],
            "environment": {"name": name, "action": "stop"},
        }
    body[f"{env.name}:smoke"] = smoke
    if not env.protected:
        # One review page of the pipeline's plans as the merge request's note, edited on every
        # push; ORCHESTRATOR_GITLAB_TOKEN: a project access token (api scope), masked (docs/ci.md).
        body[f"{env.name}:review"] = {
            "extends": base,
            "stage": "verify",
            "needs": [{"job": f"{env.name}:{job_id('plan', u)}", "artifacts": False} for u in graph.order()],
            "rules": [{"if": '$ORCHESTRATOR_MR_IID != ""', "when": "always"}],
            "script": [_cmd(env, 'report --run-id "$ORCHESTRATOR_RUN_ID"') + " --post"],
            **({"variables": reads} if reads else {}),
        }
    what = f"The child pipeline that deploys environment {env.name}" + (
        " (protected: each apply is a manual job of protected environment " + env.name + ")."
        if env.protected
        else "; a merge request deploys its own copy (suffix mr<iid>), torn down when it closes."
    )
    return document(_header(env, "gitlab", what + f"\nStarted by orchestrator-{env.name}.trigger.gitlab-ci.yml."), body)


def gitlab_trigger(stack: Stack, env: Environment) -> str:
    """The job that starts the child pipeline, included from the project's .gitlab-ci.yml. Its
    resource group makes the whole child pipeline the only one of this copy at a time."""
    _require_ci(env)
    main = {"ORCHESTRATOR_SUFFIX": "", "ORCHESTRATOR_ENVIRONMENT": env.name, "ORCHESTRATOR_MR_IID": ""}
    rules: list[dict] = [
        {"if": '$CI_PIPELINE_SOURCE == "schedule"', "when": "never"},  # schedules run `health` only
        {"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", "variables": main},
    ]
    if not env.protected:
        copy = {
            "ORCHESTRATOR_SUFFIX": "mr$CI_MERGE_REQUEST_IID",
            "ORCHESTRATOR_ENVIRONMENT": f"{env.name}/mr$CI_MERGE_REQUEST_IID",
            "ORCHESTRATOR_MR_IID": "$CI_MERGE_REQUEST_IID",  # for the review job of the child pipeline
        }
        rules.insert(1, {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"', "variables": copy})
    body = {
        f"orchestrator-{env.name}": {
            "rules": rules,
            "resource_group": f"orchestrator-{env.name}$ORCHESTRATOR_SUFFIX",
            "trigger": {"include": f"ci/orchestrator-{env.name}.gitlab-ci.yml", "strategy": "depend"},
        }
    }
    what = (
        f"Starts the pipeline of environment {env.name}; include it from .gitlab-ci.yml:\n"
        f"  include: [{{local: ci/orchestrator-{env.name}.trigger.gitlab-ci.yml}}]"
    )
    return document(_header(env, "gitlab", what), body)


CRON_RE = re.compile(r"^\S+( \S+){4}$")


def check_schedule(cron: str | None) -> str | None:
    """Five cron fields (minute hour day month weekday), as both engines take them, in UTC."""
    if cron is not None and not CRON_RE.match(cron.strip()):
        raise ConfigError(
            f'--schedule {cron!r}: five cron fields, e.g. "0 */4 * * *" (minute hour day month weekday, UTC)'
        )
    return cron.strip() if cron else None


def github_health(stack: Stack, env: Environment, cron: str) -> str:
    """The scheduled workflow: `health` of the environment (drift and smoke, alerts on a change of
    state) with the plan role; it changes nothing in AWS."""
    _require_ci(env)
    assert env.ci is not None
    body = {
        "name": f"orchestrator: health of {env.name}",
        "on": {"schedule": [{"cron": cron}], "workflow_dispatch": None},
        # one health at a time; never queued behind another (the next tick runs again)
        "concurrency": {"group": f"orchestrator-{env.name}-health", "cancel-in-progress": False},
        "permissions": {"id-token": "write", "contents": "read"},
        "env": {"CI": "true", "ORCHESTRATOR_RUN_ID": "${{ github.run_id }}"},
        "jobs": {
            "health": {
                "name": f"health of {env.name}",
                "runs-on": env.ci.runs_on,
                "steps": _github_setup(env, reads=True)
                + [{"run": f"orchestrator health --env {env.name} --lock-timeout {LOCK_WAIT}"}],
            }
        },
    }
    what = f"Checks environment {env.name} on a schedule ({cron}, UTC): drift and smoke checks; alerts on a change."
    return document(_header(env, "github", what, f" --schedule '{cron}'"), body)


def gitlab_health(stack: Stack, env: Environment, cron: str) -> str:
    """The job a pipeline schedule runs (GitLab keeps the cron in the schedule itself)."""
    _require_ci(env)
    base = _gitlab_base(env)
    base["variables"] = {
        **base["variables"],
        "AWS_ROLE_ARN": _role(env, True),
        "ORCHESTRATOR_RUN_ID": "$CI_PIPELINE_ID",
    }
    body = {
        f"orchestrator-{env.name}-health": {
            **base,
            "rules": [{"if": '$CI_PIPELINE_SOURCE == "schedule" && $ORCHESTRATOR_HEALTH == "' + env.name + '"'}],
            "resource_group": f"orchestrator-{env.name}-health",
            "script": [f"orchestrator health --env {env.name} --lock-timeout {LOCK_WAIT}"],
        }
    }
    what = (
        f"Checks environment {env.name} on a schedule: include it from .gitlab-ci.yml and create a pipeline\n"
        f'schedule (CI/CD > Schedules) with cron "{cron}" (UTC) and the variable ORCHESTRATOR_HEALTH={env.name}.'
    )
    return document(_header(env, "gitlab", what, f" --schedule '{cron}'"), body)


def files(stack: Stack, env: Environment, fmt: str, schedule: str | None = None) -> dict[str, str]:
    """Every file of the format for the environment, by path relative to the repository root
    (with a schedule: the scheduled health workflow too)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}: github or gitlab")
    cron = check_schedule(schedule)
    if fmt == "github":
        out = {f".github/workflows/orchestrator-{env.name}.yml": github(stack, env)}
        if not env.protected:
            out[f".github/workflows/orchestrator-{env.name}-teardown.yml"] = github_teardown(stack, env)
        if cron:
            out[f".github/workflows/orchestrator-{env.name}-health.yml"] = github_health(stack, env, cron)
        return out
    out = {
        f"ci/orchestrator-{env.name}.gitlab-ci.yml": gitlab(stack, env),
        f"ci/orchestrator-{env.name}.trigger.gitlab-ci.yml": gitlab_trigger(stack, env),
    }
    if cron:
        out[f"ci/orchestrator-{env.name}.health.gitlab-ci.yml"] = gitlab_health(stack, env, cron)
    return out
