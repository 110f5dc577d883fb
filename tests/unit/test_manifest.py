"""The manifest is checked when it loads: named checks and hooks, their arguments, and the wiring
between units. Each mistake is one ConfigError naming the file, the unit and the name."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError
from orchestrator.model import catalog, plugins
from orchestrator.model.config import load_stack

BASE_TF = """
variable "name_prefix" { type = string }
variable "greeting" { type = string }
output "bucket_name" { value = "b" }
output "queue_arn" { value = "q" }
"""
LEAF_TF = """
variable "bucket" { type = string }
variable "retention" {
  type    = number
  default = 7
  validation {
    condition     = var.retention > 0
    error_message = "positive; a default = in here is not the variable's"
  }
}
output "log_group_name" { value = "l" }
"""


def project(tmp_path: Path, units: str, *, leaf_tf: str = LEAF_TF) -> Path:
    tf = tmp_path / "terraform"
    for name, text in (("base", BASE_TF), ("leaf", leaf_tf)):
        (tf / name).mkdir(parents=True)
        (tf / name / "main.tf").write_text(text)
    (tf / "stack.toml").write_text('[settings]\ngreeting = "string"\nenabled = "bool"\n\n' + textwrap.dedent(units))
    return tf


GOOD = """
[units.base]
path = "base"
smoke = [{ check = "log_group_exists", log_group_name = "bucket_name", when = "enabled" }]

