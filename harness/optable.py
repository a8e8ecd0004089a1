"""The op table: for each op, how the verifier builds, runs, references and bounds a case.

One entry per op. The verifier, the tests and the reports iterate over :data:`OPS`; an op's
features (what a backend may declare) live in ``harness.registry.OP_FEATURES``.

An op's cases are objects with ``spec``, ``batched``, ``fill``, ``arrays()``, ``simpler()``
and a ``repr`` that rebuilds them (see ``harness/cases.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import cases as conv2d_cases
from .api import run_conv2d
from .tolerance import error_bound, magnitude


@dataclass(frozen=True)
class OpInfo:
    """How to verify one op.

    call(backend, case, arrays) -> tuple of outputs, through the public path.
    reference(backend, case, arrays64) -> tuple of float64 outputs from a reference backend.
    bounds(backend, reference, case, arrays) -> tuple of per-element error bounds, one per output.
    table_cases() -> hand-picked cases.
    random_cases(features, dtypes, count, seed, nonfinite) -> seeded random cases.
    case_type: the case class (its name appears in reproducers).
    structural_zeros: the op's correct output is mostly zero by construction (a transposed
        conv's gaps, the non-maxima of max-pool backward), where the bound is 0 and the check is
        exact; the verifier does not mark such cases mistrusted.
    """

    name: str
    call: Callable
    reference: Callable
    bounds: Callable
    table_cases: Callable
    random_cases: Callable
    case_type: type
    structural_zeros: bool = False


def _as64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def _conv2d_call(backend, case, arrays):
    x, w, b = arrays
    return (run_conv2d(backend, x, w, b, case.spec, case.batched),)


def _conv2d_reference(backend, case, arrays64):
    x, w, b = arrays64
    return (run_conv2d(backend, x, w, b, case.spec.with_(dtype="float64"), case.batched),)


def _conv2d_bounds(backend, reference, case, arrays):
    x, w, b = arrays
    spec64 = case.spec.with_(dtype="float64")
    x4 = x if case.batched else x[np.newaxis]  # error models see NCHW
    A = magnitude(lambda *a: run_conv2d(reference, *a, spec64), x4, w, b)
    bound = error_bound(backend.error_model, case.spec, A)
    return (bound if case.batched else bound[0],)


OPS: dict[str, OpInfo] = {
    "conv2d": OpInfo(
        name="conv2d",
        call=_conv2d_call,
        reference=_conv2d_reference,
        bounds=_conv2d_bounds,
        table_cases=conv2d_cases.table_cases,
        random_cases=conv2d_cases.random_cases,
        case_type=conv2d_cases.Conv2dCase,
    ),
}


def _family_ops() -> dict[str, OpInfo]:
    """The convolution family beyond conv2d (checks in ``harness/family_checks.py``)."""
    from . import cases_backward, cases_pool, cases_separable, cases_transpose
    from . import family_checks as fc

    def entry(name, call, bounds, table, random, case_type):
        sparse = name in ("conv_transpose2d", "conv2d_backward", "max_pool2d_backward", "avg_pool2d_backward")
        return OpInfo(name=name, call=call, reference=call, bounds=bounds, table_cases=table,
                      random_cases=random, case_type=case_type, structural_zeros=sparse)

    def pool_random(cls):
        return lambda *args, **kw: cases_pool.pool_random_cases(cls, *args, **kw)

    def adaptive_random(cls):
        return lambda *args, **kw: cases_pool.adaptive_random_cases(cls, *args, **kw)

    cp = cases_pool
    return {op.name: op for op in [
        entry("conv_transpose2d", fc.transpose_call, fc.transpose_bounds, cases_transpose.table_cases,
              cases_transpose.random_cases, cases_transpose.ConvTranspose2dCase),
        entry("conv2d_backward", fc.backward_call, fc.backward_bounds, cases_backward.table_cases,
              cases_backward.random_cases, cases_backward.Conv2dBackwardCase),
        entry("max_pool2d", fc.max_pool_call, fc.exact_bounds(fc.max_pool_call), cp.max_pool_table,
              pool_random(cp.MaxPool2dCase), cp.MaxPool2dCase),
        entry("avg_pool2d", fc.avg_pool_call, fc.avg_pool_bounds, cp.avg_pool_table,
              pool_random(cp.AvgPool2dCase), cp.AvgPool2dCase),
        entry("adaptive_max_pool2d", fc.adaptive_max_call, fc.exact_bounds(fc.adaptive_max_call),
              lambda: cp.adaptive_table("max"), adaptive_random(cp.AdaptiveMaxPool2dCase), cp.AdaptiveMaxPool2dCase),
        entry("adaptive_avg_pool2d", fc.adaptive_avg_call, fc.adaptive_avg_bounds, lambda: cp.adaptive_table("avg"),
              adaptive_random(cp.AdaptiveAvgPool2dCase), cp.AdaptiveAvgPool2dCase),
        entry("max_pool2d_backward", fc.max_backward_call, fc.pool_backward_bounds(fc.max_backward_call),
              lambda: cp.max_pool_table(backward=True), pool_random(cp.MaxPool2dBackwardCase),
              cp.MaxPool2dBackwardCase),
        entry("avg_pool2d_backward", fc.avg_backward_call, fc.pool_backward_bounds(fc.avg_backward_call),
              lambda: cp.avg_pool_table(backward=True), pool_random(cp.AvgPool2dBackwardCase),
              cp.AvgPool2dBackwardCase),
        entry("depthwise_separable_conv2d", fc.depthwise_separable_call, fc.depthwise_separable_bounds,
              cases_separable.depthwise_table, cases_separable.depthwise_random_cases,
              cases_separable.DepthwiseSeparableCase),
        entry("spatially_separable_conv2d", fc.spatially_separable_call, fc.spatially_separable_bounds,
              cases_separable.spatial_table, cases_separable.spatial_random_cases,
              cases_separable.SpatiallySeparableCase),
    ]}


OPS.update(_family_ops())


def op_info(op: str) -> OpInfo:
    try:
        return OPS[op]
    except KeyError:
        raise ValueError(f"unknown op {op!r}; known ops: {', '.join(sorted(OPS))}") from None


def op_of(case) -> str:
    """The op a case belongs to."""
    for name, info in OPS.items():
        if isinstance(case, info.case_type):
            return name
    raise TypeError(f"{type(case).__name__} is not a case of any known op")
