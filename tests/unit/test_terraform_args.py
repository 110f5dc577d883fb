import pytest

from orchestrator.terraform import (
    PlanSummary,
    backend_config_args,
    build_args,
    cli_config_text,
    first_error,
    parse_lock_info,
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


def test_cli_config_with_and_without_mirror(tmp_path):
    text = cli_config_text("/opt/mirror", tmp_path / "cache")
    assert 'path    = "/opt/mirror"' in text and f'plugin_cache_dir = "{tmp_path / "cache"}"' in text
    assert "provider_installation" not in cli_config_text(None, tmp_path)


def test_backend_config_for_units(project_root):
    from orchestrator.backend import backend_config
    from orchestrator.config import load_environment, load_stack

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


LOCK_ERR = """
│ Error: Error acquiring the state lock
│
│ Error message: operation error S3: PutObject, https response error StatusCode: 412
│ Lock Info:
│   ID:        5c1f4a0e-1111-2222-3333-444455556666
│   Path:      acme/payment-platform/dev/network.tfstate
│   Operation: OperationTypeApply
│   Who:       runner@ci-17
│   Version:   1.11.4
│   Created:   2026-11-29 04:00:00.1 +0000 UTC
"""


def test_parse_lock_info():
    info = parse_lock_info(LOCK_ERR)
    assert info["ID"] == "5c1f4a0e-1111-2222-3333-444455556666"
    assert info["Who"] == "runner@ci-17"
    assert info["Created"].startswith("2026-11-29")


@pytest.mark.parametrize(
    "tail,expected",
    [("│ Error: Invalid value\n│ more", "Invalid value"), ("just a line\nlast line", "last line"), ("", "no output")],
)
def test_first_error(tail, expected):
    assert first_error(tail) == expected


PLAN_TEXT = """
Terraform will perform the following actions:

  # aws_iam_role.monitoring will be created
  + resource "aws_iam_role" "monitoring" {
  # aws_rds_cluster_instance.main[0] will be updated in-place
  # aws_sns_topic_subscription.email["ops@acme-payments.com"] must be replaced
-/+ resource "aws_sns_topic_subscription" "email" {
  # aws_lb.main will be destroyed
  # aws_lb.old (deposed object 1a2b3c) will be destroyed
  # data.aws_iam_policy_document.rotation will be read during apply
  # terraform_data.x will be replaced, as requested

Plan: 3 to add, 1 to change, 4 to destroy.
"""


def test_plan_summary_from_text_matches_the_plan_line():
    s = PlanSummary.from_plan_text(PLAN_TEXT)
    assert (s.add, s.change, s.destroy, s.replace) == (1, 1, 2, 2)
    # terraform's own count: add = creates + replaces, destroy = deletes + replaces
    assert (s.add + s.replace, s.change, s.destroy + s.replace) == (3, 1, 4)
    assert s.resources[2]["address"] == 'aws_sns_topic_subscription.email["ops@acme-payments.com"]'
    assert s.resources[4]["address"] == "aws_lb.old (deposed object 1a2b3c)"
