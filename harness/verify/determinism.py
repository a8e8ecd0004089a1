"""Determinism: the same call, run twice and with another thread count, must give the same bits.

Backends that declare ``deterministic=True`` are held to it; for the others the report says
what was observed. Run-to-run differences usually come from parallel reductions whose order
depends on scheduling; thread-count differences from a split of the reduction (K-blocking)
that follows the number of threads.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from harness.backend.dispatch import run_case
from harness.errors import Unsupported
from harness.backend.registry import get_backend
from harness.support.timing import pinned_threads
from harness.verify.verifier import random_cases_within_limits


def _threads_to_compare() -> tuple[int, int]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1, max(2, usable)


def determinism_report(backend, op: str = "conv2d", cases: int = 40, seed: int = 0, threads=None) -> pd.DataFrame:
    """One row per case: identical bits run-to-run and across thread counts?

    Cases are the backend's random verification cases with normal (non-integer) data, where
    summation order shows in the last bits.
    """
    declared = get_backend(backend)
    low, high = threads or _threads_to_compare()
    rows = []
    for case in random_cases_within_limits(declared, op, cases, seed, nonfinite=False):
        if case.fill != "normal":
            continue
        arrays = case.arrays()
        try:
            with pinned_threads(high):
                first = run_case(declared, op, case.spec, case.batched, arrays)
                again = run_case(declared, op, case.spec, case.batched, arrays)
            with pinned_threads(low):
                fewer = run_case(declared, op, case.spec, case.batched, arrays)
        except Unsupported:  # a limit only the call itself knows (e.g. winograd's kernel size)
            continue
        rows.append({
            "backend": declared.name,
            "case": repr(case),
            "same_run_to_run": _same_bits(first, again),
            "same_across_threads": _same_bits(first, fewer),
            "threads": f"{high} vs {low}",
        })
    return pd.DataFrame(rows)


def determinism_verdict(report: pd.DataFrame, backend) -> tuple[bool, str]:
    """(ok, sentence): ok is False only when a backend that claims determinism broke it."""
    declared = get_backend(backend)
    observed = bool(report.same_run_to_run.all() and report.same_across_threads.all())
    n = len(report)
    detail = (f"{int((~report.same_run_to_run).sum())} of {n} cases differ run to run, "
              f"{int((~report.same_across_threads).sum())} of {n} across thread counts ({report.threads.iloc[0]})"
              if n else "no cases")
    if observed:
        return True, f"{declared.name}: bit-identical ({detail})"
    if declared.deterministic:
        return False, f"{declared.name}: declared deterministic but is not: {detail}"
    return True, f"{declared.name}: not deterministic, as declared: {detail}"


def _same_bits(a, b) -> bool:
    return all(x.shape == y.shape and x.dtype == y.dtype and x.tobytes() == y.tobytes() for x, y in zip(a, b))
