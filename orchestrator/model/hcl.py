"""What a Terraform module declares, read with python-hcl2 (no terraform call, no regex).

A unit's variables (and whether each has a default), its outputs, and the
local modules it calls (`source = "./..."` or `"../..."`), each parsed once per
file version: a `}` inside a string or a heredoc is just text to the parser.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import hcl2

from orchestrator.errors import ConfigError

HCL2_VERSION = version("python-hcl2")


@dataclass(frozen=True)
class VariableDecl:
    name: str
    has_default: bool


@dataclass(frozen=True)
class ModuleDecls:
    variables: dict[str, VariableDecl]
    outputs: tuple[str, ...]
    local_sources: tuple[str, ...]  # module sources that are paths on this machine
    module_calls: tuple[tuple[str, str, str], ...] = ()  # (name, source, version) of each module block


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _blocks(doc: dict, kind: str):
    """(name, body) of each labelled block of a kind, in file order."""
    for entry in doc.get(kind, []):
        for label, body in entry.items():
            yield _unquote(label), body if isinstance(body, dict) else {}


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "orchestrator" / "hcl"


@functools.lru_cache(maxsize=512)
def _parse(path: str, mtime_ns: int, size: int) -> dict:
    """Parsed once per file version: in this process (lru_cache) and across commands (a JSON copy in
    the user's cache, keyed by path, modification time and size; parsing the platform costs ~0.7 s)."""
    key = hashlib.sha256(f"{HCL2_VERSION}\0{path}\0{mtime_ns}\0{size}".encode()).hexdigest()
    cached = _cache_dir() / f"{key}.json"
    try:
        return json.loads(cached.read_text())
    except (OSError, ValueError):
        pass
    doc = _parse_now(path)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(cached)
    except OSError:
        pass  # no cache (a read-only home): parsed each time
    return doc


def _parse_now(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return hcl2.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    except Exception as exc:  # noqa: BLE001 - lark's errors: one line naming the file and the place
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path}: not valid HCL: {first}") from None


def parse_file(path: Path) -> dict:
    try:
        st = path.stat()
    except OSError as exc:  # e.g. a symlink to a shared file that is not there
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    return _parse(str(path), st.st_mtime_ns, st.st_size)


def read_module(module_dir: Path) -> ModuleDecls:
    """Every .tf file of a module directory (not its subdirectories: terraform reads none)."""
    variables: dict[str, VariableDecl] = {}
    outputs: list[str] = []
    sources: list[str] = []
    calls: list[tuple[str, str, str]] = []
    for tf in sorted(module_dir.glob("*.tf")):
        doc = parse_file(tf)
        for name, body in _blocks(doc, "variable"):
            variables[name] = VariableDecl(name, "default" in body)
        outputs.extend(name for name, _ in _blocks(doc, "output"))
        for name, body in _blocks(doc, "module"):
            source = _unquote(str(body.get("source", "")))
            calls.append((name, source, _unquote(str(body.get("version", "")))))
            if source.startswith(("./", "../")):
                sources.append(source)
    return ModuleDecls(variables, tuple(sorted(set(outputs))), tuple(sources), tuple(sorted(calls)))


def module_calls(module_dir: Path) -> list[tuple[str, str, str]]:
    """Every module block of a module and of the local modules it calls: what `terraform init`
    installs (a new or changed block needs init again, or the plan fails "Module not installed")."""
    found = list(read_module(module_dir).module_calls)
    for d in local_module_dirs(module_dir):
        found.extend(read_module(d).module_calls)
    return sorted(found)


def local_module_dirs(module_dir: Path) -> list[Path]:
    """The directories of every local module a module calls, directly or through another, once each."""
    seen: list[Path] = []
    todo = [module_dir.resolve()]
    while todo:
        here = todo.pop()
        for source in read_module(here).local_sources:
            target = (here / source).resolve()
            if target.is_dir() and target not in seen and target != module_dir.resolve():
                seen.append(target)
                todo.append(target)
    return sorted(seen)


def provider_requirements(module_dir: Path) -> dict[str, str]:
    """Each required_providers entry of a module: its source (as written) -> its version constraint ("" if none)."""
    found: dict[str, str] = {}
    for tf in sorted(module_dir.glob("*.tf")):
        for block in parse_file(tf).get("terraform", []):
            for entry in block.get("required_providers", []):
                for name, spec in entry.items():
                    if name.startswith("__") or not isinstance(spec, dict):
                        continue
                    source = _unquote(str(spec.get("source", f"hashicorp/{name}")))
                    found[source] = _unquote(str(spec.get("version", "")))
    return found


def locked_versions(module_dir: Path) -> dict[str, str]:
    """The versions a module's .terraform.lock.hcl pins: provider address -> version."""
    lock = module_dir / ".terraform.lock.hcl"
    if not lock.is_file():
        return {}
    return {name: _unquote(str(body.get("version", ""))) for name, body in _blocks(parse_file(lock), "provider")}
