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

from harness.backend.dispatch import run_case, run_conv2d
from harness.backend.plugins import plugin_file
from harness.backend.registry import REFERENCE_OVERRIDES, get_backend, with_role
from harness.errors import Unsupported
from harness.ops.table import BoundContext, as_dtype, op_info, op_of
from harness.ops.tolerance import compare, error_model, half_output_bound
from harness.support.thread_alarm import interrupt_after
from harness.verify import scale as scale_tier
from harness.verify.sampled_check import conv2d_at, plane_magnitude_bound, sample_outputs, sampled_bound

DEFAULT_CASES = 300
EXTRA_CHUNK = 50  # random cases drawn at a time once a time budget outlasts the planned cases
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
    """Interrupt the Python code inside after ``seconds`` (POSIX main thread: SIGALRM; another thread,
    as in a Dask worker: :func:`harness.support.thread_alarm.interrupt_after`).

    A long-running C call (one huge numpy operation) finishes before the interrupt lands, but
    a backend that loops in Python, or calls many short kernels, is stopped close to the limit.

    A JIT compiler at work (Numba, LLVM) is never interrupted: an exception raised inside it
    leaves its caches half-built (later calls fail with "no compiled object yet"), and on a
    loaded machine a first compilation can take longer than the limit. The limit is re-armed
    until the compilation is over, so compile time does not count as a hang.
    """
    if seconds is not None and threading.current_thread() is not threading.main_thread():
        # a worker thread (a Dask worker runs tasks in a pool): SIGALRM reaches the main thread only
        with interrupt_after(seconds, lambda: CaseTimeout(f"no result after the per-case limit of {seconds:g} s"),
                             postpone=_compiling, postpone_s=COMPILE_GRACE_S):
            yield
        return
    usable = seconds is not None and hasattr(signal, "SIGALRM")
    if not usable:
        yield
        return

    def expire(signum, frame):
        if _compiling(frame):
            signal.setitimer(signal.ITIMER_REAL, COMPILE_GRACE_S)
            return
        raise CaseTimeout(f"no result after the per-case limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


#: While a JIT compiler runs, the per-case limit is looked at again this often.
COMPILE_GRACE_S = 1.0
_COMPILERS = ("numba.", "llvmlite.")


def _compiling(frame) -> bool:
    """Python frames of a JIT compiler on the interrupted stack (a compiled kernel runs without any)."""
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith(_COMPILERS):
            return True
        frame = frame.f_back
    return False


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
        None if declared.propagates_nonfinite(case.dtype) or case.fill not in ("nan", "inf")
        else f"backend {declared.name!r} does not propagate NaN/Inf element-wise in {case.dtype} "
             f"({declared.model} error model)"
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
    exact = case.fill == "exact" and declared.exact
    expected, bounds = expected_and_bounds(op.name, case, arrays, reference, declared.model, exact)
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


def expected_and_bounds(op: str, case, arrays, reference, model, exact: bool = False) -> tuple[list, list]:
    """The float64 reference outputs of ``case`` and the error bound of each under ``model``.

    ``case`` needs ``spec``, ``batched`` and ``dtype`` (a verifier case, or one user call: see
    :mod:`harness.verify.call_case`). ``exact``: the reference rounded once to the dtype is the
    only right answer (bound 0). The magnitudes ``A`` behind the bound are the op on the
    record's ``magnitude_inputs`` (absolute values), computed by the reference in float64.
    """
    info, model = op_info(op), error_model(model)
    spec = case.spec
    with np.errstate(all="ignore"):
        spec64 = as_dtype(spec, "float64")
        arrays64 = [None if a is None else np.asarray(a, np.float64) for a in arrays]
        expected = list(run_case(reference, op, spec64, case.batched, arrays64))
        if exact:
            return [e.astype(spec.dtype).astype(np.float64) for e in expected], [0.0] * len(expected)
        A = run_case(reference, op, spec64, case.batched, info.magnitude_inputs(arrays64))
        ctx = BoundContext(model, lambda x, w, b, s: run_conv2d(reference, x, w, b, s))
        bounds = info.bounds(ctx, case, arrays, A)
        # a half-precision output is rounded once more, from float32: charged to the output itself
        return expected, [half_output_bound(spec.dtype, b, e) for b, e in zip(bounds, expected)]


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
    """A one-line shell command that re-runs ``case`` and prints the verdict.

    A backend registered by a ``--plugin`` file is not known to a fresh interpreter: the
    command loads that file first.
    """
    case_type = type(case)
    source = plugin_file(backend_name)
    load = f"from harness.backend.plugins import load_plugin; load_plugin({source!r}); " if source else ""
    return (
        f'python -c "import harness; {load}from {case_type.__module__} import {case_type.__name__}; '
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
    scale: bool | None = None,
    budget_s: float | None = None,
    dtypes=None,
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
    scale : bool, optional
        Add the scale tier (:mod:`harness.verify.scale`: production sizes, source ``scale``). The
        default (None) adds it to the default budget and larger ones (``cases`` None or at
        least :data:`DEFAULT_CASES`, or any ``budget_s``), not to quick small checks.
    budget_s : float, optional
        A time budget instead of a case count: the table, then the random cases (``cases``,
        default :data:`DEFAULT_CASES`), then the scale tier smallest first, then further
        random cases, until the budget is spent. Planned cases not reached are *skipped*
        ("not reached within the budget"); the extra random cases have no rows.
    seed : int
        Seeds the random cases; the same seed gives the same cases and data.
    dtypes : iterable of str, optional
        Only cases in these dtypes (table, random and scale tier); the random cases use those
        the backend declares. Default: every dtype the backend declares (the table's rows in
        other dtypes show as ``unsupported``).
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
    declared, cases, scale = run_settings(backend, op, cases, budget_s, scale)
    wanted = wanted_dtypes(declared, dtypes)
    todo = planned_cases(declared, op, cases, seed, table=table, scale=scale, dtypes=wanted)
    deadline = None if budget_s is None else time.perf_counter() + budget_s
    planner = scale_tier.TimePlanner(declared.name)
    results = []
    n_failed = 0
    i = 0
    while i < len(todo):
        source, case = todo[i]
        if deadline is not None and time.perf_counter() > deadline and source == "extra":
            break  # extra random cases past the budget were never planned: no rows
        if deadline is not None and time.perf_counter() > deadline:
            result = not_reached(case, budget_s)
        else:
            result = check_planned(declared, source, case, planner=planner, seed=seed, time_limit_s=time_limit_s)
        results.append((source, result))
        n_failed += result.status == "failed"
        if on_result is not None:
            on_result(_row(declared.name, op, source, result))
        if progress:
            _progress(i + 1, len(todo), results)
        if max_failures is not None and n_failed >= max_failures:
            break
        i += 1
        if i == len(todo) and deadline is not None and time.perf_counter() < deadline:
            todo += _more_random(declared, op, cases + sum(s == "extra" for s, _ in todo), seed, wanted)
    if progress:
        sys.stderr.write("\n")
    return finish_report(declared, op, results, shrink_failures=shrink_failures)


def run_settings(backend, op: str, cases, budget_s, scale):
    """``(declared backend, random case count, scale tier on?)`` of a :func:`verify` call, checked.

    Raises Unsupported for an unavailable backend or one without ``op``, ValueError for a bad
    count or budget. Shared by the serial verifier and the sharded one (:mod:`harness.distributed`).
    """
    op_info(op)  # ValueError naming the known ops
    declared = get_backend(backend)
    if not declared.available:
        raise Unsupported(f"backend {declared.name!r} is unavailable: {declared.reason}")
    if budget_s is not None and (not isinstance(budget_s, (int, float)) or not budget_s > 0):
        raise ValueError(f"budget_s must be a positive number of seconds, got {budget_s!r}")
    if scale is None:
        scale = cases is None or budget_s is not None or (isinstance(cases, int) and cases >= DEFAULT_CASES)
    if cases is None:
        cases = DEFAULT_CASES
    if not isinstance(cases, int) or cases < 0:
        raise ValueError(f"cases must be a non-negative int, got {cases!r}")
    if op not in declared.ops:
        raise Unsupported(f"backend {declared.name!r} does not implement {op}")
    return declared, cases, scale


def planned_cases(declared, op: str, cases: int, seed: int, *, table: bool = True, scale: bool = False,
                  dtypes=None) -> list:
    """The ``(source, case)`` pairs a run checks, in order: the table, the random cases, the scale tier.

    Random case ``i`` is a function of ``(seed, i)`` alone (each index draws from its own generator,
    ``default_rng([seed, i])``: :func:`harness.ops.cases.tools.draw_cases`), so any slice of this
    list is what a serial run checks at those positions, whichever process checks it.
    """
    info = op_info(op)
    todo = [("table", c) for c in (info.table_cases() if table else []) if dtypes is None or c.dtype in dtypes]
    todo += [("random", c) for c in random_cases_within_limits(declared, op, cases, seed, declared.nonfinite,
                                                               dtypes=dtypes)]
    todo += [("scale", c) for c in (scale_tier.cases_for(declared, op, seed) if scale else [])
             if dtypes is None or c.dtype in dtypes]
    return todo


def check_planned(declared, source: str, case, *, planner, seed: int,
                  time_limit_s: float | None = CASE_TIME_LIMIT_S) -> CaseResult:
    """Judge one planned case: a scale-tier case through ``planner`` (a :class:`scale.TimePlanner`,
    which skips cases estimated too slow from the tier cases before it), any other in full."""
    if source == "scale":
        return _check_tier_case(declared, case, planner, seed)
    return check_case(declared, case, time_limit_s=time_limit_s)


def not_reached(case, budget_s: float) -> CaseResult:
    """The verdict on a planned case the time budget did not reach."""
    return CaseResult(case, "skipped", np.nan, np.nan, f"not reached within the budget of {budget_s:g} s", 0.0, False)


def more_random(declared, op: str, done: int, seed: int, dtypes=None) -> list:
    """The next :data:`EXTRA_CHUNK` ``("extra", case)`` pairs of the seeded random sequence after the first ``done``."""
    return _more_random(declared, op, done, seed, dtypes)


def result_row(name: str, op: str, source: str, result: CaseResult) -> dict:
    """One case's row of the report (the dict :func:`verify` passes to ``on_result``)."""
    return _row(name, op, source, result)


def finish_report(declared, op: str, results, *, shrink_failures: bool = True) -> pd.DataFrame:
    """The report of ``results`` (``(source, CaseResult)`` pairs in plan order): one row per case,
    the smallest failure shrunk to a minimal reproducer (``minimal=True``) when asked."""
    import pandas as pd  # here, not at import: ``import harness`` stays light (the pytest plug-in loads it)

    report = pd.DataFrame([_row(declared.name, op, source, result) for source, result in results])
    report["minimal"] = False
    failed = [i for i, (_, result) in enumerate(results) if result.status == "failed"]
    if failed and shrink_failures:
        # shrink the smallest failure only: one minimal reproducer says more than many
        smallest = min(failed, key=lambda i: _size(results[i][1].case))
        minimal = shrink(declared, results[smallest][1].case)
        report.loc[smallest, ["reproducer", "minimal"]] = [reproducer(declared.name, minimal), True]
    return report


def _more_random(declared, op: str, done: int, seed: int, dtypes=None) -> list:
    """The next random cases of the seeded sequence after the first ``done`` (for a time budget)."""
    more = random_cases_within_limits(declared, op, done + EXTRA_CHUNK, seed, declared.nonfinite, dtypes=dtypes)[done:]
    return [("extra", case) for case in more]


def wanted_dtypes(declared, dtypes):
    """``dtypes`` as a tuple of names (None: no restriction); Unsupported when the backend declares none of them."""
    if dtypes is None:
        return None
    from harness.ops.args import check_dtype

    wanted = tuple(dict.fromkeys(check_dtype(d) for d in ([dtypes] if isinstance(dtypes, str) else dtypes)))
    if not set(wanted) & set(declared.dtypes):
        raise Unsupported(f"backend {declared.name!r} does not support dtype(s) {', '.join(wanted)} "
                          f"(it declares {', '.join(sorted(declared.dtypes))})")
    return wanted


def _check_tier_case(declared, case, planner, seed: int) -> CaseResult:
    """A scale-tier case: skipped for time when estimated too slow, else checked in full or by sampling."""
    why = planner.skip_reason(case)
    if why:
        return CaseResult(case, "skipped", np.nan, np.nan, why, 0.0, False)
    full = get_backend(reference_backend(declared.name)).role == "baseline"  # not the slow reference loops
    if op_of(case) == "conv2d" and scale_tier.sample_instead(case, full):
        # the naive loops (torch's reference) take minutes at this size; torch's own float64
        # grouped convolution runs group by group: a sample of float64 dot products costs far less
        check = lambda: check_case_sampled(declared, case, seed=seed,  # noqa: E731
                                           time_limit_s=scale_tier.CASE_TIME_LIMIT_S)
    elif full:
        check = lambda: check_case(declared, case, time_limit_s=scale_tier.CASE_TIME_LIMIT_S)  # noqa: E731
    else:
        return CaseResult(case, "skipped", np.nan, np.nan,
                          f"skipped for time: the reference for {declared.name} ({reference_backend(declared.name)}) "
                          "is too slow at production sizes; only conv2d is checked there, by sampling", 0.0, False)
    result = check()
    if result.status == "skipped":  # ran past the per-case limit
        planner.ran_out_of_time(case)
    if result.status in ("passed", "mistrusted"):
        # the first call may include warming up (imports, JIT compilation, thread pools): the rate
        # that estimates the larger cases comes from a second, warm call of the smallest one
        warm = planner.rate is None and getattr(case.spec, "groups", 1) == 1
        planner.observe(case, check().seconds if warm else result.seconds)
    return result


def check_case_sampled(backend, case, *, seed: int = 0,
                       time_limit_s: float | None = CASE_TIME_LIMIT_S) -> CaseResult:
    """Judge a conv2d case on a stratified sample of its outputs (see :mod:`harness.verify.sampled_check`).

    For sizes where the full reference is too slow. Shape, dtype and unchanged inputs are
    checked in full; values at ``max(N, O, OH, OW) + 256`` outputs, each a float64 dot product,
    bit for bit on exact fills.
    """
    declared = get_backend(backend)
    op = op_info(op_of(case))
    spec = case.spec
    why = declared.unsupported_reason(op.name, spec)
    if why:
        return CaseResult(case, "unsupported", np.nan, np.nan, why, 0.0, False)
    exact = case.fill == "exact" and declared.exact
    arrays = case.arrays()
    saved = [None if a is None else a.copy() for a in arrays]
    start = time.perf_counter()
    try:
        with np.errstate(all="ignore"), time_limit(time_limit_s):
            (y,) = run_case(declared, op.name, spec, case.batched, arrays)
    except CaseTimeout as exc:
        return CaseResult(case, "skipped", np.nan, np.nan, str(exc), time.perf_counter() - start, False)
    except Unsupported as exc:
        return CaseResult(case, "unsupported", np.nan, np.nan, str(exc), time.perf_counter() - start, False)
    except Exception as exc:
        return CaseResult(case, "failed", np.inf, np.inf, f"raised {type(exc).__name__}: {exc}",
                          time.perf_counter() - start, False)
    seconds = time.perf_counter() - start
    y4 = y if case.batched else y[np.newaxis]
    x, w, b = arrays
    x4 = x if case.batched else x[np.newaxis]
    index = sample_outputs(y4.shape, np.random.default_rng([seed, case.seed, 18]))
    expected, A = conv2d_at(x4, w, b, spec, index)
    if exact:
        expected, bound = expected.astype(spec.dtype).astype(np.float64), 0.0
    else:
        bound = sampled_bound(declared.model, spec, A, index, plane_magnitude_bound(x4, w, b, spec))
        bound = half_output_bound(spec.dtype, bound, expected)
    verdict = compare(np.asarray(y4[index], dtype=np.float64), expected, bound)
    status = "passed" if verdict.passed else "failed"
    message = verdict.message
    if verdict.worst_index is not None:  # name the output element, not its place in the sample
        k = verdict.worst_index[0]
        message = message.replace(f"worst at ({k},)", f"worst at {tuple(int(ix[k]) for ix in index)}")
    message = f"{'bit-exact' if exact and verdict.passed else message} (sampled: {len(expected)} outputs)"
    changed = [f"input {i}" for i, (now, before) in enumerate(zip(arrays, saved))
               if before is not None and not np.array_equal(now, before, equal_nan=True)]
    if changed:
        status, message = "failed", f"modified in place: {', '.join(changed)}"
    return CaseResult(case, status, verdict.max_units, verdict.max_abs_err, message, seconds, exact)


def random_cases_within_limits(declared, op: str, count: int, seed: int, nonfinite: bool, dtypes=None) -> list:
    """``count`` seeded random cases of ``op`` on ``declared``'s features and dtypes, within its limits.

    A backend with limits beyond its features (``Backend.limits``: Winograd's 3x3 stride-1
    kernels, say) would otherwise spend most of the budget on calls it refuses; the cases come
    from a longer draw of the same seeded sequence instead, in order. Without limits they are
    the first ``count`` cases of that sequence, as drawn.
    """
    info = op_info(op)
    features = declared.features.get(op, ())
    declared_dtypes = declared.dtypes if dtypes is None else frozenset(declared.dtypes) & set(dtypes)
    drawn = count
    while True:
        pool = info.random_cases(features, declared_dtypes, drawn, seed, nonfinite=nonfinite)
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
    reach = scale_tier.sizes(case)  # the sizes this case reaches, for the coverage line
    row.update({"reach_N": reach["N"], "reach_C_per_group": reach["C_per_group"], "reach_groups": reach["groups"],
                "reach_plane": "x".join(map(str, reach["plane"])), "reach_n_acc": reach["n_acc"]})
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
