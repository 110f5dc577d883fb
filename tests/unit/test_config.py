import pytest

from orchestrator.errors import ConfigError, GraphError
from orchestrator.model.config import (
    Environment,
    known_environments,
    load_environment,
    load_stack,
    supplied_secrets,
    unit_variables,
    validate_suffix,
)
from orchestrator.state.statestore import state_key


def stack_of(root):
    return load_stack(root / "terraform")


def test_every_environment_loads(project_root):
    stack = stack_of(project_root)
    for name in ("dev", "staging", "prod"):
        env = load_environment(project_root / "environments", name, stack)
        assert env.name == name
        assert set(env.settings) == set(stack.settings_schema)


def test_prod_turns_every_protection_on_and_dev_is_cheap(project_root):
    stack = stack_of(project_root)
    prod = load_environment(project_root / "environments", "prod", stack)
    dev = load_environment(project_root / "environments", "dev", stack)
    assert prod.protected and not dev.protected
    for switch in ("enable_waf", "enable_rotation", "kms_encrypted_logs", "deletion_protection", "final_snapshot"):
        assert prod.settings[switch] is True, switch
        assert dev.settings[switch] is False, switch
    assert prod.settings["single_nat_gateway"] is False and dev.settings["single_nat_gateway"] is True
    assert prod.settings["backup_retention_days"] >= 7
    assert dev.settings["secret_recovery_window_days"] == 0
    assert not prod.settings["container_image"].endswith(":latest")


def test_unknown_environment_lists_known_ones(project_root):
    with pytest.raises(ConfigError) as exc:
        load_environment(project_root / "environments", "qa", stack_of(project_root))
    assert "unknown environment 'qa'" in str(exc.value)
    assert "dev, prod, staging" in str(exc.value)


def test_known_environments(project_root):
    assert known_environments(project_root / "environments") == ["dev", "prod", "staging"]


def _edit(tmp_project, old, new):
    path = tmp_project / "environments" / "dev" / "env.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return path


def test_missing_setting_names_setting_and_file(tmp_project):
    path = _edit(tmp_project, "az_count = 2\n", "")
    with pytest.raises(ConfigError) as exc:
        load_environment(tmp_project / "environments", "dev", stack_of(tmp_project))
    assert str(path) in str(exc.value)
    assert "settings.az_count" in str(exc.value)


def test_wrongly_typed_setting_names_setting_type_and_file(tmp_project):
    path = _edit(tmp_project, "az_count = 2\n", 'az_count = "two"\n')
    with pytest.raises(ConfigError) as exc:
        load_environment(tmp_project / "environments", "dev", stack_of(tmp_project))
    msg = str(exc.value)
    assert str(path) in msg and "settings.az_count" in msg and "must be number" in msg


def test_bool_is_not_a_number(tmp_project):
    _edit(tmp_project, "desired_count = 1\n", "desired_count = true\n")
    with pytest.raises(ConfigError, match="settings.desired_count"):
        load_environment(tmp_project / "environments", "dev", stack_of(tmp_project))


def test_malformed_toml_names_file_and_line(tmp_project):
    path = _edit(tmp_project, "az_count = 2\n", "az_count = = 2\n")
    with pytest.raises(ConfigError) as exc:
        load_environment(tmp_project / "environments", "dev", stack_of(tmp_project))
    assert str(path) in str(exc.value) and "line" in str(exc.value)


def test_unknown_setting_is_rejected(tmp_project):
    _edit(tmp_project, "az_count = 2\n", "az_count = 2\naz_cuont = 3\n")
    with pytest.raises(ConfigError, match="settings.az_cuont"):
        load_environment(tmp_project / "environments", "dev", stack_of(tmp_project))


def test_bad_account_id(tmp_project):
    _edit(tmp_project, 'account_id = "123456789012"', 'account_id = "1234"')
    with pytest.raises(ConfigError, match="12 digits"):
        load_environment(tmp_project / "environments", "dev", stack_of(tmp_project))


def test_dynamodb_locking_needs_table(tmp_project):
    _edit(tmp_project, 'locking = "lockfile"', 'locking = "dynamodb"')
    with pytest.raises(ConfigError, match="dynamodb_table"):
        load_environment(tmp_project / "environments", "dev", stack_of(tmp_project))


