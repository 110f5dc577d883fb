"""Commands that read what is deployed: orphans, envs, outputs, audit, status, doctor, graph."""

from __future__ import annotations

from typing import Optional

import typer

from orchestrator.cli.app import (
    EnvOpt,
    Guard,
    JsonOpt,
    SuffixOpt,
    app,
    command_doc,
    err,
    global_options,
    open_session_,
    read_only_session,
    say_stranded,
)
from orchestrator.errors import (
    BackendError,
    ConfigError,
    PrerequisiteError,
    ProblemsFound,
)
from orchestrator.report.views import orphan_lines


def _one_output(data: dict, unit: str | None, name: str | None):
    if not unit or not name:
        # the example from this stack's own outputs, not the platform's
        example = next(((u, next(iter(v))) for u, v in data.items() if v), ("UNIT", "NAME"))
        raise ConfigError(f"--raw needs UNIT NAME, e.g. orchestrator outputs ... {example[0]} {example[1]} --raw")
    if data[unit] is None:
        raise ConfigError(f"unit {unit} is not deployed")
    if name not in data[unit]:
        raise ConfigError(f"unit {unit} has no output {name!r} (it has: {', '.join(sorted(data[unit])) or 'none'})")
    return data[unit][name]


@app.command()
def orphans(ctx: typer.Context, env: str = EnvOpt, suffix: Optional[str] = SuffixOpt, json_out: bool = JsonOpt):
    """Live resources tagged with the environment that no state file holds (left by a run that died).

    Exit 0: none; 10: some found (listed with type, id, creation time). Nothing is changed.
    Example: orchestrator orphans --env dev --suffix pr42
    """
    with Guard():
        from orchestrator.aws import orphans as orphans_mod
        from orchestrator.report.render import to_json

        with open_session_(ctx, env, suffix) as s:
            from orchestrator.state.runlock import refuse_while_running
            from orchestrator.state.statestore import require_bucket

            require_bucket(s.aws, s.env)
            # What a live run is creating is not in state yet: it would all look orphaned.
            refuse_while_running(s.aws, s.env, "run orphans when it has finished")
            found = orphans_mod.find(s.aws, s.env, s.stack)
            say_stranded(s)
        if json_out:
            typer.echo(to_json(command_doc("orphans", s.env.env_id, orphans=[o.as_dict() for o in found])))
        if not found:
            err(f"no orphans: every live resource tagged for {s.env.env_id} is in a state file")
            return
        err(f"{len(found)} live resource(s) tagged for {s.env.env_id} that no state file holds:")
        for line in orphan_lines(found):
            err(line)
        raise ProblemsFound("")


@app.command()
def envs(
    ctx: typer.Context,
    env: Optional[str] = typer.Option(None, "--env", "-e", help="One environment; every one when omitted."),
    json_out: bool = JsonOpt,
):
    """List the copies of an environment found in the state bucket: those with state, a run recorded
    or a lock, with their units, last run and locks; without --env, of every environment whose
    backend these credentials reach. A copy torn down cleanly is not listed.

    Example: orchestrator envs --env dev; orchestrator envs
    """
    with Guard():
        from orchestrator.errors import BackendError, PrerequisiteError
        from orchestrator.model.config import Project, known_environments
        from orchestrator.report.render import to_json
        from orchestrator.report.views import envs_lines
        from orchestrator.state.statestore import inventory, require_bucket

        names = [env] if env else known_environments(Project.find(global_options(ctx).project_dir).environments_dir)
        found: list[tuple[str, dict]] = []
        for name in names:
            try:
                with read_only_session(ctx, name, None) as s:
                    require_bucket(s.aws, s.env)
                    found += [(name, c) for c in s.redactor.redact_obj(inventory(s.aws, s.env))]
            except (BackendError, PrerequisiteError) as exc:
                if env:
                    raise
                err(f"{name}: {exc.message}")  # another account's, or not bootstrapped: the others still count
        if json_out:
            typer.echo(to_json(command_doc("envs", None, copies=[c for _, c in found])))
            return
        for line in envs_lines(found, env):
            typer.echo(line)


@app.command()
def outputs(
    ctx: typer.Context,
    env: str = EnvOpt,
    unit: Optional[str] = typer.Argument(None, help="One unit; all when omitted."),
    name: Optional[str] = typer.Argument(None, help="One output of that unit."),
    suffix: Optional[str] = SuffixOpt,
    raw: bool = typer.Option(False, "--raw", help="Only the value of UNIT NAME (a string as it is), for scripts."),
    json_out: bool = JsonOpt,
):
    """Show the units' outputs, read from their state.

    Example: orchestrator outputs --env dev network; orchestrator outputs --env dev network vpc_id --raw
    """
    with Guard():
        from orchestrator.report.render import to_json
        from orchestrator.state.statestore import require_deployed

        with read_only_session(ctx, env, suffix) as s:
            units = [unit] if unit else s.stack.graph.order()
            if unit is not None:
                s.stack.graph.require(unit)
            deployed = require_deployed(s.aws, s.env, s.stack.graph.order())
            data = s.redactor.redact_obj({u: deployed[u] for u in units})
            if name or raw:
                value = _one_output(data, unit, name)
                typer.echo(value if isinstance(value, str) else to_json(value).replace("\n", " "))
                return
            if json_out:
                typer.echo(to_json(command_doc("outputs", s.env.env_id, outputs=data)))
                return
            for u, outs in data.items():
                typer.echo(f"{u}:" + ("" if outs is not None else " (not deployed)"))
                for k, v in (outs or {}).items():
                    typer.echo(f"  {k} = {v if isinstance(v, str) else to_json(v).replace(chr(10), ' ')}")


