"""A self-contained HTML page for one run: a timeline (Gantt) of the units, the
plan summary, the smoke results and the outputs (secrets redacted). No
scripts, no network: one file to attach to a change record."""

from __future__ import annotations

import html
import json
import time

STATUS_COLORS = {
    "succeeded": "#2e7d32",
    "no changes": "#90a4ae",
    "failed": "#c62828",
    "skipped": "#f9a825",
    "pending": "#bdbdbd",
    "running": "#1565c0",
}


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def gantt_svg(units: list[dict], started: float, width: int = 900) -> str:
    rows = [u for u in units if u.get("start") is not None]
    end = max((u["end"] for u in rows), default=started + 1)
    span = max(end - started, 1e-6)
    label_w, row_h, top = 130, 26, 24
    plot_w = width - label_w - 60  # room for the duration label right of the longest bar
    height = top + row_h * len(units) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="timeline of units">'
    ]
    # time axis: 5 ticks
    for i in range(6):
        x = label_w + plot_w * i / 5
        parts.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 6}" stroke="#e0e0e0"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{top - 10}" font-size="11" text-anchor="middle" fill="#555">'
            f"{span * i / 5:.0f}s</text>"
        )
    for row, u in enumerate(units):
        y = top + row * row_h
        parts.append(f'<text x="{label_w - 8}" y="{y + 17}" font-size="13" text-anchor="end">{_e(u["unit"])}</text>')
        if u.get("start") is None:
            parts.append(
                f'<text x="{label_w + 4}" y="{y + 17}" font-size="12" fill="#777">{_e(u["status"])}: '
                f"{_e(u['detail'])}</text>"
            )
            continue
        x = label_w + plot_w * (u["start"] - started) / span
        w = max(plot_w * (u["end"] - u["start"]) / span, 2)
        color = STATUS_COLORS.get(u["status"], "#757575")
        parts.append(
            f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" rx="3" fill="{color}">'
            f"<title>{_e(u['unit'])}: {_e(u['status'])} in {u['end'] - u['start']:.1f}s</title></rect>"
        )
        parts.append(
            f'<text x="{x + w + 6:.1f}" y="{y + 17}" font-size="11" fill="#333">{u["end"] - u["start"]:.1f}s</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render(report: dict, timeline: list[dict], outputs: dict[str, dict | None]) -> str:
    """report: the JSON run report; timeline: unit, status, detail, start, end; outputs: redacted."""
    rows = "".join(
        f'<tr><td>{_e(u["unit"])}</td><td><span class="st" style="background:{STATUS_COLORS.get(u["status"], "#777")}">'
        f"{_e(u['status'])}</span></td><td>{u['add']}</td><td>{u['change']}</td><td>{u['destroy']}</td>"
        f"<td>{u['replace']}</td><td>{u['duration_s']:.1f}s</td><td>{u['retries']}</td>"
        f"<td>{_e(u['detail'] or '; '.join(u['hooks']))}</td></tr>"
        for u in report["units"]
    )
    smoke = (
        "".join(
            f"<tr><td>{'✔' if c['passed'] else '✘'}</td><td>{_e(c['check'])}</td><td>{_e(c['reason'])}</td></tr>"
            for c in report["smoke"]
        )
        or '<tr><td colspan="3">no smoke checks in this run</td></tr>'
    )
    outs = "".join(
        f"<h3>{_e(unit)}</h3><pre>{_e(json.dumps(values, indent=2))}</pre>"
        for unit, values in outputs.items()
        if values
    )
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report["started"]))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{_e(report["command"])} {_e(report["environment"])}: {_e(report["result"])}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #212121; }}
h1 {{ font-size: 20px; margin: 0 0 4px; }} .sub {{ color: #616161; margin-bottom: 16px; }}
table {{ border-collapse: collapse; margin: 8px 0 20px; }} td, th {{ padding: 4px 10px; border-bottom: 1px solid #eee;
text-align: left; }} th {{ background: #fafafa; }}
.st {{ color: #fff; border-radius: 3px; padding: 1px 6px; font-size: 12px; white-space: nowrap; }}
.result-ok {{ color: #2e7d32; }} .result-changed {{ color: #1565c0; }} .result-failed {{ color: #c62828; }}
pre {{ background: #f5f5f5; padding: 8px; overflow-x: auto; font-size: 12px; }}
</style></head><body>
<h1>{_e(report["command"])} <b>{_e(report["environment"])}</b>:
<span class="result-{_e(report["result"])}">{_e(report["result"])}</span></h1>
<div class="sub">started {when}, {report["duration_s"]:.1f}s</div>
<h2>Timeline</h2>
{gantt_svg(timeline, report["started"])}
<h2>Units</h2>
<table><tr><th>unit</th><th>status</th><th>add</th><th>change</th><th>destroy</th><th>replace</th><th>time</th>
<th>retries</th><th>note</th></tr>{rows}</table>
<h2>Smoke checks</h2>
<table><tr><th></th><th>check</th><th>result</th></tr>{smoke}</table>
<h2>Outputs</h2>
{outs or "<p>none</p>"}
</body></html>
"""


def timeline_of(run_report) -> list[dict]:
    out = []
    for unit, r in run_report.units.items():
        out.append(
            {
                "unit": unit,
                "status": r.status.value,
                "detail": r.detail,
                "start": r.started if r.ended else None,
                "end": r.ended,
            }
        )
    return out
