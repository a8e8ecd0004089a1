"""``im2col``: lower the convolution to one GEMM per group on a strided view of the input.

Algorithm
    Pad once (``harness.ops.padding.pad_input``, every padding mode), then gather the input taps
    each output needs into a column buffer ``cols[n, g, (c, p, q), (i, j)] =
    xp[n, g*Cg + c, i*sh + p*dh, j*sw + q*dw]`` — one strided slice copy per kernel tap — and
    multiply: ``y[n, g] = w[g] (Og x Cg*KH*KW) @ cols[n, g] (Cg*KH*KW x OH*OW)``, all groups and
    images in one ``np.matmul`` over stacked matrices (BLAS SGEMM/DGEMM per matrix). The output
    comes out NCHW with no transpose. A 1x1, stride-1, unpadded convolution needs no gather at
    all: the input *is* the column matrix, so it is a plain GEMM on a reshaped view.

    When there are few output positions per image (deep layers, e.g. 7x7), the images are put
    side by side in one wider matrix ``(Cg*KH*KW, N*OH*OW)``: one larger GEMM runs closer to
    peak than N thin ones, at the price of one transpose of the (small) output.

Cost
    FLOPs: ``2 * N * O * OH * OW * Cg * KH * KW`` (the direct count; padding taps included).
    Memory: the column buffer, ``N * C * KH * KW * OH * OW`` elements, KH*KW times the input.
    It is bounded by :data:`BUDGET_MB` (default 256 MB, or the environment variable
    ``CONVBENCH_IM2COL_BUDGET_MB``): a larger problem is done in tiles of whole images, and when
    one image alone exceeds the budget, in tiles of output rows.

Where it wins
    Everywhere the GEMM dominates: 1x1 layers (a plain GEMM), and 3x3 layers with many
    channels, where the gather is cheap next to ``O`` multiply-adds per gathered element.
    It loses where the gather dominates (depthwise, few output channels) and to FFT on large
    kernels.

Accuracy
    Each output is one dot product of length ``Cg*KH*KW`` done by BLAS: it obeys the
    ``direct`` error model, and integer data with exactly representable partial sums is
    bit-exact (``exact=True``). The GEMM shapes, and so OpenBLAS's summation order, depend
    only on the problem and the budget, not on BLAS's thread count (threads split rows and
    columns, never the reduction): results are bit-identical run after run and with 1 or 2
    threads (``deterministic=True``, checked by ``tests/test_im2col.py``). A different budget
    may tile differently and change the last bits (OpenBLAS's edge kernels sum in another order).
"""

from __future__ import annotations

import os

import numpy as np

from harness.ops.conv_spec import CONV2D_FEATURES
from harness.ops.padding import pad_input
from harness.backend.registry import OP_FEATURES, Backend, CostModel
from harness.ops.metrics import conv2d_work

from . import _im2col_ops
from ._half import in_float32
from harness.ops.args import DTYPES

#: Column-buffer budget in MB; ``None`` reads ``CONVBENCH_IM2COL_BUDGET_MB`` (default 256).
BUDGET_MB: float | None = None
_DEFAULT_BUDGET_MB = 256.0

#: Columns are gathered in blocks of about this size even under a larger budget, so the GEMM
#: reads them back from cache: 4-8 MB blocks ran res2/vgg conv1_2 3x3 layers 1.5x faster than
#: one 58 MB buffer on this machine (Zen 5, 2 threads; ``python -m harness.bench.groups``).
_CACHE_BLOCK_BYTES = 6 * 2**20

#: Below this many output positions per image, images share one GEMM (see module docstring).
#: 196 (14x14) is where N separate GEMMs stopped losing to one wide one on this machine.
_WIDE_GEMM_MAX_POSITIONS = 196


def budget_bytes() -> int:
    """The column-buffer budget in bytes (:data:`BUDGET_MB`, else the environment, else 256 MB)."""
    mb = BUDGET_MB
    if mb is None:
        mb = float(os.environ.get("CONVBENCH_IM2COL_BUDGET_MB", _DEFAULT_BUDGET_MB))
    if mb <= 0:
        raise ValueError(f"the im2col budget must be positive, got {mb} MB")
    return int(mb * 2**20)


