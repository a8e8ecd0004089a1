"""Verify your kernel from your own test suite: assertions over the verifier, and pytest cases.

>>> from harness.testing import assert_verified
>>> def my_conv2d(x, w, bias, spec): ...                   # doctest: +SKIP
>>> assert_verified(my_conv2d, cases=50)                    # doctest: +SKIP

* :func:`assert_verified` runs :func:`harness.verify` and raises :class:`VerificationFailure`
  (an ``AssertionError``) listing the failing cases, the smallest one shrunk, with a one-line
  reproducer to paste into a shell.
* :func:`cases` gives ``pytest.param`` cases with readable ids, for ``@pytest.mark.parametrize``;
  :func:`assert_case` checks one of them.
* :func:`assert_close` checks one call's output against the float64 reference, within the error
  bound of that call's arithmetic (not a guessed tolerance).

A backend is a registered name, or a plain function (``fn(x, w, bias, spec)`` for conv2d):
it is then registered under a temporary name for the check and removed afterwards. Keyword
options of :func:`harness.register_backend` (``features``, ``dtypes``, ``exact``,
``nonfinite``, ``error_model``, ``limits``) declare what the function supports.

The pytest plug-in (``harness.pytest_plugin``) changes the defaults for a run: number of
cases, seed and exact mode (see :func:`configure`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import inspect
import itertools
import re
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from harness.ops.cases.text import parse_case, unique_ids
from harness.ops.table import op_info, op_of
from harness.backend.plugins import plugin_file
from harness.backend.registry import OP_FEATURES, get_backend, register_backend, unregister_backend
from harness.ops.tolerance import compare
from harness.verify.call_case import call_case
from harness.verify.verifier import (CaseResult, check_case, expected_and_bounds, random_cases_within_limits,
                                     reference_backend, reproducer, shrink, verify)

__all__ = ["VerificationFailure", "assert_case", "assert_close", "assert_verified", "cases", "configure",
           "settings", "temporary_backend"]

DEFAULT_CASES = 300
DEFAULT_PARAMS = 100
LISTED_FAILURES = 5
#: keyword options that go to harness.verify; the others declare a function backend
_VERIFY_OPTIONS = ("table", "max_failures", "time_limit_s")

_settings = {"cases": None, "seed": 0, "exact": False}
_names = itertools.count(1)


def configure(*, cases: int | None = None, seed: int | None = None, exact: bool | None = None) -> None:
    """Set this process's defaults (the pytest plug-in's ``--convbench-*`` options call this).

    Parameters
    ----------
    cases : int, optional
        Random cases for :func:`assert_verified` and :func:`cases` when a call does not say.
    seed : int, optional
        Seed when a call does not say (default 0).
    exact : bool, optional
        Hold function backends to bit-exact results on integer (``exact``) fills, as backends
        that declare ``exact=True`` are (default False: within the error bound).
    """
    if cases is not None:
        if not isinstance(cases, int) or cases < 0:
            raise ValueError(f"cases must be a non-negative int, got {cases!r}")
        _settings["cases"] = cases
    if seed is not None:
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        _settings["seed"] = seed
    if exact is not None:
        _settings["exact"] = bool(exact)


def settings() -> dict:
    """This process's defaults: ``{"cases": int or None, "seed": int, "exact": bool}``."""
    return dict(_settings)


class VerificationFailure(AssertionError):
    """A backend failed verification; ``str()`` lists the cases, the worst element and a reproducer.

    Attributes: ``backend`` (the name it ran under), ``failed`` (the failing
    :class:`~harness.verify.verifier.CaseResult` objects), ``minimal`` (the shrunk smallest failure),
    ``reproducer`` (a shell command) and ``seed``.
    """

    def __init__(self, message, *, backend, failed, minimal, reproducer, seed):
        super().__init__(message)
        self.backend, self.failed, self.minimal = backend, failed, minimal
        self.reproducer, self.seed = reproducer, seed


