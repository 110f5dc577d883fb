#!/usr/bin/env python3
"""Acceptance run against a real AWS account (`make test-aws`), or an emulator.

Deploys an environment (dev by default) as a fresh copy with a random suffix,
runs its smoke checks, tears it down, and then lists every live resource still
tagged with that copy (Resource Groups Tagging API): there must be none.
Teardown runs whatever failed before it, and on Ctrl-C. Exit 0 only when every
step passed and nothing was left.

Real account (a sandbox, never prod):
    AWS_PROFILE=sandbox scripts/acceptance.py --image <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>
The environment's account id and state bucket are rewritten to the profile's
account in a temporary copy of the project; the image must exist there.

Emulator (what `make test` runs, the same code path):
    scripts/acceptance.py --emulator-url http://127.0.0.1:PORT [--suffix pr1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def log(message: str) -> None:
    print(f"[acceptance {time.strftime('%H:%M:%S')}] {message}", flush=True)


def project_copy(source: Path, env: str, account: str, image: str | None, dest: Path) -> Path:
    """The project with the environment moved to this account (and image)."""
    for d in ("terraform", "environments"):
        # files, not links: a unit's shared files may link outside the folders copied
        shutil.copytree(source / d, dest / d, ignore=shutil.ignore_patterns(".terraform"))
    f = dest / "environments" / env / "env.toml"
    text = f.read_text()
    text = re.sub(r'(?m)^account_id = "\d{12}"', f'account_id = "{account}"', text)
    text = re.sub(r'(?m)^(bucket = "[a-z0-9.-]*?-)\d{12}"', rf'\g<1>{account}"', text)
    if image:
        text = re.sub(r'(?m)^container_image = ".*"', f'container_image = "{image}"', text)
    f.write_text(text)
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="dev")
    p.add_argument("--suffix", default=None, help="default: acc + 6 random hex digits")
    p.add_argument("--emulator-url", default=None)
    p.add_argument("--image", default=None, help="container image in the account's ECR (real accounts)")
    p.add_argument("--work-dir", default=None)
    p.add_argument("--project-dir", default=str(ROOT), help="the project (default: this repository's platform)")
    p.add_argument("--report", default=None, help="write the run's steps and findings as JSON here")
    args = p.parse_args(argv)

    from orchestrator.aws.clients import Aws
    from orchestrator.aws.orphans import live_tagged
    from orchestrator.model.config import load_environment, load_stack, validate_suffix

    suffix = validate_suffix(args.suffix or f"acc{secrets.token_hex(3)}")
    source = Path(args.project_dir)
    region = load_environment(source / "environments", args.env, load_stack(source / "terraform")).region
    aws = Aws(region, endpoint_url=args.emulator_url, profile=os.environ.get("AWS_PROFILE"))
    account = aws.account_id()
    if not args.emulator_url and "prod" in args.env:
        log("refusing to run the acceptance suite on a prod environment")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="orchestrator-acceptance-"))
    project = project_copy(source, args.env, account, args.image, tmp / "project")
    work = Path(args.work_dir) if args.work_dir else tmp / "work"
    env_id = f"{args.env}-{suffix}"
    base = [sys.executable, "-m", "orchestrator", "--project-dir", str(project), "--work-dir", str(work)]
    if args.emulator_url:
        base += ["--emulator-url", args.emulator_url]
    report: dict = {"environment": env_id, "account": account, "steps": [], "leftovers": None}

    def step(name: str, *cli: str) -> subprocess.CompletedProcess:
        log(f"{name}: orchestrator {' '.join(cli)}")
        t0 = time.monotonic()
        proc = subprocess.run([*base, *cli], capture_output=True, text=True, env={**os.environ, "CI": "true"})
        seconds = round(time.monotonic() - t0, 1)
        report["steps"].append({"step": name, "exit": proc.returncode, "seconds": seconds})
        log(f"{name}: exit {proc.returncode} in {seconds} s")
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-4000:])
        return proc

    ok = True
    try:
        ok = step("bootstrap", "bootstrap", "--env", args.env).returncode == 0
        if ok and args.emulator_url:
            ok = step("seed", "local", "seed", "--env", args.env).returncode == 0
        if ok:
            ok = step("deploy", "deploy", "--env", args.env, "--suffix", suffix, "--yes").returncode == 0
        if ok:
            smoke = step("smoke", "smoke", "--env", args.env, "--suffix", suffix, "--json")
            ok = smoke.returncode == 0
            outputs = step("outputs", "outputs", "--env", args.env, "--suffix", suffix, "--json")
            report["outputs"] = json.loads(outputs.stdout)["outputs"] if outputs.returncode == 0 else None
            envs = step("envs", "envs", "--env", args.env, "--json")
            copies = json.loads(envs.stdout)["copies"] if envs.returncode == 0 else None
            report["envs"] = None if copies is None else sorted(c["environment"] for c in copies if c["units"])
    finally:
        # Whatever happened above (a failed step, Ctrl-C): nothing may stay behind.
        down = step("teardown", "teardown", "--env", args.env, "--suffix", suffix, "--yes")
        ok = ok and down.returncode == 0
        left = live_tagged(aws, {"EnvironmentSuffix": env_id})
        report["leftovers"] = left
        for arn in left:
            log(f"LEFT BEHIND: {arn}")
        ok = ok and not left
        report["result"] = "passed" if ok else "failed"
        if args.report:
            Path(args.report).write_text(json.dumps(report, indent=2))
        log(f"{env_id} in account {account}: {report['result']}, {len(left)} resource(s) left")
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
