"""Benchmark: the orchestrator against plain Terraform, on moto server with the real platform.

    .venv/bin/python bench/run.py --runs 3          # writes docs/benchmarks.md
    .venv/bin/python bench/run.py --runs 1 --quick  # startup and memory only (used by the test suite)

Measured in one run, side by side (medians over --runs):
  1. full dev deploy: orchestrator vs. the same units applied by hand, one after
     another (init + apply each, no plugin cache, outputs wired with `terraform output`);
  2. no-op redeploy vs. `plan` of the same environment, and vs. the full deploy;
  3. image bump (a new container_image: only `app` changes) vs. the same change
     applied by hand in the app unit alone (warm init, same var file);
  4. teardown vs. plain `terraform destroy` unit by unit;
  5. concurrency: 1, 2 and 4 suffix copies deployed at once (--concurrency), total wall
     time and the machine's peak memory in use (sampled), each orchestrator's own RSS;
  6. start-up: `orchestrator --help`, and `orchestrator plan` up to its first terraform call;
  7. the orchestrator's own peak RSS (terraform children excluded).
The project is copied to a temporary directory (the image bump edits its env.toml).
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

from orchestrator.aws import local  # noqa: E402
from orchestrator.model.config import (  # noqa: E402
    Project,
    load_emulator_overrides,
    load_environment,
    load_stack,
    unit_variables,
)
from orchestrator.state.statestore import backend_config, resolve_key_arn  # noqa: E402
from orchestrator.tf.terraform import backend_config_args  # noqa: E402

PY = sys.executable
MEASURE = ROOT / "bench" / "measure.py"


def mirror() -> str:
    out = subprocess.run([str(ROOT / "scripts" / "find-mirror.sh")], capture_output=True, text=True)
    if out.returncode:
        sys.exit("no provider mirror (set ORCHESTRATOR_PROVIDER_MIRROR)")
    return out.stdout.strip()


def orch(url: str, work: Path, *args: str, check: bool = True, rss_name: str = "rss.txt"):
    """Runs the CLI in a fresh process; returns (seconds, JSON report, own peak RSS in MiB)."""
    rss_file = work / rss_name
    cmd = [
        PY,
        str(MEASURE),
        str(rss_file),
        "--project-dir",
        str(PROJECT),
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
        project = Project(PROJECT)
        self.stack = load_stack(project.terraform_dir)
        env = load_environment(project.environments_dir, "dev", self.stack).with_suffix(suffix)
        self.env = env.with_account(local.EMULATOR_ACCOUNT_ID).with_settings(
            load_emulator_overrides(project.environments_dir, self.stack)
        )
        from orchestrator.aws.clients import Aws

        self.aws = Aws(self.env.region, endpoint_url=url)
        self.key_arn = resolve_key_arn(self.aws, self.env)
        work.mkdir(parents=True, exist_ok=True)
        rc = work / "plain.rc"
        rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{MIRROR}"\n  }}\n}}\n')
        self.base_env = {**self.aws.terraform_env(), "TF_CLI_CONFIG_FILE": str(rc), "TF_IN_AUTOMATION": "1"}
        self.outputs: dict[str, dict] = {}

    def _tf(self, unit: str, *args: str) -> str:
        # Generated secrets reach terraform as TF_VAR_ (as the orchestrator passes them): fixed values here.
        secrets = {f"TF_VAR_{n}": f"bench-{n}-Passw0rd-not-secret" for n in self.stack.units[unit].generated_secrets}
        env = {**self.base_env, "TF_DATA_DIR": str(self.work / unit / ".terraform"), **secrets}
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
            self._tf(unit, "apply", "-auto-approve", "-input=false", "-no-color", f"-var-file={self._vars(unit)}")
            raw = json.loads(self._tf(unit, "output", "-json"))
            self.outputs[unit] = {k: v["value"] for k, v in raw.items()}
        return time.monotonic() - t0

    def apply_one(self, unit: str, settings: dict) -> float:
        """A settings change applied by hand in one unit: warm init, its var file rewritten, one apply."""
        self.env = self.env.with_settings(settings)
        t0 = time.monotonic()
        self._tf(unit, "apply", "-auto-approve", "-input=false", "-no-color", f"-var-file={self._vars(unit)}")
        return time.monotonic() - t0

    def destroy_all(self) -> float:
        t0 = time.monotonic()
        for unit in reversed(self.stack.graph.order()):
            self._tf(unit, "destroy", "-auto-approve", "-input=false", "-no-color", f"-var-file={self._vars(unit)}")
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


class MemorySampler:
    """The machine's memory in use (MemTotal - MemAvailable), sampled every 0.5 s; its peak."""

    def __init__(self):
        import threading

        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def used() -> int:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        kib = lambda k: int(info[k].split()[0]) * 1024  # noqa: E731
        return kib("MemTotal") - kib("MemAvailable")

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.used())
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def total_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def copies_at_once(url: str, work: Path, n: int, i: int) -> dict:
    """n suffix copies deployed at once (each its own process and work dir, parallelism auto),
    then torn down at once; wall time, the machine's peak memory, each orchestrator's RSS."""
    from concurrent.futures import ThreadPoolExecutor

    suffixes = [f"c{n}x{k}" for k in range(n)]

    def run(command: str, suffix: str):
        w = work / suffix
        w.mkdir(parents=True, exist_ok=True)
        extra = ("--no-smoke",) if command == "deploy" else ()
        return orch(url, w, command, "--env", "dev", "--suffix", suffix, "--yes", *extra, "--json", check=False)

    result = {}
    for command in ("deploy", "teardown"):
        with MemorySampler() as mem, ThreadPoolExecutor(max_workers=n) as pool:
            t0 = time.monotonic()
            outs = list(pool.map(run, [command] * n, suffixes))
            wall = time.monotonic() - t0
        failed = sum(
            1
            for _, rep, _ in outs
            for u in ((rep or {}).get("units") or [{"status": "failed"}])
            if u["status"] == "failed"
        )
        result[command] = {
            "wall": wall,
            "peak_mem": mem.peak,
            "rss": max(r for _, _, r in outs),
            "failed_units": failed,
        }
        note(i, f"{n} copies at once: {command}", wall)
    return result


