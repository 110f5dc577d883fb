import io

import pytest
from typer.testing import CliRunner

from orchestrator import __version__
from orchestrator.cli.main import app
from orchestrator.report.views import ci, confirm_factory


@pytest.mark.parametrize(
    "value, unattended",
    [("true", True), ("1", True), ("YES", True), ("false", False), ("0", False), ("", False), ("no", False)],
)
def test_ci_is_read_as_a_boolean(monkeypatch, value, unattended):
    monkeypatch.setenv("CI", value)
    assert ci() is unattended
    if unattended:
        assert confirm_factory(yes=False) is None  # nobody is asked


def test_version():
    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.strip() == f"orchestrator {__version__}"


def test_the_prompt_lists_the_plan_then_says_how_many_more_and_where(monkeypatch, capsys):
    from orchestrator.report import views
    from orchestrator.tf.terraform import PlanSummary

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(views.sys.stdin, "isatty", lambda: True)
    answers = []
    monkeypatch.setattr(views.typer, "confirm", lambda text, **kw: answers.append(text) or True)
    confirm = confirm_factory(yes=False)
    resources = tuple({"address": f"aws_subnet.private[{i}]", "actions": ["create"]} for i in range(29))
    assert confirm("network", PlanSummary(29, 0, 0, 0, resources), "/w/network/terraform.log")
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "network: plan +29 ~0 -0 ±0"
    assert len(err) == 1 + views.SHOWN + 1
    assert err[-1] == f"    ... and {29 - views.SHOWN} more (the full plan: /w/network/terraform.log)"
    assert answers == ["apply this plan to network?"]
    confirm("network", PlanSummary(0, 0, 3, 0, resources[:3]), "/w/log")
    assert answers[-1] == "destroy network?"


def test_the_live_view_shows_only_the_units_of_the_run():
    """--only: the units outside the run are never listed as pending."""
    from rich.console import Console

    from orchestrator.report.views import LiveProgress

    live = LiveProgress(["network", "security", "database", "app"])
    live.narrow(["database", "app"])
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(live.render())
    shown = [line.split()[0] for line in console.export_text().splitlines() if line.strip()]
    assert shown == ["database", "app"]


def test_a_live_run_lock_gets_no_release_command_a_stale_one_does():
    """status/envs: releasing the lock of a run renewed seconds ago would let a second run in
    beside it; only a stale lock (not renewed, or its process gone) is shown with force-unlock."""
    import os
    import time

    from orchestrator.report.views import lock_lines

    now = time.time()
    live = {
        "run_id": "r-live", "command": "deploy", "who": "ci", "host": "elsewhere", "pid": os.getpid(),
        "pid_start": None, "started": now - 60, "renewed": now - 4,
    }  # fmt: skip
    (line,) = lock_lines({"environment": "dev-pr1", "run_lock": live}, "dev")
    assert "its run is alive (renewed lately): wait for it" in line and "force-unlock" not in line
    stale = {**live, "run_id": "r-old", "renewed": now - 20 * 60}
    (line,) = lock_lines({"environment": "dev-pr1", "run_lock": stale}, "dev")
    assert line.endswith("stale (not renewed for 20 min): orchestrator force-unlock --env dev --suffix pr1 --run r-old")


def test_status_and_envs_are_rendered_from_what_the_bucket_holds():
    """`status` and `envs` only read; what they print is made here, from the journal and the
    copy's inventory: locks first (with the release command), then the units in graph order."""
    from orchestrator.report.views import envs_lines, status_lines

    lock = {"ID": "4f1c", "Who": "ci@runner-7", "Created": "2026-12-07", "Operation": "OperationTypeApply"}
    copy = {"environment": "dev-pr1", "run_lock": None, "state_locks": {"db": lock}}
    record = {"command": "deploy", "status": "failed", "at": 0, "who": "ci", "run_id": "r1", "detail": "boom"}
    lines = status_lines({"units": {"db": record}}, copy, "dev", ["net", "db"])
    assert lines[0] == (
        "state lock on db: 4f1c (OperationTypeApply by ci@runner-7, since 2026-12-07); if that run is dead: "
        "orchestrator force-unlock --env dev --suffix pr1 --unit db 4f1c"
    )
    assert lines[1].split() == ["UNIT", "LAST", "STATUS", "WHEN", "(UTC)", "BY", "RUN"]
    assert lines[2].split() == ["net", "-"]
    assert lines[3].split() == ["db", "deploy", "failed", "1970-01-01", "00:00:00", "ci", "r1", "boom"]
    assert status_lines({"units": {}}, {**copy, "state_locks": {}}, "dev", ["db"]) == ["no run recorded for dev-pr1"]

    assert envs_lines([], None) == ["no copy of any environment has state, a run or a lock"]
    found = [("dev", {**copy, "units": ["net"], "last_run": None})]
    header, line, locked = envs_lines(found, "dev")
    assert line.split()[0] == "dev-pr1" and line.endswith("net")
    assert locked.strip().startswith("state lock on db: 4f1c")


def test_plan_summary_marks_previews_and_folds_each_plan_redacted():
    from orchestrator.core.runner import RunReport, Status, UnitResult
    from orchestrator.redact import Redactor
    from orchestrator.report.views import plan_markdown

    redactor = Redactor()
    redactor.add("s3cr3t-value-1234")
    units = {
        "network": UnitResult("network", Status.SUCCEEDED, add=19, detail="aws_vpc.main", diff="+ vpc"),
        "app": UnitResult(
            "app",
            Status.SUCCEEDED,
            add=9,
            preview=True,
            detail="preview (network not deployed yet): aws_ecs_service.app | x",
            diff="+ password = s3cr3t-value-1234",
        ),
    }
    text = plan_markdown(RunReport("plan", "dev-pr7", units, 0.0, 1.0), ["network", "app"], redactor)
    assert text.startswith("### plan `dev-pr7`: 2 unit(s), 1 of them previews")
    assert "| `app` | would change (preview) | 9 | 0 | 0 | 0 | preview (network not deployed yet): " in text
    assert "aws_ecs_service.app \\| x |" in text  # a pipe in a note does not break the table
    assert "<details><summary>app: preview</summary>" in text and "<details><summary>network: plan</summary>" in text
    assert "s3cr3t-value-1234" not in text
