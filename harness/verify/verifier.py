"""The verifier: run a backend on many cases and compare it with a float64 reference.

Each case is checked for, in order: the call raising nothing unexpected, output shape and
dtype (checked by :func:`harness.backend.dispatch.run_op`), NaN/Inf where the reference has them,
values within the backend's error bound (bit-exact on ``exact`` fills for backends that
declare ``exact``), and inputs left unchanged. A passing case whose reference output is
mostly zeros is reported as *mistrusted*: such a check can hardly fail.

The reference is torch in float64 on the (exactly up-cast) inputs; when the backend under
test is torch itself, the reference is the ``naive`` loops instead.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from harness.backend.dispatch import run_case, run_conv2d
from harness.backend.registry import REFERENCE_OVERRIDES, get_backend, with_role
from harness.errors import Unsupported
from harness.ops.table import BoundContext, as_dtype, op_info, op_of
from harness.ops.tolerance import compare

DEFAULT_CASES = 300
MISTRUST_ZERO_FRACTION = 0.5
SHRINK_ATTEMPTS = 80
CASE_TIME_LIMIT_S = 60.0
STATUSES = ("passed", "failed", "unsupported", "mistrusted", "skipped")


@dataclass(frozen=True)
class CaseResult:
    """The verdict on one case."""

    case: object  # a case of any op in harness.ops.table.OPS
    status: str  # one of STATUSES
    max_units: float
    max_abs_err: float
    message: str
    seconds: float
    exact: bool  # compared bit for bit


def reference_backend(name: str) -> str:
    """The float64 reference ``name`` is checked against: the CPU ``baseline`` backend (torch), or
    for that baseline itself the ``reference`` (the naive loops) — by role, never by name."""
    found = with_role("baseline", exclude=(name,)) or with_role("reference", exclude=(name,))
    if found:
        return found
    raise Unsupported(f"no available reference backend to verify {name!r} against")


class CaseTimeout(Exception):
    """A backend call ran past the verifier's per-case time limit."""


