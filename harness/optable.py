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
    """

    name: str
    call: Callable
    reference: Callable
    bounds: Callable
    table_cases: Callable
    random_cases: Callable
    case_type: type


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
