"""The ``naive`` backend's convolution family: each op's defining formula as loops, in float64.

Every loop runs over kernel taps (and channels); each step is one numpy operation over a
whole plane, so the code reads like the formula. These are the harness's ground truth for
checking torch, as ``naive.conv2d`` is for conv2d.
"""

from __future__ import annotations

import numpy as np

from harness.ops.adjoint import pad_adjoint
from harness.ops.padding import pad_input
from harness.ops.pool_spec import adaptive_windows, avg_divisors


# -- transposed convolution ------------------------------------------------------------------------
def conv_transpose2d(x, w, bias, spec):
    """y[n, g*Og + o, i*sh + p*dh - top, j*sw + q*dw - left] += x[n, c, i, j] * w[c, o, p, q]."""
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    top, bottom, left, right = spec.pads
    ph, pw = top, left
    Cg, Og = spec.C // spec.groups, spec.O // spec.groups
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    # the uncropped output: OH + top + bottom rows, of which padding crops top and bottom
    full = np.zeros((spec.N, spec.O, spec.OH + top + bottom, spec.OW + left + right))
    with np.errstate(invalid="ignore", over="ignore"):
        for c in range(spec.C):
            g = c // Cg
            for o in range(Og):
                for p in range(spec.KH):
                    for q in range(spec.KW):
                        full[:, g * Og + o, p * dh:p * dh + (spec.H - 1) * sh + 1:sh,
                             q * dw:q * dw + (spec.W - 1) * sw + 1:sw] += x64[:, c] * w64[c, o, p, q]
        y = full[:, :, ph:ph + spec.OH, pw:pw + spec.OW]
        if bias is not None:
            y = y + bias.astype(np.float64)[None, :, None, None]
    return y.astype(spec.dtype)


# -- pooling -----------------------------------------------------------------------------------------
def _taps(spec):
    """For each window tap (p, q): input rows (OH,), columns (OW,) and which are inside the input."""
    (kh, kw), (sh, sw), (dh, dw) = spec.kernel, spec.stride, spec.dilation
    ph, pw = spec.pads[0], spec.pads[2]  # windows start at -top, -left (the end padding only sets OH, OW)
    for p in range(kh):
        rows = np.arange(spec.OH) * sh - ph + p * dh
        for q in range(kw):
            cols = np.arange(spec.OW) * sw - pw + q * dw
            inside = ((rows >= 0) & (rows < spec.H))[:, None] & ((cols >= 0) & (cols < spec.W))[None, :]
            yield np.clip(rows, 0, spec.H - 1), np.clip(cols, 0, spec.W - 1), inside


def max_scan(best, index, value, flat, inside):
    """One step of torch's scan: take a value that is larger, or NaN, or the window's first."""
    take = inside & ((value > best) | np.isnan(value) | (index < 0))
    return np.where(take, value, best), np.where(take, flat, index)


def _max_pool_indices(x64, spec):
    best = np.full(spec.out_shape, -np.inf)
    index = np.full(spec.out_shape, -1, dtype=np.int64)
    for rows, cols, inside in _taps(spec):
        value = x64[:, :, rows[:, None], cols[None, :]]
        best, index = max_scan(best, index, value, rows[:, None] * spec.W + cols[None, :], inside)
    return best, index


def max_pool2d(x, spec):
    """y = max over the window's taps inside the input; index = flat h*W + w of the first max."""
    best, index = _max_pool_indices(x.astype(np.float64), spec)
    return best.astype(spec.dtype), (index if spec.return_indices else None)


def avg_pool2d(x, spec):
    """y = (sum of the window's taps inside the input) / divisor."""
    x64 = x.astype(np.float64)
    total = np.zeros(spec.out_shape)
    for rows, cols, inside in _taps(spec):
        total += np.where(inside, x64[:, :, rows[:, None], cols[None, :]], 0.0)
    return (total / avg_divisors(spec)).astype(spec.dtype)


