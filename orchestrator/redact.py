"""One redaction layer for everything the orchestrator writes: terminal,
logs, journal, JSON. Known secret values are replaced, and so is anything
shaped like an AWS key, a session token or a URI with a password."""

from __future__ import annotations

import re
import threading

MASK = "***"

_PATTERNS = [
    re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"),  # access key ids
    re.compile(r"(?i)(aws_secret_access_key|secret_key|SecretAccessKey)(\s*[=:]\s*\"?)[A-Za-z0-9/+=]{40}"),
    re.compile(r"(?i)(aws_session_token|session_token|SessionToken)(\s*[=:]\s*\"?)[A-Za-z0-9/+=]{100,}"),
    re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/\s@]+:)([^@\s]+)(@)"),  # scheme://user:password@host
    re.compile(r"(?i)(\"?password\"?\s*[=:]\s*\"?)([^\"\s,}]+)"),
]


class Redactor:
    def __init__(self):
        self._lock = threading.Lock()
        self._values: set[str] = set()

    def add(self, value: str | None) -> None:
        """Register a secret value; short values are ignored (they would mask ordinary words)."""
        if value and len(value) >= 6:
            with self._lock:
                self._values.add(value)

    def values(self) -> list[str]:
        """The registered secret values (handed to tfshim.py, which masks terraform's log with them)."""
        with self._lock:
            return sorted(self._values)

    def redact(self, text: str) -> str:
        if not text:
            return text
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for v in values:
            if v in text:
                text = text.replace(v, MASK)
        text = _PATTERNS[0].sub(MASK, text)
        text = _PATTERNS[1].sub(lambda m: m.group(1) + m.group(2) + MASK, text)
        text = _PATTERNS[2].sub(lambda m: m.group(1) + m.group(2) + MASK, text)
        text = _PATTERNS[3].sub(lambda m: m.group(1) + MASK + m.group(3), text)
        text = _PATTERNS[4].sub(lambda m: m.group(1) + MASK, text)
        return text

    def redact_obj(self, obj):
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {k: (MASK if _secret_key(k) else self.redact_obj(v)) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.redact_obj(v) for v in obj]
        return obj


def _secret_key(key) -> bool:
    return isinstance(key, str) and re.search(r"(?i)(password|secret_string|token|private_key)$", key) is not None
