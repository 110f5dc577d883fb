"""CI: `unit plan`/`unit apply` (a job each), the review page (`report`), the generated pipelines."""

from __future__ import annotations

from typing import Optional

import typer

from orchestrator.cli.app import (
    AllowReplaceOpt,
    EnvOpt,
    Guard,
    JobLockOpt,
    JsonOpt,
    OverrideOpt,
    ReasonOpt,
    ReportOpt,
    RunIdOpt,
    SuffixOpt,
    SummaryOpt,
    app,
    err,
    global_options,
    open_session_,
    parse_duration,
    read_only_session,
)
from orchestrator.cli.runs import parse_overrides
from orchestrator.errors import (
    ConfigError,
)

# ---- one unit, one CI job --------------------------------------------------------
unit_app = typer.Typer(
    no_args_is_help=True,
    help="Plan or apply one unit alone, as a CI job does: nothing is kept on this machine between the two.",
    rich_markup_mode=None,
)
app.add_typer(unit_app, name="unit")


def _unit_job(ctx, env, suffix, unit, run_id, lock_timeout, json_out, summary, report_file, act, step_output=None):
    """Both unit commands: the session, the job, its line, its summary, its report, its step output."""
    with Guard():
        import json as _json
        from pathlib import Path

        from orchestrator.ci.unitjobs import UnitJobs, check_run_id
        from orchestrator.report.render import to_json
        from orchestrator.report.views import job_gitlab_report, job_line, job_markdown
        from orchestrator.tf import providers

        check_run_id(run_id)
        wait = parse_duration(lock_timeout)
        for path in (summary, report_file, step_output):
            if path and not Path(path).parent.is_dir():
                raise ConfigError(f"{path}: directory {Path(path).parent} does not exist")
        with open_session_(ctx, env, suffix) as s:
            s.stack.graph.require(unit)
            providers.require_lock_files(s.stack, [unit])
            run_ctx = s.run_context(
                run_id=run_id, parallelism=1, lock_timeout=lock_timeout, on_line=lambda _u, t: err(t), say=err
            )
            trail = s.audit_trail(run_ctx.store)
            action = global_options(ctx).command.split()[-1]  # plan or apply
            trail.start(run_id, f"unit {action}", [f"unit={unit}"], part=f"job-{action}-{unit}")
            try:
                report = act(UnitJobs(run_ctx, lock_wait=wait))
            except BaseException as exc:
                trail.finish("error", error=str(exc) or type(exc).__name__)
                raise
            trail.finish(report.status, [report.result])
            err(s.redactor.redact(job_line(report)))
            if summary:
                with open(summary, "a", encoding="utf-8") as f:
                    f.write(job_markdown(report, s.redactor))
            if report_file:
                Path(report_file).write_text(_json.dumps(job_gitlab_report(report)) + "\n")
            if step_output:
                with open(step_output, "a", encoding="utf-8") as f:
                    f.write(f"changed={'true' if report.status == 'changes' else 'false'}\n")
            if json_out:
                typer.echo(to_json(s.redactor.redact_obj(report.to_dict())))


@unit_app.command("plan")
def unit_plan(
    ctx: typer.Context,
    unit: str = typer.Argument(..., help="The unit to plan."),
    env: str = EnvOpt,
    suffix: Optional[str] = SuffixOpt,
    run_id: Optional[str] = RunIdOpt,
    lock_timeout: str = JobLockOpt,
    summary: Optional[str] = SummaryOpt,
    report_file: Optional[str] = ReportOpt,
    step_output: Optional[str] = typer.Option(
        None, "--step-output", help='Append changed=true|false to this file (GitHub: "$GITHUB_OUTPUT").'
    ),
    json_out: bool = JsonOpt,
):
    """Plan one unit against its upstream's deployed outputs and keep the saved plan in the state
    bucket under the run id (SSE-KMS), for `unit apply` on any machine. Exit 0 with or without changes.

    Example: orchestrator unit plan --env dev --run-id 4242 network --summary "$GITHUB_STEP_SUMMARY"
    """
    _unit_job(
        ctx, env, suffix, unit, run_id, lock_timeout, json_out, summary, report_file, lambda j: j.plan(unit),
        step_output,
    )  # fmt: skip


@unit_app.command("apply")
def unit_apply(
    ctx: typer.Context,
    unit: str = typer.Argument(..., help="The unit to apply."),
    env: str = EnvOpt,
    suffix: Optional[str] = SuffixOpt,
    run_id: Optional[str] = RunIdOpt,
    lock_timeout: str = JobLockOpt,
    override: list[str] = OverrideOpt,
    reason: Optional[str] = ReasonOpt,
    allow_replace: list[str] = AllowReplaceOpt,
    summary: Optional[str] = SummaryOpt,
    report_file: Optional[str] = ReportOpt,
    json_out: bool = JsonOpt,
):
    """Apply exactly the plan `unit plan` saved for this run, then the unit's hooks; record it in the
    journal. A plan made against other upstream outputs, settings or files, or an older state, is
    refused (exit 1, nothing applied); one a deny policy refuses: exit 12, nothing applied.

    Example: orchestrator unit apply --env dev --run-id 4242 network
    """
    accepted = parse_overrides(override, reason, allow_replace)
    _unit_job(
        ctx, env, suffix, unit, run_id, lock_timeout, json_out, summary, report_file,
        lambda j: j.apply(unit, accepted),
    )  # fmt: skip


