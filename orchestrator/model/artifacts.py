"""Build-time artifacts a unit needs before plan (no archive provider):
a deterministic zip of a source directory plus its requirements.txt."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

from orchestrator.errors import OrchestratorError

FIXED_TIME = (2020, 1, 1, 0, 0, 0)

# One build per artifact at a time in this process (previews of several units build the same one).
_BUILDING: dict[Path, threading.Lock] = {}
_BUILDING_LOCK = threading.Lock()


def _tree_hash(src: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in src.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(f.relative_to(src)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def build_zip(src: Path, out_dir: Path) -> Path:
    """Zip ``src`` (and, when it has a requirements.txt, those packages) reproducibly.
    Same inputs give the same bytes, so the plan shows no change."""
    if not src.is_dir():
        raise OrchestratorError(f"artifact source {src} not found")
    digest = _tree_hash(src)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{src.name}-{digest}.zip"
    with _BUILDING_LOCK:
        lock = _BUILDING.setdefault(target, threading.Lock())
    with lock:
        if target.exists():
            return target
        # A stage and a temporary zip of this build's own: another process building the same
        # artifact at the same time never shares a file with it; the last rename wins, same bytes.
        stage = Path(tempfile.mkdtemp(prefix=f".stage-{src.name}-{digest}-", dir=out_dir))
        try:
            _build(src, stage, target)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return target


def _build(src: Path, stage: Path, target: Path) -> None:
    req = src / "requirements.txt"
    if req.exists():
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-compile",
                "--target",
                str(stage),
                "--only-binary=:all:",
                "--platform",
                "manylinux2014_x86_64",
                "--python-version",
                "3.12",
                "-r",
                str(req),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise OrchestratorError(f"cannot install {req} for the artifact: {proc.stderr.strip().splitlines()[-1:]}")
    for f in src.rglob("*"):
        if f.is_file() and "__pycache__" not in f.parts and f.name != "requirements.txt":
            dest = stage / f.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
    tmp = stage.with_name(stage.name + ".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(p for p in stage.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            info = zipfile.ZipInfo(str(f.relative_to(stage)), FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, f.read_bytes())
    tmp.replace(target)
