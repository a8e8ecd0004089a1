"""Error bounds that follow from the arithmetic, and the element-wise comparison.

A backend's output is compared with a float64 reference element by element:

    |actual - expected| <= bound

where ``bound`` comes from the backend's *error model* and the data itself. Errors are
reported in units of the bound (``max_units <= 1`` passes), so one number says how close
a result came to failing, whatever the dtype or size.

The ``direct`` model (summation in any order: loops, GEMM, blocked or pairwise) bounds the
error of each output by the magnitude of what was summed into it,

    A[n, o, i, j] = sum |x| * |w|  (+ |b|)      (the same convolution on absolute values)

    bound = (u_backend + u_reference) * (K_SIGMA * sqrt(n_terms) + 2) * A

with ``u`` the unit roundoff of the dtype (2**-24 for float32, 2**-53 for float64) and
``n_terms`` the products summed (C/groups * KH * KW, plus one for a bias). Rounding errors of a
length-n sum grow like sqrt(n) times the partial sums (each bounded by A) when they do not
conspire; the worst case, n * u * A, is far looser and would hide real bugs (a float16
accumulator, a dropped channel block) in large reductions. ``K_SIGMA = 3`` keeps the bound
clear of what correct GEMM and direct backends show (measured by ``tests/test_tolerance.py``
and reported by the verifier as ``max_units``) while a planted bug lands orders of
magnitude above it. The ``+ 2`` covers rounding the products and the final result.

Other algorithms (FFT, Winograd) register their own models in :data:`ERROR_MODELS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

#: Unit roundoff (half the machine epsilon) per dtype.
UNIT_ROUNDOFF = {"float32": 2.0**-24, "float64": 2.0**-53}
K_SIGMA = 3.0


def magnitude(reference_conv, x, w, bias) -> np.ndarray:
    """``A``: the convolution of |x| with |w| (+ |b|), in float64, through ``reference_conv``."""
    ab = None if bias is None else np.abs(bias).astype(np.float64)
    return reference_conv(np.abs(x).astype(np.float64), np.abs(w).astype(np.float64), ab)


def direct_bound(spec, A: np.ndarray) -> np.ndarray:
    """Bound for any summation order of the direct formula (see module docstring)."""
    n_terms = spec.n_acc + (1 if spec.bias else 0)
    u = UNIT_ROUNDOFF[spec.dtype] + UNIT_ROUNDOFF["float64"]
    return u * (K_SIGMA * np.sqrt(n_terms) + 2.0) * A


#: Rounding steps charged per log2 of the FFT size: a forward and an inverse real 2-D transform,
#: each about one rounding per butterfly stage (log2 of the size), plus the complex products.
#: Correct ``fft`` results measured at <= 0.03 units with it (see ``impls/fft.py``).
FFT_STAGE_FACTOR = 4.0


def fft_bound(spec, A: np.ndarray) -> np.ndarray:
    """Bound for convolution by FFT: global, set by the largest magnitude in each output plane.

    A transform spreads the rounding of every value over all outputs, so an output's error is
    about ``u * log2(L) * (a norm of all the products in its transform)``, not relative to its
    own ``A``. ``max A`` over the (n, o) plane bounds every such norm; ``L`` is at most the padded
    input area (tiles are smaller). The frequency-domain channel sum has ``C/groups`` terms
    (plus the bias), which add the direct model's ``K_SIGMA * sqrt(n_terms)``; the kernel taps
    are summed inside the transforms and cost only their ``log2``.
    """
    top, bottom, left, right = spec.padding
    area = max(2, (spec.H + top + bottom) * (spec.W + left + right))
    n_terms = spec.C // spec.groups + (1 if spec.bias else 0)
    u = UNIT_ROUNDOFF[spec.dtype] + UNIT_ROUNDOFF["float64"]
    scale = A.max(axis=(-2, -1), keepdims=True) if A.size else A  # per (n, o) plane
    return u * (K_SIGMA * np.sqrt(n_terms) + 2.0 + FFT_STAGE_FACTOR * np.log2(area)) * scale


def winograd_bound(spec, A: np.ndarray) -> np.ndarray:
    """Bound for Winograd F(m x m, 3x3): the direct bound, amplified by the transforms.

    The tile size ``m`` is the one ``impls.winograd.choose_tile`` picks for ``spec``. The
    transforms mix every input of an ``(m+2) x (m+2)`` tile with every tap, with coefficients
    whose absolute sums make the magnitudes behind one output ``growth`` times larger than
    direct summation's (7.1 for F(2x2), 256 for F(4x4); ``WinogradTransform.growth``); those
    products belong to outputs at most ``m + 1`` away, so ``A`` is taken as its maximum over
    that neighbourhood.
    """
    from scipy.ndimage import maximum_filter

    from impls._winograd_transforms import TRANSFORMS
    from impls.winograd import choose_tile

    t = TRANSFORMS[choose_tile(spec)]
    reach = 2 * t.m + 3
    size = (1,) * (A.ndim - 2) + (reach, reach)  # over (H, W) only, batched or not
    A_near = maximum_filter(A, size=size, mode="constant", cval=0.0) if A.size else A
    return t.growth * direct_bound(spec, A_near)


#: error model name -> bound(spec, A) -> array broadcastable to the output
ERROR_MODELS: dict[str, Callable[..., np.ndarray]] = {
    "direct": direct_bound,
    "fft": fft_bound,
    "winograd": winograd_bound,
}


def error_bound(model: str, spec, A: np.ndarray) -> np.ndarray:
    try:
        return ERROR_MODELS[model](spec, A)
    except KeyError:
        raise ValueError(f"unknown error model {model!r}; known: {', '.join(sorted(ERROR_MODELS))}") from None


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
    with np.errstate(divide="ignore", invalid="ignore"):  # inf - inf where both are special
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
