"""What the operator sees of a run: live progress, the confirmation prompt, the summary,
the report files. The CLI parses and calls; this module renders; outcomes leave as typed
errors (errors.py), never as bare exit codes.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

import typer

from orchestrator.errors import ChangesFound, ConfigError, Declined, HookError, PolicyDenied, RunFailed
from orchestrator.state.locks import StateLock


def err(message: str) -> None:
    typer.echo(message, err=True)


def ci() -> bool:
    """CI=true/1/yes (any case) means an unattended run; CI=false, 0 or empty does not."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


class LiveProgress:
    """On a terminal: one line per unit, status and elapsed time, updated in place."""

    def __init__(self, units: list[str]):
        from rich.console import Console
        from rich.live import Live

        self.units = units
        self.state: dict[str, tuple[str, float | None, float | None]] = {u: ("pending", None, None) for u in units}
        self.lock = threading.Lock()
        self.live = Live(get_renderable=self.render, console=Console(stderr=True), refresh_per_second=4)
        self.started = False

    def render(self):
        import time as _time

        from rich.table import Table

        colours = {
            "running": "cyan",
            "succeeded": "green",
            "no changes": "bright_black",
            "failed": "red",
            "skipped": "yellow",
            "pending": "bright_black",
        }
        table = Table(box=None, show_header=False, pad_edge=False)
        with self.lock:
            for unit in self.units:
                status, start, end = self.state[unit]
                elapsed = "" if start is None else f"{(end or _time.monotonic()) - start:6.1f}s"
                table.add_row(unit, f"[{colours.get(status, 'white')}]{status}[/]", elapsed)
        return table

    def on_start(self, unit):
        import time as _time

        with self.lock:
            if not self.started:
                self.live.start()
                self.started = True
            self.state[unit] = ("running", _time.monotonic(), None)

    def on_finish(self, result):
        import time as _time

        with self.lock:
            start = self.state.get(result.unit, ("", None, None))[1]
            self.state[result.unit] = (result.status.value, start, _time.monotonic() if start else None)

    def narrow(self, units: list[str]) -> None:
        """Only the units this run touches (--only): the others are never shown as pending."""
        with self.lock:
            self.units = [u for u in self.units if u in set(units)]

    def stop(self):
        if self.started:
            self.live.stop()


_LIVE: list[LiveProgress] = []


def narrow(units) -> None:
    """The live display shows these units alone (the run's selection, known once it is checked)."""
    for live in _LIVE:
        live.narrow(list(units))


def progress(events: bool, units: list[str]):
    """Live lines on a terminal; plain timestamped lines in CI or without a TTY;
    with --events also NDJSON events on stdout."""
    import json as _json
    import time as _time

    from orchestrator.report.render import event, ts, unit_line

    lock = threading.Lock()
    live = LiveProgress(units) if sys.stderr.isatty() and not ci() else None
    if live:
        _LIVE.append(live)

    def emit(obj):
        if events:
            with lock:
                typer.echo(_json.dumps(obj))

    def on_start(unit):
        if live:
            live.on_start(unit)
        else:
            err(f"[{ts()}] {unit:<14} started")
        emit({"event": "unit_started", "unit": unit, "at": _time.time()})

    def on_finish(result):
        if live:
            live.on_finish(result)
        else:
            err(unit_line(result))
        emit(event("unit_finished", result))

    return on_start, on_finish


SHOWN = 25  # resources listed before "... and N more"
SHOWN_LINES = 80  # lines of the plan's diff shown at the prompt before "... and N more lines"


def confirm_factory(yes: bool):
    """The prompt, or None when nobody is asked (--yes, CI). The live display pauses while a plan
    is shown and the operator answers, so the question stays on the screen."""
    if yes or ci():
        return None
    if not sys.stdin.isatty():
        raise ConfigError("changes need confirmation but stdin is not a terminal: pass --yes")

    def confirm(unit, summary, log_path: str) -> bool:
        with paused_live():
            err(f"{unit}: plan {summary.text()}")
            lines = summary.diff.splitlines()
            if lines:  # each resource with the attributes that change (redacted)
                for line in lines[:SHOWN_LINES]:
                    err(f"    {line}")
                if len(lines) > SHOWN_LINES:
                    err(f"    ... and {len(lines) - SHOWN_LINES} more lines (the full plan: {log_path})")
            else:
                for c in summary.resources[:SHOWN]:
                    err(f"    {'/'.join(c['actions']):<15} {c['address']}")
                if len(summary.resources) > SHOWN:
                    err(f"    ... and {len(summary.resources) - SHOWN} more (the full plan: {log_path})")
            question = (
                f"destroy {unit}?"
                if summary.destroy and not (summary.add or summary.change)
                else f"apply this plan to {unit}?"
            )
            return typer.confirm(question, default=False, err=True)

    return confirm