@contextmanager
def time_limit(seconds: float | None):
    """Interrupt the Python code inside after ``seconds`` (main thread, POSIX; else no limit).

    A long-running C call (one huge numpy operation) finishes before the interrupt lands, but
    a backend that loops in Python, or calls many short kernels, is stopped close to the limit.
    """
    usable = (seconds is not None and hasattr(signal, "SIGALRM")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise CaseTimeout(f"no result after the per-case limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_case(backend, case, *, reference: str | None = None,
               time_limit_s: float | None = CASE_TIME_LIMIT_S) -> CaseResult:
    """Run one case on ``backend`` and judge it; the one-line reproducer's entry point.

    A call still running after ``time_limit_s`` is stopped and the case *skipped* with
    that reason (a slow backend on a big case is not waited on forever).
    """
    declared = get_backend(backend)
    op = op_info(op_of(case))
    reference = get_backend(reference or reference_backend(declared.name))
    spec = case.spec
    why = declared.unsupported_reason(op.name, spec) or (
        None if declared.nonfinite or case.fill not in ("nan", "inf")
        else f"backend {declared.name!r} does not propagate NaN/Inf element-wise ({declared.model} error model)"
    )
    if why:
        return CaseResult(case, "unsupported", np.nan, np.nan, why, 0.0, False)
    arrays = case.arrays()
    saved = [None if a is None else a.copy() for a in arrays]
    start = time.perf_counter()
    try:
        with np.errstate(all="ignore"), time_limit(time_limit_s):  # NaN/Inf cases warn by design
            outputs = run_case(declared, op.name, spec, case.batched, arrays)
    except CaseTimeout as exc:
        return CaseResult(case, "skipped", np.nan, np.nan, str(exc), time.perf_counter() - start, False)
    except Unsupported as exc:
        return CaseResult(case, "unsupported", np.nan, np.nan, str(exc), time.perf_counter() - start, False)
    except Exception as exc:  # any other exception is a failed case, reported with its type
        return CaseResult(case, "failed", np.inf, np.inf, f"raised {type(exc).__name__}: {exc}",
                          time.perf_counter() - start, False)
    seconds = time.perf_counter() - start
    with np.errstate(all="ignore"):
        spec64 = as_dtype(spec, "float64")
        arrays64 = [None if a is None else np.asarray(a, np.float64) for a in arrays]
        expected = run_case(reference, op.name, spec64, case.batched, arrays64)
    exact = case.fill == "exact" and declared.exact
    if exact:  # the float64 reference rounded once to the dtype is the only right answer
        expected = [e.astype(spec.dtype).astype(np.float64) for e in expected]
        bounds = [0.0] * len(expected)
    else:
        with np.errstate(all="ignore"):
            A = run_case(reference, op.name, spec64, case.batched, op.magnitude_inputs(arrays64))
            ctx = BoundContext(declared.model, lambda x, w, b, s: run_conv2d(reference, x, w, b, s))
            bounds = op.bounds(ctx, case, arrays, A)
    verdicts = [compare(y, e, bound) for y, e, bound in zip(outputs, expected, bounds)]
    worst = max(verdicts, key=lambda v: (not v.passed, v.max_units))
    status = "passed" if all(v.passed for v in verdicts) else "failed"
    message = worst.message if len(verdicts) == 1 else f"output {verdicts.index(worst)}: {worst.message}"
    if exact and status == "passed":
        message = "bit-exact"
    changed = [f"input {i}" for i, (now, before) in enumerate(zip(arrays, saved))
               if before is not None and not np.array_equal(now, before, equal_nan=True)]
    zeros = np.mean([np.mean(e == 0) for e in expected if e.size]) if any(e.size for e in expected) else 0.0
    if changed:
        status, message = "failed", f"modified in place: {', '.join(changed)}"
    elif status == "passed" and zeros > MISTRUST_ZERO_FRACTION and not op.structural_zeros:
        status, message = "mistrusted", f"{zeros:.0%} of the reference output is zero; {message}"
    if reference.name in REFERENCE_OVERRIDES:  # a verdict against a replaced reference says so
        message = f"[against {REFERENCE_OVERRIDES[reference.name]}] {message}"
    return CaseResult(case, status, worst.max_units, worst.max_abs_err, message, seconds, exact)


def shrink(backend, case, *, reference: str | None = None, attempts: int = SHRINK_ATTEMPTS):
    """The smallest still-failing case reachable by one-step simplifications (greedy)."""
    for _ in range(attempts):
        for simpler in case.simpler():
            attempts -= 1
            if check_case(backend, simpler, reference=reference).status == "failed":
                case = simpler
                break
            if attempts <= 0:
                return case
        else:
            return case
    return case


def reproducer(backend_name: str, case) -> str:
    """A one-line shell command that re-runs ``case`` and prints the verdict."""
    case_type = type(case)
    return (
        f'python -c "import harness; from {case_type.__module__} import {case_type.__name__}; '
        f"print(harness.check_case('{backend_name}', {case!r}))\""
    )


def verify(
    backend,
    op: str = "conv2d",
    cases: int | None = None,
    seed: int = 0,
    *,
    table: bool = True,
    shrink_failures: bool = True,
    max_failures: int | None = None,
    time_limit_s: float | None = CASE_TIME_LIMIT_S,
    on_result=None,
    progress: bool = False,
) -> pd.DataFrame:
    """Cross-check ``backend`` against the float64 reference, one row per case.

    Parameters
    ----------
    backend : str
        A registered backend name.
    op : str
        Any op of :data:`harness.ops.table.OPS` the backend has (natively or lowered).
    cases : int, optional
        Number of random cases (default :data:`DEFAULT_CASES`), on top of the
        hand-picked table (``table=True``). Random cases only use features and dtypes
        the backend declares; table rows it does not support show as ``unsupported``.
    seed : int
        Seeds the random cases; the same seed gives the same cases and data.
    max_failures : int, optional
        Stop after this many failed cases (the rows run so far are returned).
    time_limit_s : float, optional
        Per-case limit; a case still running then is *skipped* with the reason.
    on_result : callable, optional
        Called with each case's row (a dict) as soon as it is judged, so a caller can keep
        every finished result even if the run is interrupted.
    shrink_failures : bool
        Shrink the smallest failing case to a minimal one; its row has ``minimal=True``
        and that minimal case as its ``reproducer`` (other failed rows reproduce themselves).

    Returns
    -------
    pandas.DataFrame
        Columns: backend, op, source, status, max_units, max_abs_err, exact, message,
        seconds, the case's fields, features, n_acc, reproducer and minimal.
    """
    info = op_info(op)
    declared = get_backend(backend)
    if not declared.available:
        raise Unsupported(f"backend {declared.name!r} is unavailable: {declared.reason}")
    if cases is None:
        cases = DEFAULT_CASES
    if not isinstance(cases, int) or cases < 0:
        raise ValueError(f"cases must be a non-negative int, got {cases!r}")
    if op not in declared.ops:
        raise Unsupported(f"backend {declared.name!r} does not implement {op}")
    todo = [("table", c) for c in (info.table_cases() if table else [])]
    todo += [("random", c) for c in random_cases_within_limits(declared, op, cases, seed, declared.nonfinite)]
    results = []
    n_failed = 0
    for i, (source, case) in enumerate(todo):
        results.append((source, check_case(declared, case, time_limit_s=time_limit_s)))
        n_failed += results[-1][1].status == "failed"
        if on_result is not None:
            on_result(_row(declared.name, op, source, results[-1][1]))
        if progress:
            _progress(i + 1, len(todo), results)
        if max_failures is not None and n_failed >= max_failures:
            break
    if progress:
        sys.stderr.write("\n")
    report = pd.DataFrame([_row(declared.name, op, source, result) for source, result in results])
    report["minimal"] = False
    failed = [i for i, (_, result) in enumerate(results) if result.status == "failed"]
    if failed and shrink_failures:
        # shrink the smallest failure only: one minimal reproducer says more than many
        smallest = min(failed, key=lambda i: _size(results[i][1].case))
        minimal = shrink(declared, results[smallest][1].case)
        report.loc[smallest, ["reproducer", "minimal"]] = [reproducer(declared.name, minimal), True]
    return report


def random_cases_within_limits(declared, op: str, count: int, seed: int, nonfinite: bool) -> list:
    """``count`` seeded random cases of ``op`` on ``declared``'s features and dtypes, within its limits.

    A backend with limits beyond its features (``Backend.limits``: Winograd's 3x3 stride-1
    kernels, say) would otherwise spend most of the budget on calls it refuses; the cases come
    from a longer draw of the same seeded sequence instead, in order. Without limits they are
    the first ``count`` cases of that sequence, as drawn.
    """
    info = op_info(op)
    features = declared.features.get(op, ())
    drawn = count
    while True:
        pool = info.random_cases(features, declared.dtypes, drawn, seed, nonfinite=nonfinite)
        within = [case for case in pool if declared.limits(op, case.spec) is None]
        if len(within) >= count or len(pool) < drawn or drawn >= 64 * max(count, 1):
            return within[:count]
        drawn *= 4


def _size(case) -> int:
    return sum(int(a.size) for a in case.arrays() if a is not None)


def _row(name, op, source, result: CaseResult) -> dict:
    from harness.verify.tidy import axis_columns

    case = result.case
    row = {
        "backend": name,
        "op": op,
        "source": source,
        "status": result.status,
        "max_units": result.max_units,
        "max_abs_err": result.max_abs_err,
        "exact": result.exact,
        "message": result.message,
        "seconds": result.seconds,
    }
    for f in fields(case):  # the case's own fields; tuples as text so columns stay scalar
        value = getattr(case, f.name)
        row[f.name] = value if isinstance(value, (bool, int, float, str)) else str(value)
    row["features"] = ",".join(sorted(case.spec.features))
    row.update(axis_columns(case.spec))  # one integer column per axis (stride_h, pad_top, N, ...)
    row["n_acc"] = getattr(case.spec, "n_acc", np.nan)
    row["case"] = repr(case)
    row["reproducer"] = reproducer(name, case) if result.status == "failed" else ""
    return row


def _progress(done: int, total: int, results) -> None:
    failed = sum(result.status == "failed" for _, result in results)
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} cases, {failed} failed")
    sys.stderr.flush()


def summarize(report: pd.DataFrame) -> pd.DataFrame:
    """Counts per backend and status (passed / failed / unsupported / mistrusted) and worst error."""
    counts = report.pivot_table(index="backend", columns="status", values="op", aggfunc="count", fill_value=0)
    counts = counts.reindex(columns=list(STATUSES), fill_value=0)
    counts["max_units"] = report[report.status.isin(["passed", "failed", "mistrusted"])].groupby("backend")[
        "max_units"].max()
    counts["cases"] = report.groupby("backend").size()
    return counts