# -- backends: names, functions, "FILE::NAME" ----------------------------------------------------------
@contextmanager
def temporary_backend(backend, op: str = "conv2d", **declaration):
    """Yield the name to verify ``backend`` under; a function is registered only inside the block.

    Parameters
    ----------
    backend : str, Backend or callable
        A registered name, a :class:`harness.Backend`, a function implementing ``op``, or
        ``"path/to/file.py::function"`` (the file is imported and the function taken from it).
    op : str
        The op a function implements.
    **declaration
        For a function: :func:`harness.register_backend` options (``features``, ``exact``, ...).
        For a registered backend only ``exact=True`` is accepted (hold it to bit-exact results).
    """
    exact = declaration.pop("exact", None)
    if isinstance(backend, str) and "::" in backend:
        backend = load_function(backend)
    if not callable(backend) or isinstance(backend, type):
        if declaration:
            raise TypeError(f"{', '.join(sorted(declaration))} declare a function backend; "
                            f"backend {backend!r} is already registered")
        declared = get_backend(backend)
        yield dataclasses.replace(declared, exact=True) if exact and not declared.exact else declared
        return
    op_info(op)  # ValueError with the known ops
    name = _free_name(backend)
    exact = _settings["exact"] if exact is None else exact
    register_backend(name, exact=exact, **declaration, **{op: backend})
    repeated = {"exact": True} if exact else {}  # what a reproducer must declare again to fail the same way
    if declaration.get("error_model", "direct") != "direct":
        repeated["error_model"] = declaration["error_model"]
    _ORIGINS[name] = (backend, repeated)
    try:
        yield name
    finally:
        unregister_backend(name)
        _ORIGINS.pop(name, None)


#: temporary backend name -> (the function, declaration options a reproducer repeats)
_ORIGINS: dict[str, tuple] = {}


def _free_name(fn) -> str:
    base = re.sub(r"\W", "_", getattr(fn, "__name__", "kernel")).strip("_") or "kernel"
    base = base if base[0].isalpha() else f"k_{base}"
    name = base
    while True:
        try:
            get_backend(name)
        except ValueError:
            return name
        name = f"{base}_{next(_names)}"


def load_function(ref: str):
    """The function that ``"path/to/file.py::name"`` names (the file imported as a module once).

    The file's folder goes first on ``sys.path`` while it loads, as pytest does for a test file,
    so its own imports of neighbouring modules work.
    """
    path, _, attr = ref.partition("::")
    file = Path(path).resolve()
    if not file.is_file():
        raise ValueError(f"no such file: {path} (in {ref!r})")
    module_name = "convbench_function_" + hashlib.sha1(str(file).encode()).hexdigest()[:12]
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, file)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(file.parent))
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
        finally:
            sys.path.remove(str(file.parent))
    target = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ValueError(f"{file} has no {attr!r} (in {ref!r})")
    return target


def _function_ref(fn) -> str | None:
    """``"FILE::NAME"`` that loads ``fn`` again in a fresh interpreter, or None (lambda, nested)."""
    name = getattr(fn, "__qualname__", "")
    try:
        file = inspect.getsourcefile(fn)
    except TypeError:
        return None
    if not file or not name or "<" in name or not Path(file).is_file():
        return None
    return f"{Path(file).resolve()}::{name}"


def case_reproducer(name, case) -> str:
    """A shell command that re-runs ``case`` on backend ``name`` (a temporary one: via its file)."""
    if not isinstance(name, str):  # a registered backend held to exact results for this check
        source = plugin_file(name.name)
        load = f"from harness.backend.plugins import load_plugin; load_plugin({source!r}); " if source else ""
        return _assert_case_command(name.name, case, {"exact": True}, load)
    if name not in _ORIGINS:
        return reproducer(name, case)
    fn, options = _ORIGINS[name]
    ref = _function_ref(fn)
    if ref is None:
        return (f"(define {getattr(fn, '__name__', 'the function')} at module level for a pasteable "
                f"command) harness.testing.assert_case(your_function, {case!r})")
    return _assert_case_command(ref, case, options)


def _assert_case_command(ref: str, case, options: dict, load: str = "") -> str:
    extra = "".join(f", {k}={v!r}" for k, v in options.items())
    cls = type(case)
    return (f'python -c "{load}from harness.testing import assert_case; from {cls.__module__} import {cls.__name__}; '
            f"print(assert_case({ref!r}, {case!r}{extra}))\"")