@contextlib.contextmanager
def paused_live():
    """The live progress display stopped (its last frame stays) and started again afterwards."""
    paused = [live for live in _LIVE if live.started]
    for live in paused:
        live.live.stop()
    try:
        yield
    finally:
        for live in paused:
            live.live.start()


def finish(report, s, json_mode: bool, order: list[str], *, exit_changed: bool = False, show: bool = False) -> None:
    from orchestrator.core.runner import Status
    from orchestrator.report.render import failure_block, report_dict, summary_table, to_json

    while _LIVE:
        _LIVE.pop().stop()
    for unit in order:
        r = report.units[unit]
        if r.status is Status.FAILED:
            err(f"\n--- {unit} failed (full log: {r.log_path}) ---")
            err(s.redactor.redact(failure_block(r)))
    for unit in order if show else ():
        if report.units[unit].diff:
            err(f"\n--- {unit}: plan (full log: {report.units[unit].log_path}) ---")
            err(s.redactor.redact(report.units[unit].diff))
    err("")
    for note in report.notes:
        err(note)
    err(summary_table(report.units, order, report.command))
    if report.preflight is not None:
        err(f"preflight: {report.preflight['summary']}")
    for c in report.smoke:
        err(f"smoke {'PASS' if c.passed else 'FAIL'} {c.name}: {c.reason}")
    for unit in order:  # what passed with a warning or an override: said, and in the report
        for v in report.units[unit].policies:
            if not v.denied:
                err(f"{unit}: {v.line()}")
    data = report_dict(report, order, s.redactor)
    if report.command in ("deploy", "teardown"):
        err(f"report: {write_html(report, data, s, order)}")
    if json_mode:
        typer.echo(to_json(data))
    if report.failed:
        failed = [r for r in report.units.values() if r.status is Status.FAILED]
        if failed and all(r.failed_with(HookError) for r in failed) and all(c.passed for c in report.smoke):
            raise HookError("")  # exit 6: terraform did its part; a post-apply hook did not
        if failed and all(r.failed_with(PolicyDenied) for r in failed):
            raise PolicyDenied("")  # exit 12: a deny policy refused a plan; nothing of it was applied
        raise RunFailed("")
    if report.declined:
        raise Declined("")  # nothing failed; what was declined (and its dependents) was not applied
    if exit_changed and report.changed:
        raise ChangesFound("")


def write_html(report, data, s, order) -> str:
    import time as _time

    from orchestrator.report.html_report import render, timeline_of

    timeline = sorted(timeline_of(report), key=lambda u: order.index(u["unit"]))
    outputs = s.redactor.redact_obj({u: report.units[u].outputs for u in order})
    path = s.work_root / "reports" / f"{report.env_id}-{report.command}-{_time.strftime('%Y%m%dT%H%M%S')}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data, timeline, outputs))
    return str(path)


def orphan_lines(found) -> list[str]:
    return [f"  {o.type:<24} {o.id:<40} created {o.created or '?'}  {o.arn}" for o in found]


def _when(t) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) if isinstance(t, (int, float)) else str(t or "?")


def lock_lines(copy: dict, env_name: str) -> list[str]:
    """A copy's run lock and state locks, each with who holds it and how to release it if its run is dead."""
    import time

    from orchestrator.state.runlock import Holder

    suffix = copy["environment"][len(env_name) + 1 :]
    where = f"--env {env_name}" + (f" --suffix {suffix}" if suffix else "")
    lines = []
    if copy.get("run_lock"):
        holder = Holder.from_doc(copy["run_lock"])
        stale = holder.stale_reason(time.time())
        # A live run (renewed lately, its process alive) gets no release command: releasing it would
        # let a second run in beside it.
        lines.append(
            f"run lock: {holder.describe(time.time())}; "
            + (
                f"stale ({stale}): {holder.release_command(where)}"
                if stale
                else "its run is alive (renewed lately): wait for it"
            )
        )
    for unit, info in sorted((copy.get("state_locks") or {}).items()):
        lock = StateLock.from_info(unit, info)
        lines.append(
            f"state lock on {unit}: {lock.id} ({lock.operation} by {lock.who}, since {lock.created}); "
            f"if that run is dead: {lock.release_command(where)}"
        )
    return lines


