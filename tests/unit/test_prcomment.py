"""orchestrator.ci.prcomment against a local HTTP server that answers as GitHub's and GitLab's
comment APIs do (listing in pages of 100, edit, create): one comment per request, edited in
place on every push; the token never printed; a refusal is one line naming the status."""

from __future__ import annotations

import pytest

from orchestrator.ci import prcomment
from orchestrator.errors import ConfigError, DeliveryError
from tests.helpers import CommentsApi, github_env

MARKER = "<!-- orchestrator-review:dev-pr7 -->"


@pytest.fixture
def api():
    a = CommentsApi([f"comment {i}" for i in range(150)])  # the marker's comment is not on the first page
    yield a
    a.close()


def test_github_one_comment_edited_in_place_on_every_push(api, tmp_path):
    request = prcomment.request_of(github_env(tmp_path, api.url))
    assert str(request) == "GitHub pull request 7" and request.limit == 65_536
    assert prcomment.post(request, f"{MARKER}\nfirst push", MARKER) == "created"
    api.comments.insert(3, {"id": 999, "body": "<!-- orchestrator-review:dev-pr8 -->\nanother copy's"})
    assert prcomment.post(request, f"{MARKER}\nsecond push", MARKER) == "updated"
    assert prcomment.post(request, f"{MARKER}\nthird push", MARKER) == "updated"
    ours = [c for c in api.comments if c["body"].startswith(MARKER)]
    assert [c["body"] for c in ours] == [f"{MARKER}\nthird push"]
    assert api.comments[3]["body"].endswith("another copy's")  # another copy's page is left alone
    edits = [(m, p) for m, p, _ in api.calls if m != "GET"]
    assert edits == [
        ("POST", "/repos/pay/platform/issues/7/comments"),
        ("PATCH", f"/repos/pay/platform/issues/comments/{ours[0]['id']}"),
        ("PATCH", f"/repos/pay/platform/issues/comments/{ours[0]['id']}"),
    ]
    headers = api.calls[0][2]
    assert headers["authorization"] == "Bearer ghs_SECRETTOKEN" and headers["x-github-api-version"] == "2022-11-28"


def test_gitlab_notes_of_the_merge_request_with_the_project_token(api):
    env = {
        "GITLAB_CI": "true",
        "CI_API_V4_URL": f"{api.url}/api/v4",
        "CI_PROJECT_ID": "31",
        "ORCHESTRATOR_MR_IID": "12",
        "ORCHESTRATOR_GITLAB_TOKEN": "glpat-SECRET",
        "CI_JOB_URL": "https://gitlab.example.com/pay/platform/-/jobs/9",
    }
    request = prcomment.request_of(env)
    assert str(request) == "GitLab merge request 12" and request.limit == 1_000_000
    assert prcomment.post(request, f"{MARKER}\na", MARKER) == "created"
    assert prcomment.post(request, f"{MARKER}\nb", MARKER) == "updated"
    assert [m for m, _, _ in api.calls if m != "GET"] == ["POST", "PUT"]
    assert api.calls[-1][1] == f"/api/v4/projects/31/merge_requests/12/notes/{len(api.comments)}"
    assert api.calls[-1][2]["private-token"] == "glpat-SECRET"
    assert prcomment.job_url(env) == env["CI_JOB_URL"]


def test_no_request_no_post_and_a_missing_token_is_one_line(tmp_path):
    assert prcomment.request_of(github_env(tmp_path, "http://x", number=None)) is None  # a push to main
    assert prcomment.request_of({}) is None  # not in CI
    assert prcomment.request_of({"GITLAB_CI": "true"}) is None  # a pipeline for no merge request
    env = github_env(tmp_path, "http://x")
    del env["GITHUB_TOKEN"]
    with pytest.raises(ConfigError, match="GITHUB_TOKEN is not set: .*pull-requests: write"):
        prcomment.request_of(env)
    with pytest.raises(ConfigError, match="ORCHESTRATOR_GITLAB_TOKEN is not set"):
        prcomment.request_of({"GITLAB_CI": "true", "CI_MERGE_REQUEST_IID": "3"})
    assert prcomment.job_url(github_env(tmp_path, "http://x")) == "https://github.com/pay/platform/actions/runs/4242"


def test_a_refusal_or_an_unreachable_api_is_one_line_without_the_token(api, tmp_path):
    request = prcomment.request_of(github_env(tmp_path, api.url))
    api.refuse = 403
    with pytest.raises(DeliveryError) as refused:
        prcomment.post(request, f"{MARKER}\nx", MARKER)
    assert str(refused.value) == (
        "cannot post the review comment on GitHub pull request 7: GitHub answered 403 "
        "(Resource not accessible by integration) (the token may not write to the request)"
    )
    gone = prcomment.request_of(github_env(tmp_path, "http://127.0.0.1:9"))
    with pytest.raises(DeliveryError) as unreachable:
        prcomment.post(gone, f"{MARKER}\nx", MARKER, timeout=2)
    for e in (refused.value, unreachable.value):
        assert "SECRETTOKEN" not in str(e) and "\n" not in str(e) and e.exit_code == 15
    with pytest.raises(ConfigError, match="takes at most 65536"):
        prcomment.post(request, MARKER + "x" * 70_000, MARKER)