# -- whole-backend verification ------------------------------------------------------------------------
def assert_verified(backend, op: str = "conv2d", cases: int | None = None, seed: int | None = None, **options):
    """Verify ``backend`` on the hand-picked table and ``cases`` random cases; raise on any failure.

    Parameters
    ----------
    backend : str or callable
        A registered backend name, or a function implementing ``op`` (registered under a
        temporary name while it runs, removed afterwards even on error).
    op : str
        Any op of :data:`harness.ops.table.OPS`.
    cases : int, optional
        Random cases (default 300, or the plug-in's ``--convbench-cases``).
    seed : int, optional
        Seed of the random cases (default 0, or ``--convbench-seed``).
    **options
        ``table``, ``max_failures``, ``time_limit_s`` go to :func:`harness.verify`; for a
        function, :func:`harness.register_backend` options declare it (``features``,
        ``dtypes``, ``exact``, ``nonfinite``, ``error_model``, ``limits``).

    Returns
    -------
    pandas.DataFrame
        The verifier's report (one row per case), when nothing failed.

    Raises
    ------
    VerificationFailure
        An ``AssertionError`` naming the failed cases, the smallest one shrunk with its worst
        element, and a one-line reproducer; also when no case could be checked at all.
    """
    __tracebackhide__ = True  # pytest shows the test's line, not these frames
    cases = (_settings["cases"] if _settings["cases"] is not None else DEFAULT_CASES) if cases is None else cases
    seed = _settings["seed"] if seed is None else seed
    run_options = {k: options.pop(k) for k in _VERIFY_OPTIONS if k in options}
    with temporary_backend(backend, op, **options) as name:
        report = verify(name, op=op, cases=cases, seed=seed, shrink_failures=False, **run_options)
        label = getattr(name, "name", name)
        if report.empty or not report.status.isin(["passed", "mistrusted", "failed"]).any():
            why = "no cases were drawn" if report.empty else \
                f"{report.status.value_counts().to_dict()}; first reason: {report.message.iloc[0]}"
            raise VerificationFailure(f"convbench: no {op} case could be checked on {label!r} (seed {seed}): {why}",
                                      backend=label, failed=[], minimal=None, reproducer="", seed=seed)
        failed = report[report.status == "failed"]
        if failed.empty:
            return report
        results = [check_case(name, parse_case(text)) for text in failed.case]
        raise _failure(name, label, op, seed, len(report), results)


def _failure(name, label, op, seed, total, results) -> VerificationFailure:
    results = [r for r in results if r.status == "failed"] or results
    smallest = min(results, key=lambda r: _elements(r.case))
    minimal = shrink(name, smallest.case)
    minimal_result = check_case(name, minimal)
    command = case_reproducer(name, minimal)
    seeded = "" if seed is None else f" (seed {seed})"
    lines = [f"convbench: {label!r} failed {len(results)} of {total} {op} cases{seeded}",
             f"  smallest failing case, shrunk: {minimal!r}",
             f"    {minimal_result.message}",
             "  reproduce:",
             f"    {command}"]
    if len(results) > 1 or results[0].case != minimal:
        lines.append(f"  failed cases (first {min(LISTED_FAILURES, len(results))}):")
        for result in results[:LISTED_FAILURES]:
            lines += [f"    {result.case!r}", f"      {result.message}"]
    return VerificationFailure("\n".join(lines), backend=label, failed=results, minimal=minimal_result,
                               reproducer=command, seed=seed)


def _elements(case) -> int:
    return sum(int(np.size(a)) for a in case.arrays() if a is not None)


# -- one case at a time --------------------------------------------------------------------------------
def cases(op: str = "conv2d", backend=None, n: int | None = None, seed: int | None = None, table: bool = True,
          *, features=None):
    """Cases of ``op`` as ``pytest.param`` objects with readable, stable ids.

    >>> @pytest.mark.parametrize("case", cases(n=20))                    # doctest: +SKIP
    ... def test_my_kernel(case):
    ...     assert_case(my_conv2d, case)

    Parameters
    ----------
    op : str
        Any op of :data:`harness.ops.table.OPS`.
    backend : str, optional
        A registered backend: random cases use only its declared features, dtypes and limits,
        and table cases it does not support are marked *skip* with the reason. None (or a
        function): every feature, or ``features``.
    n : int, optional
        Random cases (default 100, or the plug-in's ``--convbench-cases``).
    seed : int, optional
        Their seed (default 0, or ``--convbench-seed``).
    table : bool
        Put the hand-picked table first.
    features : iterable of str, optional
        Without ``backend``: draw random cases using only these features (default all), and
        mark table cases that need others *skip*.

    Returns
    -------
    list of pytest.param
        Ids like ``conv2d-3x3-s2-same-groups4-float32-n1c8h9w9-o8``: op, kernel, arguments that
        differ from their defaults, dtype, fill, layout and shape; repeats get ``-2``, ``-3``.
        The same arguments give the same ids, so ``-k`` and pytest-xdist see one collection.
    """
    info = op_info(op)
    n = (_settings["cases"] if _settings["cases"] is not None else DEFAULT_PARAMS) if n is None else n
    seed = _settings["seed"] if seed is None else seed
    drawn = list(info.table_cases()) if table else []
    if backend is None or callable(backend):  # a function declares nothing: all features, or those given
        chosen = OP_FEATURES[op] if features is None else frozenset(features)
        if not chosen <= OP_FEATURES[op]:
            raise ValueError(f"unknown {op} feature(s) {sorted(chosen - OP_FEATURES[op])}; "
                             f"known: {', '.join(sorted(OP_FEATURES[op]))}")
        drawn += info.random_cases(chosen, ("float32", "float64"), n, seed, nonfinite=True)
        declared = _Claims(op, chosen)
    else:
        declared = get_backend(backend)
        drawn += random_cases_within_limits(declared, op, n, seed, declared.nonfinite)
    params = []
    for case, case_id in zip(drawn, unique_ids(drawn)):
        why = declared and (declared.reason or declared.unsupported_reason(op, case.spec))
        marks = [pytest.mark.skip(reason=why)] if why else []
        params.append(pytest.param(case, id=case_id, marks=marks))
    return params


