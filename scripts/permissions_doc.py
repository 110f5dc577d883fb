#!/usr/bin/env python3
"""docs/permissions.md from docs/permissions.json; with --from RECORDS, first docs/permissions.json
from an emulator's recorded calls (ORCHESTRATOR_EMULATOR_RECORD; the prod test writes them when
ORCHESTRATOR_UPDATE_PERMISSIONS=1):

    ORCHESTRATOR_UPDATE_PERMISSIONS=1 .venv/bin/pytest tests/integration/test_prod_emulator.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.aws import permissions  # noqa: E402

LISTED = ROOT / "docs" / "permissions.json"
PAGE = ROOT / "docs" / "permissions.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="records", type=Path, help="an emulator's recorded calls (JSON lines)")
    args = parser.parse_args()
    if args.records:
        listed = permissions.needed(permissions.read_records(args.records))
        LISTED.write_text(json.dumps(listed, indent=2, sort_keys=True) + "\n")
    PAGE.write_text(permissions.render(json.loads(LISTED.read_text())))
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
