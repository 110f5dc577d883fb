"""The benchmark script runs (its quick mode); its numbers live in docs/benchmarks.md, not in a timed test."""

import json
import subprocess
import sys

from tests.helpers import ROOT


def test_bench_script_runs_quick_mode():
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["help_s"] > 0 and result["first_terraform_call_s"] > 0 and result["bootstrap_peak_rss_mib"] > 0


def _run(full: float, hand_apply: float, copies_1: float, copies_4: float) -> dict:
    units = {
        u: {"unit": u, "status": "succeeded", "duration_s": 10.0, "terraform_s": {"apply": 10.0}, "detail": ""}
        for u in ("network", "security", "database", "edge", "observability", "app")
    }

    def copies(wall: float) -> dict:
        return {
            "deploy": {"wall": wall, "peak_mem": 2**30, "rss": 90.0, "failed_units": 0},
            "teardown": {"wall": wall, "failed_units": 0},
        }

    numbers = dict.fromkeys(
        (
            *("second", "plan", "noop", "bump", "teardown", "hand_bump", "hand_destroy", "help", "first_tf", "rss"),
            *("changed_bump", "changed_noop", "changed_bare"),
        ),
        1.0,
    )
    return {
        **numbers,
        "full": full,
        "hand_apply": hand_apply,
        "at_once": {1: copies(copies_1), 4: copies(copies_4)},
        **{key: units for key in ("units_full", "units_noop", "units_bump", "units_changed_bump", "units_down")},
    }


def test_bench_report_takes_each_runs_own_ratio_and_keeps_the_analysis(tmp_path):
    # Ratios 0.50, 0.60, 0.90: their median is 0.60; the medians' ratio (270 / 300) would be 0.90.
    runs = [_run(100.0, 200.0, 100.0, 200.0), _run(300.0, 500.0, 100.0, 300.0), _run(270.0, 300.0, 200.0, 300.0)]
    raw = tmp_path / "runs.json"
    raw.write_text(json.dumps(runs))
    out = tmp_path / "benchmarks.md"
    out.write_text("old table\n<!-- analysis -->\nwritten by hand\n")
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--report-from", str(raw), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    assert "| 270.0 s | 300.0 s | 0.60 | 0.50 / 0.60 / 0.90 | ≤ 0.55 |" in text
    # Four copies against one, each run against its own one copy: 2.00, 3.00, 1.50.
    assert "| 4 | 300.0 s | 2.00 | 2.00 / 3.00 / 1.50 |" in text
    assert "old table" not in text and text.endswith("<!-- analysis -->\nwritten by hand\n")
