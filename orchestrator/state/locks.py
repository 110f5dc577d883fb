"""A unit's terraform state lock as the backend holds it, and how it is released: the one place
that words a held state lock and its `force-unlock` command (the run lock's holder words its own,
`runlock.Holder`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StateLock:
    unit: str
    id: str
    operation: str = "?"
    who: str = "?"
    created: str = "?"

    @classmethod
    def from_info(cls, unit: str, info: dict) -> StateLock:
        """From terraform's lock info (the lock file's JSON, or the fields of its lock error)."""
        return cls(
            unit,
            str(info.get("ID") or "?"),
            str(info.get("Operation") or "?"),
            str(info.get("Who") or "?"),
            str(info.get("Created") or "?"),
        )

    def describe(self) -> str:
        operation = f", {self.operation}" if self.operation != "?" else ""
        return f"state of unit {self.unit} is locked by {self.who} since {self.created} (lock id {self.id}{operation})"

    def release_command(self, where: str) -> str:
        """`where`: the copy's --env/--suffix options (empty: the caller says which)."""
        return " ".join(filter(None, ("orchestrator force-unlock", where, f"--unit {self.unit} {self.id}")))
