"""Half precision for backends that compute in float32: float16 and bfloat16 calls are up-cast
exactly to float32, run by the backend's float32 code, and each float output is rounded once
to the half dtype — what torch's CPU kernels do (sums carried in float32), so the backend is
held to the mixed-precision bound (``harness.ops.tolerance``, Half precision). Integer outputs
(max-pool indices) pass through unchanged.
"""

from __future__ import annotations

import functools

import numpy as np

from harness.ops.args import HALF_DTYPES
from harness.ops.table import as_dtype


def in_float32(fn):
    """``fn(*arrays, spec)`` that also takes half-precision calls (computed in float32, rounded once)."""

    @functools.wraps(fn)
    def run(*args):
        *arrays, spec = args
        if spec.dtype not in HALF_DTYPES:
            return fn(*args)
        out = fn(*[None if a is None else a.astype(np.float32) for a in arrays], as_dtype(spec, "float32"))
        return tuple(_rounded(y, spec.dtype) for y in out) if isinstance(out, tuple) else _rounded(out, spec.dtype)

    return run


def _rounded(y, dtype: str):
    if y is None or y.dtype != np.float32:
        return y
    return y.astype(dtype)
