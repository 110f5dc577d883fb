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