def status_lines(doc: dict, copy: dict, env_name: str, order: list[str]) -> list[str]:
    """`status`: the copy's locks, its last health, then each unit's last run from the journal."""
    import time

    lines = lock_lines(copy, env_name)
    if doc.get("health"):
        lines.append(health_line(doc["health"]))
    if not doc["units"]:
        return [*lines, f"no run recorded for {copy['environment']}"]
    lines.append(f"{'UNIT':<14} {'LAST':<9} {'STATUS':<11} {'WHEN (UTC)':<20} {'BY':<24} RUN")
    for unit in order:
        rec = doc["units"].get(unit)
        if not rec:
            lines.append(f"{unit:<14} -")
            continue
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(rec["at"]))
        cause = f"  {rec['detail']}" if rec.get("detail") else ""
        lines.append(
            f"{unit:<14} {rec['command']:<9} {rec['status']:<11} {when:<20} {rec['who']:<24} {rec['run_id']}" + cause
        )
    return lines


def envs_lines(found: list[tuple[str, dict]], env: str | None) -> list[str]:
    """`envs`: one line per copy (its last run, its units), then its health and locks."""
    if not found:
        return [f"no copy of {env or 'any environment'} has state, a run or a lock"]
    lines = [f"{'COPY':<20} {'LAST RUN':<44} UNITS"]
    for name, c in found:
        units = ", ".join(c["units"]) or "(no state)"
        lines.append(f"{c['environment']:<20} {last_run_text(c['last_run']):<44} {units}")
        if c.get("health"):
            lines.append(f"{'':<20} {health_line(c['health'])}")
        lines += [f"{'':<20} {line}" for line in lock_lines(c, name)]
    return lines


def last_run_text(run: dict | None) -> str:
    if not run:
        return "-"
    return f"{run.get('command')} {run.get('result')} {_when(run.get('started'))} by {run.get('who')}"


# ---- `unit plan` / `unit apply`: a CI job's line, its job summary, its GitLab report ----------
_SUMMARY_PLAN_CHARS = 60_000  # GitHub keeps 1 MiB of a step's summary; a plan past this is cut


def job_line(report) -> str:
    r = report.result
    counts = f"+{r.add} ~{r.change} -{r.destroy} ±{r.replace}"
    return f"{report.action} {report.unit} ({report.environment}, run {report.run_id}): {report.status}, {counts}" + (
        f" - {r.detail}" if r.detail and r.detail != "no changes" else ""
    )


def job_markdown(report, redactor) -> str:
    """The job summary (GitHub's $GITHUB_STEP_SUMMARY): counts, addresses, refusals, the plan."""
    r = report.result
    lines = [f"### {report.action} `{report.unit}` ({report.environment})", ""]
    lines.append(
        f"**{report.status}**: {r.add} to add, {r.change} to change, {r.destroy} to destroy"
        + (f", {r.replace} to replace" if r.replace else "")
        + f" (run `{report.run_id}`)"
    )
    if r.preview:
        lines.append(f"- a preview, never applied: {r.detail}")
    for v in r.policies:
        mark = ":no_entry:" if v.denied else (":white_check_mark:" if v.override else ":warning:")
        lines.append(f"- {mark} {v.line()}")
    if r.changes:
        lines += ["", *[f"- `{c['address']}`: {', '.join(c.get('actions', []))}" for c in r.changes[:200]]]
    if r.hooks:
        lines += ["", *[f"- hook {h}" for h in r.hooks]]
    lines += _plan_details("plan", r.diff, redactor, _SUMMARY_PLAN_CHARS)
    return "\n".join(lines) + "\n\n"


def _plan_details(title: str, diff: str, redactor, limit: int) -> list[str]:
    """A plan folded under its title, redacted and cut at `limit` characters."""
    if not diff:
        return []
    text = redactor.redact(diff)
    body = text[:limit] + ("\n... (cut; the whole plan is in the job log)" if len(text) > limit else "")
    return ["", f"<details><summary>{title}</summary>", "", "```", body.replace("```", "'''"), "```", "</details>"]