def assert_case(backend, case, *, shrink_failure: bool = True, **declaration) -> CaseResult:
    """Check one case on ``backend``; raise :class:`VerificationFailure` when it fails.

    ``backend`` as for :func:`assert_verified` (also ``"FILE::NAME"``, which the printed
    reproducers use). A case the backend does not support, or that ran past the per-case time
    limit, is skipped (``pytest.skip``) with the reason. A failure is shrunk to the smallest
    still-failing case (``shrink_failure=False``: not) and reported with its worst element.

    Returns
    -------
    CaseResult
        The verdict (status ``passed`` or ``mistrusted``).
    """
    __tracebackhide__ = True
    op = op_of(case)
    with temporary_backend(backend, op, **declaration) as name:
        result = check_case(name, case)
        if result.status in ("unsupported", "skipped"):
            pytest.skip(f"{result.status}: {result.message}")
        if result.status != "failed":
            return result
        label = getattr(name, "name", name)
        if not shrink_failure:
            command = case_reproducer(name, case)
            raise VerificationFailure(
                f"convbench: {label!r} failed {case!r}\n    {result.message}\n  reproduce:\n    {command}",
                backend=label, failed=[result], minimal=result, reproducer=command, seed=None)
        raise _failure(name, label, op, None, 1, [result])


# -- one call ------------------------------------------------------------------------------------------
def assert_close(actual, op: str = "conv2d", *, error_model: str = "direct", exact: bool = False, **call):
    """Check one call's output against the float64 reference, within that call's error bound.

    Like ``torch.testing.assert_close``, but the tolerance is the harness's error bound for
    this call (:mod:`harness.ops.tolerance`; the op's bound for the other ops): it grows with the
    reduction length and the magnitudes summed, so a long fp32 reduction passes and a small
    wrong one does not.

    Parameters
    ----------
    actual : numpy.ndarray or tuple of them
        What your kernel returned (a tuple for ops with several outputs, e.g. conv2d_backward).
    op : str
        The op called.
    error_model : str
        The bound's model: ``direct`` (any summation order), ``fft`` or ``winograd``.
    exact : bool
        Require the reference rounded to the dtype, bit for bit (integer data whose partial
        sums are exactly representable).
    **call
        The call's arguments as :mod:`harness`'s function for ``op`` takes them, by name:
        ``x=, w=, bias=, stride=, padding=, ...`` for conv2d.

    Raises
    ------
    AssertionError
        Shape, then dtype, then values: which elements, the worst one, and by how much.
    """
    __tracebackhide__ = True
    case, arrays = call_case(op, call)
    actuals = actual if isinstance(actual, tuple) else (actual,)
    reference = get_backend(reference_backend(""))
    expected, bounds = expected_and_bounds(op, case, arrays, reference, error_model, exact)
    if len(actuals) != len(expected):
        raise AssertionError(f"{op}: got {len(actuals)} outputs, expected {len(expected)}")
    for i, (a, e, bound) in enumerate(zip(actuals, expected, bounds)):
        where = f"{op} output {i}" if len(expected) > 1 else op
        a = np.asarray(a)
        if a.shape != e.shape:
            raise AssertionError(f"{where}: shape {a.shape} != expected {e.shape}")
        want = case.spec.dtype if e.dtype.kind == "f" else e.dtype.name
        if a.dtype.name != want:
            raise AssertionError(f"{where}: dtype {a.dtype} != expected {want}")
        verdict = compare(a, e, bound)
        if not verdict.passed:
            raise AssertionError(f"{where}: {verdict.message}")


@dataclasses.dataclass(frozen=True)
class _Claims:
    """Features claimed without a registered backend (``cases(features=...)``)."""

    op: str
    features: frozenset
    reason = None

    def unsupported_reason(self, op, spec) -> str | None:
        missing = sorted(spec.features - self.features)
        return f"needs {op} feature(s) not chosen: {', '.join(missing)}" if missing else None


