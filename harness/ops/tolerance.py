"""Error bounds that follow from the arithmetic, and the element-wise comparison.

A backend's output is compared with a float64 reference element by element:

    |actual - expected| <= bound

where ``bound`` comes from the backend's *error model* and the data itself. Errors are
reported in units of the bound (``max_units <= 1`` passes), so one number says how close
a result came to failing, whatever the dtype or size.

One formula, :func:`gamma`, bounds a sum of ``n`` rounded terms computed in any order (loops,
GEMM, blocked or pairwise) by the magnitude of what was summed into each output,

    A[n, o, i, j] = sum |x| * |w|  (+ |b|)      (the same op on absolute values)

    bound = (u_dtype + u_float64) * (K_SIGMA * sqrt(n_terms) + 2) * A  +  (n_terms + 2) * eta_dtype

with ``u`` the unit roundoff of the dtype (2**-24 for float32, 2**-53 for float64), ``n_terms``
the products summed (C/groups * KH * KW, plus one for a bias) and ``eta`` the dtype's smallest
subnormal. Rounding errors of a length-n sum grow like sqrt(n) times the partial sums (each
bounded by A) when they do not conspire; the worst case, n * u * A, is far looser and would
hide real bugs (a float16 accumulator, a dropped channel block) in large reductions.
``K_SIGMA = 3`` keeps the bound clear of what correct GEMM and direct backends show (the
verifier reports it as ``max_units``) while a planted bug lands orders of magnitude above it.
The ``+ 2`` covers rounding the products and the final result. The ``eta`` term is the
underflow error: a product or sum that lands among the subnormals is rounded to a multiple
of ``eta`` (relative error unbounded there), at most ``eta / 2`` per rounding, so data scaled
into the subnormal range is not a false alarm.

Error models
------------
A backend names its model (``Backend.error_model``): ``direct`` (the formula above), ``fft``
(a normwise model for transforms whose rounding is global, :func:`fft_bound`), or one it
brings itself with :func:`register_error_model` (Winograd's lives in ``impls/winograd.py``).
An :class:`ErrorModel` is ``bound(spec, A) -> array`` for a conv2d; the other ops' bounds
(:func:`op_bounds`) are built from it.

Half precision
--------------
float16 and bfloat16 ops store inputs, weights and outputs in 16 bits and sum in float32 (as
torch's CPU kernels do): the products of two half values are exact in float32 (11 + 11 and
8 + 8 significant bits fit in its 24), the sums round as float32's, and the result is rounded
once to the half dtype. So the bound of a half op is the float32 bound of the same sums (``u``
and ``eta`` of the *accumulation* dtype, :func:`harness.ops.args.accumulation_dtype`), which
every error model and op bound gets from :func:`unit` and :func:`underflow`, plus the one final
rounding, charged to the output itself: :func:`output_rounding`, ``u_half * |y| + eta_half / 2``
with ``u_half`` = 2**-11 (float16) or 2**-8 (bfloat16) and ``y`` the reference output (the
verifier adds it, :func:`half_output_bound`). The reference is computed in float64 from the same
half inputs, so the inputs' own rounding is no error of the backend's; an op that rounds an
intermediate result to half precision (a two-stage lowering) charges that rounding itself.
An accumulator kept in half precision errs by about ``u_half * sqrt(n)`` times its partial sums,
many times ``u_half * |y|``: caught (``harness.verify.mutants.half_precision_accumulation``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from harness.ops.args import HALF_DTYPES, accumulation_dtype

#: Unit roundoff (half the machine epsilon) per dtype.
UNIT_ROUNDOFF = {"float32": 2.0**-24, "float64": 2.0**-53, "float16": 2.0**-11, "bfloat16": 2.0**-8}
#: Smallest subnormal per dtype: the absolute error of one rounding in the underflow range is half of it.
SMALLEST_SUBNORMAL = {name: float(np.finfo(name).smallest_subnormal)
                      for name in ("float32", "float64", "float16", "bfloat16")}
K_SIGMA = 3.0


def unit(dtype: str) -> float:
    """Rounding of the dtype the backend sums in (float32 for half dtypes) plus the float64 reference's."""
    return UNIT_ROUNDOFF[accumulation_dtype(dtype)] + UNIT_ROUNDOFF["float64"]


def underflow(dtype: str, n_terms) -> float:
    """Absolute error from ``n_terms + 2`` roundings that may land among the subnormals."""
    return (np.asarray(n_terms, dtype=np.float64) + 2.0) * SMALLEST_SUBNORMAL[accumulation_dtype(dtype)]


