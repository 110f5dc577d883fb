"""Any stack, through the installed package: a project folder holding only units, a manifest
and environments (no bootstrap/, no copied code) bootstraps, deploys with its own checks,
plans clean and tears down. And the walls a new user used to hit each end in one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

EXAMPLE = ROOT / "examples" / "alerts-stack"
PLATFORM_CHECKS = {"nat gateways", "private routes", "database + secret host", "ecs service", "load balancer"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The package as `pip install` puts it: built into a wheel, installed into a folder of its own."""
    tmp = tmp_path_factory.mktemp("installed")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", str(ROOT), "-w", str(tmp / "dist")], check=True, timeout=300)
    (wheel,) = (tmp / "dist").glob("terraform_unit_orchestrator-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp / "site"), str(wheel)], check=True, timeout=300)
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    return tmp / "site"


class Installed:
    def __init__(self, site: Path, project: Path, moto_url: str, work: Path, mirror: str | None):
        self.site, self.project, self.moto_url, self.work, self.mirror = site, project, moto_url, work, mirror

    def __call__(self, *args: str, env: dict | None = None, mirror: bool = True) -> subprocess.CompletedProcess:
        base = ["--emulator-url", self.moto_url, "--work-dir", str(self.work)]
        if mirror and self.mirror:
            base += ["--provider-mirror", self.mirror]
        run_env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "CI"))}
        run_env["PYTHONPATH"] = str(self.site)
        run_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", *base, *args],
            cwd=self.project,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=900,
        )


def test_the_installed_package_carries_its_backend_and_runs_from_its_own_folder(installed):
    where = subprocess.run(
        [sys.executable, "-c", "import orchestrator.model.config as c; print(c.__file__)"],
        env={**os.environ, "PYTHONPATH": str(installed)},
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(installed)), where
    defaults = installed / "orchestrator" / "backend_defaults"
    assert sorted(p.name for p in defaults.iterdir()) == [
        "audit-bucket-policy.json",
        "backend.toml",
        "state-bucket-policy.json",
        "state-key-policy.json",
    ]


PROJECT_POLICY = '''
def topic_names_carry_the_team(plan, facts, team):
    """A project's own rule: every SNS topic it creates is named after the owning team."""
    return [
        (c["address"], f"topic name does not start with {team}-")
        for c in plan.get("resource_changes", [])
        if c["type"] == "aws_sns_topic" and "create" in c["change"]["actions"]
        and not str((c["change"].get("after") or {}).get("name", "")).startswith(team + "-")
    ]
'''


def test_a_project_policy_comes_from_an_entry_point_and_policy_test_runs_it(installed, tmp_path):
    """A policy of the project's own, installed as an entry point (orchestrator.policies),
    declared in the manifest and tested offline with `policy test`: a fixture it passes, one it
    fails; a misspelled name in the manifest is one line."""
    site = tmp_path / "site"
    shutil.copytree(installed, site)
    (site / "acme_policies.py").write_text(PROJECT_POLICY)
    dist = site / "acme_policies-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-policies\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[orchestrator.policies]\ntopic_names_carry_the_team = acme_policies:topic_names_carry_the_team\n"
    )
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".terraform"))
    manifest = project / "terraform" / "stack.toml"
    entry = '\n[[policies]]\npolicy = "topic_names_carry_the_team"\nteam = "alerts"\nlevel = "deny"\n'
    manifest.write_text(manifest.read_text() + entry)
    tests = project / "policies" / "tests"
    tests.mkdir(parents=True)

    def case(name, topic, expect):
        change = {"actions": ["create"], "after": {"name": topic}}
        plan = {
            "resource_changes": [
                {"address": "aws_sns_topic.t", "mode": "managed", "type": "aws_sns_topic", "change": change}
            ]
        }
        (tests / f"{name}.json").write_text(json.dumps({"environment": "dev", "plan": plan, "expect": expect}))

    denied = [{"policy": "topic_names_carry_the_team", "level": "deny", "address": "aws_sns_topic.t"}]
    case("named-after-the-team", "alerts-pager", [])
    case("named-otherwise", "pager", denied)
    cli = Installed(site, project, "http://127.0.0.1:9", tmp_path / "w", None)
    r = cli("policy", "test")
    assert r.returncode == 0, r.stderr
    assert "PASS named-otherwise (dev)" in r.stderr and "2 of 2 policy test(s) passed" in r.stderr
    case("named-otherwise", "pager", [])  # an expectation the policy does not meet
    r = cli("policy", "test")
    assert r.returncode == 10, r.stderr
    assert (
        "FAIL named-otherwise (dev): found, not expected: topic_names_carry_the_team:deny:aws_sns_topic.t" in r.stderr
    )
    manifest.write_text(manifest.read_text().replace('"topic_names_carry_the_team"', '"topic_names_carry_team"'))
    r = cli("policy", "test")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"error: {manifest}: policies[0]: unknown policy 'topic_names_carry_team' (did you mean "
        "'topic_names_carry_the_team'? known: checkov_checks, encrypted_storage, no_wildcard_iam_action, open_to_internet, "
        "ownership_tags, stateful_replace, topic_names_carry_the_team; a project adds its own as entry points in "
        "orchestrator.policies)"
    ]


