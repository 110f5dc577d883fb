"""The review page as one pull (GitHub) or merge (GitLab) request comment, updated in place.

The page's first line is a marker naming the copy (views.review_marker): the comment that starts
with it is edited on every push, never a second one posted. What the CI system says about the
job (its variables, the event file) picks the request; the token is read from a variable and
never printed.

- GitHub REST: list GET /repos/{repo}/issues/{number}/comments, edit PATCH
  /repos/{repo}/issues/comments/{id}, new POST /repos/{repo}/issues/{number}/comments
  (docs.github.com/en/rest/issues/comments). GITHUB_TOKEN needs `pull-requests: write`.
  A comment holds at most 65,536 characters.
- GitLab REST: GET/POST /projects/{id}/merge_requests/{iid}/notes, PUT .../notes/{note_id}
  (docs.gitlab.com/api/notes/). CI_JOB_TOKEN cannot write notes: a project access token with the
  `api` scope, in the masked variable ORCHESTRATOR_GITLAB_TOKEN. A note holds 1,000,000.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from orchestrator.errors import ConfigError, DeliveryError

GITHUB_LIMIT = 65_536
GITLAB_LIMIT = 1_000_000
GITLAB_TOKEN_VARIABLE = "ORCHESTRATOR_GITLAB_TOKEN"
PAGES = 50  # 5,000 comments on one request: the marker's comment is among them or none is


@dataclass(frozen=True)
class Request:
    """One pull/merge request's comments, reached through its CI system's API."""

    system: str  # "GitHub" | "GitLab"
    number: str
    comments_url: str  # list (with ?per_page=&page=) and create
    edit_url: str  # with {id}
    edit_method: str
    headers: Mapping[str, str] = field(repr=False)  # the token is in them
    limit: int
    token: str = field(default="", repr=False)  # masked in everything the run prints

    def __str__(self) -> str:
        return f"{self.system} {'pull' if self.system == 'GitHub' else 'merge'} request {self.number}"


def job_url(environ: Mapping[str, str] = os.environ) -> str | None:
    """Where this CI job's full output is (a review page links there when it cuts a unit short)."""
    if environ.get("GITLAB_CI") == "true" and environ.get("CI_JOB_URL"):
        return environ["CI_JOB_URL"]
    if environ.get("GITHUB_ACTIONS") == "true" and environ.get("GITHUB_REPOSITORY") and environ.get("GITHUB_RUN_ID"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{environ['GITHUB_REPOSITORY']}/actions/runs/{environ['GITHUB_RUN_ID']}"
    return None


def request_of(environ: Mapping[str, str] = os.environ) -> Request | None:
    """The pull/merge request this job runs for; None when it runs for none (a push to main, a
    schedule). A request without the token to write to it is one line naming the setting."""
    if environ.get("GITHUB_ACTIONS") == "true":
        event = {}
        if environ.get("GITHUB_EVENT_PATH"):
            try:
                with open(environ["GITHUB_EVENT_PATH"]) as f:
                    event = json.load(f)
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"cannot read the event of this workflow run ({environ['GITHUB_EVENT_PATH']}): {exc}"
                ) from None
        number = (event.get("pull_request") or {}).get("number")
        if not number:
            return None
        if not environ.get("GITHUB_TOKEN"):
            raise ConfigError(
                "GITHUB_TOKEN is not set: give the step `env: {GITHUB_TOKEN: ${{ github.token }}}` and the job "
                "`permissions: {pull-requests: write}`"
            )
        api = environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
        repo = environ["GITHUB_REPOSITORY"]
        return Request(
            "GitHub",
            str(number),
            f"{api}/repos/{repo}/issues/{number}/comments",
            f"{api}/repos/{repo}/issues/comments/{{id}}",
            "PATCH",
            {
                "Authorization": f"Bearer {environ['GITHUB_TOKEN']}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
            GITHUB_LIMIT,
            environ["GITHUB_TOKEN"],
        )
    if environ.get("GITLAB_CI") == "true":
        iid = environ.get("ORCHESTRATOR_MR_IID") or environ.get("CI_MERGE_REQUEST_IID")
        if not iid:
            return None
        if not environ.get(GITLAB_TOKEN_VARIABLE):
            raise ConfigError(
                f"{GITLAB_TOKEN_VARIABLE} is not set: a project access token with the api scope, as a masked "
                "CI/CD variable (the job token cannot write merge request notes)"
            )
        api = environ["CI_API_V4_URL"].rstrip("/")
        project = urllib.parse.quote(environ["CI_PROJECT_ID"], safe="")
        notes = f"{api}/projects/{project}/merge_requests/{iid}/notes"
        return Request(
            "GitLab",
            iid,
            notes,
            notes + "/{id}",
            "PUT",
            {"PRIVATE-TOKEN": environ[GITLAB_TOKEN_VARIABLE]},
            GITLAB_LIMIT,
            environ[GITLAB_TOKEN_VARIABLE],
        )
    return None


Opener = Callable[..., object]


def _call(request: Request, method: str, url: str, body: dict | None, opener: Opener, timeout: float):
    data = json.dumps(body).encode() if body is not None else None
    headers = {**request.headers, **({"Content-Type": "application/json"} if data else {})}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with opener(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        why = ""
        try:
            why = json.loads(exc.read()).get("message", "")
        except (ValueError, AttributeError, OSError):
            pass
        hint = " (the token may not write to the request)" if exc.code in (401, 403, 404) else ""
        raise DeliveryError(
            f"cannot post the review comment on {request}: {request.system} answered {exc.code}"
            + (f" ({str(why)[:200]})" if why else "")
            + hint
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"cannot post the review comment on {request}: {reason}") from None


def find(request: Request, marker: str, opener: Opener = urllib.request.urlopen, timeout: float = 20.0):
    """The id of the comment that starts with the marker (the first, oldest), or None."""
    for page in range(1, PAGES + 1):
        order = "&sort=asc&order_by=created_at" if request.system == "GitLab" else ""  # GitLab: newest first
        got = _call(request, "GET", f"{request.comments_url}?per_page=100&page={page}{order}", None, opener, timeout)
        for c in got or []:
            if str(c.get("body") or "").startswith(marker):
                return c["id"]
        if not got or len(got) < 100:
            return None
    return None


def post(
    request: Request, text: str, marker: str, opener: Opener = urllib.request.urlopen, timeout: float = 20.0
) -> str:
    """Edit the request's review comment to `text`, or write it if there is none: "updated" or
    "created". `text` must start with the marker and fit the system's limit."""
    if not text.startswith(marker):
        raise ValueError("the review page does not start with its marker")
    if len(text) > request.limit:
        raise ConfigError(f"the review page has {len(text)} characters; {request} takes at most {request.limit}")
    found = find(request, marker, opener, timeout)
    if found is not None:
        _call(request, request.edit_method, request.edit_url.format(id=found), {"body": text}, opener, timeout)
        return "updated"
    _call(request, "POST", request.comments_url, {"body": text}, opener, timeout)
    return "created"