def output_rounding(dtype: str, y) -> np.ndarray | float:
    """The one rounding of a float32 result ``y`` to a half-precision output: ``u_half * |y|``
    plus half a half-precision subnormal (0 for float32/float64, whose outputs are the sums)."""
    if dtype not in HALF_DTYPES:
        return 0.0
    return UNIT_ROUNDOFF[dtype] * np.abs(np.asarray(y, dtype=np.float64)) + 0.5 * SMALLEST_SUBNORMAL[dtype]


def half_output_bound(dtype: str, bound, expected):
    """``bound`` (of the sums) plus the final rounding to a half-precision output ``expected``.

    An exact op (bound 0: maxima, indices) rounds nothing and keeps its bound of 0.
    """
    if dtype not in HALF_DTYPES or np.all(np.asarray(bound) == 0):
        return bound
    with np.errstate(invalid="ignore", over="ignore"):
        return bound + output_rounding(dtype, np.where(np.isfinite(expected), expected, 0.0))


def storage_roundings(dtype: str, n_roundings, A) -> np.ndarray | float:
    """``n`` roundings of intermediate results kept in a half dtype, each at most ``u_half * A``
    (0 for float32/float64). For algorithms that store partial results in the op's dtype by
    construction: a padding mode's backward folds border gradients in it, and torch's pooling
    backward sums window shares in it."""
    if dtype not in HALF_DTYPES:
        return 0.0
    return UNIT_ROUNDOFF[dtype] * float(n_roundings) * np.abs(np.asarray(A, dtype=np.float64))


def gamma(dtype: str, n_terms, A) -> np.ndarray:
    """The one formula: bound of a sum of ``n_terms`` rounded products of magnitude ``A``
    (in the accumulation dtype: float32 for a half dtype; see :func:`half_output_bound`)."""
    return unit(dtype) * (K_SIGMA * np.sqrt(n_terms) + 2.0) * np.abs(A) + underflow(dtype, n_terms)


def worst_case(dtype: str, n_roundings: int, A) -> np.ndarray:
    """``n`` roundings each of at most ``u * A`` (rigorous, for short sums: pooling)."""
    return unit(dtype) * n_roundings * np.abs(A) + underflow(dtype, n_roundings)


def magnitude(reference_conv, x, w, bias) -> np.ndarray:
    """``A``: the convolution of |x| with |w| (+ |b|), in float64, through ``reference_conv``."""
    ab = None if bias is None else np.abs(bias).astype(np.float64)
    return reference_conv(np.abs(x).astype(np.float64), np.abs(w).astype(np.float64), ab)


# -- error models ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ErrorModel:
    """How one algorithm rounds: ``bound(spec, A)`` for a conv2d of ``spec`` with magnitudes ``A``.

    ``elementwise`` is True when each output's error is set by its own ``A`` (direct
    summation); False for transform methods whose rounding is global, which the other ops'
    bounds then charge at the largest magnitude (:func:`op_bounds`).
    """

    name: str
    bound: Callable[..., np.ndarray]
    elementwise: bool = False

    def __str__(self) -> str:
        return self.name


def direct_bound(spec, A: np.ndarray) -> np.ndarray:
    """Any summation order of the direct formula (see module docstring)."""
    return gamma(spec.dtype, spec.n_acc + (1 if spec.bias else 0), A)


#: Rounding steps charged per log2 of the FFT size: a forward and an inverse real 2-D transform,
#: each about one rounding per butterfly stage (log2 of the size), plus the complex products.
#: Correct ``fft`` results measured at <= 0.03 units with it (see ``impls/fft.py``).
FFT_STAGE_FACTOR = 4.0


def plane_scale(A: np.ndarray) -> np.ndarray:
    """The largest *finite* magnitude of each (n, o) plane (NaN/Inf are checked exactly elsewhere)."""
    if not A.size:
        return A
    finite = np.where(np.isfinite(A), A, 0.0)
    return finite.max(axis=(-2, -1), keepdims=True)


def fft_bound(spec, A: np.ndarray) -> np.ndarray:
    """Convolution by FFT: global, set by the largest magnitude in each output plane.

    A transform spreads the rounding of every value over all outputs, so an output's error is
    about ``u * log2(L) * (a norm of all the products in its transform)``, not relative to its
    own ``A``. ``max A`` over the (n, o) plane bounds every such norm; ``L`` is at most the padded
    input area (tiles are smaller). The frequency-domain channel sum has ``C/groups`` terms
    (plus the bias), which add the direct formula's ``K_SIGMA * sqrt(n_terms)``; the kernel
    taps are summed inside the transforms and cost only their ``log2``.
    """
    top, bottom, left, right = spec.padding
    area = max(2, (spec.H + top + bottom) * (spec.W + left + right))
    n_terms = spec.C // spec.groups + (1 if spec.bias else 0)
    stages = K_SIGMA * np.sqrt(n_terms) + 2.0 + FFT_STAGE_FACTOR * np.log2(area)
    return unit(spec.dtype) * stages * plane_scale(A) + underflow(spec.dtype, spec.n_acc)