def adaptive_avg_pool2d(x, spec):
    """y[i, j] = mean of x over rows [floor(i*H/OH), ceil((i+1)*H/OH)) and likewise columns."""
    x64 = x.astype(np.float64)
    y = np.zeros(spec.out_shape)
    for i, (r0, r1) in enumerate(adaptive_windows(spec.H, spec.OH)):
        for j, (c0, c1) in enumerate(adaptive_windows(spec.W, spec.OW)):
            y[:, :, i, j] = x64[:, :, r0:r1, c0:c1].sum(axis=(2, 3)) / ((r1 - r0) * (c1 - c0))
    return y.astype(spec.dtype)


def adaptive_max_pool2d(x, spec):
    """y[i, j] = max over the adaptive window, scanned row by row as torch does (first max, last NaN)."""
    x64 = x.astype(np.float64)
    y = np.zeros(spec.out_shape)
    index = np.zeros(spec.out_shape, dtype=np.int64)
    everywhere = np.ones(spec.out_shape[:2], dtype=bool)
    for i, (r0, r1) in enumerate(adaptive_windows(spec.H, spec.OH)):
        for j, (c0, c1) in enumerate(adaptive_windows(spec.W, spec.OW)):
            best = np.full(spec.out_shape[:2], -np.inf)
            where = np.full(spec.out_shape[:2], -1, dtype=np.int64)
            for r in range(r0, r1):
                for c in range(c0, c1):
                    best, where = max_scan(best, where, x64[:, :, r, c], r * spec.W + c, everywhere)
            y[:, :, i, j], index[:, :, i, j] = best, where
    return y.astype(spec.dtype), (index if spec.return_indices else None)


# -- backward passes -----------------------------------------------------------------------------------
def conv2d_backward(x, w, grad_out, spec):
    """The adjoint of conv2d's loops: each product x*w sends grad_out*w to x and grad_out*x to w."""
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    OH, OW = spec.OH, spec.OW
    Cg, Og = spec.C // spec.groups, spec.O // spec.groups
    xp = pad_input(x, spec).astype(np.float64)
    go = grad_out.astype(np.float64)
    w64 = w.astype(np.float64)
    grad_xp = np.zeros(xp.shape)
    grad_w = np.zeros(spec.w_shape)
    with np.errstate(invalid="ignore", over="ignore"):
        for o in range(spec.O):
            g = o // Og
            for c in range(Cg):
                for p in range(spec.KH):
                    for q in range(spec.KW):
                        taps = (slice(None), g * Cg + c, slice(p * dh, p * dh + (OH - 1) * sh + 1, sh),
                                slice(q * dw, q * dw + (OW - 1) * sw + 1, sw))
                        grad_xp[taps] += go[:, o] * w64[o, c, p, q]
                        grad_w[o, c, p, q] = np.sum(xp[taps] * go[:, o])
    grad_b = go.sum(axis=(0, 2, 3)).astype(spec.dtype) if spec.bias else None
    return pad_adjoint(grad_xp, spec).astype(spec.dtype), grad_w.astype(spec.dtype), grad_b


def max_pool2d_backward(x, grad_out, spec):
    """Each output's gradient goes to its arg-max (the index max_pool2d returns), summed."""
    _, index = _max_pool_indices(x.astype(np.float64), spec)
    planes = spec.N * spec.C
    if planes == 0:
        return np.zeros(spec.x_shape, dtype=spec.dtype)
    grad = np.zeros((planes, spec.H * spec.W))
    np.add.at(grad, (np.arange(planes)[:, None], index.reshape(planes, -1)),
              grad_out.astype(np.float64).reshape(planes, -1))
    return grad.reshape(spec.x_shape).astype(spec.dtype)


def avg_pool2d_backward(x, grad_out, spec):
    """Each output's gradient / divisor goes to every tap of its window inside the input."""
    share = grad_out.astype(np.float64) / avg_divisors(spec)
    grad = np.zeros(spec.x_shape)
    for rows, cols, inside in _taps(spec):
        i, j = np.nonzero(inside.any(axis=1))[0], np.nonzero(inside.any(axis=0))[0]
        # within one tap the window positions map to distinct input pixels, so += is safe
        grad[:, :, rows[i][:, None], cols[j][None, :]] += share[:, :, i[:, None], j[None, :]]
    return grad.astype(spec.dtype)