[units.leaf]
path = "leaf"
inputs = { bucket = "base.bucket_name" }
smoke = [{ check = "log_group_exists", name = "logs", log_group_name = "log_group_name", retention_days = { value = 7 } }]
"""


def test_a_good_manifest_binds_each_check_to_its_outputs_settings_and_literals(tmp_path):
    stack = load_stack(project(tmp_path, GOOD))
    (call,) = stack.units["leaf"].smoke
    assert call.label == "logs" and call.function == "log_group_exists"
    assert call.arguments({"log_group_name": "/x"}, {}) == {"log_group_name": "/x", "retention_days": 7}
    gated = stack.units["base"].smoke[0]
    assert not gated.enabled({"enabled": False}) and gated.enabled({"enabled": True})
    assert stack.graph is stack.graph  # built once


def test_a_stack_that_names_no_checks_has_none(tmp_path):
    stack = load_stack(project(tmp_path, GOOD.replace("smoke", "# smoke")))
    assert all(not u.smoke and not u.post_apply for u in stack.units.values())


@pytest.mark.parametrize(
    "change, message",
    [
        (('check = "log_group_exists", name', 'check = "no_such_check", name'), "unknown check 'no_such_check'"),
        (('log_group_name = "log_group_name"', 'log_group_name = "nope"'), "names output 'nope', which unit leaf"),
        (("retention_days = { value = 7 }", "colour = 1"), "check 'log_group_exists' has no argument colour"),
        (('log_group_name = "bucket_name", when', "when"), "needs argument(s) log_group_name"),
        (('when = "enabled"', 'when = "greeting"'), "when = 'greeting' must name a bool setting"),
        (("retention_days = { value = 7 }", 'retention_days = "settings.nope"'), "'settings.nope', which is not a"),
        (('bucket = "base.bucket_name"', 'bucket = "base.no_such_output"'), "names output 'no_such_output' of unit"),
        (('bucket = "base.bucket_name"', 'bucket = "base.bucket_name", colour = "base.queue_arn"'), "input 'colour'"),
        (('inputs = { bucket = "base.bucket_name" }', ""), "variable(s) bucket get no value"),
        (('path = "leaf"', 'path = "leaf"\npost_apply = [{ hook = "nope" }]'), "unknown hook 'nope'"),
        (('path = "leaf"', 'path = "leaf"\npost_apply = ["write_db_endpoint"]'), 'hook = "<name>"'),
    ],
)
def test_each_mistake_is_refused_when_the_manifest_loads(tmp_path, change, message):
    old, new = change
    assert old in GOOD
    with pytest.raises(ConfigError) as exc:
        load_stack(project(tmp_path, GOOD.replace(old, new, 1)))
    assert message in str(exc.value)
    assert "stack.toml" in str(exc.value) and "\n" not in str(exc.value)


def test_a_project_adds_checks_and_hooks_as_entry_points(tmp_path, monkeypatch):
    site = tmp_path / "site"
    dist = site / "teamchecks-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: teamchecks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[orchestrator.checks]\nqueue_exists = teamchecks:queue_exists\n\n"
        "[orchestrator.hooks]\nannounce = teamchecks:announce\n"
    )
    (site / "teamchecks.py").write_text(
        "def queue_exists(ctx, arn):\n    return 'queue ' + arn\n\n"
        "def announce(ctx, message, loud=False):\n    return message\n"
    )
    monkeypatch.syspath_prepend(str(site))
    catalog.registry.cache_clear()
    try:
        units = GOOD.replace(
            'path = "base"\n',
            'path = "base"\npost_apply = [{ hook = "announce", message = "bucket_name" }]\n',
        ).replace('smoke = [{ check = "log_group_exists", log_group_name = "bucket_name", when = "enabled" }]', "")
        units += '\n[units.other]\npath = "base"\nsmoke = [{ check = "queue_exists", arn = "queue_arn" }]\n'
        stack = load_stack(project(tmp_path, units))
        (check,) = stack.units["other"].smoke
        assert check(plugins.Context(aws=None, settings={}), {"queue_arn": "arn:q"}) == "queue arn:q"
        (hook,) = stack.units["base"].post_apply
        assert hook(plugins.Context(aws=None, settings={}), {"bucket_name": "b1"}) == "b1"
        with pytest.raises(ConfigError, match=r"announce' has no argument volume \(it takes message, \[loud\]\)"):
            load_stack(project(tmp_path / "2", units.replace('message = "bucket_name"', "volume = 11")))
    finally:
        catalog.registry.cache_clear()
        sys.modules.pop("teamchecks", None)


def test_a_check_that_raises_anything_fails_with_one_line():
    from orchestrator.core.smoke import Check, run_check

    def broken():
        raise RuntimeError("plugin bug")

    result = run_check(Check("mine", broken))
    assert not result.passed and result.reason == "RuntimeError: plugin bug"


class FakeClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_converging_check_is_retried_for_its_whole_budget_then_fails_with_its_last_reason():
    from orchestrator.core.smoke import Check, run_check
    from orchestrator.model.plugins import NotYet

    clock, waits = FakeClock(), []

    def never():
        raise NotYet(f"0/2 tasks running at {clock.now:.0f}s")

    result = run_check(
        Check("ecs", never, budget=600), on_wait=lambda *a: waits.append(a), clock=clock, sleep=clock.sleep
    )
    assert not result.passed and result.reason.startswith(f"0/2 tasks running at {clock.now:.0f}s")
    assert "(still, after" in result.reason
    assert 585 <= clock.now <= 600  # used the budget, not the old 15 s of backoff
    assert max(clock.sleeps) == 15  # waits capped
    assert clock.sleeps[:4] == [1, 2, 4, 8]
    # said so at the start and every 30 s, not at every attempt
    assert waits[0][:2] == ("ecs", "0/2 tasks running at 0s")
    assert all(b[2] - a[2] >= 30 for a, b in zip(waits, waits[1:], strict=False))
    assert len(waits) < result.attempts


def test_a_check_that_settles_within_its_budget_passes_and_a_fail_is_not_retried():
    from orchestrator.core.smoke import Check, run_check
    from orchestrator.model.plugins import Fail, NotYet

    clock = FakeClock()

    def settles_at_100s():
        if clock.now < 100:
            raise NotYet("rollout IN_PROGRESS")
        return "COMPLETED"

    result = run_check(Check("ecs", settles_at_100s, budget=600), clock=clock, sleep=clock.sleep)
    assert result.passed and result.reason == "COMPLETED" and 100 <= clock.now < 115
    # with the old 6 attempts (about 15 s) this failed: AWS's rollout takes longer than that
    clock2 = FakeClock()

    def fails():
        raise Fail("rollout FAILED: circuit breaker")

    result = run_check(Check("ecs", fails, budget=600), clock=clock2, sleep=clock2.sleep)
    assert not result.passed and result.attempts == 1 and clock2.sleeps == []


def test_each_check_has_a_budget_sized_for_what_it_reads():
    from orchestrator.model import catalog, library, plugins

    assert library.ecs_service.converge_seconds >= 600  # Fargate start + health checks + old tasks draining
    assert library.load_balancer.converge_seconds >= 300  # an ALB is "provisioning" for minutes
    call = catalog.Call("check", "sns_topic_encrypted", "x", "u", ())
    assert call.budget == plugins.DEFAULT_CHECK_BUDGET
    assert catalog.Call("check", "ecs_service", "x", "u", ()).budget == library.ecs_service.converge_seconds


def test_only_units_that_use_a_provider_need_a_lock_file(tmp_path):
    from orchestrator.tf.providers import needs_lock_file

    cases = {
        "data_only": 'resource "terraform_data" "x" {}\n',
        "resource": 'resource "aws_sqs_queue" "q" {}\n',
        "module": 'module "m" {\n  source = "../resource"\n}\n',  # a local module that uses one
        "module_data_only": 'module "m" {\n  source = "../data_only"\n}\n',  # a local module that uses none
        "registry": 'module "vpc" {\n  source = "terraform-aws-modules/vpc/aws"\n}\n',
        "pinned": 'terraform {\n  required_providers {\n    aws = {\n      source = "hashicorp/aws"\n    }\n  }\n}\n',
    }
    found = {}
    for name, text in cases.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "main.tf").write_text(text)
        found[name] = needs_lock_file(tmp_path / name)
    assert found == {
        "data_only": False,
        "resource": True,
        "module": True,
        "module_data_only": False,
        "registry": True,
        "pinned": True,
    }


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('"aws_kms_key.data"', r"each entry is \{ address"),
        ('{ address = "aws_kms_key.data" }', r"each entry is \{ address"),
        ('{ address = "aws_kms_key.data", why = "x", whn = "enabled" }', r"each entry is \{ address"),
        ('{ address = "data key", why = "x" }', r"'data key' is not a resource address"),
        ('{ address = "aws_kms_key.data", why = "x", when = "greeting" }', r"when = 'greeting' is not a declared bool"),
    ],
)
def test_a_bad_keep_on_teardown_entry_is_one_line_naming_it(tmp_path, entry, message):
    units = GOOD.replace('[units.base]\npath = "base"', f'[units.base]\npath = "base"\nkeep_on_teardown = [{entry}]')
    with pytest.raises(ConfigError, match=message):
        load_stack(project(tmp_path, units))


def test_keep_on_teardown_applies_where_its_setting_is_on():
    from orchestrator.model.config import load_stack as load

    stack = load(Path(__file__).resolve().parents[2] / "terraform")
    (keep,) = stack.units["security"].keep_on_teardown
    assert keep.address == "aws_kms_key.data" and keep.when == "final_snapshot"
    assert stack.units["security"].keeps({"final_snapshot": True}) == (keep,)
    assert stack.units["security"].keeps({"final_snapshot": False}) == ()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("smoke = [", "smokes = ["), r"unknown key units\.base\.'smokes': did you mean units\.base\.'smoke'\?"),
        (
            ('path = "base"', 'pth = "base"\npath = "base"'),
            r"unknown key units\.base\.'pth': did you mean units\.base\.'path'\?",
        ),
        (
            ("[units.base]", "[ownershp]\ntags = {}\n\n[units.base]"),
            r"unknown key 'ownershp': did you mean 'ownership'\?",
        ),
        (
            ("[units.base]", "[guard]\nstatefull_types = []\n\n[units.base]"),
            r"unknown key guard\.'statefull_types': did you mean guard\.'stateful_types'\?",
        ),
        (("[units.base]", "[zzz]\n\n[units.base]"), r"unknown key 'zzz': valid: settings, units, "),
    ],
)
def test_an_unknown_manifest_key_is_one_line_naming_the_nearest_valid_one(tmp_path, edit, message):
    """A typo in a key never switches something off in silence (`smokes = [...]`: no smoke checks)."""
    old, new = edit
    assert old in GOOD
    with pytest.raises(ConfigError, match=message) as caught:
        load_stack(project(tmp_path, GOOD.replace(old, new, 1)))
    assert str(caught.value).startswith(str(tmp_path / "terraform" / "stack.toml") + ": ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "protected = false",
            "protected = false\nprotect = true",
            r"env.toml: unknown key 'protect': did you mean 'protected'\?",
        ),
        ('locking = "lockfile"', 'locking = "lockfile"\nlock_table = "x"', r"unknown key backend\.'lock_table'"),
        ("[settings]", "[setings]\n[settings]", r"unknown key 'setings': did you mean 'settings'\?"),
    ],
)
def test_an_unknown_environment_key_is_one_line(tmp_project, old, new, message):
    from orchestrator.model.config import load_environment

    env_file = tmp_project / "environments" / "dev" / "env.toml"
    text = env_file.read_text()
    assert old in text
    env_file.write_text(text.replace(old, new, 1))
    stack = load_stack(tmp_project / "terraform")
    with pytest.raises(ConfigError, match=message):
        load_environment(tmp_project / "environments", "dev", stack)


def test_doctor_checks_each_units_constraint_and_lock_file_against_the_mirror(tmp_path):
    """The mirror answers "from where"; whether what it holds is what the units ask for is checked too."""
    from orchestrator.model.config import load_stack
    from orchestrator.tf.providers import mirror_problems, mirror_versions, satisfies

    mirror = tmp_path / "mirror"
    (mirror / "registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64").mkdir(parents=True)
    (mirror / "registry.terraform.io/hashicorp/aws/terraform-provider-aws_5.99.1_linux_amd64.zip").write_text("")
    assert mirror_versions(mirror, "registry.terraform.io/hashicorp/aws") == ["5.99.1", "5.100.0"]
    tf = tmp_path / "terraform"
    for unit, constraint, pinned in (("ok", "~> 5.100", "5.100.0"), ("new", "~> 6.0", ""), ("old", "", "5.98.0")):
        (tf / unit).mkdir(parents=True)
        version = f'\n      version = "{constraint}"' if constraint else ""
        (tf / unit / "main.tf").write_text(
            'terraform {\n  required_providers {\n    aws = {\n      source = "hashicorp/aws"'
            + version
            + "\n    }\n  }\n}\n"
        )
        if pinned:
            (tf / unit / ".terraform.lock.hcl").write_text(
                f'provider "registry.terraform.io/hashicorp/aws" {{\n  version = "{pinned}"\n}}\n'
            )
    (tf / "stack.toml").write_text("".join(f'[units.{u}]\npath = "{u}"\n' for u in ("ok", "new", "old")))
    problems = mirror_problems(load_stack(tf), mirror, "registry.terraform.io/hashicorp/aws")
    assert problems == [
        "unit new needs hashicorp/aws ~> 6.0, the mirror has 5.99.1, 5.100.0",
        "unit old's lock file pins 5.98.0, the mirror has 5.99.1, 5.100.0 (orchestrator lock --upgrade)",
    ]
    assert satisfies("5.100.3", "~> 5.100.0") and not satisfies("5.101.0", "~> 5.100.0")
    assert satisfies("5.100.0", ">= 5.0, < 6.0") and not satisfies("5.100.0", ">= 5.0, != 5.100.0")


def test_a_missing_output_and_a_key_error_inside_a_check_are_told_apart():
    """A check's argument naming an output the state lacks says so; a KeyError raised by the check's
    own code is a bug or an unexpected reply, never reported as a missing output."""
    from orchestrator.core.smoke import Check, run_check
    from orchestrator.model.plugins import MissingOutput

    def missing():
        raise MissingOutput("output 'alb_dns_name' of unit edge")

    def buggy():
        return {}["TargetHealth"]

    assert run_check(Check("a", missing)).reason == "missing output 'alb_dns_name' of unit edge"
    assert run_check(Check("b", buggy)).reason == "unexpected value: KeyError: 'TargetHealth'"
