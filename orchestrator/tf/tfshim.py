"""Runs one terraform command so that it finishes even if the orchestrator dies.

    python tfshim.py LOG MARKER -- terraform ARGS...

The orchestrator starts this script in a session of its own, writes one JSON
document to its stdin ({"mask": [secret values], "info": {...}}) and closes it;
nothing else connects the two. The script starts terraform in its process
group, writes each line terraform prints (stdout and stderr), redacted, to LOG,
and exits with terraform's exit code. A `kill -9` of the orchestrator, a closed
terminal or a cancelled CI step therefore reaches neither this script nor
terraform: terraform completes the command it was given, writes its state and
releases its lock, and no secret reaches LOG in clear.

A command run with `-json` (terraform's machine-readable UI) has each event
written, redacted, to the "events" file the JSON document names, and its
`@message` (a diagnostic with its detail) to LOG: the log stays what a person
reads, the events what the orchestrator reads (orchestrator/tf/events.py).

While terraform runs, MARKER holds {"pid", "terraform_pid", "command",
"started", ...info}; when it exits, MARKER is replaced by its ``.done``
sibling with the exit code. A signal sent to the group (the orchestrator's
graceful stop) reaches terraform, which decides what to do; this script
ignores SIGINT, SIGTERM and SIGHUP and keeps writing until terraform is gone.

Deliberately small and self-contained: only the standard library, the
orchestrator's redactor and its reader of terraform's events.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the directory holding the package

from orchestrator.redact import Redactor  # noqa: E402
from orchestrator.tf import events as tf_events  # noqa: E402


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)


def main(argv: list[str]) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    log_path, marker, sep, *cmd = argv
    if sep != "--" or not cmd:
        print("usage: tfshim.py LOG MARKER -- terraform ARGS...", file=sys.stderr)
        return 2
    doc = json.loads(sys.stdin.read() or "{}")
    sys.stdin.close()
    redactor = Redactor()
    for value in doc.get("mask", []):
        redactor.add(value)
    marker_path = Path(marker)
    # terraform must not inherit the ignored signals: restore the defaults in the child.
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        preexec_fn=_default_signals,
    )
    started = time.time()
    _write_json(
        marker_path,
        {**doc.get("info", {}), "pid": os.getpid(), "terraform_pid": proc.pid, "started": started},
    )
    lock = threading.Lock()
    events_path = doc.get("events")
    with (
        open(log_path, "a", encoding="utf-8", buffering=1) as log,
        open(events_path or os.devnull, "a", encoding="utf-8", buffering=1) as events_file,
    ):
        events = events_file if events_path else None

        def pump(stream):
            for line in stream:
                event = tf_events.parse(line) if events else None
                if event is None:
                    clean = redactor.redact(line.rstrip("\n"))
                    with lock:
                        log.write(clean + "\n")
                    continue
                event = redactor.redact_obj(event)
                with lock:
                    events.write(json.dumps(event) + "\n")
                    log.write("".join(text + "\n" for text in tf_events.log_lines(event)))

        pumps = [threading.Thread(target=pump, args=(s,), daemon=True) for s in (proc.stdout, proc.stderr)]
        for t in pumps:
            t.start()
        rc = proc.wait()
        for t in pumps:
            t.join(timeout=30)
    if rc < 0:
        rc = 128 - rc
    _write_json(
        marker_path.with_name(marker_path.name + ".done"),
        {**doc.get("info", {}), "rc": rc, "started": started, "ended": time.time()},
    )
    marker_path.unlink(missing_ok=True)
    return rc


def _default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
