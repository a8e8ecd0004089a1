"""Case fills at the ends of the dtype's range, where transforms overflow or lose precision.

``near_max``   the input scaled so that the largest output magnitude ``A = conv(|x|, |w|)`` is
               half the dtype's maximum, the bias at most a tenth of it (weights stay standard
               normal): every exact sum is finite, but a backend whose intermediates grow
               beyond the output (an FFT over a tile, a Winograd transform) overflows unless it
               guards its range. float32: x near 1e36 for a 15x15 kernel.
``subnormal``  the input scaled into the subnormal range (2**-4 of the smallest normal: about
               7e-40 in float32, 1.4e-309 in float64), bias alike: products and sums underflow
               gradually. Its cases need an underflow term in the error bound (an absolute
               ``n_terms * smallest subnormal``); until the bound has one, the sampler does not
               draw this fill (see ``harness/ops/cases/conv2d.py``).
"""

from __future__ import annotations

import numpy as np

from harness.ops.padding import pad_input

EXTREME_FILLS = ("near_max", "subnormal")

#: |x| and |w| of standard normal draws stay below about 5 for the case sizes the verifier
#: draws, so ``n * 25 * scale`` bounds the output; NEAR_MAX_HEADROOM leaves a further margin.
_NORMAL_TAIL_SQUARED = 25.0
NEAR_MAX_HEADROOM = 4.0
#: Terms per output assumed where the caller cannot say (``harness.ops.cases.tools.fill``).
DEFAULT_TERMS = 1024


def input_scale(kind: str, dtype, n_terms: int = DEFAULT_TERMS) -> float:
    """The factor for standard normal input values of ``kind``, for outputs summing ``n_terms``
    products with standard normal weights."""
    info = np.finfo(dtype)
    if kind == "near_max":
        return float(info.max) / (NEAR_MAX_HEADROOM * _NORMAL_TAIL_SQUARED * max(1, n_terms))
    if kind == "subnormal":
        return float(info.smallest_normal) * 2.0**-4
    raise ValueError(f"unknown extreme fill {kind!r}; known: {', '.join(EXTREME_FILLS)}")


#: The largest output magnitude of a ``near_max`` conv2d case, as a fraction of the dtype's max.
NEAR_MAX_OUTPUT = 0.5
NEAR_MAX_BIAS = 0.1


def near_max_conv2d(x, w, b, spec):
    """``(x, b)`` of a conv2d case scaled so that max ``conv(|x|, |w|)`` is
    :data:`NEAR_MAX_OUTPUT` of the dtype's max and ``|b|`` at most :data:`NEAR_MAX_BIAS` of it.

    ``x``, ``w``, ``b`` are the float64 standard normal draws (``x`` batched or not); the
    magnitude is computed exactly (float64, through the reference backend) rather than bounded,
    since a bound (``n * max|x| * max|w|``) is some 20x above the largest actual output and
    Winograd's intermediates overflow only within about 4x of the dtype's max.
    """
    top = float(np.finfo(spec.dtype).max)
    x4 = x if x.ndim == 4 else x[None]
    A = _magnitudes(np.abs(x4), np.abs(w), spec)
    peak = float(A.max()) if A.size else 0.0
    scale = NEAR_MAX_OUTPUT * top / peak if peak > 0 else input_scale("near_max", spec.dtype, spec.n_acc)
    b_peak = float(np.abs(b).max()) if b.size else 0.0
    return x * scale, (b * (NEAR_MAX_BIAS * top / b_peak) if b_peak > 0 else b)


def _magnitudes(x, w, spec) -> np.ndarray:
    """``conv(|x|, |w|)`` in float64, directly from its definition (windows times weights, per group)."""
    xp = pad_input(x.astype(np.float64), spec)
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    windows = np.lib.stride_tricks.sliding_window_view(xp, (dh * (spec.KH - 1) + 1, dw * (spec.KW - 1) + 1), axis=(2, 3))
    windows = windows[:, :, :spec.OH * sh:sh, :spec.OW * sw:sw, ::dh, ::dw]  # (N, C, OH, OW, KH, KW)
    G = spec.groups
    grouped = windows.reshape(spec.N, G, spec.C // G, spec.OH, spec.OW, spec.KH, spec.KW)
    per_group = w.astype(np.float64).reshape(G, spec.O // G, spec.C // G, spec.KH, spec.KW)
    return np.einsum("ngchwpq,gocpq->ngohw", grouped, per_group).reshape(spec.N, spec.O, spec.OH, spec.OW)


def bias_scale(kind: str, dtype) -> float:
    """The factor for standard normal bias values of ``kind`` (of the order of the output)."""
    info = np.finfo(dtype)
    if kind == "near_max":
        return float(info.max) / (NEAR_MAX_HEADROOM * 2 * 5)
    return input_scale(kind, dtype)
