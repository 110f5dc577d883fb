"""The preview's composed root (pure): modules wired to each other, literals never evaluated."""

from __future__ import annotations

from orchestrator.core import preview


def test_compose_wires_unknown_outputs_and_escapes_literals(tmp_path):
    up, down = tmp_path / "terraform" / "up", tmp_path / "terraform" / "down"
    for d in (up, down):
        d.mkdir(parents=True)
    (up / "main.tf").write_text('output "id" { value = 1 }\noutput "name" { value = 2 }\n')
    root = tmp_path / "work" / "envs" / "dev" / "down" / "preview"
    unknown = preview.Unknown("up", up)
    assert set(unknown) == {"id", "name"}
    doc = preview.compose(
        root,
        {
            "up": (up, {"greeting": "${not evaluated} %{ if x }"}, ()),
            "down": (down, {"id": unknown["id"], "sizes": [1, "${x}"], "tags": {"a": "b"}}, ("db_password",)),
        },
    )
    assert doc["variable"] == {"db_password": {"type": "string", "sensitive": True}}
    assert doc["module"]["up"] == {"source": "../../../../../terraform/up", "greeting": "$${not evaluated} %%{ if x }"}
    assert doc["module"]["down"] == {
        "source": "../../../../../terraform/down",
        "id": "${module.up.id}",
        "sizes": [1, "$${x}"],
        "tags": {"a": "b"},
        "db_password": "${var.db_password}",
    }


def test_a_units_share_of_the_composed_plan_is_addressed_as_in_its_own_plan():
    plan = {
        "resource_changes": [
            {"address": "module.up.aws_vpc.main", "change": {"actions": ["create"]}},
            {"address": "module.down.aws_ecs_service.app", "change": {"actions": ["create"]}},
            {"address": "module.down.module.lb.aws_lb.this", "change": {"actions": ["create"]}},
            {"address": "module.down.data.aws_region.here", "change": {"actions": ["read"]}},
            {"address": "module.downstream.aws_sqs_queue.q", "change": {"actions": ["create"]}},
        ]
    }
    share = preview.unit_share(plan, "down")
    assert share.add == 2 and [c["address"] for c in share.resources] == [
        "aws_ecs_service.app",
        "module.lb.aws_lb.this",
    ]
    assert "known after apply" in preview.diff_text(share)


def test_lock_files_merge_one_block_per_provider(tmp_path):
    block = 'provider "registry.terraform.io/hashicorp/{p}" {{\n  version = "{v}"\n  hashes = [\n    "h1:x",\n  ]\n}}\n'
    for unit, text in {"a": block.format(p="aws", v="5.100.0"), "b": block.format(p="aws", v="5.100.0")}.items():
        (tmp_path / unit).mkdir()
        (tmp_path / unit / ".terraform.lock.hcl").write_text("# header\n\n" + text)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / ".terraform.lock.hcl").write_text(block.format(p="tls", v="4.0.0"))
    merged = preview.merged_lock_file([tmp_path / u for u in "abc"])
    assert merged.count('provider "registry.terraform.io/hashicorp/aws"') == 1
    assert 'provider "registry.terraform.io/hashicorp/tls"' in merged
    assert preview.merged_lock_file([tmp_path / "nowhere"]) == ""
