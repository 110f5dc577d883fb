"""Runs the orchestrator CLI in this process and writes its own peak RSS (MiB) to a file.
RUSAGE_SELF excludes the terraform children."""

import atexit
import resource
import sys
from pathlib import Path

out = Path(sys.argv.pop(1))


@atexit.register
def _write():
    out.write_text(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


from orchestrator.cli.main import run  # noqa: E402

run()
