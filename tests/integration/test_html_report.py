"""The HTML run report renders in a real headless browser (Debian's chromium);
a screenshot is taken and checked to hold the timeline's colours."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib

import pytest

from orchestrator.redact import Redactor
from orchestrator.report.html_report import STATUS_COLORS, render
from orchestrator.report.render import report_dict
from tests.unit.test_render import ORDER, sample


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("no chromium on PATH (.ci/run installs Debian's chromium)")


def png_pixels(data: bytes) -> set[tuple[int, int, int]]:
    """The distinct RGB colours of an 8-bit RGB(A) PNG (enough to find the bars)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, width, height, ctype = 8, [], 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6)
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    bpp = 4 if ctype == 6 else 3
    stride = width * bpp
    prev = bytearray(stride)
    colours = set()
    i = 0
    for _ in range(height):
        f = raw[i]
        line = bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp * 4):
            colours.add(tuple(line[x : x + 3]))
        prev = line
    return colours


def test_html_report_renders_in_headless_chromium(tmp_path):
    report = sample()
    data = report_dict(report, ORDER, Redactor())
    timeline = [
        {
            "unit": u,
            "status": r.status.value,
            "detail": r.detail,
            "start": (report.started + r.started) if r.ended else None,
            "end": (report.started + r.ended) if r.ended else None,
        }
        for u, r in report.units.items()
    ]
    outputs = Redactor().redact_obj({"database": {"cluster_endpoint": "db.example", "password": "hunter2hunter2"}})
    page = tmp_path / "report.html"
    page.write_text(render(data, timeline, outputs))
    text = page.read_text()
    assert "hunter2hunter2" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "<script" not in text

    shot = tmp_path / "report.png"
    out = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--hide-scrollbars",
            "--window-size=1000,900",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 10_000, out.stderr[-2000:]
    colours = png_pixels(shot.read_bytes())

    def hexrgb(h):
        return tuple(int(h[i : i + 2], 16) for i in (1, 3, 5))

    for status in ("succeeded", "failed", "no changes"):
        assert hexrgb(STATUS_COLORS[status]) in colours, status