@pytest.mark.parametrize("suffix", ["pr42", "a", "feature1"])
def test_valid_suffixes(suffix):
    assert validate_suffix(suffix) == suffix


@pytest.mark.parametrize("suffix", ["PR42", "42pr", "pr-42", "averyveryverylongsuffix", "", "pr_1", "../x"])
def test_invalid_suffixes(suffix):
    with pytest.raises(ConfigError, match="invalid suffix"):
        validate_suffix(suffix)


def test_env_id_and_state_key(project_root):
    env = load_environment(project_root / "environments", "dev", stack_of(project_root))
    assert env.env_id == "dev"
    copy = env.with_suffix("pr42")
    assert copy.env_id == "dev-pr42"
    assert state_key(copy, "network") == "payment-platform/dev-pr42/network.tfstate"
    assert copy.common_variables()["environment_suffix"] == "dev-pr42"
    assert isinstance(copy, Environment)


def test_manifest_graph_has_no_cycle_and_expected_edges(project_root):
    g = stack_of(project_root).graph
    assert g.order()[0] == "network" and g.order()[-1] == "app"
    assert g.dependencies("database") == {"network", "security"}
    assert "database" in g.dependencies("app") and "edge" in g.dependencies("app")


def test_manifest_cycle_is_named(tmp_project):
    path = tmp_project / "terraform" / "stack.toml"
    path.write_text(
        path.read_text().replace(
            '[units.network]\npath = "network"', '[units.network]\npath = "network"\ndepends_on = ["app"]'
        )
    )
    with pytest.raises(GraphError) as exc:
        stack_of(tmp_project)
    assert "cycle" in str(exc.value) and "network" in str(exc.value) and "app" in str(exc.value)


def test_manifest_input_naming_unknown_unit(tmp_project):
    path = tmp_project / "terraform" / "stack.toml"
    path.write_text(path.read_text().replace('vpc_id = "network.vpc_id" }', 'vpc_id = "netwrk.vpc_id" }', 1))
    with pytest.raises(ConfigError, match="unknown unit 'netwrk'"):
        stack_of(tmp_project)


def test_unit_variables_reads_declarations_and_defaults(project_root):
    decls = unit_variables(project_root / "terraform" / "database")
    assert decls["db_name"].has_default is False
    assert decls["rotation_lambda_zip"].has_default is True
    assert decls["emulator_endpoint"].has_default is True
    assert decls["region"].has_default is False


def test_every_manifest_input_is_a_declared_variable_and_a_real_output(project_root):
    import re

    stack = stack_of(project_root)
    for unit in stack.units.values():
        declared = unit_variables(unit.path)
        for var, (up, out) in unit.inputs.items():
            assert var in declared, f"{unit.name}.{var}"
            outputs = "".join(p.read_text() for p in stack.units[up].path.glob("outputs.tf"))
            assert re.search(rf'output "{out}"', outputs), f"{up}.{out}"


def test_every_unit_variable_has_a_source(project_root):
    from orchestrator.model.config import COMMON_VARIABLES

    stack = stack_of(project_root)
    for unit in stack.units.values():
        for name, decl in unit_variables(unit.path).items():
            sourced = (
                name in COMMON_VARIABLES
                or name in unit.inputs
                or name in stack.settings_schema
                or name in unit.artifacts
                or name in unit.generated_secrets
                or decl.has_default
            )
            assert sourced, f"{unit.name}: {name}"


def test_settings_reference_is_up_to_date(project_root):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(project_root / "scripts" / "settings_doc.py"), "--check"])
    assert r.returncode == 0, "docs/settings.md is stale: run scripts/settings_doc.py"


def test_supplied_secret_is_taken_and_named_by_variable(project_root):
    stack = stack_of(project_root)
    value = "operator-chosen-Pa55word"
    env = {"PATH": "/bin", "ORCHESTRATOR_SECRET_DB_MASTER_PASSWORD": value}
    assert supplied_secrets(env, stack) == {"db_master_password": value}
    assert supplied_secrets({"PATH": "/bin"}, stack) == {}


