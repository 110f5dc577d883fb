"""Benchmark: the orchestrator against plain Terraform, on moto server with the real platform.

    .venv/bin/python bench/run.py --runs 3          # writes docs/benchmarks.md
    .venv/bin/python bench/run.py --runs 1 --quick  # startup and memory only (used by the test suite)

Measured in one run, side by side (medians over --runs):
  1. full dev deploy: orchestrator vs. the same units applied by hand, one after
     another (init + apply each, no plugin cache, outputs wired with `terraform output`);
  2. no-op redeploy vs. full deploy;
  3. teardown vs. plain `terraform destroy` unit by unit;
  4. start-up: `orchestrator --help`, and `orchestrator plan` up to its first terraform call;
  5. the orchestrator's own peak RSS (terraform children excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator import local  # noqa: E402
from orchestrator.config import (  # noqa: E402
    Project,
    load_emulator_overrides,
    load_environment,
    load_stack,
    unit_variables,
)
from orchestrator.statestore import backend_config, resolve_key_arn  # noqa: E402
from orchestrator.terraform import backend_config_args  # noqa: E402

PY = sys.executable
MEASURE = ROOT / "bench" / "measure.py"


def mirror() -> str:
    out = subprocess.run([str(ROOT / "scripts" / "find-mirror.sh")], capture_output=True, text=True)
    if out.returncode:
        sys.exit("no provider mirror (set ORCHESTRATOR_PROVIDER_MIRROR)")
    return out.stdout.strip()


def orch(url: str, work: Path, *args: str, check: bool = True) -> tuple[float, dict | None, float]:
    """Runs the CLI in a fresh process; returns (seconds, JSON report, own peak RSS in MiB)."""
    rss_file = work / "rss.txt"
    cmd = [
        PY,
        str(MEASURE),
        str(rss_file),
        "--emulator-url",
        url,
        "--work-dir",
        str(work),
        "--provider-mirror",
        MIRROR,
        *args,
    ]
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "CI": "1"})
    elapsed = time.monotonic() - t0
    if check and out.returncode != 0:
        sys.exit(f"orchestrator {' '.join(args)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    report = json.loads(out.stdout) if out.stdout.strip().startswith("{") else None
    rss = float(rss_file.read_text()) if rss_file.exists() else 0.0
    return elapsed, report, rss


class ByHand:
    """What a person does without the orchestrator: each unit in order, init + apply,
    no plugin cache, outputs copied forward with `terraform output -json`."""

    def __init__(self, url: str, work: Path, suffix: str):
        self.url, self.work = url, work
        project = Project(ROOT)
        self.stack = load_stack(project.terraform_dir)
        env = load_environment(project.environments_dir, "dev", self.stack).with_suffix(suffix)
        self.env = env.with_account(local.EMULATOR_ACCOUNT_ID).with_settings(
            load_emulator_overrides(project.environments_dir, self.stack)
        )
        from orchestrator.aws import Aws

        self.aws = Aws(self.env.region, endpoint_url=url)
        self.key_arn = resolve_key_arn(self.aws, self.env)
        work.mkdir(parents=True, exist_ok=True)
        rc = work / "plain.rc"
        rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{MIRROR}"\n  }}\n}}\n')
        self.base_env = {**self.aws.terraform_env(), "TF_CLI_CONFIG_FILE": str(rc), "TF_IN_AUTOMATION": "1"}
        self.outputs: dict[str, dict] = {}

    def _tf(self, unit: str, *args: str, env_extra: dict | None = None) -> str:
        env = {**self.base_env, "TF_DATA_DIR": str(self.work / unit / ".terraform"), **(env_extra or {})}
        out = subprocess.run(
            ["terraform", f"-chdir={self.stack.units[unit].path}", *args], capture_output=True, text=True, env=env
        )
        if out.returncode:
            sys.exit(f"plain terraform {args[0]} {unit} failed:\n{out.stderr[-3000:]}")
        return out.stdout

    def _vars(self, unit: str) -> Path:
        spec = self.stack.units[unit]
        common = self.env.common_variables(self.url)
        values = {}
        for name in unit_variables(spec.path):
            if name in common:
                values[name] = common[name]
            elif name in spec.inputs:
                up, out = spec.inputs[name]
                values[name] = self.outputs[up][out]
            elif name in self.env.settings:
                values[name] = self.env.settings[name]
        path = self.work / unit / "vars.tfvars.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
        return path

    def apply_all(self) -> float:
        t0 = time.monotonic()
        for unit in self.stack.graph.order():
            conf = backend_config(self.env, unit, self.key_arn, self.url)
            self._tf(unit, "init", "-input=false", "-no-color", *backend_config_args(conf))
            secret = {"TF_VAR_db_master_password": "bench-Passw0rd-not-secret"}
            self._tf(
                unit,
                "apply",
                "-auto-approve",
                "-input=false",
                "-no-color",
                f"-var-file={self._vars(unit)}",
                env_extra=secret,
            )
            raw = json.loads(self._tf(unit, "output", "-json"))
            self.outputs[unit] = {k: v["value"] for k, v in raw.items()}
        return time.monotonic() - t0

    def destroy_all(self) -> float:
        t0 = time.monotonic()
        for unit in reversed(self.stack.graph.order()):
            self._tf(
                unit,
                "destroy",
                "-auto-approve",
                "-input=false",
                "-no-color",
                f"-var-file={self._vars(unit)}",
                env_extra={"TF_VAR_db_master_password": "bench-Passw0rd-not-secret"},
            )
        return time.monotonic() - t0


def startup(url: str, work: Path) -> tuple[float, float]:
    """`--help` wall time (best of 7) and time to the first terraform call of `plan` (best of 5)."""
    helps = []
    for _ in range(7):
        t0 = time.monotonic()
        subprocess.run([PY, "-m", "orchestrator", "--help"], capture_output=True, cwd=ROOT, check=True)
        helps.append(time.monotonic() - t0)
    work.mkdir(parents=True, exist_ok=True)
    stub = work / "stub-terraform"
    stamp = work / "stamp"
    stub.write_text(f"#!/bin/sh\ndate +%s.%N > {stamp}\nexit 1\n")
    stub.chmod(0o755)
    firsts = []
    for _ in range(5):
        stamp.unlink(missing_ok=True)
        t0 = time.time()
        subprocess.run(
            [
                PY,
                "-m",
                "orchestrator",
                "--emulator-url",
                url,
                "--work-dir",
                str(work / "stub-work"),
                "plan",
                "--env",
                "dev",
            ],
            capture_output=True,
            cwd=ROOT,
            env={**os.environ, "ORCHESTRATOR_TERRAFORM": str(stub)},
        )
        if stamp.exists():
            firsts.append(float(stamp.read_text()) - t0)
    return min(helps), min(firsts) if firsts else float("nan")


def note(i: int, what: str, seconds: float) -> None:
    print(f"run {i + 1}: {what} {seconds:.1f} s", flush=True)


def one_run(i: int, tmp: Path) -> dict:
    server = local.start(log_path=tmp / f"moto-{i}.log")
    try:
        url = server.url
        work = tmp / f"orch-{i}"
        work.mkdir()
        orch(url, work, "bootstrap", "--env", "dev")
        orch(url, work, "local", "seed", "--env", "dev")
        full, full_report, rss_deploy = orch(url, work, "deploy", "--env", "dev", "--yes", "--no-smoke", "--json")
        # moto does not model ECS availability-zone rebalancing: the deploy right after a create shows one
        # in-place change on the ECS service (real AWS would not). The no-op is the first deploy after that.
        note(i, "full deploy", full)
        second, _, _ = orch(url, work, "deploy", "--env", "dev", "--yes", "--no-smoke", "--json")
        note(i, "second deploy", second)
        noop, noop_report, rss_noop = orch(url, work, "deploy", "--env", "dev", "--yes", "--no-smoke", "--json")
        note(i, "no-op deploy", noop)
        down, down_report, rss_down = orch(url, work, "teardown", "--env", "dev", "--yes", "--json")
        note(i, "teardown", down)
        hand = ByHand(url, tmp / f"hand-{i}", f"hand{i}")
        hand_apply = hand.apply_all()
        note(i, "by hand: apply", hand_apply)
        hand_destroy = hand.destroy_all()
        note(i, "by hand: destroy", hand_destroy)
        help_s, first_tf = startup(url, tmp / f"startup-{i}")
        return {
            "full": full,
            "second": second,
            "noop": noop,
            "teardown": down,
            "hand_apply": hand_apply,
            "hand_destroy": hand_destroy,
            "help": help_s,
            "first_tf": first_tf,
            "rss": max(rss_deploy, rss_noop, rss_down),
            "units_full": {u["unit"]: u for u in full_report["units"]},
            "units_noop": {u["unit"]: u for u in noop_report["units"]},
        }
    finally:
        server.stop()


def versions() -> dict:
    tf = json.loads(subprocess.run(["terraform", "version", "-json"], capture_output=True, text=True).stdout)
    import boto3
    import moto

    return {
        "terraform": tf["terraform_version"],
        "aws provider": "5.100.0",
        "python": platform.python_version(),
        "boto3": boto3.__version__,
        "moto": moto.__version__,
    }


def write_report(runs: list[dict], path: Path) -> str:
    med = {
        k: statistics.median(r[k] for r in runs)
        for k in ("full", "noop", "teardown", "hand_apply", "hand_destroy", "help", "first_tf", "rss")
    }
    v = versions()
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `bench/run.py --runs {len(runs)}` on {time.strftime('%Y-%m-%d')}: "
        f"{os.cpu_count()} cores, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, "
        f"{platform.platform()}; " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "The real platform (six units, dev settings) on moto server; medians of the runs. Not a timed test: "
        "the suite only checks that the script runs (`--quick`).",
        "",
        "| measurement | orchestrator | baseline | ratio | target |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| full dev deploy vs. units applied by hand, one after another | {med['full']:.1f} s | {med['hand_apply']:.1f} s "
        f"| {med['full'] / med['hand_apply']:.2f} | ≤ 0.6 |",
        f"| no-op redeploy vs. full deploy | {med['noop']:.1f} s | {med['full']:.1f} s | {med['noop'] / med['full']:.2f} | ≤ 0.3 |",
        f"| teardown vs. plain `terraform destroy` unit by unit | {med['teardown']:.1f} s | {med['hand_destroy']:.1f} s "
        f"| {med['teardown'] / med['hand_destroy']:.2f} | — |",
        f"| `orchestrator --help` | {med['help']:.2f} s | | | < 0.3 s |",
        f"| `orchestrator plan` to its first terraform call | {med['first_tf']:.2f} s | | | — |",
        f"| orchestrator peak RSS (terraform excluded) | {med['rss']:.0f} MiB | | | < 150 MB |",
        "",
        "Every run: "
        + "; ".join(
            f"full {r['full']:.0f}s / by hand {r['hand_apply']:.0f}s / second deploy (ECS rebalance on moto) "
            f"{r['second']:.0f}s / no-op {r['noop']:.0f}s / teardown "
            f"{r['teardown']:.0f}s / destroy by hand {r['hand_destroy']:.0f}s"
            for r in runs
        )
        + ".",
        "",
        "## Where the time goes (first run, full deploy)",
        "",
        "| unit | wall | init | plan | apply | outside terraform |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for unit, u in runs[0]["units_full"].items():
        t = u.get("terraform_s", {})
        outside = u["duration_s"] - sum(t.values())
        lines.append(
            f"| {unit} | {u['duration_s']:.1f} s | {t.get('init', 0):.1f} | {t.get('plan', 0):.1f} | "
            f"{t.get('apply', 0):.1f} | {outside:.1f} |"
        )
    lines += [
        "",
        "No-op redeploy, per unit (init reused; a root unit runs one `apply` that finds nothing to do, the others "
        "were planned early, while it ran, so their own turn takes no time):",
        "",
        "| unit | wall in its turn | plan | apply |",
        "| --- | ---: | ---: | ---: |",
    ]
    for unit, u in runs[0]["units_noop"].items():
        t = u.get("terraform_s", {})
        lines.append(f"| {unit} | {u['duration_s']:.1f} s | {t.get('plan', 0):.1f} | {t.get('apply', 0):.1f} |")
    text = "\n".join(lines) + "\n"
    # The hand-written analysis below the marker survives a re-run.
    analysis = ""
    if path.exists() and "<!-- analysis -->" in (previous := path.read_text()):
        analysis = "\n<!-- analysis -->" + previous.split("<!-- analysis -->", 1)[1]
    path.write_text(text + analysis)
    return text


def main() -> None:
    global MIRROR
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="start-up and memory only (seconds, not minutes)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    MIRROR = mirror()
    tmp = Path(tempfile.mkdtemp(prefix="orchestrator-bench-"))
    try:
        if args.quick:
            server = local.start()
            try:
                work = tmp / "w"
                work.mkdir()
                _, _, rss = orch(server.url, work, "bootstrap", "--env", "dev")
                help_s, first_tf = startup(server.url, tmp)
            finally:
                server.stop()
            print(
                json.dumps(
                    {
                        "help_s": round(help_s, 3),
                        "first_terraform_call_s": round(first_tf, 3),
                        "bootstrap_peak_rss_mib": round(rss, 1),
                    }
                )
            )
            return
        runs = []
        for i in range(args.runs):
            runs.append(one_run(i, tmp))
            print(
                f"run {i + 1}/{args.runs}: "
                + json.dumps({k: round(v, 1) for k, v in runs[-1].items() if isinstance(v, float)}),
                flush=True,
            )
        print(write_report(runs, Path(args.out)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


MIRROR = ""

if __name__ == "__main__":
    main()
