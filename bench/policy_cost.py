"""Benchmark: what the policies cost per unit plan (issue #29), offline.

    .venv/bin/python bench/policy_cost.py --runs 5     # prints a Markdown table for docs/benchmarks.md

The built-in policies are pure Python over the plan document; the opt-in `checkov_checks` starts
checkov (its own virtualenv) once per plan. Each is timed on every fixture plan of
policies/tests and on a synthetic plan of 300 resources, the median over --runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.policy import policies  # noqa: E402


def big_plan(n: int = 300) -> dict:
    changes = [
        {
            "address": f"aws_sqs_queue.q{i}",
            "mode": "managed",
            "type": "aws_sqs_queue",
            "name": f"q{i}",
            "change": {
                "actions": ["create"],
                "after": {"sqs_managed_sse_enabled": True, "tags_all": {"Project": "p", "EnvironmentSuffix": "s"}},
                "after_unknown": {},
            },
        }
        for i in range(n)
    ]
    values = [
        {
            "address": c["address"],
            "mode": "managed",
            "type": c["type"],
            "name": c["name"],
            "values": c["change"]["after"],
        }
        for c in changes
    ]
    return {
        "format_version": "1.2",
        "terraform_version": "1.11.4",
        "planned_values": {"root_module": {"resources": values}},
        "resource_changes": changes,
        "configuration": {"root_module": {"resources": []}},
    }


def median_seconds(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    plans = {p.stem: json.loads(p.read_text())["plan"] for p in sorted((ROOT / "policies" / "tests").glob("*.json"))}
    plans["synthetic, 300 resources"] = big_plan()
    facts = policies.Facts(
        "prod", True, stateful_types=frozenset({"aws_rds_cluster"}), ownership_tags=("Project", "EnvironmentSuffix"),
        project_root=str(ROOT),
    )  # fmt: skip
    pure = [n for n in policies.BUILTIN if n != "checkov_checks"]
    print("| plan | resources | the five built-ins (ms) | checkov_checks (s) |")
    print("| --- | ---: | ---: | ---: |")
    for name, plan in plans.items():
        count = len(plan.get("resource_changes", []))
        builtins = median_seconds(lambda plan=plan: [policies.BUILTIN[p](plan, facts) for p in pure], args.runs)
        ck = median_seconds(lambda plan=plan: policies.checkov_checks(plan, facts), args.runs)
        print(f"| {name} | {count} | {builtins * 1000:.2f} | {ck:.2f} |")


if __name__ == "__main__":
    main()
