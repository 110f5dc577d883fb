"""A fault-injecting HTTP proxy for tests: clients (boto3, the aws provider, the S3
backend) talk to it as their endpoint; it forwards to moto server, except where a
rule says to fail. It counts every request by operation, so a test can compare the
attempts it saw with the retries configured.

Operations are named as AWS names them: from X-Amz-Target (JSON protocols), the
Action parameter (query protocols), or "S3:<METHOD>" for S3.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Rule:
    operation: str  # e.g. "secretsmanager.PutSecretValue", "CreateBucket", "S3:PUT"
    fault: str  # throttle | 503 | reset | latency | lost_reply | gone_reply | access_denied
    times: int = 1  # how many matching requests to hit (-1: all)
    seconds: float = 0.0  # for latency
    hits: int = 0
    path_contains: str = ""  # only requests whose path holds this (e.g. ".tflock")

    def take(self, path: str = "") -> bool:
        if self.path_contains and self.path_contains not in path:
            return False
        if self.times == -1 or self.hits < self.times:
            self.hits += 1
            return True
        return False


@dataclass
class FaultProxy:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    seen: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> str:
        proxy = self
        up = urllib.parse.urlparse(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = _read_chunked(self.rfile)
                op = operation_name(self.command, self.path, self.headers, body)
                with proxy.lock:
                    proxy.seen[op] += 1
                    rule = next(
                        (r for r in proxy.rules if r.operation in (op, op.split(".")[-1]) and r.take(self.path)), None
                    )
                    if rule:
                        proxy.faults[(op, rule.fault)] += 1
                if rule and rule.fault == "latency":
                    time.sleep(rule.seconds)
                    rule = None
                if rule and rule.fault == "reset":
                    _reset(self)
                    return
                if rule and rule.fault in ("throttle", "503", "access_denied"):
                    status, payload, ctype = error_reply(rule.fault, self.headers, self.path, op.startswith("S3:"))
                    self._reply(status, {"Content-Type": ctype}, payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding",)}
                headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=600)
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if rule and rule.fault == "lost_reply":
                    _reset(self)  # the server acted; the client never hears
                    return
                if rule and rule.fault == "gone_reply":
                    # The server acted, and the client hears what an SDK retry of a lost delete
                    # hears: the object does not exist (a service-specific code, as ELBv2's
                    # ListenerNotFound, that the provider does not treat as "already deleted").
                    status, payload, ctype = error_reply(rule.fault, self.headers, self.path, op.startswith("S3:"))
                    self._reply(status, {"Content-Type": ctype}, payload)
                    return
                out = {
                    k: v
                    for k, v in resp.getheaders()
                    if k.lower() not in ("transfer-encoding", "connection", "content-length")
                }
                self._reply(resp.status, out, data)

            def _reply(self, status, headers, data):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def count(self, operation: str) -> int:
        with self.lock:
            return sum(n for op, n in self.seen.items() if op == operation or op.split(".")[-1] == operation)


def _read_chunked(rfile) -> bytes:
    out = b""
    while True:
        size = int(rfile.readline().strip().split(b";")[0], 16)
        if size == 0:
            rfile.readline()
            return out
        out += rfile.read(size)
        rfile.readline()


def _reset(handler) -> None:
    """Abort the connection with a TCP RST (linger 0), as a dropped connection looks."""
    import struct

    sock = handler.connection
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    # The file objects hold the socket open: close them all so the RST goes out now.
    for f in (handler.rfile, handler.wfile):
        try:
            f.close()
        except OSError:
            pass
    sock.close()


def operation_name(method: str, path: str, headers, body: bytes) -> str:
    target = headers.get("X-Amz-Target")
    if target:
        service = target.split("_")[0].split(".")[0].lower()
        service = {"trentservice": "kms", "amazonssm": "ssm"}.get(service, service)
        return f"{service}.{target.split('.')[-1]}"
    if body and b"Action=" in body[:2000]:
        params = urllib.parse.parse_qs(body.decode(errors="replace"))
        return params.get("Action", ["?"])[0]
    query = urllib.parse.urlparse(path).query
    if "Action=" in query:
        return urllib.parse.parse_qs(query).get("Action", ["?"])[0]
    auth = headers.get("Authorization", "")
    if "/s3/" in auth or not auth:
        return f"S3:{method}"
    service = auth.split("Credential=")[-1].split("/")[3] if "Credential=" in auth else "?"
    return f"{service}:{method}:{urllib.parse.urlparse(path).path}"


def error_reply(fault: str, headers, path: str, s3: bool = False) -> tuple[int, bytes, str]:
    if s3:
        code, status = {
            "throttle": ("SlowDown", 503),
            "503": ("ServiceUnavailable", 503),
            "access_denied": ("AccessDenied", 403),
            "gone_reply": ("NoSuchKey", 404),
        }[fault]
        return (
            status,
            f"<Error><Code>{code}</Code><Message>injected by fault proxy</Message></Error>".encode(),
            "application/xml",
        )
    code, status = {
        "throttle": ("ThrottlingException", 400),
        "503": ("ServiceUnavailable", 503),
        "access_denied": ("AccessDeniedException", 400),
        "gone_reply": ("LogGroupNotFound", 400),
    }[fault]
    if headers.get("X-Amz-Target"):
        return (
            status,
            f'{{"__type": "{code}", "message": "injected by fault proxy"}}'.encode(),
            "application/x-amz-json-1.1",
        )
    if fault == "throttle":
        code = "Throttling"
    if fault == "access_denied":
        code, status = "AccessDenied", 403
    xml = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected by fault proxy</Message>"
        f"</Error><RequestId>fault</RequestId></ErrorResponse>"
    )
    return status, xml.encode(), "text/xml"
