"""Where each unit's providers will come from, and writing the units' lock files.

Terraform installs a provider from the orchestrator's mirror when one is named
(hashicorp/aws only), else as its own CLI config says: an explicit
provider_installation block, or its implicit local mirrors, then the registry.
This module answers "from where?" for `doctor`, without running terraform,
and runs `terraform providers lock` for `orchestrator lock`.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from orchestrator.model.config import Stack
from orchestrator.tf.terraform import implicit_mirrors, user_cli_config

DEFAULT_HOST = "registry.terraform.io"
MIRRORED = f"{DEFAULT_HOST}/hashicorp/aws"
LOCK_FILE = ".terraform.lock.hcl"
_SOURCE_RE = re.compile(r'source\s*=\s*"([^"]+)"')
_REQUIRED_RE = re.compile(r"required_providers\s*\{(.*?)\n\s*\}\s*\n", re.S)


@dataclass(frozen=True)
class Source:
    provider: str  # registry.terraform.io/hashicorp/aws
    units: tuple[str, ...]
    origin: str  # "mirror <dir>", "implicit mirror <dir>", "your CLI config <file>", "<host>"
    ok: bool
    detail: str


def required_providers(unit_dir: Path) -> set[str]:
    """Fully qualified sources named in the unit's required_providers blocks."""
    found = set()
    for tf in sorted(unit_dir.glob("*.tf")):
        for block in _REQUIRED_RE.findall(tf.read_text()):
            for source in _SOURCE_RE.findall(block):
                found.add(source if source.count("/") == 2 else f"{DEFAULT_HOST}/{source}")
    return found


def _has(mirror: Path, provider: str) -> bool:
    return (mirror / provider).is_dir() or any(mirror.glob(f"{provider}/*/*"))


def _reachable(host: str, timeout: float) -> tuple[bool, str]:
    url = f"https://{host}/.well-known/terraform.json"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 - fixed https URL
            return reply.status == 200, f"{host} answers"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"does not answer within {timeout:g} s ({reason}): name a mirror with --provider-mirror"


def sources(stack: Stack, mirror: str | None, *, timeout: float = 3.0) -> list[Source]:
    users: dict[str, list[str]] = {}
    for unit in stack.units.values():
        for provider in required_providers(unit.path):
            users.setdefault(provider, []).append(unit.name)
    user_config = user_cli_config()
    own_installation = user_config is not None and "provider_installation" in user_config.read_text()
    out = []
    checked: dict[str, tuple[bool, str]] = {}
    for provider, units in sorted(users.items()):
        if mirror and provider == MIRRORED and not own_installation:
            ok = _has(Path(mirror), provider)
            problems = mirror_problems(stack, Path(mirror), provider) if ok else [f"no {provider} in it"]
            versions = ", ".join(mirror_versions(Path(mirror), provider))
            detail = "; ".join(problems) or f"{versions}, which every unit's constraint and lock file accept"
            out.append(Source(provider, tuple(units), f"mirror {mirror}", not problems, detail))
            continue
        if own_installation:
            out.append(
                Source(provider, tuple(units), f"your CLI config {user_config}", True, "its provider_installation")
            )
            continue
        local = next((d for d in implicit_mirrors() if _has(d, provider)), None)
        if local is not None:
            out.append(Source(provider, tuple(units), f"implicit mirror {local}", True, ""))
            continue
        host = provider.split("/")[0]
        if host not in checked:
            checked[host] = _reachable(host, timeout)
        ok, detail = checked[host]
        out.append(Source(provider, tuple(units), host, ok, detail))
    return out


_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
_PACKED_RE = re.compile(r"^terraform-provider-[a-z0-9-]+_(\d+\.\d+\.\d+)_[a-z0-9]+_[a-z0-9]+\.zip$")


def mirror_versions(mirror: Path, provider: str) -> list[str]:
    """The versions a filesystem mirror holds of a provider (unpacked or packed layout)."""
    root = mirror / provider
    if not root.is_dir():
        return []
    found = set()
    for entry in root.iterdir():
        if entry.is_dir() and _VERSION_RE.match(entry.name):
            found.add(entry.name)
        elif m := _PACKED_RE.match(entry.name):
            found.add(m.group(1))
    return sorted(found, key=_version)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("-")[0].split("."))


