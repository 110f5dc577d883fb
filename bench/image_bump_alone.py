"""The measured next step for issue #14's image-bump target: what a deploy costs when only the changed unit is
planned and applied, its upstream read from state (`deploy --only app`), against the same image bump deployed
with every unit planned (the rule today), alternately, in one deployment.

    .venv/bin/python bench/image_bump_alone.py --rounds 3

`deploy --only app` is the floor of a deploy that trusts the journal for the units it skips: such a deploy would
add a read of each skipped unit's state serial and recorded inputs (S3 reads, well under a second) to it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics

import run  # bench/run.py: the same helpers, the same settings as the full bench


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = run.prepare("orchestrator-bench-bump-")
    server = run.local.start(log_path=tmp / "moto.log")
    url, work = server.url, tmp / "orch"
    work.mkdir()
    every, alone = [], []
    try:
        run.orch(url, work, "bootstrap", "--env", "dev")
        run.orch(url, work, "local", "seed", "--env", "dev")
        run.orch(url, work, "deploy", "--env", "dev", "--yes", "--no-smoke")
        for i in range(args.rounds):
            for k, (mode, times, extra) in enumerate(
                (("every unit planned", every, ()), ("--only app", alone, ("--only", "app")))
            ):
                run.bump_image(run.PROJECT, f"2.{i}.{k}")
                run.orch(url, work, "local", "seed", "--env", "dev")
                seconds, report, _ = run.orch(
                    url, work, "deploy", "--env", "dev", "--yes", "--no-smoke", "--json", *extra
                )
                applied = [u["unit"] for u in report["units"] if u["status"] == "succeeded"]
                assert applied == ["app"], f"{mode}: applied {applied}"
                times.append(seconds)
                print(f"round {i + 1}: {mode} {seconds:.1f} s", flush=True)
        run.orch(url, work, "teardown", "--env", "dev", "--yes")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    ratios = [a / e for a, e in zip(alone, every, strict=True)]
    print(
        json.dumps(
            {
                "every_unit_planned_s": [round(t, 1) for t in every],
                "only_app_s": [round(t, 1) for t in alone],
                "ratio_each_round": [round(r, 2) for r in ratios],
                "median_every_s": round(statistics.median(every), 1),
                "median_only_app_s": round(statistics.median(alone), 1),
                "median_ratio": round(statistics.median(ratios), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
