"""`orchestrator policy test`: the platform's policies on the fixture plans in policies/tests,
offline; a fixture whose expectation is wrong fails with what differs."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from orchestrator.cli.main import app
from tests.helpers import ROOT


def run(*args):
    return CliRunner().invoke(app, ["--project-dir", *args, "policy", "test"], catch_exceptions=False)


def test_the_platforms_policy_tests_pass_offline():
    r = run(str(ROOT))
    assert r.exit_code == 0, r.output
    count = len(list((ROOT / "policies" / "tests").glob("*.json")))
    assert count >= 6 and f"{count} of {count} policy test(s) passed" in r.stderr
    assert "PASS prod-database-replaced (prod)" in r.stderr


def test_a_wrong_expectation_fails_naming_what_differs(tmp_path):
    project = tmp_path / "p"
    for d in ("terraform", "environments", "policies"):
        shutil.copytree(ROOT / d, project / d, symlinks=True)
    case = project / "policies" / "tests" / "staging-untagged-plain-topic.json"
    doc = json.loads(case.read_text())
    doc["expect"] = [{"policy": "ownership_tags", "level": "warn", "address": "aws_sns_topic.audit"}]
    case.write_text(json.dumps(doc))
    r = run(str(project))
    assert r.exit_code == 10, r.output
    line = next(x for x in r.stderr.splitlines() if x.startswith("FAIL"))
    assert line == (
        "FAIL staging-untagged-plain-topic (staging): expected, not found: ownership_tags:warn:aws_sns_topic.audit; "
        "found, not expected: encrypted_storage:deny:aws_sns_topic.audit, ownership_tags:deny:aws_sns_topic.audit"
    )


def test_no_fixtures_is_one_line(tmp_path):
    project = tmp_path / "p"
    for d in ("terraform", "environments"):
        shutil.copytree(ROOT / d, project / d, symlinks=True)
    r = run(str(project))
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines() == [
        f"error: no policy tests in {project}/policies/tests (*.json: a plan and its expected verdicts)"
    ]
