import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def project_root() -> Path:
    return ROOT


@pytest.fixture
def tmp_project(tmp_path) -> Path:
    """A copy of environments/ and the manifest, with the units symlinked, to edit freely."""
    (tmp_path / "terraform").mkdir()
    shutil.copy(ROOT / "terraform" / "stack.toml", tmp_path / "terraform" / "stack.toml")
    for unit in ("network", "security", "database", "edge", "observability", "app", "_shared"):
        os.symlink(ROOT / "terraform" / unit, tmp_path / "terraform" / unit)
    shutil.copytree(ROOT / "environments", tmp_path / "environments")
    return tmp_path


@pytest.fixture(scope="session")
def checkov() -> str:
    """checkov lives in its own virtualenv (it pins an old boto3)."""
    path = os.environ.get("CHECKOV") or str(ROOT / ".venv-checkov" / "bin" / "checkov")
    if not Path(path).exists():
        pytest.fail(f"checkov not found at {path}: make checkov-venv")
    return path


# The modules that keep a worker busy longest (seconds of one worker: the sum of a module's
# setup, call and teardown times in `make test PYTEST_ARGS=--durations=0`). Scheduling only: `make test`
# hands the longest module out first, so the workers end together instead of one waiting on
# another's last long module. A module not listed comes after these, in file order.
LONGEST_FIRST: dict[str, float] = {
    # CI run of 2026-12-07 with three workers (5fbf9e2's parent; crash and interrupt, which
    # failed there on a test bug, from their runs alone), worker-seconds
    "integration/test_prod_emulator.py": 556,
    "integration/test_engine.py": 480,
    "integration/test_platform.py": 468,
    "integration/test_real_aws_semantics.py": 183,
    "integration/test_faults.py": 166,
    "integration/test_crash.py": 150,
    "integration/test_any_stack.py": 126,
    "integration/test_guard.py": 108,
    "integration/test_preflight.py": 78,
    "integration/test_pipeline.py": 62,
    "integration/test_interrupt.py": 60,
    "integration/test_static.py": 46,
    "integration/test_kept_secrets.py": 41,
    "integration/test_review_items.py": 39,
    "integration/test_unit_jobs.py": 35,
    "integration/test_backend.py": 34,
    "integration/test_emulator.py": 28,
    "integration/test_locks.py": 21,
    "integration/test_cli_errors.py": 21,
    "integration/test_rotation.py": 20,
    "integration/test_bench.py": 13,
    "integration/test_prompt.py": 8,
    "integration/test_health.py": 8,
}


def pytest_collection_modifyitems(config, items):
    """Everything under tests/integration needs the real terraform binary and a moto server:
    `make test-fast` (-m "not integration") runs the rest in seconds without either. Modules are
    run longest first (LONGEST_FIRST); the tests of a module keep their order."""
    integration = Path(__file__).parent / "integration"
    for item in items:
        if integration in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
    rank = {name: i for i, name in enumerate(sorted(LONGEST_FIRST, key=LONGEST_FIRST.get, reverse=True))}
    here = Path(__file__).parent
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).relative_to(here).as_posix(), len(rank)))  # stable


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` (a module's tests on one worker, for its module-scoped deploys), handing a
    worker its next module when the last test of its current one starts. xdist's own hands it over
    with two tests left: behind prod's 4-minute teardown, the next module waited while the other
    worker ran out of work."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class NextModuleAtTheLastTest(LoadFileScheduling):
        def _reschedule(self, node) -> None:
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
                return
            # A worker runs a test only once it knows the next one (pytest's fixture teardown
            # needs it), so one pending test is the least a busy worker holds.
            if self._pending_of(self.assigned_work[node]) > 1:
                return
            self._assign_work_unit(node)

    return NextModuleAtTheLastTest(config, log)


# The session's terraform commands at once (the machine's budget would be 4 here: 2 per CPU).
# Most of a command's time on the emulator is the aws provider asleep in its waiters (AWS's
# pacing: ~25 s after an SQS queue, 30 s for an RDS cluster, 60 s for a load balancer), holding
# its slot: with three workers, a 1-second command of the fixture stack waited a minute for a
# slot held by prod's waits. 8 (the budget's maximum) keeps both cores busy; 8 x 0.7 GiB fits.
TEST_SLOTS = 8


@pytest.fixture(scope="session", autouse=True)
def own_terraform_slots(tmp_path_factory):
    """The machine's terraform slots (orchestrator.tf.hostslots) for this test session alone: its
    workers share them (the bound on terraform processes still holds across them), and no other
    run on the machine (another session, a demo, a benchmark) takes one from the tests or gives
    them its wait. A test that sets its own ORCHESTRATOR_SLOTS_DIR keeps it."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    previous = os.environ.get("ORCHESTRATOR_SLOTS_DIR")
    os.environ["ORCHESTRATOR_SLOTS_DIR"] = str(shared / "terraform-slots")
    ours = "ORCHESTRATOR_HOST_SLOTS" not in os.environ  # an operator's own number is kept
    os.environ.setdefault("ORCHESTRATOR_HOST_SLOTS", str(TEST_SLOTS))
    yield
    if ours:
        os.environ.pop("ORCHESTRATOR_HOST_SLOTS", None)
    if previous is None:
        os.environ.pop("ORCHESTRATOR_SLOTS_DIR", None)
    else:
        os.environ["ORCHESTRATOR_SLOTS_DIR"] = previous