@app.command()
def audit(
    ctx: typer.Context,
    env: str = EnvOpt,
    suffix: Optional[str] = typer.Option(None, "--suffix", "-s", help="Only this copy's runs (default: every copy)."),
    since: Optional[str] = typer.Option(None, "--since", metavar="YYYY-MM-DD", help="From this day (UTC) on."),
    until: Optional[str] = typer.Option(None, "--until", metavar="YYYY-MM-DD", help="Up to this day (UTC), included."),
    unit: Optional[str] = typer.Option(None, "--unit", help="Only runs that planned or applied this unit."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json or csv (one row per unit of each run)."),
):
    """What changed in an environment, by whom, with which plan and verdicts: the audit trail's
    records (written once, under S3 Object Lock; docs/operations.md, "Audit trail").

    Example: orchestrator audit --env prod --since 2026-01-01 --format csv > prod-audit.csv
    """
    with Guard():
        from orchestrator.report.render import to_json
        from orchestrator.state import audit as audit_mod

        if fmt not in ("table", "json", "csv"):
            raise ConfigError(f"unknown format {fmt!r}: table, json or csv")
        audit_mod.check_days(since, until)
        with read_only_session(ctx, env, None) as s:
            if unit is not None:
                s.stack.graph.require(unit)
            copy = s.env.with_suffix(suffix).env_id if suffix else None
            joined = audit_mod.runs(audit_mod.select(s.store, s.env, since, until, copy))
            if fmt == "json":
                typer.echo(to_json(command_doc("audit", s.env.name, runs=audit_mod.touching(joined, unit))))
            else:
                table = audit_mod.rows(joined, unit)
                text = audit_mod.to_csv(table) if fmt == "csv" else audit_mod.to_table(table, s.env.name)
                typer.echo(text, nl=False)


@app.command()
def status(ctx: typer.Context, env: str = EnvOpt, suffix: Optional[str] = SuffixOpt, json_out: bool = JsonOpt):
    """Last run of each unit from the journal: result, when, by whom.

    Example: orchestrator status --env prod
    """
    with Guard():
        from orchestrator.report.render import to_json
        from orchestrator.report.views import status_lines
        from orchestrator.state.journal import Journal
        from orchestrator.state.statestore import inventory, require_deployed

        with read_only_session(ctx, env, suffix) as s:
            doc = Journal.of(s.store, s.redactor, run_id="").load()
            (copy,) = inventory(s.aws, s.env, s.env.env_id) or [{"run_lock": None, "state_locks": {}}]
            locks = {"run_lock": copy["run_lock"], "state_locks": copy["state_locks"]}
            say_stranded(s)
            if not doc["units"] and not copy["run_lock"] and not copy["state_locks"]:
                require_deployed(s.aws, s.env, s.stack.graph.order())  # a copy nobody ran: not deployed
            if json_out:
                journal = {k: doc.get(k) for k in ("runs", "units", "health") if k != "health" or doc.get(k)}
                typer.echo(to_json(command_doc("status", s.env.env_id, **journal, **s.redactor.redact_obj(locks))))
                return
            for line in status_lines(doc, {"environment": s.env.env_id, **locks}, s.env.name, s.stack.graph.order()):
                typer.echo(s.redactor.redact(line))


@app.command()
def doctor(ctx: typer.Context, env: str = EnvOpt, json_out: bool = JsonOpt):
    """Check the machine and the environment: terraform, where each provider comes from, credentials and account,
    backend posture.

    Example: orchestrator doctor --env dev
    """
    with Guard():
        import json as _json

        from orchestrator.cli.doctor import run_checks

        checks = run_checks(global_options(ctx), env)
        if json_out:
            typer.echo(_json.dumps(command_doc("doctor", env, checks=checks), indent=2))
        else:
            for c in checks:
                typer.echo(f"{'ok  ' if c['ok'] else 'FAIL'} {c['check']:<24} {c['detail']}")
        failing = [c["check"] for c in checks if not c["ok"]]
        if failing and set(failing) == {"backend posture"}:
            # as every other command: a backend missing or drifted is exit 4, with the command that fixes it
            raise BackendError(
                f"the state backend of {env} is missing or drifted; run: orchestrator bootstrap --env {env}"
            )
        if failing:
            raise PrerequisiteError("")


@app.command()
def graph(
    ctx: typer.Context,
    fmt: str = typer.Option("text", "--format", "-f", help="text, dot, mermaid, or png/svg (needs graphviz)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write to this file (needed for png/svg)."),
):
    """Show the unit graph.

    Example: orchestrator graph --format mermaid; orchestrator graph -f svg -o units.svg
    """
    with Guard():
        from orchestrator.model.config import Project, load_stack
        from orchestrator.report.render import write_graph

        stack = load_stack(Project.find(global_options(ctx).project_dir).terraform_dir)
        typer.echo(write_graph(stack.graph, fmt, output))
