"""``im2col`` for any spatial rank: conv1d / conv3d as a patch matrix times the weights (BLAS
GEMM), their transposes and backward passes as GEMM plus col2im.

The patch matrix of an N-d convolution holds, for every output position, the C/groups *
prod(kernel) input elements its window reads: ``cols[n, (c, t...), (i...)] = xp[n, c, i*s + t*d]``,
gathered by one strided slice copy per kernel tap. Columns are built for blocks of output
"rows" (the first spatial axis) whose patch matrix fits :data:`BLOCK_BYTES`, so a 3-D layer's
matrix (prod(kernel) = 27 times the input) is never built whole. The transposed convolution
multiplies ``W^T @ X`` and scatters each tap's rows back with a strided add (col2im); the
backward pass reuses both products. Sums run in the arrays' dtype through BLAS (the ``direct``
error model; integer data with exactly representable partial sums is bit-exact).
"""

from __future__ import annotations

from itertools import product

import numpy as np

from harness.ops.lowering_nd import pad_nd, pad_nd_adjoint, tap_window

ALL = slice(None)
#: Patch-matrix block: small enough to stay in cache while BLAS reads it back (as im2col's 2-D blocks).
BLOCK_BYTES = 6 * 2**20


def _taps(kernel):
    return product(*[range(k) for k in kernel])


def _is_plain_gemm(spec) -> bool:
    return all(k == 1 for k in spec.kernel) and all(s == 1 for s in spec.stride) and \
        not any(b or a for b, a in spec.padding)


def _row_window(t, spec, i0: int, i1: int) -> tuple:
    """The slices tap ``t`` reads for output rows ``i0:i1`` (first spatial axis) and every other output."""
    counts = (i1 - i0,) + spec.out_dims[1:]
    starts = (i0 * spec.stride[0],) + (0,) * (spec.ndim - 1)
    return tuple(slice(b + k * d, b + k * d + (c - 1) * s + 1, s)
                 for b, k, d, s, c in zip(starts, t, spec.dilation, spec.stride, counts))


def _gather(xp, spec, i0: int, i1: int) -> np.ndarray:
    """Patch matrix of output rows ``i0:i1``: (N, C, *kernel, i1-i0, *out_dims[1:])."""
    N = xp.shape[0]
    cols = np.empty((N, spec.C, *spec.kernel, i1 - i0, *spec.out_dims[1:]), dtype=xp.dtype)
    for t in _taps(spec.kernel):
        cols[(ALL, ALL, *t)] = xp[(ALL, ALL, *_row_window(t, spec, i0, i1))]
    return cols


