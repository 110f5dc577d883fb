"""Every bad input: one clear line on stderr, a non-zero exit, and nothing changed
in AWS (the emulator's buckets, objects and keys are the same before and after).
The same list is the "Bad inputs" table in the README."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import ROOT, Cli
from tests.integration.conftest import clients_for, own_emulator, provider_mirror


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory):
    """This module's own emulator: the cases count what is in the account before and after, and
    need staging not bootstrapped until the end (no other module's doing, in any order)."""
    with own_emulator(tmp_path_factory.mktemp("moto-cli-errors")) as url:
        yield url


@pytest.fixture(scope="module")
def aws(moto_url):
    return clients_for(moto_url)


# None unsets a variable for the run.
NO_CREDS = {
    "AWS_ACCESS_KEY_ID": None,
    "AWS_SECRET_ACCESS_KEY": None,
    "AWS_SESSION_TOKEN": None,
    "AWS_PROFILE": None,
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
    "AWS_WEB_IDENTITY_TOKEN_FILE": None,
}


def edit(path: str, old: str, new: str):
    def apply(root: Path):
        f = root / path
        text = f.read_text()
        assert old in text, (path, old)
        f.write_text(text.replace(old, new, 1))

    return apply


@dataclass
class Case:
    name: str
    args: tuple[str, ...]
    exit: int
    line: str  # the line, or its start when it ends with "…"
    local: bool = True
    env: dict = field(default_factory=dict)
    mutate: object = None


CASES = [
    Case(
        "unknown environment",
        ("deploy", "--env", "qa", "--yes"),
        1,
        "error: unknown environment 'qa' (known: dev, prod, staging)",
    ),
    Case(
        "malformed settings file",
        ("deploy", "--env", "dev", "--yes"),
        1,
        "error: {root}/environments/dev/env.toml: invalid TOML: …",
        mutate=edit("environments/dev/env.toml", "az_count = 2\n", "az_count = = 2\n"),
    ),
    Case(
        "missing setting",
        ("plan", "--env", "dev"),
        1,
        "error: {root}/environments/dev/env.toml: missing setting 'settings.az_count' (number)",
        mutate=edit("environments/dev/env.toml", "az_count = 2\n", ""),
    ),
    Case(
        "wrongly typed setting",
        ("plan", "--env", "dev"),
        1,
        "error: {root}/environments/dev/env.toml: setting 'settings.az_count' must be number, got str 'two'",
        mutate=edit("environments/dev/env.toml", "az_count = 2\n", 'az_count = "two"\n'),
    ),
    Case(
        "unknown unit",
        ("deploy", "--env", "dev", "--only", "nope", "--yes"),
        1,
        "error: unknown unit(s): nope (known: app, database, edge, network, observability, security)",
    ),
    Case(
        "cycle in the manifest",
        ("deploy", "--env", "dev", "--yes"),
        1,
        "error: dependency cycle: …",
        mutate=edit(
            "terraform/stack.toml",
            '[units.network]\npath = "network"',
            '[units.network]\npath = "network"\ndepends_on = ["app"]',
        ),
    ),
    Case(
        "an input naming an output its upstream does not declare",
        ("deploy", "--env", "dev", "--yes"),
        1,
        "error: {root}/terraform/stack.toml: unit 'security': input 'vpc_id' names output 'no_such_output' of "
        "unit 'network', which it does not declare (it declares: availability_zones, nat_gateway_ids, "
        "private_route_table_ids, private_subnet_ids, public_subnet_ids, vpc_cidr, vpc_id)",
        mutate=edit("terraform/stack.toml", 'vpc_id = "network.vpc_id"', 'vpc_id = "network.no_such_output"'),
    ),
    Case(
        "a smoke check that does not exist",
        ("smoke", "--env", "dev"),
        1,
        "error: {root}/terraform/stack.toml: unit 'app': smoke: unknown check 'ecs_servce' (known: …",
        mutate=edit("terraform/stack.toml", 'check = "ecs_service"', 'check = "ecs_servce"'),
    ),
    Case(
        "a typo in a manifest key",
        ("smoke", "--env", "dev"),
        1,
        "error: {root}/terraform/stack.toml: unknown key units.network.'smokes': did you mean units.network.'smoke'?",
        mutate=edit("terraform/stack.toml", "smoke = [", "smokes = ["),
    ),
    Case(
        "invalid suffix",
        ("deploy", "--env", "dev", "--suffix", "PR-1", "--yes"),
        1,
        "error: invalid suffix 'PR-1': 1-10 characters, a lowercase letter first, then a-z or 0-9 (e.g. pr42)",
    ),
    Case(
        "no terminal and no --yes",
        ("deploy", "--env", "dev"),
        1,
        "error: changes need confirmation but stdin is not a terminal: pass --yes",
    ),
    Case(
        "missing terraform binary",
        ("plan", "--env", "dev"),
        3,
        "error: terraform binary not found ('/nonexistent/terraform' is not on PATH); "
        "install Terraform >= 1.11 or set ORCHESTRATOR_TERRAFORM",
        env={"ORCHESTRATOR_TERRAFORM": "/nonexistent/terraform"},
    ),
    Case(
        "no credentials",
        ("bootstrap", "--env", "dev"),
        3,
        "error: no AWS credentials found …",
        local=False,
        env=NO_CREDS,
    ),
    Case(
        "unknown profile",
        ("bootstrap", "--env", "dev"),
        3,
        "error: AWS profile 'nope' not found (check AWS_PROFILE and ~/.aws/config)",
        local=False,
        env={**NO_CREDS, "AWS_PROFILE": "nope"},
    ),
    Case(
        "wrong AWS account",
        ("bootstrap", "--env", "prod"),
        3,
        "error: AWS account 123456789012 is not environment prod's account 345678901234; "
        "switch credentials (AWS_PROFILE) before anything changes",
        local=False,
        env={**NO_CREDS, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_ENDPOINT_URL": "{moto}"},
    ),
    Case(
        "backend not bootstrapped",
        ("plan", "--env", "staging"),
        4,
        "error: state bucket acme-payments-tfstate-staging-234567890123 does not exist; "
        "run: orchestrator bootstrap --env staging",
    ),
    *[
        Case(
            f"{command} before the backend is bootstrapped",
            (command, "--env", "staging"),
            4,
            "error: state bucket acme-payments-tfstate-staging-234567890123 does not exist; "
            "run: orchestrator bootstrap --env staging",
        )
        for command in ("envs", "outputs", "smoke", "status")
    ],
    Case(
        "doctor before the backend is bootstrapped",
        ("doctor", "--env", "staging"),
        4,
        "error: the state backend of staging is missing or drifted; run: orchestrator bootstrap --env staging",
        env={"ORCHESTRATOR_PROVIDER_MIRROR": provider_mirror() or ""},  # providers found: only the backend fails
    ),
    Case(
        "--events and --json together",
        ("plan", "--env", "dev", "--json", "--events"),
        1,
        "error: --events and --json both write to stdout: choose one (every run's report is also in reports/)",
    ),
    Case(
        "doctor of an unknown environment",
        ("doctor", "--env", "qa"),
        1,
        "error: unknown environment 'qa' (known: dev, prod, staging)",
    ),
    Case(
        "a parallelism that is neither auto nor 1-16",
        ("deploy", "--env", "dev", "--yes", "--parallelism", "lots"),
        1,
        "error: --parallelism 'lots': auto or a number from 1 to 16",
    ),
    Case(
        "graph into a directory that does not exist",
        ("graph", "-f", "svg", "-o", "/no/such/dir/units.svg"),
        1,
        "error: --output /no/such/dir/units.svg: directory /no/such/dir does not exist",
    ),
    Case(
        "teardown of a protected environment",
        ("teardown", "--env", "prod", "--yes"),
        8,
        "error: environment prod is protected: teardown needs --allow-protected and --confirm prod "
        "(nothing was changed)",
    ),
    Case(
        "protected, wrong name typed back",
        ("teardown", "--env", "prod", "--allow-protected", "--confirm", "dev", "--yes"),
        8,
        "error: environment prod is protected: …",
    ),
    Case(
        "supplied secret with an unknown name",
        ("deploy", "--env", "dev", "--yes"),
        1,
        "error: ORCHESTRATOR_SECRET_DB_PASSWORD: no unit generates a secret 'db_password' "
        "(known: ORCHESTRATOR_SECRET_DB_APP_PASSWORD, ORCHESTRATOR_SECRET_DB_MASTER_PASSWORD)",
        env={"ORCHESTRATOR_SECRET_DB_PASSWORD": "a-value-long-enough"},
    ),
    Case(
        "supplied secret too short",
        ("deploy", "--env", "dev", "--yes"),
        1,
        "error: ORCHESTRATOR_SECRET_DB_MASTER_PASSWORD: a supplied secret needs at least 12 characters",
        env={"ORCHESTRATOR_SECRET_DB_MASTER_PASSWORD": "short"},
    ),
    Case(
        "an override without a reason",
        ("deploy", "--env", "dev", "--override", "stateful_replace:aws_rds_cluster.main", "--yes"),
        1,
        'error: --override needs --reason "..." (why the violation is accepted; it is recorded)',
    ),
    Case(
        "a policy the manifest misspells",
        ("deploy", "--env", "dev", "--yes"),
        1,
        "error: {root}/terraform/stack.toml: policies[2]: unknown policy 'ownership_tag' "
        "(did you mean 'ownership_tags'? known: …",
        mutate=edit("terraform/stack.toml", 'policy = "ownership_tags"', 'policy = "ownership_tag"'),
    ),
    Case("TF_LOG without permission", ("plan", "--env", "dev"), 3, "error: TF_LOG is set: …", env={"TF_LOG": "DEBUG"}),
    Case(
        "audit --since that is not a day",
        ("audit", "--env", "dev", "--since", "last week"),
        1,
        "error: --since 'last week': a day as YYYY-MM-DD",
    ),
    Case(
        "unknown graph format",
        ("graph", "--format", "gif"),
        1,
        "error: unknown format 'gif': text, dot, mermaid, png or svg",
    ),
]


def snapshot(aws):
    s3 = aws("s3")
    objects = {}
    for b in s3.list_buckets()["Buckets"]:
        objects[b["Name"]] = sorted(
            (o["Key"], o["ETag"]) for o in s3.list_objects_v2(Bucket=b["Name"]).get("Contents", [])
        )
    return objects, sorted(k["KeyId"] for k in aws("kms").list_keys()["Keys"])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case, tmp_path, moto_url, aws):
    root = ROOT
    if case.mutate:
        root = tmp_path / "project"
        for d in ("terraform", "environments"):
            shutil.copytree(ROOT / d, root / d, symlinks=True)
        # the units' shared files are relative symlinks: keep them pointing inside the copy
        case.mutate(root)
    before = snapshot(aws)
    cli = Cli(root, tmp_path / "work", moto_url if case.local else None)
    env = {k: (v.format(moto=moto_url) if isinstance(v, str) else v) for k, v in case.env.items()}
    r = cli(*case.args, env=env)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.exit_code == case.exit, r.output
    assert len(lines) == 1, r.stderr
    expected = case.line.format(root=root)
    if expected.endswith("…"):
        assert lines[0].startswith(expected[:-1]), lines[0]
    else:
        assert lines[0] == expected
    assert snapshot(aws) == before


def test_read_only_commands_on_a_copy_that_is_not_deployed_say_so(tmp_path, moto_url, aws):
    """After the cases above (they need staging not bootstrapped): a bootstrapped environment with
    nothing deployed, and a mistyped suffix. A leftover ORCHESTRATOR_SECRET_* changes nothing."""
    cli = Cli(ROOT, tmp_path / "work", moto_url)
    assert cli("bootstrap", "--env", "staging").exit_code == 0
    leftover = {"ORCHESTRATOR_SECRET_BOGUS": "short"}
    for args, env_id in [
        (("smoke", "--env", "staging"), "staging"),
        (("outputs", "--env", "staging", "--suffix", "typo"), "staging-typo"),
        (("status", "--env", "staging", "--suffix", "typo"), "staging-typo"),
    ]:
        r = cli(*args, env=leftover)
        assert r.exit_code == 1, r.output
        assert r.stderr.strip().splitlines() == [
            f"error: {env_id} is not deployed: no unit has state in acme-payments-tfstate-staging-234567890123"
        ], r.stderr
    r = cli("envs", "--env", "staging", env=leftover)
    assert r.exit_code == 0 and r.stdout.strip() == "no copy of staging has state, a run or a lock", r.output


@pytest.mark.parametrize(
    "args",
    [
        ("deploy", "--env", "dev", "--nope"),  # an unknown option
        ("deploy",),  # a missing required option
        ("deploy", "--env", "dev", "--parallelism"),  # an option without its value
        ("no-such-command",),
        ("unit", "plan"),  # a missing argument of a subcommand
    ],
)
def test_a_usage_error_exits_1_never_2_which_only_means_differences(args, tmp_path, moto_url):
    """click exits 2 on a usage error; here 2 is only ever "plan/drift found differences", so
    that a CI gate can tell a typo from a change."""
    r = Cli(ROOT, tmp_path / "work", moto_url)(*args)
    assert r.exit_code == 1, r.output
    assert "Error:" in r.stderr or "error:" in r.stderr, r.output
