"""Artifacts built side by side: previews of several units build the same zip at once."""

from __future__ import annotations

import zipfile
from concurrent.futures import ThreadPoolExecutor

from orchestrator.model.artifacts import build_zip


def test_the_same_artifact_built_from_many_threads_is_one_good_zip_and_no_stage_is_left(tmp_path):
    src = tmp_path / "rotation"
    (src / "pkg").mkdir(parents=True)
    for i in range(50):
        (src / "pkg" / f"m{i}.py").write_text(f"X = {i}\n")
    out = tmp_path / "artifacts"
    with ThreadPoolExecutor(max_workers=8) as pool:
        paths = list(pool.map(lambda _: build_zip(src, out), range(16)))
    assert len(set(paths)) == 1
    with zipfile.ZipFile(paths[0]) as zf:
        assert zf.testzip() is None and len(zf.namelist()) == 50
    assert [p.name for p in out.iterdir()] == [paths[0].name]  # no stage, no temporary zip left
    first = paths[0].read_bytes()
    paths[0].unlink()
    assert build_zip(src, out).read_bytes() == first  # the same bytes again
