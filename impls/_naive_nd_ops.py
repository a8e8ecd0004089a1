"""The ``naive`` backend's 1-D and 3-D ops: each defining formula as loops, in float64, for any rank.

The loops run over channels and kernel taps (``itertools.product`` over the kernel's axes);
each step is one numpy operation over the whole output (or input) block, so the code reads like
the formula and serves conv1d and conv3d alike::

    y[n, o, i...] = b[o] + sum_c sum_t  x[n, g*Cg + c, i*s + t*d ...] * w[o, c, t...]

with ``x`` already padded. Pooling scans the window's taps in row-major order as torch does
(the first maximum wins, a NaN always wins).
"""

from __future__ import annotations

from itertools import product

import numpy as np

from harness.ops.lowering_nd import pad_nd, pad_nd_adjoint, tap_window
from harness.ops.pool_nd_spec import avg_divisors_nd

from ._naive_ops import max_scan

ALL = slice(None)


def _taps(kernel):
    return product(*[range(k) for k in kernel])


def conv_nd(x, w, bias, spec):
    """y[n, o, i...] = b[o] + sum over c and taps t of xp[n, g*Cg + c, i*s + t*d] * w[o, c, t]."""
    xp, w64 = pad_nd(x, spec).astype(np.float64), w.astype(np.float64)
    Cg, Og = spec.C // spec.groups, spec.O // spec.groups
    y = np.zeros(spec.out_shape)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf inputs propagate as in torch
        for o in range(spec.O):
            g = o // Og
            for c in range(Cg):
                for t in _taps(spec.kernel):
                    y[:, o] += xp[(ALL, g * Cg + c, *tap_window(t, spec, spec.out_dims))] * w64[(o, c, *t)]
            if bias is not None:
                y[:, o] += bias[o]
    return y.astype(spec.dtype)


def conv_transpose_nd(x, w, bias, spec):
    """y[n, g*Og + o, i*s + t*d - p] += x[n, c, i] * w[c, o, t], on the uncropped output, then cropped."""
    Cg, Og = spec.C // spec.groups, spec.O // spec.groups
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    full = np.zeros((spec.N, spec.O, *[o + 2 * p for o, p in zip(spec.out_dims, spec.padding)]))
    with np.errstate(invalid="ignore", over="ignore"):
        for c in range(spec.C):
            g = c // Cg
            for o in range(Og):
                for t in _taps(spec.kernel):
                    full[(ALL, g * Og + o, *tap_window(t, spec, spec.size))] += x64[:, c] * w64[(c, o, *t)]
        y = full[(ALL, ALL, *[slice(p, p + o) for p, o in zip(spec.padding, spec.out_dims)])]
        if bias is not None:
            y = y + bias.astype(np.float64).reshape((-1,) + (1,) * spec.ndim)
    return y.astype(spec.dtype)


def conv_nd_backward(x, w, grad_out, spec):
    """The adjoint of conv_nd's loops: each product x*w sends grad_out*w to x and grad_out*x to w."""
    Cg, Og = spec.C // spec.groups, spec.O // spec.groups
    xp, go, w64 = pad_nd(x, spec).astype(np.float64), grad_out.astype(np.float64), w.astype(np.float64)
    grad_xp, grad_w = np.zeros(xp.shape), np.zeros(spec.w_shape)
    with np.errstate(invalid="ignore", over="ignore"):
        for o in range(spec.O):
            g = o // Og
            for c in range(Cg):
                for t in _taps(spec.kernel):
                    taps = (ALL, g * Cg + c, *tap_window(t, spec, spec.out_dims))
                    grad_xp[taps] += go[:, o] * w64[(o, c, *t)]
                    grad_w[(o, c, *t)] = np.sum(xp[taps] * go[:, o])
    axes = tuple(i for i in range(go.ndim) if i != 1)
    grad_b = go.sum(axis=axes).astype(spec.dtype) if spec.bias else None
    return pad_nd_adjoint(grad_xp, spec).astype(spec.dtype), grad_w.astype(spec.dtype), grad_b


