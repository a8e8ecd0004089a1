"""Numba pooling kernels for ``numba_cpu`` (imported lazily by ``_numba_cpu_pool``: importing compiles
or loads them).

One thread per (n, c) plane (``prange``), each output's window scanned row by row as torch
scans it: a max takes a value that is larger or NaN (so the first maximum and the last NaN
win), an average sums the taps inside the input in float64 and divides once. Windows are
clipped to the input with a bounds test per tap, so padding, dilation and ceil_mode's partial
last window need no padded copy of the input. Results do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def _max_pool(x, y, index, kh, kw, sh, sw, ph, pw, dh, dw):
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    for plane in prange(N * C):
        n, c = plane // C, plane % C
        for i in range(OH):
            for j in range(OW):
                best = -np.inf
                where = -1
                for p in range(kh):
                    h = i * sh - ph + p * dh
                    if h < 0 or h >= H:
                        continue
                    for q in range(kw):
                        v = j * sw - pw + q * dw
                        if v < 0 or v >= W:
                            continue
                        value = x[n, c, h, v]
                        if where < 0 or value > best or np.isnan(value):
                            best = value
                            where = h * W + v
                y[n, c, i, j] = best
                index[n, c, i, j] = where


@njit(parallel=True, cache=True)
def _max_pool_values(x, y, kh, kw, sh, sw, ph, pw, dh, dw):
    """Max pooling without indices: per output row, each tap swept along the row (vectorizable).

    The max of a window does not depend on the order its taps are visited in, NaN included
    (``value != value`` makes any NaN stick), so taps can be taken tap-major instead of
    window-major; only the arg-max (``_max_pool``) needs torch's scan order.
    """
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    for plane in prange(N * C):
        n, c = plane // C, plane % C
        src, dst = x[n, c], y[n, c]
        for i in range(OH):
            out = dst[i]
            for j in range(OW):
                out[j] = -np.inf
            for p in range(kh):
                h = i * sh - ph + p * dh
                if h < 0 or h >= H:
                    continue
                row = src[h]
                for q in range(kw):
                    off = q * dw - pw
                    j_lo = max(0, (sw - 1 - off) // sw)  # first j with j*sw + off >= 0
                    j_hi = min(OW, (W - 1 - off) // sw + 1)  # past the last j with j*sw + off < W
                    for j in range(j_lo, j_hi):
                        value, current = row[j * sw + off], out[j]
                        # a select, not a branch, so the sweep vectorizes (2.5x on 3x3/2 here)
                        out[j] = value if (value > current or value != value) else current


@njit(parallel=True, cache=True)
def _avg_pool(x, y, divisor, kh, kw, sh, sw, ph, pw):
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    for plane in prange(N * C):
        n, c = plane // C, plane % C
        for i in range(OH):
            for j in range(OW):
                total = 0.0
                for p in range(kh):
                    h = i * sh - ph + p
                    if h < 0 or h >= H:
                        continue
                    for q in range(kw):
                        v = j * sw - pw + q
                        if 0 <= v < W:
                            total += x[n, c, h, v]
                y[n, c, i, j] = total / divisor[i, j]



@njit(parallel=True, cache=True)
def _max_pool_backward(x, grad_out, grad, kh, kw, sh, sw, ph, pw, dh, dw):
    """Each output's gradient added at its window's arg-max (found by the forward scan); one thread per plane."""
    N, C, H, W = x.shape
    OH, OW = grad_out.shape[2], grad_out.shape[3]
    for plane in prange(N * C):
        n, c = plane // C, plane % C
        for i in range(OH):
            for j in range(OW):
                best = -np.inf
                bh, bw = -1, -1
                for p in range(kh):
                    h = i * sh - ph + p * dh
                    if h < 0 or h >= H:
                        continue
                    for q in range(kw):
                        v = j * sw - pw + q * dw
                        if v < 0 or v >= W:
                            continue
                        value = x[n, c, h, v]
                        if bh < 0 or value > best or np.isnan(value):
                            best = value
                            bh, bw = h, v
                grad[n, c, bh, bw] += grad_out[n, c, i, j]


@njit(parallel=True, cache=True)
def _avg_pool_backward(grad_out, grad, divisor, kh, kw, sh, sw, ph, pw):
    """Each output's gradient / divisor added to every tap of its window inside the input."""
    N, C, H, W = grad.shape
    OH, OW = grad_out.shape[2], grad_out.shape[3]
    for plane in prange(N * C):
        n, c = plane // C, plane % C
        for i in range(OH):
            for j in range(OW):
                share = grad_out[n, c, i, j] / divisor[i, j]
                for p in range(kh):
                    h = i * sh - ph + p
                    if h < 0 or h >= H:
                        continue
                    for q in range(kw):
                        v = j * sw - pw + q
                        if 0 <= v < W:
                            grad[n, c, h, v] += share
