"""What a run works with, built once (session.run_context) and handed to the engine.

The engine sees terraform only through the TerraformLike interface and the
state bucket only through the StateStore, so its rules are tested in seconds
with fakes (tests/unit/test_engine_rules.py) beside the integration tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from orchestrator.model.config import Environment, Stack

Confirm = Callable[[str, Any], bool]  # (unit, PlanSummary) -> apply it?


class TerraformLike(Protocol):
    """The terraform commands the engine runs (orchestrator.tf.terraform.Terraform)."""

    timeout: float
    run_id: str

    def init(self, ws, backend_config: Mapping[str, object], *, reconfigure: bool = False, **kw): ...
    def plan(self, ws, *, destroy: bool = False, lock_timeout: str = "0s", **kw) -> tuple[bool, Any]: ...
    def apply(self, ws, *, lock_timeout: str = "0s", **kw): ...
    def apply_auto(self, ws, *, lock_timeout: str = "0s", **kw): ...
    def show_plan(self, ws, **kw) -> dict: ...
    def show_plan_text(self, ws, **kw) -> str: ...
    def state_push(self, ws, state_file: Path, **kw): ...
    def state_rm(self, ws, addresses, *, lock_timeout: str = "0s", **kw): ...


@dataclass
class RunContext:
    stack: Stack
    env: Environment
    tf: TerraformLike
    store: Any  # statestore.StateStore
    aws: Any  # aws.Aws: the post-apply hooks' clients
    redactor: Any
    work_root: Path
    emulator_url: str | None = None
    supplied_secrets: dict[str, str] = field(default_factory=dict)
    parallelism: int = 4
    host_slots: Any = None  # hostslots.HostSlots: the machine's terraform budget, shared by every run on it
    lock_timeout: str = "0s"
    confirm: Confirm | None = None  # None: nobody confirms (--yes, CI)
    on_start: Callable[[str], None] | None = None
    on_finish: Callable[[Any], None] | None = None
    on_line: Callable[[str, str], None] | None = None
    say: Callable[[str], None] = lambda text: None  # a line for the operator
    # teardown: destroy plans made ahead at once (None: one CPU's worth, at most `parallelism`)
    early_destroy_width: int | None = None
    # run id -> the copy's journal (journal.Journal); default: the one in the store's bucket
    journal: Callable[[str], Any] | None = None
    run_id: str = ""  # the run's id (the session makes one; terraform records it beside each command)
    # runlock.RunLock: the copy's run lock, acquired by the command before the run starts; None for
    # a run that writes nothing (only its holder writes the journal)
    run_lock: Any = None

    def __post_init__(self) -> None:
        if not self.run_id:
            from orchestrator.state.journal import new_run_id

            self.run_id = new_run_id()
        if self.journal is None:
            from orchestrator.state.journal import Journal

            self.journal = lambda run_id: Journal.of(self.store, self.redactor, run_id)