# -- pooling ----------------------------------------------------------------------------------------------
def _window_taps(spec):
    """For each window tap: per axis the input positions (clipped), whether inside, and the flat index."""
    strides = np.cumprod((1,) + spec.size[:0:-1])[::-1]  # row-major strides of the spatial axes
    for t in _taps(spec.kernel):
        positions = [np.arange(o) * s - p + k * d for o, s, p, k, d in
                     zip(spec.out_dims, spec.stride, spec.padding, t, spec.dilation)]
        inside = np.ones((), dtype=bool)
        flat = np.zeros((), dtype=np.int64)
        clipped = []
        for axis, (pos, n) in enumerate(zip(positions, spec.size)):
            shape = [1] * spec.ndim
            shape[axis] = -1
            inside = inside & ((pos >= 0) & (pos < n)).reshape(shape)
            clip = np.clip(pos, 0, n - 1)
            flat = flat + (clip * strides[axis]).reshape(shape)
            clipped.append(clip)
        yield np.ix_(*clipped), inside, flat


def _max_pool(x64, spec):
    best = np.full(spec.out_shape, -np.inf)
    index = np.full(spec.out_shape, -1, dtype=np.int64)
    for where, inside, flat in _window_taps(spec):
        value = x64[(ALL, ALL, *where)]
        best, index = max_scan(best, index, value, flat, inside)
    return best, index


def max_pool_nd(x, spec):
    """y = max over the window's taps inside the input; index = flat spatial index of the first max."""
    best, index = _max_pool(x.astype(np.float64), spec)
    return best.astype(spec.dtype), (index if spec.return_indices else None)


def avg_pool_nd(x, spec):
    """y = (sum of the window's taps inside the input) / divisor."""
    x64 = x.astype(np.float64)
    total = np.zeros(spec.out_shape)
    for where, inside, _ in _window_taps(spec):
        total += np.where(inside, x64[(ALL, ALL, *where)], 0.0)
    return (total / avg_divisors_nd(spec)).astype(spec.dtype)


def max_pool_nd_backward(x, grad_out, spec):
    """Each output's gradient goes to its arg-max, summed."""
    _, index = _max_pool(x.astype(np.float64), spec)
    planes = spec.N * spec.C
    if planes == 0:
        return np.zeros(spec.x_shape, dtype=spec.dtype)
    grad = np.zeros((planes, int(np.prod(spec.size))))
    np.add.at(grad, (np.arange(planes)[:, None], index.reshape(planes, -1)),
              grad_out.astype(np.float64).reshape(planes, -1))
    return grad.reshape(spec.x_shape).astype(spec.dtype)


def avg_pool_nd_backward(x, grad_out, spec):
    """Each output's gradient / divisor goes to every tap of its window inside the input."""
    share = grad_out.astype(np.float64) / avg_divisors_nd(spec)
    planes = spec.N * spec.C
    if planes == 0:
        return np.zeros(spec.x_shape, dtype=spec.dtype)
    grad = np.zeros((planes, int(np.prod(spec.size))))
    for _, inside, flat in _window_taps(spec):
        contribution = np.where(inside, share, 0.0).reshape(planes, -1)
        # within one tap distinct outputs read distinct inputs (or lie outside): no index repeats
        targets = np.broadcast_to(flat, spec.out_dims).reshape(-1)
        np.add.at(grad, (slice(None), targets), contribution)
    return grad.reshape(spec.x_shape).astype(spec.dtype)


OPS = {"conv{d}": conv_nd, "conv_transpose{d}": conv_transpose_nd, "conv{d}_backward": conv_nd_backward,
       "max_pool{d}": max_pool_nd, "avg_pool{d}": avg_pool_nd, "max_pool{d}_backward": max_pool_nd_backward,
       "avg_pool{d}_backward": avg_pool_nd_backward}


def ops_of_rank(*ranks) -> dict:
    """Op name -> implementation, for each spatial rank given (the same functions serve every rank)."""
    return {name.format(d=f"{r}d"): fn for r in ranks for name, fn in OPS.items()}