def satisfies(version: str, constraints: str) -> bool:
    """Terraform's version constraints (=, !=, >, >=, <, <=, ~>; comma-separated: all of them)."""
    v = _version(version)
    for part in filter(None, (c.strip() for c in constraints.split(","))):
        m = re.match(r"^(~>|>=|<=|!=|=|>|<)?\s*(\d+(?:\.\d+){0,2})$", part)
        if m is None:
            return False
        op, want_text = m.group(1) or "=", m.group(2)
        want = _version(want_text)
        padded = want + (0,) * (3 - len(want))
        if op == "~>":
            # ~> 5.100 allows >= 5.100, < 6; ~> 5.100.0 allows >= 5.100.0, < 5.101
            upper = (want[0] + 1,) if len(want) <= 2 else (want[0], want[1] + 1)
            ok = v >= padded and v[: len(upper)] < upper
        else:
            ok = {
                "=": v == padded,
                "!=": v != padded,
                ">": v > padded,
                ">=": v >= padded,
                "<": v < padded,
                "<=": v <= padded,
            }[op]
        if not ok:
            return False
    return True


def mirror_problems(stack: Stack, mirror: Path, provider: str) -> list[str]:
    """What the mirror cannot give the units: a pinned version it lacks, a constraint none of its versions meets."""
    from orchestrator.model.hcl import locked_versions, provider_requirements

    have = mirror_versions(mirror, provider)
    short = provider.removeprefix(f"{DEFAULT_HOST}/")
    problems = []
    for unit in stack.units.values():
        for source, constraint in provider_requirements(unit.path).items():
            full = source if source.count("/") == 2 else f"{DEFAULT_HOST}/{source}"
            if full != provider:
                continue
            if constraint and not any(satisfies(v, constraint) for v in have):
                problems.append(
                    f"unit {unit.name} needs {short} {constraint}, the mirror has {', '.join(have) or 'none'}"
                )
        pinned = locked_versions(unit.path).get(provider)
        if pinned and pinned not in have:
            problems.append(
                f"unit {unit.name}'s lock file pins {pinned}, the mirror has {', '.join(have) or 'none'} "
                "(orchestrator lock --upgrade)"
            )
    return problems


def host_platform() -> str:
    """This machine as terraform names platforms: linux_amd64, darwin_arm64, ..."""
    import platform

    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())
    return f"{platform.system().lower()}_{arch or platform.machine().lower()}"


_USES_PROVIDER_RE = re.compile(r'^\s*(?:provider\s+"|(?:resource|data)\s+"(?!terraform_)[a-z0-9]+_)', re.M)


def needs_lock_file(unit_dir: Path) -> bool:
    """Whether terraform will record providers for the unit: it names one, configures one, has a
    resource or data source of a provider (terraform_data needs none), calls a module from a
    registry or a repository, or a local module that does any of these."""
    from orchestrator.model.hcl import local_module_dirs, read_module

    return any(
        required_providers(d)
        or _uses_provider(d)
        or any(not source.startswith(("./", "../")) for _, source, _ in read_module(d).module_calls)
        for d in [unit_dir, *local_module_dirs(unit_dir)]
    )


def _uses_provider(module_dir: Path) -> bool:
    return any(_USES_PROVIDER_RE.search(tf.read_text()) for tf in module_dir.glob("*.tf"))


def require_lock_files(stack: Stack, units) -> None:
    """A unit that needs a lock file and has none stops the command before anything runs."""
    from orchestrator.errors import ConfigError

    missing = missing_lock_files(stack, units)
    if missing:
        raise ConfigError(
            f"unit(s) {', '.join(missing)} have no {LOCK_FILE}: run `orchestrator lock` "
            "to write one per unit (from the provider mirror when one is set)"
        )


def missing_lock_files(stack: Stack, units) -> list[str]:
    """Units that need a .terraform.lock.hcl and have none (init runs with -lockfile=readonly)."""
    return sorted(
        u for u in units if needs_lock_file(stack.units[u].path) and not (stack.units[u].path / LOCK_FILE).is_file()
    )


def write_lock_file(tf, ws, platforms, mirror: str | None, *, upgrade: bool = False) -> None:
    """The unit's .terraform.lock.hcl written by `terraform providers lock`. upgrade: the pins it
    holds are set aside first, so the newest version each constraint allows is chosen (restored if
    that fails). A failure is one line with terraform's reason."""
    from orchestrator.errors import ConfigError, TerraformError
    from orchestrator.tf.terraform import error_detail

    lock = ws.source_dir / LOCK_FILE
    aside = lock.with_name(LOCK_FILE + ".before-upgrade")
    if upgrade and lock.exists():
        lock.replace(aside)
    try:
        tf.providers_lock(ws, platforms, mirror)
    except TerraformError as exc:
        if aside.exists():
            aside.replace(lock)
        where = f" from {mirror}" if mirror else ""
        raise ConfigError(
            f"unit {ws.unit}: cannot lock its providers{where}: {error_detail(exc.stderr_tail)}"
        ) from None
    aside.unlink(missing_ok=True)
