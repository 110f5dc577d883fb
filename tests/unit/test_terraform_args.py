import pytest

from orchestrator.tf.terraform import (
    PlanSummary,
    backend_config_args,
    build_args,
    cli_config_text,
    cli_setup,
    first_error,
    implicit_mirrors,
)


def test_build_args_adds_input_false_for_mutating_commands():
    assert build_args("plan", flags=["-detailed-exitcode"]) == [
        "plan",
        "-input=false",
        "-no-color",
        "-detailed-exitcode",
    ]
    assert build_args("output", flags=["-json"]) == ["output", "-no-color", "-json"]


def test_build_args_options():
    args = build_args("apply", flags=["-auto-approve"], options={"lock-timeout": "30s", "parallelism": 10, "x": None})
    assert args[-2:] == ["-lock-timeout=30s", "-parallelism=10"]


def test_backend_config_args_sorted_and_bools_lowercase():
    args = backend_config_args({"key": "p/dev/network.tfstate", "encrypt": True, "bucket": "b", "use_lockfile": True})
    assert args == [
        "-backend-config=bucket=b",
        "-backend-config=encrypt=true",
        "-backend-config=key=p/dev/network.tfstate",
        "-backend-config=use_lockfile=true",
    ]


USER_RC = """
plugin_cache_dir = "/home/op/.cache/terraform"
disable_checkpoint = true
credentials "app.terraform.io" {
  token = "canary-tfc-token-0123456789"
}
credentials "tf.my-corp.example" {
  token = "canary-corp-token-9876543210"
}
"""


def test_the_mirror_is_added_to_the_operators_own_config_and_tokens_leave_the_file(tmp_path):
    text, tokens = cli_config_text("/opt/mirror", USER_RC)
    assert 'path    = "/opt/mirror"' in text and "disable_checkpoint = true" in text
    assert "canary" not in text and "credentials" not in text
    assert tokens == {
        "TF_TOKEN_app_terraform_io": "canary-tfc-token-0123456789",
        "TF_TOKEN_tf_my__corp_example": "canary-corp-token-9876543210",
    }
    own = USER_RC + "provider_installation {\n  direct {}\n}\n"
    assert cli_config_text("/opt/mirror", own)[0].count("provider_installation") == 1  # theirs wins


def test_without_a_mirror_the_operators_cli_config_is_left_alone(tmp_path, monkeypatch):
    rc = tmp_path / "user.rc"
    rc.write_text(USER_RC)
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(rc))
    config, env = cli_setup(tmp_path / "work", None)
    assert config is None and env == {"TF_PLUGIN_CACHE_DIR": str(tmp_path / "work" / "plugin-cache")}
    config, env = cli_setup(tmp_path / "work", "/opt/mirror")
    assert config.stat().st_mode & 0o777 == 0o600
    assert "disable_checkpoint = true" in config.read_text() and "canary" not in config.read_text()
    assert env["TF_TOKEN_app_terraform_io"] == "canary-tfc-token-0123456789"


