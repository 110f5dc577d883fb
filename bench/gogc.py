"""What Go's garbage collector costs a terraform command, and what GOGC=400 (the orchestrator's
default for the terraform it runs: orchestrator/tf/terraform.py) saves.

terraform and its aws provider are Go programs; Go collects each time the heap doubles (GOGC=100).
The aws provider builds the schema of every resource type on each start, so most of a small
command's CPU is that start. This runs `terraform validate` in each unit of the platform (initialised
once, no backend, no AWS), alternately with GOGC=100 and GOGC=400, and reports the CPU (user + sys,
terraform and the provider it starts) and the largest resident size of one process, per command.

    .venv/bin/python bench/gogc.py --rounds 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNITS = ("network", "security", "database", "edge", "observability", "app")


def cpu_of(cmd: list[str], cwd: Path, env: dict) -> tuple[float, int]:
    """(CPU seconds, peak RSS in KiB) of one command with every process it started and reaped
    (wait4's usage of a child holds its own children's)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} in {cwd} exited {proc.returncode}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    mirror = (
        os.environ.get("ORCHESTRATOR_PROVIDER_MIRROR")
        or subprocess.run(
            [str(ROOT / "scripts" / "find-mirror.sh")], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    tmp = Path(tempfile.mkdtemp(prefix="orchestrator-bench-gogc-"))
    try:
        shutil.copytree(ROOT / "terraform", tmp / "terraform", symlinks=True)
        rc = tmp / "cli.tfrc"
        rc.write_text(
            f'provider_installation {{\n  filesystem_mirror {{ path = "{mirror}" }}\n}}\n'
            f'plugin_cache_dir = "{tmp / "cache"}"\n'
        )
        (tmp / "cache").mkdir()
        base = {k: v for k, v in os.environ.items() if k != "GOGC"}
        base.update(TF_CLI_CONFIG_FILE=str(rc), TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
        for unit in UNITS:
            subprocess.run(
                ["terraform", "init", "-backend=false", "-input=false"],
                cwd=tmp / "terraform" / unit, env=base, check=True, capture_output=True,
            )  # fmt: skip
        cpu: dict[str, list[float]] = {"100": [], "400": []}
        rss: dict[str, int] = {"100": 0, "400": 0}
        for _ in range(args.rounds):
            for unit in UNITS:
                for gogc in ("100", "400"):  # alternately: the machine's load falls on both alike
                    seconds, peak = cpu_of(["terraform", "validate"], tmp / "terraform" / unit, {**base, "GOGC": gogc})
                    cpu[gogc].append(seconds)
                    rss[gogc] = max(rss[gogc], peak)
        ratios = [b / a for a, b in zip(cpu["100"], cpu["400"], strict=True)]
        print(f"terraform validate, {len(cpu['100'])} commands each (6 units x {args.rounds} rounds):")
        for gogc in ("100", "400"):
            print(
                f"  GOGC={gogc}: median CPU {statistics.median(cpu[gogc]):.2f} s per command, "
                f"largest process {rss[gogc] / 1024:.0f} MiB"
            )
        print(f"  CPU with GOGC=400 / GOGC=100, median of each pair's ratio: {statistics.median(ratios):.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
