"""``convbench report``: rebuild reports/summary.md from stored results (nothing is re-run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..machine import DEFAULT_PATH
from ..report import REPORTS, write_report


def register(sub) -> None:
    parser = sub.add_parser("report", help="write reports/summary.md from stored verify/bench results")
    parser.add_argument("--verify", default=str(REPORTS / "verify.csv"), metavar="CSV")
    parser.add_argument("--bench", default=str(REPORTS / "bench.csv"), metavar="CSV")
    parser.add_argument("--out", default=str(REPORTS / "summary.md"), metavar="MD")
    parser.set_defaults(func=run)


def run(args) -> int:
    machine = json.loads(DEFAULT_PATH.read_text()) if DEFAULT_PATH.is_file() else None
    try:
        out = write_report(Path(args.verify), Path(args.bench), machine, Path(args.out))
    except ValueError as exc:
        print(f"convbench report: {exc}", file=sys.stderr)
        return 2
    print(f"report: {out}")
    return 0