def test_implicit_mirrors_are_terraforms_own_directories(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    (tmp_path / ".terraform.d" / "plugins").mkdir(parents=True)
    data = tmp_path / "data"
    (data / "terraform" / "plugins").mkdir(parents=True)
    found = implicit_mirrors({"XDG_DATA_DIRS": str(data)})
    assert found[:2] == [tmp_path / ".terraform.d" / "plugins", data / "terraform" / "plugins"]


def test_backend_config_for_units(project_root):
    from orchestrator.model.config import load_environment, load_stack
    from orchestrator.state.statestore import backend_config

    stack = load_stack(project_root / "terraform")
    dev = load_environment(project_root / "environments", "dev", stack).with_suffix("pr7")
    conf = backend_config(dev, "database", "arn:aws:kms:us-east-1:1:key/k", None)
    assert conf["key"] == "payment-platform/dev-pr7/database.tfstate"
    assert conf["use_lockfile"] is True and "dynamodb_table" not in conf
    assert conf["encrypt"] is True and conf["kms_key_id"].endswith("key/k")
    prod = load_environment(project_root / "environments", "prod", stack)
    conf = backend_config(prod, "network", "k", "http://127.0.0.1:5000")
    assert conf["dynamodb_table"] == "acme-payments-tfstate-locks-prod" and "use_lockfile" not in conf
    assert 's3="http://127.0.0.1:5000"' in conf["endpoints"] and conf["use_path_style"] is True


def test_plan_summary_counts_replacements_separately():
    plan = {
        "resource_changes": [
            {"address": "a", "change": {"actions": ["create"]}},
            {"address": "b", "change": {"actions": ["update"]}},
            {"address": "c", "change": {"actions": ["delete", "create"]}},
            {"address": "d", "change": {"actions": ["delete"]}},
            {"address": "e", "change": {"actions": ["no-op"]}},
            {"address": "f", "change": {"actions": ["read"]}},
            {"address": "g", "change": {"actions": ["create", "delete"]}},
        ]
    }
    s = PlanSummary.from_plan_json(plan)
    assert (s.add, s.change, s.destroy, s.replace) == (1, 1, 1, 2)
    assert s.has_changes
    assert not PlanSummary.from_plan_json({"resource_changes": []}).has_changes


@pytest.mark.parametrize(
    "tail,expected",
    [("│ Error: Invalid value\n│ more", "Invalid value"), ("just a line\nlast line", "last line"), ("", "no output")],
)
def test_first_error(tail, expected):
    assert first_error(tail) == expected


DRIFT_PLAN = {
    "configuration": {
        "root_module": {
            "resources": [
                {"address": "aws_cloudwatch_log_group.base", "expressions": {"name": {}, "retention_in_days": {}}},
                {"address": "aws_iam_role.flow_logs", "expressions": {"name": {}, "assume_role_policy": {}}},
                {"address": "aws_sns_topic.alerts", "expressions": {"name": {}}},
            ],
            "module_calls": {
                "net": {"module": {"resources": [{"address": "aws_subnet.private", "expressions": {"cidr_block": {}}}]}}
            },
        }
    },
    "resource_drift": [
        {
            "address": "aws_cloudwatch_log_group.base",
            "change": {
                "actions": ["update"],
                "before": {"name": "/x", "retention_in_days": 7, "tags": None},
                "after": {"name": "/x", "retention_in_days": 1, "tags": {}},
            },
        },
        {  # read back by the provider, not set by the configuration; the policy only re-serialised
            "address": "aws_iam_role.flow_logs",
            "change": {
                "actions": ["update"],
                "before": {"assume_role_policy": '{"Version": "2012-10-17"}', "inline_policy": []},
                "after": {"assume_role_policy": '{"Version":"2012-10-17"}', "inline_policy": [{"name": "w"}]},
            },
        },
        {"address": "aws_sns_topic.alerts", "change": {"actions": ["delete"], "before": {"name": "a"}, "after": None}},
        {
            "address": "module.net.aws_subnet.private[1]",
            "change": {
                "actions": ["update"],
                "before": {"cidr_block": "10.0.1.0/24"},
                "after": {"cidr_block": "10.9.1.0/24"},
            },
        },
    ],
}


def test_drift_is_an_attribute_the_configuration_sets_that_aws_now_holds_differently():
    s = PlanSummary.from_drift_json(DRIFT_PLAN)
    assert (s.add, s.change, s.destroy, s.replace) == (0, 2, 1, 0)
    assert s.describe() == (
        "aws_cloudwatch_log_group.base (retention_in_days); aws_sns_topic.alerts (deleted outside terraform); "
        "module.net.aws_subnet.private[1] (cidr_block)"
    )


LOCK_FAILURE = """
Error: Could not retrieve providers for locking

Terraform failed to fetch the requested providers for linux_amd64 in order to
calculate their checksums: some providers could not be installed:
- registry.terraform.io/hashicorp/aws: locked provider
registry.terraform.io/hashicorp/aws 5.100.0 does not match configured version
constraint ~> 6.0; must use terraform init
-upgrade to allow selection of new versions.
"""


def test_terraforms_reason_is_one_line_and_its_init_upgrade_advice_becomes_ours():
    from orchestrator.tf.terraform import error_detail, our_advice

    text = our_advice(LOCK_FAILURE)
    assert "terraform init" not in text and "orchestrator lock --upgrade" in text
    assert error_detail(text).startswith("Terraform failed to fetch the requested providers for linux_amd64 in")
    assert "5.100.0 does not match configured version constraint ~> 6.0; must use orchestrator lock" in (
        error_detail(text)
    )
    assert error_detail("no error block at all") == "no error block at all"


def test_lock_upgrade_puts_the_old_file_back_when_terraform_fails(tmp_path):
    import pytest

    from orchestrator.errors import ConfigError, TerraformError
    from orchestrator.tf.providers import write_lock_file
    from orchestrator.tf.terraform import Workspace

    unit = tmp_path / "unit"
    unit.mkdir()
    (unit / ".terraform.lock.hcl").write_text("# pinned 5.100.0\n")
    seen = []

    class Failing:
        def providers_lock(self, ws, platforms, mirror):
            seen.append((ws.source_dir / ".terraform.lock.hcl").exists())
            raise TerraformError("terraform providers failed", stderr_tail=LOCK_FAILURE)

    with pytest.raises(ConfigError, match=r"^unit unit: cannot lock its providers from /m: Terraform failed"):
        write_lock_file(Failing(), Workspace("unit", unit, tmp_path / "w"), ["linux_amd64"], "/m", upgrade=True)
    assert seen == [False]  # set aside while terraform chose
    assert (unit / ".terraform.lock.hcl").read_text() == "# pinned 5.100.0\n"
    assert not (unit / ".terraform.lock.hcl.before-upgrade").exists()


def test_the_tail_keeps_the_first_error_that_a_plan_and_its_warnings_pushed_up():
    """Under the shim, stdout and stderr share one log in the order they arrived: the error that
    decides what happened (first_error) must survive a long plan and warnings printed after it."""
    from orchestrator.tf.terraform import first_error, output_tail

    error = ["│ Error: Invalid count argument", "│   on main.tf line 9, in resource:", "│ The count value depends on"]
    after = [f"  + plan line {i}" for i in range(60)] + ["Warning: Backend configuration ignored"] * 3
    lines = ["Refreshing..."] + error + after
    tail = output_tail(lines)
    assert len(tail) == 41 and tail[0] == error[0] and tail[-1] == after[-1] and "..." in tail
    assert first_error("\n".join(tail)) == "Invalid count argument"
    assert first_error("\n".join(lines[-40:])) != "Invalid count argument"  # what the plain tail lost
    short = ["a", *error, "b"]
    assert output_tail(short) == short  # an error inside the last 40 lines: the tail as it was
    assert output_tail(after) == after[-40:]