@app.command()
def report(
    ctx: typer.Context,
    env: str = EnvOpt,
    suffix: Optional[str] = SuffixOpt,
    run_id: Optional[str] = RunIdOpt,
    fmt: str = typer.Option("markdown", "--format", "-f", help="markdown (the only one)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write it to this file; default: print."),
    limit: int = typer.Option(65_000, "--limit", help="At most this many characters (GitHub: 65,536 a comment)."),
    post_comment: bool = typer.Option(
        False,
        "--post",
        help="Post it as the pull/merge request's review comment, editing the one posted before (docs/ci.md).",
    ),
):
    """One review page of a pipeline run: every unit's plan summary that `unit plan` recorded
    (counts; replaced and deleted addresses first; policy verdicts; previews marked), cut per unit
    to fit a pull request comment, never mid-line.

    Example: orchestrator report --env dev --suffix pr42 --run-id 4242 --format markdown
    """
    with Guard():
        from pathlib import Path

        from orchestrator.ci import prcomment
        from orchestrator.ci.unitjobs import check_run_id, recorded_reviews
        from orchestrator.report.views import review_markdown, review_marker

        check_run_id(run_id)
        _check_review_target(fmt, output)
        request = prcomment.request_of() if post_comment else None
        if post_comment and request is None:
            err("report: this job runs for no pull or merge request: nothing to post")
            return
        with read_only_session(ctx, env, suffix) as s:
            if request:
                s.redactor.add(request.token)
            records = recorded_reviews(s.store, s.stack.graph, s.env.env_id, run_id)
            limit = min(limit, request.limit) if request else limit
            text = s.redactor.redact(review_markdown(s.env.env_id, run_id, records, limit))
            told = f"{len(text)} characters, {len(records)} unit(s)"
            if output:
                Path(output).write_text(text)
                err(f"wrote {output} ({told})")
            elif not request:
                typer.echo(text, nl=False)
            if request:
                done = prcomment.post(request, text, review_marker(s.env.env_id))
                err(f"review comment {done} on {request} ({told})")


def _check_review_target(fmt: str, output: Optional[str]) -> None:
    from pathlib import Path

    if fmt != "markdown":
        raise ConfigError(f"unknown format {fmt!r}: markdown")
    if output and not Path(output).parent.is_dir():
        raise ConfigError(f"{output}: directory {Path(output).parent} does not exist")


@app.command()
def pipeline(
    ctx: typer.Context,
    env: str = EnvOpt,
    fmt: str = typer.Option(..., "--format", "-f", help="github (GitHub Actions) or gitlab (GitLab CI)."),
    output_dir: Optional[str] = typer.Option(
        None, "--output-dir", "-o", help="Write the files under this folder (the repository's root); default: print."
    ),
    schedule: Optional[str] = typer.Option(
        None,
        "--schedule",
        metavar="CRON",
        help='Also a scheduled `health` of the environment, e.g. "0 */4 * * *" (UTC): a GitHub workflow, or a GitLab job for a pipeline schedule.',
    ),
):
    """Write the CI pipeline of an environment from the manifest: a plan and an apply job per unit
    in graph order, smoke checks, OIDC credentials ([ci] role_arn of env.toml), one run per copy at
    a time, approvals for protected environments, teardown of request copies. Writing it again
    gives the same bytes.

    Example: orchestrator pipeline --env prod --format github --output-dir .
    """
    with Guard():
        from pathlib import Path

        from orchestrator.ci import pipeline as pipeline_mod
        from orchestrator.model.config import Project, load_environment, load_stack

        project = Project.find(global_options(ctx).project_dir)
        stack = load_stack(project.terraform_dir)
        environment = load_environment(project.environments_dir, env, stack)
        out = pipeline_mod.files(stack, environment, fmt, schedule)
        if output_dir is None:
            for i, (path, text) in enumerate(out.items()):
                typer.echo(("\n" if i else "") + f"# ---- {path}\n" + text, nl=False)
            return
        root = Path(output_dir)
        if root.exists() and not root.is_dir():
            raise ConfigError(f"--output-dir {output_dir}: not a directory")
        for path, text in out.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            same = target.exists() and target.read_text() == text
            if not same:
                target.write_text(text)
            err(f"{target}{' (unchanged)' if same else ''}")