def note(i: int, what: str, seconds: float) -> None:
    print(f"run {i + 1}: {what} {seconds:.1f} s", flush=True)


def bump_image(project: Path, tag: str) -> str:
    env_file = project / "environments" / "dev" / "env.toml"
    text = env_file.read_text()
    current = next(line for line in text.splitlines() if line.startswith("container_image"))
    image = current.split('"')[1].rsplit(":", 1)[0] + ":" + tag
    env_file.write_text(text.replace(current, f'container_image = "{image}"'))
    return image


def one_run(i: int, tmp: Path, concurrency: list[int]) -> dict:
    server = local.start(log_path=tmp / f"moto-{i}.log")
    try:
        url = server.url
        work = tmp / f"orch-{i}"
        work.mkdir()
        orch(url, work, "bootstrap", "--env", "dev")
        orch(url, work, "local", "seed", "--env", "dev")
        full, full_report, rss_deploy = orch(url, work, "deploy", "--env", "dev", "--yes", "--no-smoke", "--json")
        # The deploy right after the create: a no-op since the emulator keeps the ECS service's
        # availability-zone rebalancing (plain moto made it one in-place change; docs/benchmarks.md's
        # numbers before that fix say "ECS rebalance on moto").
        note(i, "full deploy", full)
        second, _, _ = orch(url, work, "deploy", "--env", "dev", "--yes", "--no-smoke", "--json")
        note(i, "second deploy", second)
        plan, _, _ = orch(url, work, "plan", "--env", "dev", "--json", check=False)
        note(i, "plan", plan)
        noop, noop_report, rss_noop = orch(url, work, "deploy", "--env", "dev", "--yes", "--no-smoke", "--json")
        note(i, "no-op deploy", noop)
        image = bump_image(PROJECT, f"1.43.{i}")
        orch(url, work, "local", "seed", "--env", "dev")  # the new tag in ECR, which preflight checks
        bump, bump_report, _ = orch(url, work, "deploy", "--env", "dev", "--yes", "--no-smoke", "--json")
        note(i, "image bump", bump)
        image_changed = bump_image(PROJECT, f"1.45.{i}")
        orch(url, work, "local", "seed", "--env", "dev")
        changed_bump, changed_report, _ = orch(
            url, work, "deploy", "--env", "dev", "--yes", "--no-smoke", "--changed", "--json"
        )
        note(i, f"image bump with --changed ({image_changed})", changed_bump)
        changed_noop, _, _ = orch(url, work, "deploy", "--env", "dev", "--yes", "--no-smoke", "--changed", "--json")
        note(i, "no-op deploy --changed", changed_noop)
        changed_bare, _, _ = orch(
            url, work, "deploy", "--env", "dev", "--yes", "--no-smoke", "--changed", "--skip-preflight", "--json"
        )
        note(i, "no-op deploy --changed --skip-preflight", changed_bare)
        down, down_report, rss_down = orch(url, work, "teardown", "--env", "dev", "--yes", "--json")
        note(i, "teardown", down)
        hand = ByHand(url, tmp / f"hand-{i}", f"hand{i}")
        hand_apply = hand.apply_all()
        note(i, "by hand: apply", hand_apply)
        hand_bump = hand.apply_one("app", {"container_image": image.replace(f"1.43.{i}", f"1.44.{i}")})
        note(i, "by hand: image bump in app", hand_bump)
        hand_destroy = hand.destroy_all()
        note(i, "by hand: destroy", hand_destroy)
        at_once = {n: copies_at_once(url, tmp / f"copies-{i}-{n}", n, i) for n in concurrency}
        help_s, first_tf = startup(url, tmp / f"startup-{i}")
        return {
            "full": full,
            "second": second,
            "plan": plan,
            "noop": noop,
            "bump": bump,
            "changed_bump": changed_bump,
            "changed_noop": changed_noop,
            "changed_bare": changed_bare,
            "teardown": down,
            "hand_apply": hand_apply,
            "hand_bump": hand_bump,
            "hand_destroy": hand_destroy,
            "help": help_s,
            "first_tf": first_tf,
            "rss": max(rss_deploy, rss_noop, rss_down),
            "at_once": at_once,
            "units_full": {u["unit"]: u for u in full_report["units"]},
            "units_noop": {u["unit"]: u for u in noop_report["units"]},
            "units_bump": {u["unit"]: u for u in bump_report["units"]},
            "units_changed_bump": {u["unit"]: u for u in changed_report["units"]},
            "units_down": {u["unit"]: u for u in down_report["units"]},
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


def critical_path(units: dict[str, dict]) -> float:
    """The longest chain of the units' own wall times through the graph."""
    graph = load_stack(Project(PROJECT).terraform_dir).graph
    done: dict[str, float] = {}
    for unit in graph.order():
        deps = graph.dependencies(unit)
        done[unit] = units[unit]["duration_s"] + max((done[d] for d in deps), default=0.0)
    return max(done.values())


def ratio_cells(each: list[float]) -> str:
    """Two table cells: the median of the runs' own ratios, then every run's ratio."""
    return f"{statistics.median(each):.2f} | {' / '.join(f'{x:.2f}' for x in each)}"


def write_report(runs: list[dict], path: Path) -> str:
    keys = (
        "full",
        "plan",
        "noop",
        "bump",
        "changed_bump",
        "changed_noop",
        "changed_bare",
        "teardown",
        "hand_apply",
        "hand_bump",
        "hand_destroy",
        "help",
        "first_tf",
        "rss",
    )
    runs = [{**r, "cp": critical_path(r["units_full"])} for r in runs]
    med = {k: statistics.median(r[k] for r in runs) for k in (*keys, "cp")}
    v = versions()
    ram = total_memory()

    def row(what: str, a: str, b: str, target: str) -> str:
        """Medians of both sides; the ratio is the median of each run's own ratio, never one run's number
        divided by another's."""
        return f"| {what} | {med[a]:.1f} s | {med[b]:.1f} s | {ratio_cells([r[a] / r[b] for r in runs])} | {target} |"

    lines = [
        "# Benchmarks",
        "",
        f"Measured by `bench/run.py --runs {len(runs)}` on {time.strftime('%Y-%m-%d')}: "
        f"{os.cpu_count()} cores, {round(ram / 2**30)} GiB, "
        f"{platform.platform()}; " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "The real platform (six units, dev settings) on moto server. Times are medians of the runs; a ratio is the "
        "median of the runs' own ratios, each from two numbers measured in the same run (every run's ratio beside "
        "it). Not a timed test: the suite only checks that the script runs (`--quick`).",
        "",
        "| measurement | orchestrator | baseline | ratio | each run | target |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
        row("full dev deploy vs. units applied by hand, one after another", "full", "hand_apply", "≤ 0.55"),
        row("full dev deploy vs. the critical path of its units' own times", "full", "cp", "≤ 1.05"),
        row("no-op deploy vs. `plan` of the same environment", "noop", "plan", "≤ 1.1"),
        row("no-op deploy vs. full deploy", "noop", "full", "≈ 0.2"),
        row("image bump vs. the app unit applied alone by hand", "bump", "hand_bump", "≤ 1.6"),
        row("image bump vs. full deploy", "bump", "full", "≤ 0.35"),
        row("image bump with `--changed` vs. the app unit applied alone by hand", "changed_bump", "hand_bump", "≤ 1.3"),
        f"| no-op `deploy --changed` (preflight included) | {med['changed_noop']:.1f} s | | | | ≤ 3 s + preflight |",
        f"| no-op `deploy --changed --skip-preflight` | {med['changed_bare']:.1f} s | | | | ≤ 3 s |",
        row("teardown vs. plain `terraform destroy` unit by unit", "teardown", "hand_destroy", "≤ 0.7"),
        f"| `orchestrator --help` | {med['help']:.2f} s | | | | < 0.3 s |",
        f"| `orchestrator plan` to its first terraform call | {med['first_tf']:.2f} s | | | | — |",
        f"| orchestrator peak RSS (terraform excluded) | {med['rss']:.0f} MiB | | | | < 150 MB |",
    ]
    counts = sorted(runs[0]["at_once"])
    if counts:
        lines += [
            "",
            f"Copies deployed at once (`--parallelism auto`, each its own process and work dir), then torn down "
            f"at once; peak = the machine's memory in use (MemTotal - MemAvailable, sampled every 0.5 s), of "
            f'{ram / 2**30:.0f} GiB; "vs. one copy" is the median of each run\'s own ratio:',
            "",
            "| copies | deploy wall | vs. one copy | each run | peak memory | % of RAM | orchestrator RSS | "
            "failed units | teardown wall |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for n in counts:
            d = {k: statistics.median(r["at_once"][n]["deploy"][k] for r in runs) for k in ("wall", "peak_mem", "rss")}
            each = ratio_cells(
                [r["at_once"][n]["deploy"]["wall"] / r["at_once"][counts[0]]["deploy"]["wall"] for r in runs]
            )
            failed = sum(
                r["at_once"][n]["deploy"]["failed_units"] + r["at_once"][n]["teardown"]["failed_units"] for r in runs
            )
            down = statistics.median(r["at_once"][n]["teardown"]["wall"] for r in runs)
            lines.append(
                f"| {n} | {d['wall']:.1f} s | {each} | "
                f"{d['peak_mem'] / 2**30:.1f} GiB | {100 * d['peak_mem'] / ram:.0f} % | {d['rss']:.0f} MiB | {failed} | "
                f"{down:.1f} s |"
            )
    elif path.exists() and (start := (old := path.read_text()).find("Copies deployed at once")) >= 0:
        # Not measured this time (--concurrency ''): the last measured table, said to be that.
        end = old.find("\nEvery run:", start)
        when = old.split(" on ", 1)[1].split(":", 1)[0] if " on " in old.split("\n", 3)[2] else "an earlier run"
        lines += ["", f"Copies at once were not measured in this run (`--concurrency ''`); from the run of {when}:", ""]
        lines += [old[start:end].strip()]
    lines += [
        "",
        "Every run: "
        + "; ".join(
            f"full {r['full']:.0f}s / by hand {r['hand_apply']:.0f}s / second deploy (ECS rebalance on moto) "
            f"{r['second']:.0f}s / plan {r['plan']:.0f}s / no-op {r['noop']:.0f}s / image bump {r['bump']:.0f}s / "
            f"image bump --changed {r['changed_bump']:.0f}s / no-op --changed {r['changed_noop']:.1f}s "
            f"({r['changed_bare']:.1f}s without preflight) / app alone by hand {r['hand_bump']:.0f}s / teardown {r['teardown']:.0f}s / destroy by hand "
            f"{r['hand_destroy']:.0f}s"
            for r in runs
        )
        + ".",
    ]
    for title, key in (
        ("full deploy", "units_full"),
        ("no-op deploy", "units_noop"),
        ("image bump", "units_bump"),
        ("image bump with --changed", "units_changed_bump"),
        ("teardown", "units_down"),
    ):
        lines += [
            "",
            f"## Where the time goes: {title} (first run)",
            "",
            "| unit | status | wall in its turn | init | plan | apply | note |",
            "| --- | --- | ---: | ---: | ---: | ---: | --- |",
        ]
        for unit, u in runs[0][key].items():
            t = u.get("terraform_s", {})
            lines.append(
                f"| {unit} | {u['status']} | {u['duration_s']:.1f} s | {t.get('init', 0):.1f} | {t.get('plan', 0):.1f} | "
                f"{t.get('apply', 0):.1f} | {'; '.join(filter(None, [u.get('why', ''), u.get('detail', '')]))} |"
            )
    text = "\n".join(lines) + "\n"
    # The hand-written analysis below the marker survives a re-run.
    analysis = ""
    if path.exists() and "<!-- analysis -->" in (previous := path.read_text()):
        analysis = "\n<!-- analysis -->" + previous.split("<!-- analysis -->", 1)[1]
    path.write_text(text + analysis)
    return text


def prepare(prefix: str) -> Path:
    """A temporary directory holding a copy of the project (the image bump edits its env.toml); sets MIRROR
    and PROJECT for every helper here."""
    global MIRROR, PROJECT
    MIRROR = mirror()
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    PROJECT = tmp / "project"
    ignore = shutil.ignore_patterns(".terraform", "*.tfstate*", "tfplan")
    for part in ("terraform", "environments"):
        shutil.copytree(ROOT / part, PROJECT / part, ignore=ignore)
    return tmp


def load_runs(path: Path) -> list[dict]:
    """Saved runs as one_run returned them (JSON turned the copy counts into strings)."""
    runs = json.loads(path.read_text())
    for run in runs:
        run["at_once"] = {int(n): v for n, v in run["at_once"].items()}
    return runs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="start-up and memory only (seconds, not minutes)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--concurrency", default="1,2,4", help="copies deployed at once, e.g. 1,2,4 ('' for none)")
    parser.add_argument(
        "--raw",
        default=str(Path(tempfile.gettempdir()) / "orchestrator-bench-runs.json"),
        help="each finished run's numbers are saved here, so a failure in a later run loses none",
    )
    parser.add_argument("--report-from", metavar="RAW", help="write the report from saved runs, measure nothing")
    args = parser.parse_args()
    if args.report_from:
        print(write_report(load_runs(Path(args.report_from)), Path(args.out)))
        return
    concurrency = [int(n) for n in args.concurrency.split(",") if n.strip()]
    tmp = prepare("orchestrator-bench-")
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
            runs.append(one_run(i, tmp, concurrency))
            Path(args.raw).write_text(json.dumps(runs, indent=1))
            print(
                f"run {i + 1}/{args.runs}: "
                + json.dumps({k: round(v, 1) for k, v in runs[-1].items() if isinstance(v, float)}),
                flush=True,
            )
        print(write_report(runs, Path(args.out)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


MIRROR = ""
PROJECT = ROOT  # main() copies the project into its temporary directory

if __name__ == "__main__":
    main()