def conv2d(x, w, bias, spec):
    G = spec.groups
    Og, K = spec.O // G, spec.n_acc
    y = np.empty(spec.out_shape, dtype=spec.dtype)
    if y.size == 0:
        return y
    wg = w.reshape(G, Og, K)
    if _is_plain_gemm(spec):
        cols = x.reshape(spec.N, G, spec.C // G, spec.H * spec.W)  # a view when x is contiguous
        np.matmul(wg, cols, out=y.reshape(spec.N, G, Og, spec.H * spec.W))
    else:
        xp = pad_input(x, spec)
        for n0, n1, i0, i1 in _tiles(spec, min(budget_bytes(), _CACHE_BLOCK_BYTES)):
            _gemm_rows(xp[n0:n1], wg, spec, i0, i1, out=y[n0:n1, :, i0:i1])
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y


def _is_plain_gemm(spec) -> bool:
    return spec.KH == spec.KW == 1 and spec.stride == (1, 1) and not any(spec.padding)


def _tiles(spec, budget: int):
    """(n0, n1, i0, i1) blocks of images and output rows whose columns fit in ``budget``."""
    row_bytes = spec.C * spec.KH * spec.KW * spec.OW * np.dtype(spec.dtype).itemsize
    image_bytes = row_bytes * spec.OH
    if image_bytes <= budget:
        step = max(1, budget // image_bytes)
        for n0 in range(0, spec.N, step):
            yield n0, min(n0 + step, spec.N), 0, spec.OH
        return
    rows = max(1, budget // row_bytes)
    for n in range(spec.N):
        for i0 in range(0, spec.OH, rows):
            yield n, n + 1, i0, min(i0 + rows, spec.OH)


def _gemm_rows(xp, wg, spec, i0: int, i1: int, out) -> None:
    """Output rows ``i0:i1`` of every image in the padded block ``xp`` into ``out`` (n, O, i1-i0, OW)."""
    N, G = xp.shape[0], spec.groups
    K, P = spec.n_acc, (i1 - i0) * spec.OW
    if P <= _WIDE_GEMM_MAX_POSITIONS and N > 1:
        cols = _gather(xp, spec, i0, i1, images_inner=True)  # (C, KH, KW, N, rows, OW)
        wide = np.matmul(wg, cols.reshape(G, K, N * P))  # one (Og x K) @ (K x N*P) per group
        out[...] = wide.reshape(spec.O, N, *out.shape[2:]).transpose(1, 0, 2, 3)
        return
    cols = _gather(xp, spec, i0, i1, images_inner=False)  # (N, C, KH, KW, rows, OW)
    if out.flags.c_contiguous:  # whole images: BLAS writes the output in place
        np.matmul(wg, cols.reshape(N, G, K, P), out=out.reshape(N, G, -1, P))
    else:
        out[...] = np.matmul(wg, cols.reshape(N, G, K, P)).reshape(out.shape)


def _gather(xp, spec, i0: int, i1: int, images_inner: bool) -> np.ndarray:
    """Columns for output rows ``i0:i1``, one strided slice copy per kernel tap.

    ``(N, C, KH, KW, rows, OW)``, or ``(C, KH, KW, N, rows, OW)`` with ``images_inner`` (the
    wide-GEMM layout, so ``(C*KH*KW, N*rows*OW)`` is a reshape, not another copy).
    """
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    N, OH, OW = xp.shape[0], i1 - i0, spec.OW
    if images_inner:
        cols = np.empty((spec.C, spec.KH, spec.KW, N, OH, OW), dtype=spec.dtype)
        src = xp.transpose(1, 0, 2, 3)
    else:
        cols = np.empty((N, spec.C, spec.KH, spec.KW, OH, OW), dtype=spec.dtype)
        src = xp
    for p in range(spec.KH):
        r0 = i0 * sh + p * dh
        rows = slice(r0, r0 + (OH - 1) * sh + 1, sh)
        for q in range(spec.KW):
            c0 = q * dw
            tap = src[:, :, rows, c0 : c0 + (OW - 1) * sw + 1 : sw]
            if images_inner:
                cols[:, p, q] = tap
            else:
                cols[:, :, p, q] = tap
    return cols


def cost_features(op, spec) -> dict[str, float] | None:
    """Work for ``auto``: the GEMMs' multiply-adds, the gathered columns, one GEMM per group."""
    if op != "conv2d":
        return None
    plain = spec.KH == spec.KW == 1 and spec.stride == (1, 1) and not any(spec.padding)
    cols = 0.0 if plain else spec.N * spec.C * spec.KH * spec.KW * spec.OH * spec.OW
    return {**conv2d_work(spec), "groups": float(spec.groups), "cols": float(cols)}


COST = CostModel(cost_features, {"cols": 3.25e-10, "groups": 3.86e-07, "macs": 2.25e-11, "thin_macs": 4.17e-11},
                 source="convbench calibrate --threads 1 (non-negative least squares on relative error) from convbench bench --suite resnet50,vgg16,mobilenetv2,large_kernels --batch 1 --threads 1 on the project machine (2-core AMD Zen 5 VM, OpenBLAS with the OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE overrides, numpy 2.4, numba 0.68, torch 2.13 CPU), 2026-11-25: median fit error 1.13x (im2col) to 1.46x (fft)")

BACKEND = Backend(
    name="im2col",
    device="cpu",
    # conv_transpose2d and conv2d_backward: GEMM + col2im, no zero-interleaving (impls/_im2col_ops.py)
    ops={"conv2d": in_float32(conv2d), "conv_transpose2d": in_float32(_im2col_ops.conv_transpose2d),
         "conv2d_backward": in_float32(_im2col_ops.conv2d_backward)},
    dtypes=frozenset(DTYPES),  # float16/bfloat16: up-cast to float32 (SGEMM), rounded once (impls/_half.py)
    features={"conv2d": CONV2D_FEATURES, "conv_transpose2d": OP_FEATURES["conv_transpose2d"],
              "conv2d_backward": OP_FEATURES["conv2d_backward"]},
    exact=True,
    deterministic=True,
    auto_rank=20,
    cost=COST,
    description="gather taps into columns (strided slices), one BLAS GEMM per group",
)
