"""The verifier: run a backend on many cases and compare it with a float64 reference.

Each case is checked for, in order: the call raising nothing unexpected, output shape and
dtype (checked by :func:`harness.api.run_conv2d`), NaN/Inf where the reference has them,
values within the backend's error bound (bit-exact on ``exact`` fills for backends that
declare ``exact``), and inputs left unchanged. A passing case whose reference output is
mostly zeros is reported as *mistrusted*: such a check can hardly fail.

The reference is torch in float64 on the (exactly up-cast) inputs; when the backend under
test is torch itself, the reference is the ``naive`` loops instead.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .api import run_conv2d
from .cases import Conv2dCase, random_cases, table_cases
from .errors import Unsupported
from .registry import get_backend
from .tolerance import compare, error_bound, magnitude

DEFAULT_CASES = 300
MISTRUST_ZERO_FRACTION = 0.5
SHRINK_ATTEMPTS = 80
STATUSES = ("passed", "failed", "unsupported", "mistrusted")


@dataclass(frozen=True)
class CaseResult:
    """The verdict on one case."""

    case: Conv2dCase
    status: str  # one of STATUSES
    max_units: float
    max_abs_err: float
    message: str
    seconds: float
    exact: bool  # compared bit for bit


def reference_backend(name: str) -> str:
    return "naive" if name == "torch" else "torch"


def _reference_conv(reference: str, spec):
    """float64 convolution through the reference backend, for the values and for ``A``."""
    ref = get_backend(reference)
    spec64 = spec.with_(dtype="float64")
    return lambda x, w, b: run_conv2d(ref, x, w, b, spec64)


def check_case(backend, case: Conv2dCase, *, reference: str | None = None) -> CaseResult:
    """Run one case on ``backend`` and judge it; the one-line reproducer's entry point."""
    declared = get_backend(backend)
    reference = reference or reference_backend(declared.name)
    spec = case.spec
    why = declared.unsupported_reason("conv2d", spec) or (
        None if declared.nonfinite or case.fill not in ("nan", "inf")
        else f"backend {declared.name!r} does not propagate NaN/Inf element-wise ({declared.error_model} error model)"
    )
    if why:
        return CaseResult(case, "unsupported", np.nan, np.nan, why, 0.0, False)
    x, w, b = case.arrays()
    saved = [None if a is None else a.copy() for a in (x, w, b)]
    start = time.perf_counter()
    try:
        batched = case.batched
        y = run_conv2d(declared, x, w, b, spec, batched)
    except Unsupported as exc:
        return CaseResult(case, "unsupported", np.nan, np.nan, str(exc), time.perf_counter() - start, False)
    except Exception as exc:  # any other exception is a failed case, reported with its type
        return CaseResult(case, "failed", np.inf, np.inf, f"raised {type(exc).__name__}: {exc}",
                          time.perf_counter() - start, False)
    seconds = time.perf_counter() - start
    if not batched:
        y = y[np.newaxis]
    ref = _reference_conv(reference, spec)
    as64 = lambda a: None if a is None else np.asarray(a, dtype=np.float64)  # noqa: E731
    x4 = x if batched else x[np.newaxis]
    expected = ref(as64(x4), as64(w), as64(b))
    exact = case.fill == "exact" and declared.exact
    if exact:
        bound = 0.0
    else:
        A = magnitude(ref, x4, w, b)
        bound = error_bound(declared.error_model, spec, A)
    verdict = compare(y, expected.astype(spec.dtype).astype(np.float64) if exact else expected, bound)
    status, message = ("passed" if verdict.passed else "failed"), verdict.message
    if exact and verdict.passed:
        message = "bit-exact"
    changed = [name for name, now, before in zip(("x", "w", "bias"), (x, w, b), saved)
               if before is not None and not np.array_equal(now, before, equal_nan=True)]
    if changed:
        status, message = "failed", f"input(s) modified in place: {', '.join(changed)}"
    elif status == "passed" and expected.size and np.mean(expected == 0) > MISTRUST_ZERO_FRACTION:
        status = "mistrusted"
        message = f"{np.mean(expected == 0):.0%} of the reference output is zero; {message}"
    return CaseResult(case, status, verdict.max_units, verdict.max_abs_err, message, seconds, exact)


def shrink(backend, case: Conv2dCase, *, reference: str | None = None, attempts: int = SHRINK_ATTEMPTS):
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


def reproducer(backend_name: str, case: Conv2dCase) -> str:
    """A one-line shell command that re-runs ``case`` and prints the verdict."""
    return (
        'python -c "import harness; from harness.cases import Conv2dCase; '
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
    progress: bool = False,
) -> pd.DataFrame:
    """Cross-check ``backend`` against the float64 reference, one row per case.

    Parameters
    ----------
    backend : str
        A registered backend name.
    op : str
        Only ``"conv2d"`` so far.
    cases : int, optional
        Number of random cases (default :data:`DEFAULT_CASES`), on top of the
        hand-picked table (``table=True``). Random cases only use features and dtypes
        the backend declares; table rows it does not support show as ``unsupported``.
    seed : int
        Seeds the random cases; the same seed gives the same cases and data.
    shrink_failures : bool
        Shrink the smallest failing case to a minimal one; its row has ``minimal=True``
        and that minimal case as its ``reproducer`` (other failed rows reproduce themselves).

    Returns
    -------
    pandas.DataFrame
        Columns: backend, op, source, status, max_units, max_abs_err, exact, message,
        seconds, the case's fields, features, n_acc, reproducer and minimal.
    """
    if op != "conv2d":
        raise ValueError(f"verify supports op='conv2d' only, got {op!r}")
    declared = get_backend(backend)
    if not declared.available:
        raise Unsupported(f"backend {declared.name!r} is unavailable: {declared.reason}")
    if cases is None:
        cases = DEFAULT_CASES
    if not isinstance(cases, int) or cases < 0:
        raise ValueError(f"cases must be a non-negative int, got {cases!r}")
    todo = [("table", c) for c in (table_cases() if table else [])]
    todo += [("random", c) for c in random_cases(declared.features.get(op, ()), declared.dtypes,
                                                    cases, seed, nonfinite=declared.nonfinite)]
    results = []
    for i, (source, case) in enumerate(todo):
        results.append((source, check_case(declared, case)))
        if progress:
            _progress(i + 1, len(todo), results)
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


def _size(case: Conv2dCase) -> int:
    return int(np.prod(case.x_shape)) + int(np.prod(case.w_shape))


def _row(name, op, source, result: CaseResult) -> dict:
    case = result.case
    spec = case.spec
    return {
        "backend": name,
        "op": op,
        "source": source,
        "status": result.status,
        "max_units": result.max_units,
        "max_abs_err": result.max_abs_err,
        "exact": result.exact,
        "message": result.message,
        "seconds": result.seconds,
        "x_shape": str(case.x_shape),
        "w_shape": str(case.w_shape),
        "bias": case.bias,
        "stride": str(case.stride),
        "padding": str(case.padding),
        "dilation": str(case.dilation),
        "groups": case.groups,
        "padding_mode": case.padding_mode,
        "dtype": case.dtype,
        "fill": case.fill,
        "layout": case.layout,
        "seed": case.seed,
        "features": ",".join(sorted(spec.features)),
        "n_acc": spec.n_acc,
        "case": repr(case),
        "reproducer": reproducer(name, case) if result.status == "failed" else "",
    }


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
