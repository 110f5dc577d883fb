"""The README's command table matches the CLI: every flag of every command is documented in its
row, and every documented flag exists. Global options are documented too."""

from __future__ import annotations

import re

import typer.main

from orchestrator.cli.main import app
from tests.helpers import ROOT

ROW = re.compile(r"^\| (`[^|]+`(?: / `[^|]+`)*) \|", re.M)


def commands() -> dict[str, set[str]]:
    """'deploy' or 'local up' -> its long flags (and --no-x forms)."""
    out = {}

    def walk(group, prefix=""):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                walk(cmd, f"{prefix}{name} ")
                continue
            flags = set()
            for p in cmd.params:
                flags |= {o for o in (*p.opts, *p.secondary_opts) if o.startswith("--") and o != "--help"}
            out[prefix + name] = flags

    walk(typer.main.get_command(app))
    return out


def documented() -> dict[str, set[str]]:
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| command | what it does |") :].split("\n\n", 1)[0].replace("\\|", "/")
    out: dict[str, set[str]] = {}
    known = commands()
    for cell in ROW.findall(table):
        for part in re.findall(r"`([^`]+)`", cell):
            words = part.split()
            name = " ".join(words[:2]) if " ".join(words[:2]) in known else words[0]
            out.setdefault(name, set()).update(re.findall(r"--[a-z][a-z-]*", part))
    # `plan` / `drift --env E ...`: the flags of a shared row belong to each command in it
    for cell in ROW.findall(table):
        names = [p.split()[0] for p in re.findall(r"`([^`]+)`", cell)]
        shared = set().union(*(out.get(n, set()) for n in names))
        for n in names:
            if n in out:
                out[n] |= shared
    return out


def test_every_command_and_flag_is_in_the_readme_table_and_nothing_more():
    known, docs = commands(), documented()
    assert set(known) - set(docs) == set(), "commands missing from the README table"
    problems = []
    for name, flags in sorted(known.items()):
        if flags - docs.get(name, set()):
            problems.append(f"{name}: undocumented {sorted(flags - docs[name])}")
        if docs.get(name, set()) - flags:
            problems.append(f"{name}: documented but not a flag {sorted(docs[name] - flags)}")
    assert not problems, "\n".join(problems)


def test_global_options_are_documented():
    text = (ROOT / "README.md").read_text()
    group = typer.main.get_command(app)
    flags = {o for p in group.params for o in p.opts if o.startswith("--") and o not in ("--help",)}
    flags -= {"--install-completion", "--show-completion"}
    missing = sorted(f for f in flags if f"`{f}" not in text)
    assert not missing, f"global options missing from the README: {missing}"
