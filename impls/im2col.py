"""``im2col``: lower the convolution to one GEMM per group on packed columns of the input.

Algorithm
    Pad once (zeros by a slice copy, other modes by ``harness.ops.padding.pad_input``), then
    gather the input taps each output needs into a column buffer ``cols[(g, c, p, q), (n, i, j)]
    = xp[n, g*Cg + c, i*sh + p*dh, j*sw + q*dw]`` — one compiled loop of row copies,
    ``impls/_im2col_pack.py`` (with overlapping taps the padded input is first split into stride
    phases, so every copy is contiguous) — and multiply: ``y[n, g] = w[g] (Og x Cg*KH*KW) @
    cols[g] (Cg*KH*KW x OH*OW)``, all groups in one ``np.matmul`` over stacked matrices (BLAS
    SGEMM/DGEMM per matrix), written by BLAS straight into the NCHW output rows. Columns are
    built in blocks of output rows of about 2 MB, so the GEMM reads them back from cache. A 1x1,
    stride-1, unpadded convolution needs no gather at all: the input *is* the column matrix, so
    it is a plain GEMM on a reshaped view.

    When there are few output positions per image (deep layers, e.g. 7x7), the images are put
    side by side in one wider matrix ``(Cg*KH*KW, N*OH*OW)``: one larger GEMM runs closer to
    peak than N thin ones, at the price of one transpose of the (small) output. Narrow rows of
    groups with few output channels (RegNetX's 3x3 group convolutions) are packed as *extended
    runs*: each output row as wide as the padded input row, one contiguous copy per tap and
    image instead of one per output row; the few junk columns are multiplied and dropped.

Cost
    FLOPs: ``2 * N * O * OH * OW * Cg * KH * KW`` (the direct count; padding taps included).
    Memory: the column buffer, ``N * C * KH * KW * OH * OW`` elements, KH*KW times the input
    (``OW`` is the padded width for extended runs), and a copy of the input for stride phases.
    It is bounded by :data:`BUDGET_MB` (default 256 MB, or the environment variable
    ``CONVBENCH_IM2COL_BUDGET_MB``): a larger problem is done in tiles of whole images, and when
    one image alone exceeds the budget, in tiles of output rows.

Where it wins
    Everywhere the GEMM dominates: 1x1 layers (a plain GEMM), 3x3 layers with many channels,
    where the gather is cheap next to ``O`` multiply-adds per gathered element, the 7x7 stride-2
    stem and dense large kernels.
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
from functools import lru_cache

import numpy as np

from harness.ops.conv_spec import CONV2D_FEATURES
from harness.backend.registry import OP_FEATURES, Backend, CostModel
from harness.ops.metrics import conv2d_work
from harness.support.machine import cache_bytes

from . import _im2col_nd_ops, _im2col_ops, _im2col_pack
from ._half import in_float32
from harness.ops.args import DTYPES

#: Column-buffer budget in MB; ``None`` reads ``CONVBENCH_IM2COL_BUDGET_MB`` (default 256).
BUDGET_MB: float | None = None
_DEFAULT_BUDGET_MB = 256.0

#: Columns are gathered in blocks of about this size even under a larger budget, so the GEMM
#: reads them back from cache. On this machine (2-core Xeon, 2 MB L2 per core) a 64 x 3136
#: GEMM (dense 7x7, 64 channels) ran 113 GFLOP/s per core on 64-256 columns (up to 3.2 MB), 89 on
#: 512 (6.4 MB) and 56 on 1024; a 64 x 147 GEMM (the stem) did not care (85-99). On a 2-core AMD
#: EPYC (1 MB L2 per core, 32 MB L3, 2026-12-02) 4 MB blocks against 2 MB ones ranged from 0.89x to
#: 1.10x on 3x3 layers and the stem from one run to the next: no gain that repeats, so 2 MB stays.
_CACHE_BLOCK_BYTES = 2 * 2**20
#: A block holds at least this many columns (so it grows, up to half the last-level cache, 16 MB when
#: that is unknown): every GEMM packs all the weights again, which at 11x11 or 15x15 (7,000-8,000
#: rows) cost as much as the columns themselves in 2 MB blocks of 70 columns. On the AMD machine,
#: 4-16 MB blocks took 0.78-0.84x the time of 2 MB ones on dense 7x7, 11x11 and 15x15 layers (64, 64
#: and 32 channels), in each of three runs; 512 columns give them 6.4, 15.9 and 14.7 MB.
_MIN_BLOCK_COLUMNS = 512


@lru_cache(maxsize=1)
def _last_level_cache_bytes() -> int | None:
    """The largest CPU cache of cpu0 in bytes, or None when it cannot be read."""
    return max(cache_bytes().values(), default=None)


def block_bytes(spec) -> int:
    """The bytes of columns gathered per GEMM for ``spec`` (see :data:`_CACHE_BLOCK_BYTES` and
    :data:`_MIN_BLOCK_COLUMNS`), before the memory budget caps it."""
    llc = _last_level_cache_bytes() or 32 * 2**20
    wide = spec.C * spec.KH * spec.KW * np.dtype(spec.dtype).itemsize * _MIN_BLOCK_COLUMNS
    return max(_CACHE_BLOCK_BYTES, min(wide, llc // 2))


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
        xp = _im2col_pack.source(x, spec)  # padded, flat, maybe split into stride phases
        for n0, n1, i0, i1 in _tiles(spec, min(budget_bytes(), block_bytes(spec))):
            _gemm_rows(xp[n0:n1], wg, spec, i0, i1, out=y[n0:n1, :, i0:i1])
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y


def _is_plain_gemm(spec) -> bool:
    return spec.KH == spec.KW == 1 and spec.stride == (1, 1) and not any(spec.padding)


def _blocking(spec, budget: int) -> tuple[int, int]:
    """``(images, rows)`` per block whose columns fit in ``budget``: several whole images when one
    fits, else output rows of one image."""
    width = _im2col_pack.layout(spec)[1] if _im2col_pack.packs_runs(spec) else spec.OW  # columns per output row
    row_bytes = max(1, spec.C * spec.KH * spec.KW * width * np.dtype(spec.dtype).itemsize)
    image_bytes = row_bytes * max(1, spec.OH)
    if image_bytes <= budget:
        return max(1, budget // image_bytes), max(1, spec.OH)
    return 1, max(1, budget // row_bytes)


def _tiles(spec, budget: int):
    """(n0, n1, i0, i1) blocks of images and output rows whose columns fit in ``budget``."""
    images, rows = _blocking(spec, budget)
    for n0 in range(0, spec.N, images):
        for i0 in range(0, spec.OH, rows):
            yield n0, min(n0 + images, spec.N), i0, min(i0 + rows, spec.OH)


def _gemm_rows(xp, wg, spec, i0: int, i1: int, out) -> None:
    """Output rows ``i0:i1`` of every image in the padded block ``xp`` into ``out`` (n, O, i1-i0, OW)."""
    N, G = xp.shape[0], spec.groups
    K, P = spec.n_acc, (i1 - i0) * spec.OW
    if _im2col_pack.packs_runs(spec):  # extended rows: junk columns computed, then dropped
        off, width, _ = _im2col_pack.layout(spec)
        cols = np.empty((spec.C * spec.KH * spec.KW, N * (i1 - i0) * width), dtype=spec.dtype)
        _im2col_pack.pack_runs(xp, off, width, spec.OW, i0, i1, cols)
        ext = np.matmul(wg, cols.reshape(G, K, -1)).reshape(spec.O, N, i1 - i0, width)
        out[...] = ext[..., :spec.OW].transpose(1, 0, 2, 3)
        return
    cols = _gather(xp, spec, i0, i1)  # (C*KH*KW, N*rows*OW): images, then rows, then columns
    if P <= _WIDE_GEMM_MAX_POSITIONS and N > 1:
        wide = np.matmul(wg, cols.reshape(G, K, N * P))  # one (Og x K) @ (K x N*P) per group
        out[...] = wide.reshape(spec.O, N, *out.shape[2:]).transpose(1, 0, 2, 3)
        return
    for m in range(N):  # BLAS reads each image's columns and writes its rows in place (strided)
        rows = out[m].reshape((G, -1, P), copy=False)  # whole output rows: a view, never a copy
        np.matmul(wg, cols[:, m * P:(m + 1) * P].reshape(G, K, P), out=rows)


def _gather(xp, spec, i0: int, i1: int) -> np.ndarray:
    """Columns for output rows ``i0:i1`` of every image in ``xp``: one compiled loop of row
    copies (:func:`impls._im2col_pack.pack`), ``(C*KH*KW, N*(i1-i0)*OW)``."""
    N, OW = xp.shape[0], spec.OW
    cols = np.empty((spec.C * spec.KH * spec.KW, N * (i1 - i0) * OW), dtype=spec.dtype)
    off, row_step, col_step = _im2col_pack.layout(spec)
    _im2col_pack.pack(xp, off, row_step, col_step, OW, i0, i1, cols)
    return cols


def cost_features(op, spec) -> dict[str, float] | None:
    """Work for ``auto``: the GEMMs' multiply-adds, the gathered columns, one GEMM per group, and
    the weights each GEMM packs again (``weight_reads``: blocks x O x C/groups x KH x KW).

    The last term is what large kernels cost beyond their multiply-adds: at 11x11 or 15x15 a block
    of 2 MB holds one output row, so each of OH GEMMs (O x 7,000-8,000 by a few
    dozen columns) packs all the weights again, as many bytes as the columns themselves; without
    the term ``auto`` took im2col there at 1.3-1.9x numba_cpu's time (2 threads, 2026-12-02).
    """
    if op != "conv2d":
        return None
    plain = _is_plain_gemm(spec)
    cols = 0.0 if plain else spec.N * spec.C * spec.KH * spec.KW * spec.OH * spec.OW
    blocks = 1 if plain else _block_count(spec, min(budget_bytes(), block_bytes(spec)))
    return {**conv2d_work(spec), "groups": float(spec.groups), "cols": float(cols),
            "weight_reads": float(blocks * spec.O * spec.n_acc)}


def _block_count(spec, budget: int) -> int:
    """How many blocks :func:`_tiles` cuts the call into (without walking them)."""
    images, rows = _blocking(spec, budget)
    return -(-spec.N // images) * -(-spec.OH // rows)


#: ``weight_reads`` was added later: 0.44 x ``cols``, the ratio of the two in this machine's calibration with
#: 36 probe layers (2 threads, OpenBLAS SkylakeX kernel, 2026-12-02), so that a calibration whose layers
#: lack large dense kernels still charges the term (through the prior of ``harness.autoselect.fit``).
COST = CostModel(cost_features, {"cols": 3.25e-10, "groups": 3.86e-07, "macs": 2.25e-11, "thin_macs": 4.17e-11,
                                 "weight_reads": 1.4e-10},
                 source="convbench calibrate --threads 1 (non-negative least squares on relative error) from convbench bench --suite resnet50,vgg16,mobilenetv2,large_kernels --batch 1 --threads 1 on the project machine (2-core AMD Zen 5 VM, OpenBLAS with the OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE overrides, numpy 2.4, numba 0.68, torch 2.13 CPU), 2026-11-25: median fit error 1.13x (im2col) to 1.46x (fft)")

BACKEND = Backend(
    name="im2col",
    device="cpu",
    # conv_transpose2d and conv2d_backward: GEMM + col2im, no zero-interleaving (impls/_im2col_ops.py)
    ops={"conv2d": in_float32(conv2d), "conv_transpose2d": in_float32(_im2col_ops.conv_transpose2d),
         "conv2d_backward": in_float32(_im2col_ops.conv2d_backward),
         # conv3d and its transpose and backward: the N-d patch matrix (impls/_im2col_nd_ops.py); the
         # 1-D ops are left to the harness's lowering onto the 2-D ones above (an image of height 1)
         **{op: in_float32(fn) for op, fn in _im2col_nd_ops.ops_of_rank(3).items()}},
    dtypes=frozenset(DTYPES),  # float16/bfloat16: up-cast to float32 (SGEMM), rounded once (impls/_half.py)
    features={"conv2d": CONV2D_FEATURES, "conv_transpose2d": OP_FEATURES["conv_transpose2d"],
              "conv2d_backward": OP_FEATURES["conv2d_backward"],
              **{op: OP_FEATURES[op] for op in _im2col_nd_ops.ops_of_rank(3)}},
    exact=True,
    deterministic=True,
    auto_rank=20,
    cost=COST,
    description="pack taps into columns (compiled row copies), one BLAS GEMM per group",
)
