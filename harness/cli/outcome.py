"""What ``--json`` prints: a command's outcome as one JSON document on stdout."""

from __future__ import annotations

import json
import math
import sys

import pandas as pd

from harness.support.provenance import git_state


def _plain(value):
    """JSON-safe scalars: NaN -> None, NumPy numbers -> Python numbers."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def verify_outcome(report: pd.DataFrame, path) -> dict:
    """Counts per backend and op, the worst error, and every failed or mistrusted case with its reproducer."""
    summary = []
    for (backend, op), part in report.groupby(["backend", "op"], sort=False):
        judged = part[part.status.isin(["passed", "failed", "mistrusted"])]
        summary.append({"backend": backend, "op": op, "cases": len(part),
                        **{status: int((part.status == status).sum())
                           for status in ("passed", "failed", "mistrusted", "unsupported", "skipped")},
                        "max_units": _plain(judged.max_units.max()) if not judged.empty else None})
    flagged = report[report.status.isin(["failed", "mistrusted"])]
    columns = [c for c in ("backend", "op", "status", "max_units", "case", "message", "reproducer", "minimal")
               if c in flagged]
    return {"command": "verify", "passed": bool(not (report.status == "failed").any()), "results_file": str(path),
            **git_state(), "summary": summary, "flagged": _records(flagged[columns])}


def bench_outcome(results: pd.DataFrame, path) -> dict:
    """Every result row (long layout) and where they were written."""
    return {"command": "bench", "results_file": str(path), **git_state(), "rows": _records(results)}


def print_json(outcome: dict) -> None:
    json.dump(outcome, sys.stdout, indent=1)
    sys.stdout.write("\n")
