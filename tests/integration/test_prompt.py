"""The confirmation prompt on a real terminal: the deploy runs in a pseudo-terminal, a terminal
emulator (pyte) renders what the operator would see, and the question must be on that screen
while input is awaited, not erased by the live progress display."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time

import pyte

from tests.helpers import fixture_without_aws

QUESTION = re.compile(r"apply this plan to (\w+)\? \[y/N\]")


def test_the_question_stays_on_screen_and_the_answers_decide(moto_url, mirror, tmp_path):
    work, project = tmp_path / "w", fixture_without_aws(tmp_path / "p")  # the prompt is what is tested
    base = [sys.executable, "-m", "orchestrator", "--project-dir", str(project), "--work-dir", str(work)]
    base += ["--emulator-url", moto_url, "--provider-mirror", mirror]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CI", "ORCHESTRATOR_"))}
    env.update(TERM="xterm-256color", COLUMNS="120", LINES="40", PYTHONPATH=os.getcwd())
    assert subprocess.run([*base, "bootstrap", "--env", "dev"], env=env, capture_output=True).returncode == 0

    screen = pyte.Screen(120, 40)
    stream = pyte.ByteStream(screen)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*base, "deploy", "--env", "dev", "--suffix", "pty", "--no-smoke"],
        stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
    )  # fmt: skip
    os.close(slave)

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    stream.feed(os.read(master, 65536))
                except OSError:  # the child closed the terminal
                    return

    def asked() -> str | None:
        """The unit whose question is on the screen's last non-empty line (input awaited there)."""
        lines = [line.rstrip() for line in screen.display if line.strip()]
        m = QUESTION.search(lines[-1]) if lines else None
        return m.group(1) if m else None

    answered: list[str] = []
    deadline = time.monotonic() + 300
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            pump(0.2)
            unit = asked()
            if unit is None or unit in answered:
                continue
            pump(1.5)  # six redraws of the live display at 4 per second
            assert asked() == unit, "the question was erased:\n" + "\n".join(screen.display)
            assert any(f"{unit}: plan +" in line for line in screen.display), "the plan summary is not shown"
            # ... and what each resource's attributes become, not only its address
            assert any(re.match(r"\s+[+~-] \w+\s+= ", line) for line in screen.display), "\n".join(screen.display)
            answered.append(unit)
            os.write(master, b"n\n" if unit == "mid" else b"y\n")
        pump(1.0)
        assert proc.wait(timeout=max(1, deadline - time.monotonic())) == 11  # declined: its own code, not a failure
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert sorted(answered) == ["base", "mid", "side"]  # leaf never asked: mid was declined
    text = "\n".join(screen.display)
    assert re.search(r"mid\s+skipped.*declined at the prompt", text), text
    assert re.search(r"leaf\s+skipped", text), text
    assert re.search(r"side\s+succeeded", text) and re.search(r"base\s+succeeded", text), text
