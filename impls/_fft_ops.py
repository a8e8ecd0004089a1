"""``fft``'s conv2d backward: grad_weight by FFT, where large kernels make it pay.

grad_weight of a stride-1, undilated conv2d is a cross-correlation of the padded input with
grad_out, evaluated at the KH x KW smallest lags::

    gw[o, c, p, q] = sum_n sum_ij xp[n, c, i + p, j + q] * go[n, o, i, j]
                   = irfft2( sum_n rfft2(xp[n, c]) * conj(rfft2(go[n, o], s=(Hp, Wp))) )[p, q]

On the padded size (Hp, Wp) the circular correlation never wraps at those lags (i + p < Hp), so
one transform per input and grad_out plane and a batched complex product summed over n do it,
at a cost independent of KH*KW: direct summation costs N*OH*OW multiply-adds per tap. Smaller
kernels, other strides and dilations, and grad_input go through the harness lowerings on fft's
own conv2d (see :data:`MIN_KERNEL_AREA`).
"""

from __future__ import annotations

import numpy as np

from harness.ops.lowering import grad_bias_of, grad_input_by, grad_weight_by
from harness.ops.padding import pad_input

from ._range_scaling import scaled, unit_exponents, unscale

#: Smallest kernel area for which the direct FFT correlation is used. Below it, fft's own conv2d
#: (tiled, channels as batched GEMM) on the lowering's swapped axes was faster: measured on this
#: project's 2-core test machine, float32, padding K//2, 56x56 images: 7x7 at N=8, C=O=32: 74 ms
#: direct vs 47 ms lowered; 9x9: 60 vs 77 ms (N=8) and 109 vs 197 ms (N=1, C=O=64); 13x13 at N=1:
#: 146 vs 203 ms; 31x31 on 32x32 at N=1: 147 vs 171 ms.
MIN_KERNEL_AREA = 81

#: Complex bytes per chunk of (output channel, input channel, frequency) products held at once.
CHUNK_BYTES = 256 * 2**20


def fft_grad_weight(x, grad_out, spec) -> np.ndarray:
    """grad_weight of a stride-1, undilated conv2d (see the module docstring)."""
    from scipy import fft

    ex, eg = unit_exponents(x, grad_out, spec.dtype)  # exact; keeps the transforms in range
    x, grad_out = scaled(x, ex), scaled(grad_out, eg)
    xp = pad_input(x, spec)
    Hp, Wp = xp.shape[2:]
    Cg, Og = spec.C // spec.groups, spec.O // spec.groups
    X = fft.rfft2(xp, s=(Hp, Wp), axes=(2, 3))  # (N, C, Hp, Wp//2+1)
    G = np.conj(fft.rfft2(grad_out, s=(Hp, Wp), axes=(2, 3)))  # (N, O, ...)
    freqs = X.shape[2] * X.shape[3]
    step = max(1, CHUNK_BYTES // max(1, Cg * freqs * X.itemsize))
    grad_w = np.empty(spec.w_shape, dtype=spec.dtype)
    for g in range(spec.groups):
        Xg = X[:, g * Cg:(g + 1) * Cg].reshape(spec.N, Cg, freqs)
        for o0 in range(g * Og, (g + 1) * Og, step):
            o1 = min(o0 + step, (g + 1) * Og)
            Gg = G[:, o0:o1].reshape(spec.N, o1 - o0, freqs)
            prod = np.einsum("nof,ncf->ocf", Gg, Xg).reshape(o1 - o0, Cg, X.shape[2], X.shape[3])
            corr = fft.irfft2(prod, s=(Hp, Wp), axes=(2, 3))
            grad_w[o0:o1] = corr[:, :, :spec.KH, :spec.KW]
    return unscale(grad_w, ex + eg)


def conv2d_backward(x, w, grad_out, spec):
    """grad_input through the lowering on fft's conv2d; grad_weight by FFT correlation for large
    kernels (``KH*KW >= MIN_KERNEL_AREA``) with stride and dilation 1, else through the lowering."""
    from harness.backend.registry import get_backend

    declared = get_backend("fft")
    if spec.N == 0:
        return np.zeros(spec.x_shape, spec.dtype), np.zeros(spec.w_shape, spec.dtype), grad_bias_of(grad_out, spec)
    grad_input = grad_input_by(declared.ops["conv_transpose2d"], w, grad_out, spec)
    if spec.stride == (1, 1) and spec.dilation == (1, 1) and spec.KH * spec.KW >= MIN_KERNEL_AREA:
        grad_weight = fft_grad_weight(x, grad_out, spec)
    else:
        grad_weight = grad_weight_by(declared.ops["conv2d"], x, grad_out, spec)
    return grad_input, grad_weight, grad_bias_of(grad_out, spec)
