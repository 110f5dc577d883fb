"""Text and JSON renderings of results. Pure: strings in, strings out."""

from __future__ import annotations

import json
import time

from orchestrator.core.runner import Status, UnitResult

REPORT_SCHEMA_VERSION = 1


def ts() -> str:
    return time.strftime("%H:%M:%S")


def unit_line(r: UnitResult) -> str:
    counts = (
        f" (+{r.add} ~{r.change} -{r.destroy} ±{r.replace})" if (r.add or r.change or r.destroy or r.replace) else ""
    )
    detail = f": {r.detail}" if r.detail and r.status in (Status.FAILED, Status.SKIPPED) else ""
    took = f" in {r.duration:.1f}s" if r.duration else ""
    return f"[{ts()}] {r.unit:<14} {r.status.value}{took}{counts}{detail}"


def status_label(r: UnitResult, command: str = "") -> str:
    """What a unit's outcome means for the command: a plan that finds changes is not a green
    "succeeded" but "would change"; drift found is "drifted"."""
    if command in ("plan", "drift") and r.status is Status.SUCCEEDED and (r.add or r.change or r.destroy or r.replace):
        return "would change" if command == "plan" else "drifted"
    return r.status.value


def summary_table(results: dict[str, UnitResult], order: list[str], command: str = "") -> str:
    head = f"{'UNIT':<14} {'STATUS':<12} {'ADD':>4} {'CHG':>4} {'DEL':>4} {'REP':>4} {'TIME':>7} {'RETRY':>5}  NOTE"
    lines = [head]
    for unit in order:
        r = results[unit]
        label = status_label(r, command)
        # plan/drift: the first addresses (drift: with the attributes that moved) in the note
        shows_detail = r.status in (Status.FAILED, Status.SKIPPED) or label in ("would change", "drifted")
        note = "; ".join(filter(None, [r.why, r.detail if shows_detail else "; ".join(r.hooks)]))
        lines.append(
            f"{unit:<14} {label:<12} {r.add:>4} {r.change:>4} {r.destroy:>4} {r.replace:>4} "
            f"{r.duration:>6.1f}s {r.retries:>5}  {note}".rstrip()
        )
    return "\n".join(lines)


def report_dict(report, order: list[str], redactor) -> dict:
    units = []
    for unit in order:
        r = report.units[unit]
        units.append(
            {
                **r.fields(),
                "terraform_s": r.timings,
                "hooks": r.hooks,
                "log": r.log_path,
                "resources": r.changes,
            }
        )
    out = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "command": report.command,
        "environment": report.env_id,
        "started": report.started,
        "duration_s": round(report.ended - report.started, 3),
        "result": report.result,
        "units": units,
        "smoke": [smoke_dict(c) for c in report.smoke],
    }
    if report.preflight is not None:
        out["preflight"] = report.preflight
    return redactor.redact_obj(out)


def smoke_dict(c) -> dict:
    return {"check": c.name, "passed": c.passed, "reason": c.reason, "attempts": c.attempts}


def to_json(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=False)


def event(name: str, r: UnitResult) -> dict:
    return {"event": name, **r.fields(), "at": time.time()}


def graph_text(g) -> str:
    lines = []
    for level, units in enumerate(g.levels()):
        for u in units:
            deps = ", ".join(sorted(g.dependencies(u))) or "-"
            lines.append(f"{'  ' * level}{u}  (after: {deps})")
    return "\n".join(lines)


def write_graph(g, fmt: str, output: str | None) -> str:
    """The unit graph in `fmt` (text, dot, mermaid; png or svg through graphviz's `dot`), written to
    `output` (then its name is returned) or returned as text. A bad format, a missing directory or
    `dot`, or graphviz failing: ConfigError, one line."""
    import shutil
    import subprocess
    from pathlib import Path

    from orchestrator.errors import ConfigError

    renderers = {"dot": graph_dot, "mermaid": graph_mermaid, "text": graph_text}
    if fmt not in (*renderers, "png", "svg"):
        raise ConfigError(f"unknown format {fmt!r}: text, dot, mermaid, png or svg")
    if output and not Path(output).parent.is_dir():
        raise ConfigError(f"--output {output}: directory {Path(output).parent} does not exist")
    if fmt in renderers:
        if not output:
            return renderers[fmt](g)
        Path(output).write_text(renderers[fmt](g) + "\n")
        return output
    dot = shutil.which("dot")
    if not dot:
        raise ConfigError(f"--format {fmt} needs graphviz's 'dot' (apt-get install graphviz)")
    if not output:
        raise ConfigError(f"--format {fmt} needs --output FILE")
    r = subprocess.run([dot, f"-T{fmt}", "-o", output], input=graph_dot(g), text=True, capture_output=True)
    if r.returncode != 0:
        raise ConfigError(f"graphviz could not write {output}: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    return output


def graph_dot(g) -> str:
    lines = ["digraph units {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    lines += [f'  "{u}";' for u in g.order()]
    lines += [f'  "{d}" -> "{u}";' for u in g.order() for d in sorted(g.dependencies(u))]
    return "\n".join(lines + ["}"])


def graph_mermaid(g) -> str:
    lines = ["graph LR"]
    lines += [f"  {d} --> {u}" for u in g.order() for d in sorted(g.dependencies(u))]
    return "\n".join(lines)


def failure_block(result) -> str:
    """What a failed unit shows below the table: terraform's error block, one line per violation
    of a denied plan, else the one-line detail."""
    from orchestrator.tf.terraform import error_block

    if result.error:
        return error_block(result.error)
    denied = [v.line() for v in result.policies if v.denied]
    return "\n".join([result.detail, *denied]) if denied else result.detail
