"""The review page of a pipeline run (views.review_markdown): replaced and deleted addresses
first, verdicts, previews marked; cut per unit under a comment's size limit, never mid-line."""

from __future__ import annotations

from orchestrator.report.views import review_markdown


def record(unit, changes, policies=(), preview=False):
    counts = {"add": 0, "change": 0, "destroy": 0, "replace": 0}
    for c in changes:
        a = c["actions"]
        key = (
            "replace"
            if ("delete" in a and "create" in a)
            else {"create": "add", "update": "change"}.get(a[0], "destroy")
        )
        counts[key] += 1
    return {
        "unit": unit,
        "status": "changes",
        "changes": list(changes),
        "policies": list(policies),
        "preview": preview,
        **counts,
    }


def test_replaced_and_deleted_come_first_then_the_verdicts():
    rec = record(
        "database",
        [
            {"address": "aws_db_parameter_group.x", "actions": ["update"]},
            {"address": "aws_rds_cluster.main", "actions": ["delete", "create"]},
            {"address": "aws_kms_key.old", "actions": ["delete"]},
            {"address": "aws_sns_topic.new", "actions": ["create"]},
        ],
        [
            {
                "policy": "stateful_replace",
                "level": "deny",
                "address": "aws_rds_cluster.main",
                "why": "replaces",
                "override": None,
            }
        ],
    )
    text = review_markdown("prod", "42", [rec])
    section = text.split("#### `database`\n")[1].splitlines()
    assert section == [
        "- replaced: `aws_rds_cluster.main`",
        "- deleted: `aws_kms_key.old`",
        "- :no_entry: policy stateful_replace (deny): `aws_rds_cluster.main`: replaces",
        "- created: `aws_sns_topic.new`",
        "- updated: `aws_db_parameter_group.x`",
    ]
    assert text.startswith("<!-- orchestrator-review:prod -->\n")
    assert "| `database` | changes | 1 | 1 | 1 | 1 | 1 denied |" in text


def test_a_300_resource_plan_is_cut_under_the_limit_with_whole_lines_only():
    big = record("app", [{"address": f"aws_sqs_queue.queue_number_{i:03d}", "actions": ["create"]} for i in range(300)])
    small = record("network", [{"address": "aws_vpc.main", "actions": ["update"]}], preview=True)
    text = review_markdown("dev-pr7", "9001", [small, big], limit=4000)
    assert len(text) <= 4000
    lines = text.splitlines()
    assert "- updated: `aws_vpc.main`" in lines  # the small unit keeps all of its share
    app = text.split("#### `app`\n")[1].splitlines()
    shown = [ln for ln in app if ln.startswith("- created: `aws_sqs_queue.queue_number_")]
    assert 0 < len(shown) < 300
    assert all(ln.endswith("`") for ln in shown)  # no line cut in the middle
    assert app[-1] == f"- ... {300 - len(shown)} more line(s) not shown: the job summary of plan app has them all"
    assert "| `network` | changes (preview) |" in text and "1 of them previews" in text
    whole = review_markdown("dev-pr7", "9001", [small, big])
    assert len(whole.splitlines()) > 300 and "not shown" not in whole


def test_a_unit_cut_short_links_to_its_jobs_full_summary():
    big = record("app", [{"address": f"aws_sqs_queue.q{i:03d}", "actions": ["create"]} for i in range(300)])
    big["job_url"] = "https://gitlab.example.com/pay/platform/-/jobs/771"
    text = review_markdown("dev-mr3", "55", [big], limit=3000)
    assert len(text) <= 3000
    assert text.splitlines()[-1].endswith(
        "not shown: [the job summary of plan app](https://gitlab.example.com/pay/platform/-/jobs/771) has them all"
    )
