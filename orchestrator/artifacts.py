"""Build-time artifacts a unit needs before plan (no archive provider):
a deterministic zip of a source directory plus its requirements.txt."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from orchestrator.errors import OrchestratorError

FIXED_TIME = (2020, 1, 1, 0, 0, 0)


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
    if target.exists():
        return target
    stage = out_dir / f".stage-{src.name}-{digest}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
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
    tmp = target.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(p for p in stage.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            info = zipfile.ZipInfo(str(f.relative_to(stage)), FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, f.read_bytes())
    tmp.replace(target)
    shutil.rmtree(stage, ignore_errors=True)
    return target