def conv_nd(x, w, bias, spec):
    """y[n, g] = w[g] (Og x Cg*prod(k)) @ cols[n, g] (Cg*prod(k) x outputs), block by block of output rows."""
    G, K = spec.groups, spec.n_acc
    Og = spec.O // G
    y = np.empty(spec.out_shape, dtype=spec.dtype)
    if y.size == 0:
        return y
    wg = w.reshape(G, Og, K)
    if _is_plain_gemm(spec):  # 1x1x1, stride 1, unpadded: the input is the column matrix already
        cols = x.reshape(spec.N, G, spec.C // G, -1)
        np.matmul(wg, cols, out=y.reshape(spec.N, G, Og, -1))
        return y if bias is None else y + bias.reshape((-1,) + (1,) * spec.ndim)
    xp = pad_nd(x, spec)
    inner = int(np.prod(spec.out_dims[1:]))
    row_bytes = spec.C * int(np.prod(spec.kernel)) * inner * np.dtype(spec.dtype).itemsize
    rows = max(1, BLOCK_BYTES // max(1, row_bytes))
    for n in range(spec.N):
        for i0 in range(0, spec.out_dims[0], rows):
            i1 = min(i0 + rows, spec.out_dims[0])
            cols = _gather(xp[n:n + 1], spec, i0, i1).reshape(G, K, (i1 - i0) * inner)
            y[n, :, i0:i1] = np.matmul(wg, cols).reshape(spec.O, i1 - i0, *spec.out_dims[1:])
    if bias is not None:
        y += bias.reshape((-1,) + (1,) * spec.ndim)
    return y


def _col2im(cols, out, channel0: int, spec, positions) -> None:
    """out[:, channel0 + o, p*s + t*d] += cols[o, t..., :, p...] for every tap ``t`` (N-d col2im)."""
    Og = cols.shape[0]
    for t in _taps(spec.kernel):
        out[(ALL, slice(channel0, channel0 + Og), *tap_window(t, spec, positions))] += cols[(ALL, *t)].swapaxes(0, 1)


def conv_transpose_nd(x, w, bias, spec):
    """Per group: cols = w_g^T @ x_g (GEMM), col2im onto the uncropped output, crop, add bias."""
    Cg, Og = spec.C // spec.groups, spec.O // spec.groups
    full = np.zeros((spec.N, spec.O, *[o + 2 * p for o, p in zip(spec.out_dims, spec.padding)]), dtype=spec.dtype)
    for g in range(spec.groups):
        xg = x[:, g * Cg:(g + 1) * Cg].swapaxes(0, 1).reshape(Cg, -1)  # (Cg, N * prod(size))
        wg = w[g * Cg:(g + 1) * Cg].reshape(Cg, -1)  # (Cg, Og * prod(kernel))
        cols = (wg.T @ xg).reshape(Og, *spec.kernel, spec.N, *spec.size)
        _col2im(cols, full, g * Og, spec, spec.size)
    y = full[(ALL, ALL, *[slice(p, p + o) for p, o in zip(spec.padding, spec.out_dims)])]
    if bias is not None:
        y = y + bias.reshape((-1,) + (1,) * spec.ndim)
    return np.ascontiguousarray(y)


def conv_nd_backward(x, w, grad_out, spec):
    """grad_weight = grad_out_g @ cols^T; grad_input = col2im(w_g^T @ grad_out_g), folded through the padding."""
    Cg, Og = spec.C // spec.groups, spec.O // spec.groups
    xp = pad_nd(x, spec)
    grad_xp = np.zeros(xp.shape, dtype=spec.dtype)
    grad_w = np.empty(spec.w_shape, dtype=spec.dtype)
    cols_x = _gather(xp, spec, 0, spec.out_dims[0])  # (N, C, *kernel, *out_dims)
    for g in range(spec.groups):
        go = grad_out[:, g * Og:(g + 1) * Og].swapaxes(0, 1).reshape(Og, -1)  # (Og, N * prod(out))
        xg = np.moveaxis(cols_x[:, g * Cg:(g + 1) * Cg], 0, 1 + spec.ndim).reshape(Cg * int(np.prod(spec.kernel)), -1)
        grad_w[g * Og:(g + 1) * Og] = (go @ xg.T).reshape(Og, Cg, *spec.kernel)
        cols = (w[g * Og:(g + 1) * Og].reshape(Og, -1).T @ go).reshape(Cg, *spec.kernel, spec.N, *spec.out_dims)
        _col2im(cols, grad_xp, g * Cg, spec, spec.out_dims)
    axes = tuple(i for i in range(grad_out.ndim) if i != 1)
    grad_b = grad_out.sum(axis=axes, dtype=np.float64).astype(spec.dtype) if spec.bias else None
    return pad_nd_adjoint(grad_xp, spec), grad_w, grad_b


def ops_of_rank(*ranks) -> dict:
    """Op name -> implementation for each spatial rank (the same functions serve every rank)."""
    out = {}
    for r in ranks:
        out.update({f"conv{r}d": conv_nd, f"conv_transpose{r}d": conv_transpose_nd,
                    f"conv{r}d_backward": conv_nd_backward})
    return out
