"""im2col's convolution family: transposed conv and conv2d backward as GEMM plus col2im.

Forward conv by im2col gathers every tap of every window into a column matrix and multiplies
it by the weights. The other two products of the same three arrays reuse that layout:

* conv_transpose2d and grad_input: ``cols = W^T @ X`` (one GEMM per group), then **col2im**
  scatters each tap's row of ``cols`` back onto the image with a strided add, KH*KW slices in
  all. No zero-interleaved input is ever built: the lowering onto conv2d multiplies
  ``stride**2`` times more zeros.
* grad_weight: ``grad_out @ cols(x)^T``: one GEMM per group over the forward's columns.

The GEMMs run in the arrays' dtype through BLAS (sums in any order: the ``direct`` error model).
"""

from __future__ import annotations

import numpy as np

from harness.ops.adjoint import pad_adjoint
from harness.ops.padding import pad_input


def _col2im(cols, out, channel0, KH, KW, stride, dilation, H, W):
    """out[:, channel0 + o, p*dh + i*sh, q*dw + j*sw] += cols[o, p, q, :, i, j] for i < H, j < W."""
    (sh, sw), (dh, dw) = stride, dilation
    Og = cols.shape[0]
    for p in range(KH):
        for q in range(KW):
            out[:, channel0:channel0 + Og, p * dh:p * dh + (H - 1) * sh + 1:sh,
                q * dw:q * dw + (W - 1) * sw + 1:sw] += cols[:, p, q].transpose(1, 0, 2, 3)


def conv_transpose2d(x, w, bias, spec):
    """Per group: cols = w_g^T @ x_g (GEMM), col2im onto the uncropped output, crop, add bias."""
    Cg, Og = spec.C // spec.groups, spec.O // spec.groups
    top, bottom, left, right = spec.pads
    ph, pw = top, left
    full = np.zeros((spec.N, spec.O, spec.OH + top + bottom, spec.OW + left + right), dtype=spec.dtype)
    for g in range(spec.groups):
        xg = x[:, g * Cg:(g + 1) * Cg].transpose(1, 0, 2, 3).reshape(Cg, -1)  # (Cg, N*H*W)
        wg = w[g * Cg:(g + 1) * Cg].reshape(Cg, -1)  # (Cg, Og*KH*KW)
        cols = (wg.T @ xg).reshape(Og, spec.KH, spec.KW, spec.N, spec.H, spec.W)
        _col2im(cols, full, g * Og, spec.KH, spec.KW, spec.stride, spec.dilation, spec.H, spec.W)
    y = full[:, :, ph:ph + spec.OH, pw:pw + spec.OW]
    if bias is not None:
        y = y + bias[None, :, None, None]
    return np.ascontiguousarray(y)


def _im2col(xp, channel0, Cg, spec):
    """cols[c, p, q, n, i, j] = xp[n, channel0 + c, i*sh + p*dh, j*sw + q*dw]."""
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    cols = np.empty((Cg, spec.KH, spec.KW, spec.N, spec.OH, spec.OW), dtype=xp.dtype)
    for p in range(spec.KH):
        for q in range(spec.KW):
            taps = xp[:, channel0:channel0 + Cg, p * dh:p * dh + (spec.OH - 1) * sh + 1:sh,
                      q * dw:q * dw + (spec.OW - 1) * sw + 1:sw]
            cols[:, p, q] = taps.transpose(1, 0, 2, 3)
    return cols.reshape(Cg * spec.KH * spec.KW, -1)


def conv2d_backward(x, w, grad_out, spec):
    """grad_weight = grad_out_g @ cols^T; grad_input = col2im(w_g^T @ grad_out_g), folded through the padding."""
    Cg, Og = spec.C // spec.groups, spec.O // spec.groups
    xp = pad_input(x, spec)
    grad_xp = np.zeros(xp.shape, dtype=spec.dtype)
    grad_w = np.empty(spec.w_shape, dtype=spec.dtype)
    for g in range(spec.groups):
        go = grad_out[:, g * Og:(g + 1) * Og].transpose(1, 0, 2, 3).reshape(Og, -1)  # (Og, N*OH*OW)
        grad_w[g * Og:(g + 1) * Og] = (go @ _im2col(xp, g * Cg, Cg, spec).T).reshape(Og, Cg, spec.KH, spec.KW)
        wg = w[g * Og:(g + 1) * Og].reshape(Og, -1)  # (Og, Cg*KH*KW)
        cols = (wg.T @ go).reshape(Cg, spec.KH, spec.KW, spec.N, spec.OH, spec.OW)
        _col2im(cols, grad_xp, g * Cg, spec.KH, spec.KW, spec.stride, spec.dilation, spec.OH, spec.OW)
    grad_b = grad_out.sum(axis=(0, 2, 3), dtype=np.float64).astype(spec.dtype) if spec.bias else None
    return pad_adjoint(grad_xp, spec), grad_w, grad_b
