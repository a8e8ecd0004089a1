"""Exact power-of-two scaling for transform-based backends (``fft``, ``winograd``).

A transform sums many inputs before the products are taken (an FFT over a whole tile, a Winograd
``B^T d B``), so its intermediates can overflow where the convolution itself is finite: float32
input near 1e36 with a 15x15 kernel made ``fft`` return all NaN, and ``winograd`` went NaN at a
quarter of float32's maximum. At the other end, subnormal inputs lose their precision inside the
transform. Scaling the input and the weights by powers of two, so that each one's largest finite
magnitude is in [0.5, 1), and scaling the result back, is exact (barring elements that become
subnormal, far below the transforms' own rounding) and keeps every intermediate in range. Where
the true output overflows, scaling back gives +-Inf, the correctly rounded answer.

Data whose magnitudes are already moderate (:data:`SAFE_EXPONENT`) is passed through unscaled:
the check costs one max and one min over each array.
"""

from __future__ import annotations

import numpy as np

#: Largest ``|exponent|`` of max|x|, max|w| and of their product left unscaled: with both at
#: most 2**32 (float32), a transform's growth of up to 2**60 still stays below float32's 2**128;
#: the same proportion of float64's range is 2**256.
SAFE_EXPONENT = {"float32": 32, "float64": 256}


def max_exponent(a) -> int:
    """``e`` with ``max |a| = m * 2**e``, ``0.5 <= m < 1``, over its finite elements (0 if none)."""
    return exponent_and_finite(a)[0]


def exponent_and_finite(a) -> tuple[int, bool]:
    """``(max_exponent(a), no NaN or Inf in a)``, from the same pass (min and max propagate both)."""
    if a is None or a.size == 0:
        return 0, True
    top = max(float(np.max(a)), -float(np.min(a)))
    finite = bool(np.isfinite(top))
    if not finite:  # NaN or Inf present: the finite ones set the scale
        values = np.abs(a[np.isfinite(a)])
        top = float(values.max()) if values.size else 0.0
    return (int(np.frexp(top)[1]) if top > 0 else 0), finite


def unit_exponents(x, w, dtype) -> tuple[int, int]:
    """``(ex, ew)``: the powers of two to divide ``x`` and ``w`` by, or ``(0, 0)`` when their
    magnitudes are moderate enough for the transforms as they are."""
    ex, ew = max_exponent(x), max_exponent(w)
    limit = SAFE_EXPONENT[str(np.dtype(dtype))]
    if max(abs(ex), abs(ew), abs(ex + ew)) <= limit:
        return 0, 0
    return ex, ew


def scaled(a, exponent: int):
    """``a * 2**-exponent`` (a new array), or ``a`` itself when ``exponent`` is 0."""
    if a is None or exponent == 0:
        return a
    with np.errstate(under="ignore"):
        return np.ldexp(a, -exponent).astype(a.dtype, copy=False)


def unscale(y, exponent: int):
    """``y *= 2**exponent`` in place (overflow gives +-Inf, as the true result would); ``y``."""
    if exponent:
        with np.errstate(over="ignore", under="ignore"):
            np.ldexp(y, exponent, out=y)
    return y