def test_supplied_secret_unknown_name_is_refused_without_the_value(project_root):
    with pytest.raises(ConfigError) as exc:
        supplied_secrets({"ORCHESTRATOR_SECRET_DB_PASSWORD": "long-enough-but-misnamed"}, stack_of(project_root))
    assert "ORCHESTRATOR_SECRET_DB_PASSWORD" in str(exc.value)
    assert "ORCHESTRATOR_SECRET_DB_MASTER_PASSWORD" in str(exc.value)
    assert "long-enough-but-misnamed" not in str(exc.value)


def test_supplied_secret_too_short_is_refused_without_the_value(project_root):
    with pytest.raises(ConfigError) as exc:
        supplied_secrets({"ORCHESTRATOR_SECRET_DB_MASTER_PASSWORD": "short1"}, stack_of(project_root))
    assert "at least 12 characters" in str(exc.value)
    assert "short1" not in str(exc.value)


def test_the_backend_definition_ships_with_the_package_and_a_project_may_override_it(tmp_path):
    from orchestrator.model.config import Project

    project = Project(tmp_path)
    packaged = project.backend_file("backend.toml")
    assert packaged.is_file() and "backend_defaults" in str(packaged)
    (tmp_path / "bootstrap").mkdir()
    (tmp_path / "bootstrap" / "state-key-policy.json").write_text("{}")
    assert project.backend_file("state-key-policy.json") == tmp_path / "bootstrap" / "state-key-policy.json"
    assert project.backend_file("backend.toml") == packaged  # the files not overridden stay the package's


def test_a_unit_file_that_cannot_be_read_is_one_line(tmp_path):
    """A unit's shared file linked to a place that is not there (a copy of the project that left the
    link's target behind): one line naming the file, not a traceback."""
    from orchestrator.errors import ConfigError
    from orchestrator.model.config import unit_variables

    unit = tmp_path / "unit"
    unit.mkdir()
    (unit / "main.tf").write_text('variable "x" {}\n')
    (unit / "shared.tf").symlink_to(tmp_path / "nowhere" / "shared.tf")
    with pytest.raises(ConfigError, match=r"shared\.tf: cannot read it \(No such file or directory\)"):
        unit_variables(unit)


def test_unit_variables_parse_strings_heredocs_and_nested_blocks(tmp_path):
    """A `}` inside a string or a heredoc, or `default =` inside a validation message, is text:
    what has a default and what is required is read by an HCL parser, not by counting braces."""
    from orchestrator.model.config import unit_outputs, unit_variables

    (tmp_path / "variables.tf").write_text(
        'variable "brace" {\n  description = "a } here"\n  type = string\n}\n'
        'variable "with_default" {\n  description = <<-EOT\n    closes } early\n  EOT\n  default = "x}y"\n}\n'
        'variable "validated" {\n  type = string\n  validation {\n    condition = length(var.validated) > 0\n'
        '    error_message = "default = none"\n  }\n}\n'
    )
    (tmp_path / "outputs.tf").write_text('output "one" {\n  value = "}"\n}\noutput "two" { value = 2 }\n')
    decls = unit_variables(tmp_path)
    assert {n: d.has_default for n, d in decls.items()} == {"brace": False, "with_default": True, "validated": False}
    assert unit_outputs(tmp_path) == ["one", "two"]


def test_a_unit_file_that_is_not_hcl_is_one_line(tmp_path):
    from orchestrator.errors import ConfigError
    from orchestrator.model.config import unit_variables

    (tmp_path / "main.tf").write_text('variable "x" {\n')
    with pytest.raises(ConfigError, match=r"main\.tf: not valid HCL"):
        unit_variables(tmp_path)


def test_local_module_dirs_follow_nested_local_sources(tmp_path):
    from orchestrator.model.hcl import local_module_dirs

    for d in ("unit", "modules/a", "modules/b"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "unit/main.tf").write_text(
        'module "a" {\n  source = "../modules/a"\n}\nmodule "vpc" {\n  source = "terraform-aws-modules/vpc/aws"\n}\n'
    )
    (tmp_path / "modules/a/main.tf").write_text('module "b" {\n  source = "../b"\n}\n')
    (tmp_path / "modules/b/main.tf").write_text('output "x" { value = 1 }\n')
    assert local_module_dirs(tmp_path / "unit") == [
        (tmp_path / "modules/a").resolve(),
        (tmp_path / "modules/b").resolve(),
    ]
