"""Running the real CLI in-process (typer's CliRunner), against a real moto server."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import jsonschema
from typer.testing import CliRunner

from orchestrator.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_STACK = ROOT / "tests" / "fixtures" / "stack"

# The fixture's base without the aws provider: the same variables, outputs and plans (a change of
# retention_days is a change of base), held by terraform_data. For tests about the orchestration
# (ordering, jobs, journal, locks, prompts), not about an AWS resource: a terraform command
# without the aws provider costs a fraction of the CPU (the unit jobs' module: 252 s -> 36 s).
BASE_WITHOUT_AWS = """
variable "retention_days" {
  type = number
}

locals {
  name = "/fixture/${var.name_prefix}-base-${var.environment_suffix}"
}

resource "terraform_data" "base" {
  input = {
    name              = local.name
    retention_in_days = var.retention_days
  }
}

# Known when planned, as the log group's configured name is (a preview below counts on it).
output "log_group_name" {
  value = local.name
}
"""


def fixture_without_aws(dest: Path) -> Path:
    """The fixture stack copied to `dest`, its base unit without the aws provider (BASE_WITHOUT_AWS)."""
    shutil.copytree(FIXTURE_STACK, dest)
    base = dest / "terraform" / "base"
    for name in ("providers.tf", ".terraform.lock.hcl"):
        (base / name).unlink()
    (base / "backend.tf").write_text((dest / "terraform" / "mid" / "backend.tf").read_text())
    (base / "main.tf").write_text(BASE_WITHOUT_AWS)
    return dest


@cache
def _schema() -> dict:
    return json.loads((ROOT / "docs" / "report-schema.json").read_text())


def check_json(stdout: str) -> dict:
    """A --json output, validated against docs/report-schema.json (its `command` picks the shape)."""
    doc = json.loads(stdout)
    jsonschema.validate(doc, _schema())
    return doc


def deployed(envs_stdout: str) -> dict[str, list[str]]:
    """envs --json as {copy: units with state}, for copies that have state."""
    return {c["environment"]: c["units"] for c in check_json(envs_stdout)["copies"] if c["units"]}


@dataclass
class Cli:
    project: Path
    work: Path
    emulator: str | None = None
    mirror: str | None = None

    def __call__(self, *args: str, env: dict | None = None, input: str | None = None):
        base = ["--project-dir", str(self.project), "--work-dir", str(self.work)]
        if self.emulator:
            base += ["--emulator-url", self.emulator]
        if self.mirror:
            base += ["--provider-mirror", self.mirror]
        run_env = {"CI": None, "ORCHESTRATOR_LOCAL": None, "ORCHESTRATOR_EMULATOR_URL": None}
        run_env.update(env or {})
        result = CliRunner().invoke(app, [*base, *args], env=run_env, input=input, catch_exceptions=False)
        if "--json" in args and result.stdout.strip():
            check_json(result.stdout)  # every --json output of every test run follows the schema
        return result


class LocalServer:
    """An HTTP server on 127.0.0.1 in a thread of its own, for one test's fakes of outside services."""

    def serve(self, handler) -> str:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


class Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Webhook(LocalServer):
    """A local endpoint that records each POST; `delay` makes it slower than the caller waits."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.delay = 0.0
        self.release = threading.Event()
        hook = self

        class Handler(Quiet):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if hook.delay:
                    hook.release.wait(hook.delay)
                hook.bodies.append(body)
                try:
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the caller gave up

        self.url = self.serve(Handler) + "/hooks/T000/SECRETPART"

    def close(self):
        self.release.set()
        super().close()


def sns_messages(aws, queue) -> list[dict]:
    """Every message the topic delivered to the queue so far (drained)."""
    out = []
    while True:
        got = aws("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        msgs = got.get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(json.loads(m["Body"])["Message"]))
            aws("sqs").delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])


class CommentsApi(LocalServer):
    """A pull/merge request's comments as GitHub's and GitLab's APIs answer them (pages, edit,
    create), on 127.0.0.1; `refuse` answers every call with that status."""

    def __init__(self, comments=()):
        self.comments = [{"id": i + 1, "body": b} for i, b in enumerate(comments)]
        self.calls: list[tuple[str, str, dict]] = []
        self.refuse = None
        api = self

        class Handler(Quiet):
            def _answer(self, code, doc):
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self, method):
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                doc = json.loads(self.rfile.read(length)) if length else {}
                api.calls.append((method, url.path, {k.lower(): v for k, v in self.headers.items()}))
                if api.refuse:
                    return self._answer(api.refuse, {"message": "Resource not accessible by integration"})
                tail = url.path.rsplit("/", 1)[-1]
                if method == "GET":
                    q = parse_qs(url.query)
                    page, per = int(q["page"][0]), int(q["per_page"][0])
                    return self._answer(200, api.comments[(page - 1) * per : page * per])
                if method == "POST":
                    api.comments.append({"id": len(api.comments) + 1, "body": doc["body"]})
                    return self._answer(201, api.comments[-1])
                c = next(c for c in api.comments if str(c["id"]) == tail)
                c["body"] = doc["body"]
                return self._answer(200, c)

            def do_GET(self):  # noqa: N802
                self._handle("GET")

            def do_POST(self):  # noqa: N802
                self._handle("POST")

            def do_PATCH(self):  # noqa: N802
                self._handle("PATCH")

            def do_PUT(self):  # noqa: N802
                self._handle("PUT")

        self.url = self.serve(Handler)


def github_env(tmp_path, url, number=7) -> dict:
    """A GitHub Actions job's variables for a pull request's run (number None: a push to main)."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": number}} if number else {"ref": "refs/heads/main"}))
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": url,
        "GITHUB_REPOSITORY": "pay/platform",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_TOKEN": "ghs_SECRETTOKEN",
        "GITHUB_RUN_ID": "4242",
    }