def test_a_second_stack_deploys_with_its_own_checks_plans_clean_and_tears_down(installed, moto_url, mirror, tmp_path):
    project = tmp_path / "alerts"
    shutil.copytree(EXAMPLE, project, symlinks=True, ignore=shutil.ignore_patterns(".orchestrator", ".terraform"))
    assert not (project / "bootstrap").exists()
    run = Installed(installed, project, moto_url, tmp_path / "work", mirror)

    r = run("bootstrap", "--env", "dev")
    assert r.returncode == 0, r.stderr
    r = run("deploy", "--env", "dev", "--yes", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout)
    assert [u["unit"] for u in report["units"]] == ["topic", "alarms"]
    assert {u["status"] for u in report["units"]} == {"succeeded"}
    checks = {c["check"]: c for c in report["smoke"]}
    assert set(checks) == {"sns_topic_encrypted", "log_group_exists", "alarm notifies the topic"}
    assert all(c["passed"] for c in checks.values()), checks
    assert not PLATFORM_CHECKS & set(checks)

    r = run("plan", "--env", "dev", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    assert {u["status"] for u in json.loads(r.stdout)["units"]} == {"no changes"}

    r = run("teardown", "--env", "dev", "--yes")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "teardown left nothing" in r.stderr
    r = run("orphans", "--env", "dev")
    assert r.returncode == 0, r.stderr


def test_init_project_writes_a_project_that_locks_deploys_and_tears_down(installed, moto_url, mirror, tmp_path):
    project = tmp_path / "fresh"
    run = Installed(installed, tmp_path, moto_url, tmp_path / "work", mirror)
    r = run("init-project", str(project), "--name-prefix", "fresh")
    assert r.returncode == 0, r.stderr
    assert "next: cd" in r.stderr
    again = run("init-project", str(project))
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "already exists" in again.stderr

    run.project = project
    r = run("deploy", "--env", "dev", "--yes")
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines() == [
        "error: unit(s) logs have no .terraform.lock.hcl: run `orchestrator lock` to write one per unit "
        "(from the provider mirror when one is set)"
    ]
    r = run("lock")
    assert r.returncode == 0, r.stderr
    assert "hashicorp/aws" in (project / "terraform" / "logs" / ".terraform.lock.hcl").read_text()

    assert run("bootstrap", "--env", "dev").returncode == 0
    r = run("deploy", "--env", "dev", "--yes", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    assert [c["check"] for c in json.loads(r.stdout)["smoke"]] == ["log_group_exists"]
    r = run("teardown", "--env", "dev", "--yes")
    assert r.returncode == 0, r.stderr[-3000:]


def test_without_a_mirror_and_without_the_registry_one_line_names_the_way_out(installed, moto_url, mirror, tmp_path):
    project = tmp_path / "alerts"
    shutil.copytree(EXAMPLE, project, symlinks=True, ignore=shutil.ignore_patterns(".orchestrator", ".terraform"))
    env_file = project / "environments" / "dev" / "env.toml"
    env_file.write_text(env_file.read_text().replace("alerts", "nomirror"))  # its own bucket, key and names
    run = Installed(installed, project, moto_url, tmp_path / "work", mirror)
    # No implicit mirror in this HOME, and the registry behind a proxy that refuses: offline, as on CI.
    home = tmp_path / "home"
    home.mkdir()
    offline = {"HOME": str(home), "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost"}
    offline["TF_CLI_CONFIG_FILE"] = ""
    assert run("bootstrap", "--env", "dev").returncode == 0

    r = run("doctor", "--env", "dev", env=offline, mirror=False)
    line = next(ln for ln in r.stdout.splitlines() if "provider hashicorp/aws" in ln)
    assert line.startswith("FAIL") and "from registry.terraform.io" in line and "--provider-mirror" in line
    assert r.returncode == 3
    r = run("doctor", "--env", "dev", env=offline)
    line = next(ln for ln in r.stdout.splitlines() if "provider hashicorp/aws" in ln)
    assert line.startswith(f"ok   provider hashicorp/aws   from mirror {mirror}: 5.100.0, which every unit's"), line
    assert line.endswith(" constraint and lock file accept (topic, alarms)"), line

    r = run("deploy", "--env", "dev", "--yes", "--no-smoke", env=offline, mirror=False)
    assert r.returncode == 7, r.stderr[-3000:]
    assert (
        "unit topic: terraform cannot reach registry.terraform.io for its providers: name a filesystem mirror "
        "with --provider-mirror DIR"
    ) in r.stderr
    assert "Traceback" not in r.stderr
    # Nothing was created: the unit failed in init, before any plan.
    assert "alarms         skipped" in r.stderr


def test_the_distribution_has_a_name_of_its_own_and_an_extra_for_the_emulator(installed):
    """`orchestrator` on the package index is another project: the distribution is
    terraform-unit-orchestrator (the command stays `orchestrator`), and its `local` extra brings
    moto server, the emulator `local up` and `--local` start."""
    from email.parser import Parser

    (dist_info,) = installed.glob("terraform_unit_orchestrator-*.dist-info")
    meta = Parser().parsestr((dist_info / "METADATA").read_text())
    assert meta["Name"] == "terraform-unit-orchestrator"
    assert "local" in meta.get_all("Provides-Extra")
    requires = meta.get_all("Requires-Dist")
    assert any(r.startswith("moto[server]") and 'extra == "local"' in r for r in requires), requires
    assert not any(r.startswith("moto") and "extra" not in r for r in requires), requires
    scripts = (dist_info / "entry_points.txt").read_text()
    assert "orchestrator = orchestrator.cli.main:run" in scripts


def test_without_the_extra_the_emulator_is_refused_with_the_install_line(tmp_path):
    """A Python without moto: `local up` says which extra to install, in one line."""
    import textwrap

    script = textwrap.dedent(
        """
        import sys, importlib.util
        real = importlib.util.find_spec
        importlib.util.find_spec = lambda name, *a: None if name == "moto" else real(name, *a)
        from orchestrator.cli.main import run
        sys.argv = ["orchestrator", "--work-dir", sys.argv[1], "local", "up"]
        run()
        """
    )
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stderr
    assert r.stderr.strip() == (
        "error: no local emulator: the emulator needs moto server: pip install 'terraform-unit-orchestrator[local]'"
    )


def test_the_readme_install_line_brings_the_emulator_in_a_fresh_virtualenv(installed, tmp_path):
    """`pip install 'terraform-unit-orchestrator[local]'` in a virtualenv of its own (the wheel built
    above stands for the index): the command is there, and `local up` starts the emulator it brought."""
    (wheel,) = (installed.parent / "dist").glob("terraform_unit_orchestrator-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", f"{wheel}[local]"], check=True, timeout=900)
    project = tmp_path / "project"
    exe = str(venv / "bin" / "orchestrator")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    r = subprocess.run([exe, "init-project", str(project)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    try:
        r = subprocess.run([exe, "local", "up"], cwd=project, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        r = subprocess.run([exe, "local", "status"], cwd=project, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "http://127.0.0.1:" in r.stdout + r.stderr, r.stdout + r.stderr
    finally:
        subprocess.run([exe, "local", "down"], cwd=project, env=env, capture_output=True, text=True, timeout=120)