ERROR_MODELS: dict[str, ErrorModel] = {
    "direct": ErrorModel("direct", direct_bound, elementwise=True),
    "fft": ErrorModel("fft", fft_bound),
}


def register_error_model(model: ErrorModel) -> ErrorModel:
    """Make ``model`` available by name (a backend may also pass the ErrorModel itself)."""
    if not isinstance(model, ErrorModel):
        raise TypeError(f"expected an ErrorModel, got {type(model).__name__}")
    ERROR_MODELS[model.name] = model
    return model


def error_model(model) -> ErrorModel:
    """An :class:`ErrorModel` from a registered name, an ErrorModel, or a ``bound(spec, A)`` callable."""
    if isinstance(model, ErrorModel):
        return model
    if isinstance(model, str):
        try:
            return ERROR_MODELS[model]
        except KeyError:
            raise ValueError(f"unknown error model {model!r}; known: {', '.join(sorted(ERROR_MODELS))}") from None
    if callable(model):
        return ErrorModel(getattr(model, "__name__", "custom"), model)
    raise TypeError(f"error_model must be a name, an ErrorModel or a callable bound(spec, A), got {model!r}")


def error_bound(model, spec, A: np.ndarray) -> np.ndarray:
    """The bound of ``model`` (name, ErrorModel or callable) on a conv2d of ``spec`` with magnitudes ``A``."""
    return error_model(model).bound(spec, A)


def model_bound(model: ErrorModel, specs, A, floor: float = 0.0) -> float:
    """A non-elementwise model's bound on each conv2d of ``specs``, at the largest finite ``A``.

    ``floor`` (the largest single product, max|input| * max|weight|) keeps the scale honest
    where every output is a structural zero: a transform still mixes the non-zero inputs.
    """
    A = np.asarray(A, dtype=np.float64)
    finite = A[np.isfinite(A)]
    top = np.full((1, 1, 1, 1), max(float(finite.max()) if finite.size else 0.0, floor))
    return float(sum(np.max(model.bound(s, top)) for s in specs))


def largest(*arrays) -> float:
    """The product of the arrays' largest finite magnitudes."""
    out = 1.0
    for a in arrays:
        a = np.abs(np.asarray(a, dtype=np.float64))
        a = a[np.isfinite(a)]
        out *= float(a.max()) if a.size else 0.0
    return out


# -- comparison ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing one output with its reference."""

    passed: bool
    max_units: float  # max |actual - expected| / bound over finite elements (0/0 counts as 0)
    max_abs_err: float
    n_bad: int  # elements out of bound, or with NaN/Inf where the reference has none (or v.v.)
    worst_index: tuple | None
    expected_at_worst: float | None
    actual_at_worst: float | None
    message: str


def compare(actual: np.ndarray, expected: np.ndarray, bound) -> Comparison:
    """Shape, then dtype-independent values: NaN/Inf must match exactly, finite within bound."""
    if actual.shape != expected.shape:
        return Comparison(False, np.inf, np.inf, expected.size, None, None, None,
                          f"shape {actual.shape} != expected {expected.shape}")
    if actual.size == 0:
        return Comparison(True, 0.0, 0.0, 0, None, None, None, "empty output")
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), e.shape)
    finite = np.isfinite(e)
    # non-finite reference values must be reproduced exactly (NaN as NaN, +-Inf with its sign)
    special_bad = ~finite & ~((np.isnan(e) & np.isnan(a)) | (e == a))
    special_bad |= finite & ~np.isfinite(a)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # inf - inf; a diff over a subnormal bound
        diff = np.where(finite & np.isfinite(a), np.abs(a - e), 0.0)
        units = np.where(diff == 0, 0.0, diff / bound)
    units = np.where(special_bad, np.inf, units)
    bad = (units > 1.0) | special_bad
    n_bad = int(bad.sum())
    worst = np.unravel_index(int(np.argmax(units)), units.shape)
    max_units = float(units[worst])
    max_abs = float(diff.max())
    if n_bad:
        message = (
            f"{n_bad} of {e.size} elements out of bound; worst at {tuple(int(i) for i in worst)}: "
            f"got {a[worst]:.9g}, expected {e[worst]:.9g}, |diff| {diff[worst]:.3g}, "
            f"bound {bound[worst]:.3g} ({max_units:.3g} units)"
        )
    else:
        message = f"max error {max_units:.3g} units of the bound"
    return Comparison(n_bad == 0, max_units, max_abs, n_bad, tuple(int(i) for i in worst),
                      float(e[worst]), float(a[worst]), message)
