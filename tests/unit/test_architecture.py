"""The layers of docs/architecture.md, kept: every module has a layer, imports (those inside
functions too) go to the same layer or a lower one, no import cycle, and the listed exceptions
are exactly those left (fixing one fails this test until the list says so)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "orchestrator"
DOC = ROOT / "docs" / "architecture.md"


def layers() -> dict[str, int]:
    out = {}
    for line in DOC.read_text().split("## Known exceptions")[0].splitlines():
        m = re.match(r"^\| (\d) \w+ \|.*\| ((?:`[\w.]+` ?)+) \|$", line)
        if m:
            out.update({name: int(m.group(1)) for name in re.findall(r"`([\w.]+)`", m.group(2))})
    return out


def exceptions() -> set[tuple[str, str]]:
    text = DOC.read_text().split("## Known exceptions")[1].split("\n## ")[0]
    return set(re.findall(r"^\| `([\w.]+)` -> `([\w.]+)` \|", text, re.M))


def module_files(package=PACKAGE) -> dict[str, Path]:
    """Every module by its dotted name under the package (`core.engine`); a folder's
    `__init__.py` is the folder itself, not a module (test_a_folder_is_only_a_folder)."""
    out = {}
    for path in package.rglob("*.py"):
        rel = path.relative_to(package).with_suffix("")
        if rel.name == "__init__" and len(rel.parts) > 1:
            continue
        out[".".join(rel.parts)] = path
    return out


def imports(package=PACKAGE) -> dict[str, set[str]]:
    """Each module's imports of the package's modules, wherever they are in the file."""
    files = module_files(package)
    out: dict[str, set[str]] = {}
    for name, path in files.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "orchestrator":
                base = node.module.split(".", 1)[1] if "." in node.module else ""
                for a in node.names:  # `from orchestrator.core import engine` names a module
                    dotted = f"{base}.{a.name}" if base else a.name
                    found.add(dotted if dotted in files else base)
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".", 1)[1] for a in node.names if a.name.startswith("orchestrator.")}
        out[name] = (found & set(files)) - {name}
    return out


def test_a_folder_is_only_a_folder():
    """A subpackage's `__init__.py` says what the folder holds and imports nothing: importing
    `orchestrator.core.engine` runs no code of another module."""
    for path in PACKAGE.rglob("__init__.py"):
        if path.parent == PACKAGE:
            continue
        body = ast.parse(path.read_text()).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr), f"{path}: a docstring only"


def test_every_module_has_one_layer():
    known, modules = layers(), set(module_files())
    assert sorted(modules - set(known)) == [], "add them to the table in docs/architecture.md"
    assert sorted(set(known) - modules) == [], "the table names modules that no longer exist"


def upward(graph) -> set[tuple[str, str]]:
    rank = layers()
    return {(m, t) for m, targets in graph.items() for t in targets if rank[t] > rank[m]}


def cycles(graph) -> list[list[str]]:
    """Import cycles left once the listed exceptions' edges are taken out (a back edge of a
    depth-first search each: none means none at all)."""
    allowed = exceptions()
    graph = {m: {t for t in targets if (m, t) not in allowed} for m, targets in graph.items()}
    state: dict[str, int] = {}
    found = []

    def visit(node, path):
        state[node] = 1
        for t in sorted(graph[node]):
            if state.get(t) == 1:
                found.append(path[path.index(t) :] + [t])
            elif t not in state:
                visit(t, path + [t])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return found


def test_imports_go_down_the_layers_but_for_the_listed_exceptions():
    allowed, up = exceptions(), upward(imports())
    assert sorted(up - allowed) == [], "an import up the layers: move the code, or the fact, down"
    assert sorted(allowed - up) == [], "an exception is gone: take it out of docs/architecture.md"


def test_no_import_cycle():
    assert cycles(imports()) == []


def test_the_checker_sees_an_import_inside_a_function_going_up_and_its_cycle(tmp_path):
    """The rules above can fail: a base module importing the CLI lazily is both."""
    fake = tmp_path / "orchestrator"
    fake.mkdir()
    for p in PACKAGE.rglob("*.py"):
        (fake / p.relative_to(PACKAGE)).parent.mkdir(parents=True, exist_ok=True)
        (fake / p.relative_to(PACKAGE)).write_text(p.read_text())
    (fake / "errors.py").write_text(
        (fake / "errors.py").read_text() + "\n\ndef f():\n    from orchestrator.cli import main\n"
    )
    graph = imports(fake)
    assert ("errors", "cli.main") in upward(graph) - exceptions()
    assert any("errors" in c and "cli.main" in c for c in cycles(graph))