def plan_markdown(report, order: list[str], redactor) -> str:
    """`plan --summary`: every unit's outcome in one table (previews marked), then each plan folded."""
    from orchestrator.report.render import status_label

    units = [report.units[u] for u in order]
    previews = sum(r.preview for r in units)
    lines = [
        f"### {report.command} `{report.env_id}`: {len(units)} unit(s)"
        + (f", {previews} of them previews (an upstream unit has no state yet; never applied)" if previews else ""),
        "",
        "| unit | status | add | change | destroy | replace | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in units:
        note = (r.detail or "").replace("|", "\\|")
        lines.append(
            f"| `{r.unit}` | {status_label(r, report.command)}{' (preview)' if r.preview else ''} | {r.add} | "
            f"{r.change} | {r.destroy} | {r.replace} | {note} |"
        )
    share = _SUMMARY_PLAN_CHARS // max(1, sum(bool(r.diff) for r in units))
    for r in units:
        lines += _plan_details(f"{r.unit}: {'preview' if r.preview else 'plan'}", r.diff, redactor, share)
    return redactor.redact("\n".join(lines)) + "\n\n"


def job_gitlab_report(report) -> dict:
    """GitLab's terraform report (artifacts:reports:terraform): the merge request widget's counts."""
    r = report.result
    return {"create": r.add, "update": r.change + r.replace, "delete": r.destroy}


def health_line(record: dict) -> str:
    """The copy's last health, one line (status, envs)."""
    import time as _time

    when = _time.strftime("%Y-%m-%d %H:%M:%S", _time.gmtime(record["at"]))
    what = []
    if record.get("drifted"):
        what.append("drifted: " + ", ".join(sorted(record["drifted"])))
    if record.get("failing"):
        what.append("failing: " + ", ".join(record["failing"]))
    return f"health: {record['state']} at {when} UTC (run {record['run_id']})" + (
        f"; {'; '.join(what)}" if what else ""
    )


# GitHub refuses a comment body over 65,536 characters; GitLab's note limit is 1,000,000.
REVIEW_LIMIT = 65_000


def review_marker(env_id: str) -> str:
    """The hidden first line a pipeline finds its own comment by, to update it in place."""
    return f"<!-- orchestrator-review:{env_id} -->"


def _review_lines(rec: dict) -> list[str]:
    """One unit's section: what is replaced and deleted first, then the verdicts, then the rest."""
    changes = rec.get("changes") or []

    def kind(actions):
        if "delete" in actions and "create" in actions:
            return 0, "replaced"
        if "delete" in actions:
            return 1, "deleted"
        if "create" in actions:
            return 3, "created"
        return 4, "updated" if "update" in actions else "/".join(actions) or "read"

    lines = []
    for v in rec.get("policies") or []:
        mark = ":no_entry:" if v["level"] == "deny" and not v.get("override") else ":warning:"
        over = f"; overridden: {v['override']}" if v.get("override") else ""
        lines.append((2, f"- {mark} policy {v['policy']} ({v['level']}): `{v['address']}`: {v['why']}{over}"))
    for c in changes:
        order, word = kind(c.get("actions") or [])
        lines.append((order, f"- {word}: `{c['address']}`"))
    return [text for _, text in sorted(lines, key=lambda x: x[0])]


def review_markdown(env_id: str, run_id: str, records: list[dict], limit: int = REVIEW_LIMIT) -> str:
    """One review page of a pipeline run: every unit's plan (counts, replaced and deleted first,
    verdicts, the preview marker), cut per unit to fit `limit` characters, never mid-line."""
    previews = sum(bool(r.get("preview")) for r in records)
    head = [
        review_marker(env_id),
        f"### orchestrator: the plans of `{env_id}`, run `{run_id}`: {len(records)} unit(s)"
        + (f", {previews} of them previews (an upstream unit had no state yet; never applied)" if previews else ""),
        "",
        "| unit | plan | add | change | destroy | replace | policies |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in records:
        verdicts = r.get("policies") or []
        denied = sum(1 for v in verdicts if v["level"] == "deny" and not v.get("override"))
        pol = (f"{denied} denied" if denied else "") + (
            f"{', ' if denied else ''}{len(verdicts) - denied} warned/overridden" if len(verdicts) > denied else ""
        )
        head.append(
            f"| `{r['unit']}` | {r['status']}{' (preview)' if r.get('preview') else ''} | {r['add']} | {r['change']} | "
            f"{r['destroy']} | {r['replace']} | {pol or '-'} |"
        )
    text = "\n".join(head) + "\n"
    sections = [(r["unit"], _review_lines(r)) for r in records if _review_lines(r)]
    if not sections:
        return text
    budget = max(0, limit - len(text)) // len(sections)
    urls = {r["unit"]: r.get("job_url") for r in records}
    for unit, lines in sections:
        title = f"\n#### `{unit}`\n"
        out, used = [title], len(title)
        summary = (
            f"[the job summary of plan {unit}]({urls[unit]})" if urls.get(unit) else f"the job summary of plan {unit}"
        )
        for i, line in enumerate(lines):
            rest = len(lines) - i
            tail = f"- ... {rest} more line(s) not shown: {summary} has them all\n"
            if used + len(line) + 1 + (len(tail) if rest > 1 else 0) > budget:
                out.append(tail)
                break
            out.append(line + "\n")
            used += len(line) + 1
        text += "".join(out)
    return text
