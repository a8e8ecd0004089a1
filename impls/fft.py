"""``fft``: convolution by real FFTs (``scipy.fft``), channels contracted in the frequency domain.

Algorithm
    Pad once (``harness.ops.padding.pad_input``, every padding mode); dilate the kernel by inserting
    zeros (``eKH = dh*(KH-1)+1``); take the stride by subsampling input and kernel into
    ``sh*sw`` phases that become extra channels (:func:`polyphase`: no dropped output is ever
    computed). What is left is a stride-1 valid cross-correlation, computed as
    ``irfft2(rfft2(x) * rfft2(flipped w))`` per (input, output) channel pair on a transform of
    ``Lh x Lw`` points with no wrap-around where it matters. The channel sum is a batched
    complex GEMM over the ``Lh * (Lw//2 + 1)`` frequencies and the groups,
    ``Y[f, g] = W[f, g] (Og x Cg) @ X[f, g] (Cg x N*tiles)`` (complex64 for float32,
    complex128 for float64). Weights are transformed once per call; bias is added at the end.

    Large images are cut into overlapping tiles (overlap-save: each ``Th x Tw`` block of output
    reads a ``(Th+eKH-1) x (Tw+eKW-1)`` block of input, transformed at ``Lh x Lw``), and tiles of
    all images become the columns of the frequency-domain GEMM. The transform size is chosen by
    :func:`plan` from an operation count among ``next_fast_len`` sizes, within a memory budget
    (:data:`BUDGET_MB`, default 256 MB, or ``CONVBENCH_FFT_BUDGET_MB``); the work is done in
    chunks of tile columns that fit it.

Cost
    Transforms: ``~2.5 * L log2 L`` real flops each for ``N*tiles*(C + O) + O*Cg`` transforms
    of ``L = Lh*Lw`` points. Contraction: ``8 * N*tiles * F * O * Cg`` real flops,
    ``F = Lh*(Lw//2+1)`` — independent of the kernel size, against ``2 * N*O*OH*OW*Cg*KH*KW``
    direct. Memory: ``O*Cg*F`` complex weights plus a chunk of ``(C + O) * F`` complex values
    per tile column. The transforms use as many workers as BLAS has threads (threadpoolctl's
    limit), and BLAS runs the contraction: one thread setting governs the whole backend.

Where it wins
    Large kernels: from about 9x9 up the kernel-size-independent cost beats any direct method
    (and at 15x15 and beyond by a wide margin). It loses on 1x1 and 3x3 kernels, where the
    transform of each channel costs more than the few taps it replaces.

Accuracy
    FFT rounding is global: every output carries an error of about ``u * log2(L) * ||x|| ||w||``
    over the window it depends on, not relative to that output. The ``fft`` error model
    (``harness.ops.tolerance.fft_bound``) bounds it by ``A``'s maximum over each image and output
    channel times ``u * (K_SIGMA*sqrt(C/groups) + 2 + 4*log2(padded area))``. Measured (max
    error in units of that bound, float32 / float64; C=O=16, 32x32 images, batch 2, 'same'
    padding, 5 seeds; ``python -m harness.bench.accuracy``): 3x3 0.030 / 0.032,
    7x7 0.014 / 0.040, 15x15 0.007 / 0.037, 31x31 0.003 / 0.027; as a fraction of ``max A``
    the float32 error is 9e-8 (3x3) down to 1e-8 (31x31). The verifier's random cases peak at
    0.21 units (1x1 depthwise, where ``A`` is one product). A flipped kernel or a one-pixel
    shift errs by 10^3-10^5 units (``tests/test_fft.py``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from harness.ops.conv_spec import CONV2D_FEATURES
from harness.ops.padding import pad_input
from harness.backend.registry import OP_FEATURES, Backend, CostModel
from harness.support.timing import blas_pools

from ._range_scaling import scaled, unit_exponents, unscale

from . import _fft_ops
from ._half import in_float32
from harness.ops.args import DTYPES

#: Working-memory budget in MB; ``None`` reads ``CONVBENCH_FFT_BUDGET_MB`` (default 256).
BUDGET_MB: float | None = None
_DEFAULT_BUDGET_MB = 256.0

#: Transform sizes tried for tiles (all 5-smooth); the whole image's ``next_fast_len`` is always a candidate.
_TILE_SIZES = (16, 32, 48, 64, 96, 128, 192, 256)

#: Relative cost of one real flop in the FFTs against one in the complex GEMM, by which GEMM
#: flops are discounted in :func:`plan`: on this machine (2 threads) batched 64x64 cgemm ran at
#: 22-23 GFLOP/s and scipy.fft's rfft2 at 8-10 "GFLOP/s" (counting 2.5 L log2 L) for 32-128
#: point sides.
_GEMM_SPEEDUP = 2.5


@dataclass(frozen=True)
class Plan:
    """Transform size ``(Lh, Lw)`` and output tile ``(Th, Tw)`` with the tile grid ``(nth, ntw)``."""

    Lh: int
    Lw: int
    Th: int
    Tw: int
    nth: int
    ntw: int

    @property
    def n_freq(self) -> int:
        return self.Lh * (self.Lw // 2 + 1)


def budget_bytes() -> int:
    """The working-memory budget in bytes (:data:`BUDGET_MB`, else the environment, else 256 MB)."""
    mb = BUDGET_MB
    if mb is None:
        mb = float(os.environ.get("CONVBENCH_FFT_BUDGET_MB", _DEFAULT_BUDGET_MB))
    if mb <= 0:
        raise ValueError(f"the fft budget must be positive, got {mb} MB")
    return int(mb * 2**20)


def plan(spec, budget: int | None = None) -> Plan:
    """Transform and tile sizes for the stride-1 problem ``spec`` (see :func:`polyphase`).

    The cheapest by estimated cost (transform flops plus GEMM flops discounted by
    :data:`_GEMM_SPEEDUP`) among plans whose weights and one tile column fit ``budget``
    (default :func:`budget_bytes`); if none fits, the smallest.
    """
    return _plan(spec, budget_bytes() if budget is None else budget)


@lru_cache(maxsize=1024)
def _plan(spec, budget: int) -> Plan:
    """:func:`plan`, kept per (spec, budget): every call asks twice (workspace estimate, run)."""
    import scipy.fft

    eh, ew = _dilated_kernel_size(spec)
    vh, vw = _valid_rows_needed(spec)
    csize = 2 * np.dtype(spec.dtype).itemsize
    Cg = spec.C // spec.groups

    def axis_options(v, e):
        full = scipy.fft.next_fast_len(v + e - 1, real=True)
        sizes = {full} | {L for L in _TILE_SIZES if L < full and L - e + 1 >= max(e, 8)}
        return [(L, min(L - e + 1, v)) for L in sorted(sizes)]

    best = None
    for Lh, Th in axis_options(vh, eh):
        for Lw, Tw in axis_options(vw, ew):
            p = Plan(Lh, Lw, Th, Tw, -(-vh // Th), -(-vw // Tw))
            cols = max(spec.N, 1) * p.nth * p.ntw
            weights = spec.O * Cg * p.n_freq * csize
            per_col = 2 * (spec.C + spec.O) * p.n_freq * csize
            fits = weights + per_col <= budget
            ffts = (cols * (spec.C + spec.O) + spec.O * Cg) * 2.5 * Lh * Lw * math.log2(Lh * Lw)
            cost = ffts + cols * p.n_freq * spec.O * Cg * 8 / _GEMM_SPEEDUP
            key = (not fits, cost if fits else weights + per_col)
            if best is None or key < best[0]:
                best = (key, p)
    return best[1]


def conv2d(x, w, bias, spec):
    y = np.empty(spec.out_shape, dtype=spec.dtype)
    if y.size == 0:
        return y
    # data near the dtype's limits is scaled by powers of two (exact) so the transforms stay in range
    ex, ew = unit_exponents(x, w, spec.dtype)
    x, w = scaled(x, ex), scaled(w, ew)
    xq, wq, s1 = polyphase(pad_input(x, spec), w, spec)
    p = plan(s1)
    tiles = _tile_view(xq, s1, p)  # (N, nth, ntw, C, Th+KH-1, Tw+KW-1), read-only view
    workers = fft_workers()
    W = _weight_spectrum(wq, s1, p, workers)  # (F, G, Og, Cg)
    per_col = 2 * (s1.C + s1.O) * p.n_freq * 2 * np.dtype(spec.dtype).itemsize
    step = max(1, (budget_bytes() - W.nbytes) // per_col)
    out = np.empty((s1.N, p.nth, p.ntw, s1.O, p.Th, p.Tw), dtype=spec.dtype)
    for block in _chunks(tiles.shape[:3], step):
        chunk = tiles[block]
        cols = chunk.reshape(-1, *chunk.shape[3:])  # copies only this chunk of overlapping tiles
        out[block] = _correlate_columns(cols, W, s1, p, workers).reshape(*chunk.shape[:3], *out.shape[3:])
    grid = out.transpose(0, 3, 1, 4, 2, 5).reshape(s1.N, s1.O, p.nth * p.Th, p.ntw * p.Tw)
    y[...] = grid[:, :, : spec.OH, : spec.OW]
    unscale(y, ex + ew)
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y


def polyphase(xp, w, spec):
    """The same outputs as a stride-1, undilated, unpadded problem: ``(xq, wq, spec1)``.

    Dilation inserts zeros into the kernel. Stride splits the padded input and the dilated
    kernel into ``sh * sw`` phases (``x[i*s + r]`` for each offset ``r``) that become extra
    channels: ``y[i] = sum_r sum_k xq[r][i + k] * wq[r][k]``. So no output the stride drops is
    computed, and no product outside a kept output's window enters a transform, where its
    rounding would spread to kept outputs.
    """
    (sh, sw), (dh, dw), G = spec.stride, spec.dilation, spec.groups
    eh, ew = _dilated_kernel_size(spec)
    s1 = stride1_spec(spec)
    kh, kw, Hq, Wq = s1.KH, s1.KW, s1.H, s1.W
    wd = np.zeros((spec.O, spec.C // G, kh * sh, kw * sw), dtype=w.dtype)
    wd[:, :, :eh:dh, :ew:dw] = w
    if (sh, sw) == (1, 1):
        return xp[:, :, :Hq, :Wq], wd, s1
    wq = wd.reshape(spec.O, -1, kh, sh, kw, sw).transpose(0, 1, 3, 5, 2, 4).reshape(spec.O, -1, kh, kw)
    xe = np.zeros((spec.N, spec.C, Hq * sh, Wq * sw), dtype=xp.dtype)
    h, w_ = min(Hq * sh, xp.shape[2]), min(Wq * sw, xp.shape[3])
    xe[:, :, :h, :w_] = xp[:, :, :h, :w_]
    xq = xe.reshape(spec.N, spec.C, Hq, sh, Wq, sw).transpose(0, 1, 3, 5, 2, 4)
    xq = xq.reshape(spec.N, spec.C * sh * sw, Hq, Wq)  # channel (c, rh, rw): groups stay contiguous
    return xq, wq, s1


def stride1_spec(spec):
    """The stride-1, undilated, unpadded problem :func:`polyphase` turns ``spec`` into."""
    from harness.ops.conv_spec import Conv2dSpec

    (sh, sw) = spec.stride
    eh, ew = _dilated_kernel_size(spec)
    kh, kw = -(-eh // sh), -(-ew // sw)
    return Conv2dSpec(spec.N, spec.C * sh * sw, spec.OH + kh - 1, spec.OW + kw - 1, spec.O, kh, kw,
                      groups=spec.groups, dtype=spec.dtype)


def workspace_bytes(op, spec) -> int:
    """Memory of a conv2d call beyond input and output: the weight spectrum (all of it, even when
    it alone exceeds the budget), one chunk of tile spectra, the tiled output, the dilated
    weights and, with stride, the phase-split input."""
    if op != "conv2d" or 0 in spec.out_shape:
        return 0
    s1 = stride1_spec(spec)
    p = plan(s1)
    item = np.dtype(spec.dtype).itemsize
    weights = s1.O * (s1.C // s1.groups) * p.n_freq * 2 * item
    per_col = 2 * (s1.C + s1.O) * p.n_freq * 2 * item
    cols = min(max(s1.N, 1) * p.nth * p.ntw, max(1, (budget_bytes() - weights) // per_col))
    out = s1.N * p.nth * p.ntw * s1.O * p.Th * p.Tw * item
    dilated = s1.O * (s1.C // s1.groups) * s1.KH * s1.KW * item
    phases = s1.N * s1.C * s1.H * s1.W * item if spec.stride != (1, 1) else 0
    return weights + cols * per_col + out + dilated + phases


def _chunks(grid: tuple[int, int, int], step: int):
    """Index blocks of at most ``step`` tiles over the (N, nth, ntw) grid: images, else rows, else tiles."""
    N, nth, ntw = grid
    if step >= nth * ntw:
        k = step // (nth * ntw)
        for n0 in range(0, N, k):
            yield np.s_[n0 : n0 + k]
    elif step >= ntw:
        k = step // ntw
        for n in range(N):
            for r0 in range(0, nth, k):
                yield np.s_[n : n + 1, r0 : r0 + k]
    else:
        for n in range(N):
            for r in range(nth):
                for c0 in range(0, ntw, step):
                    yield np.s_[n : n + 1, r : r + 1, c0 : c0 + step]


def _dilated_kernel_size(spec) -> tuple[int, int]:
    return spec.dilation[0] * (spec.KH - 1) + 1, spec.dilation[1] * (spec.KW - 1) + 1


def _valid_rows_needed(spec) -> tuple[int, int]:
    """Stride-1 output rows/columns up to the last one the stride keeps."""
    return (spec.OH - 1) * spec.stride[0] + 1, (spec.OW - 1) * spec.stride[1] + 1


def _tile_view(xp, spec, p: Plan) -> np.ndarray:
    """Overlapping input blocks (N, nth, ntw, C, Th+eh-1, Tw+ew-1) of the zero-extended input."""
    eh, ew = _dilated_kernel_size(spec)
    H, W = p.nth * p.Th + eh - 1, p.ntw * p.Tw + ew - 1
    if p.nth == p.ntw == 1 and xp.shape[2:] == (H, W):
        return xp[:, None, None]
    xe = np.zeros((spec.N, spec.C, H, W), dtype=xp.dtype)
    h, w = min(H, xp.shape[2]), min(W, xp.shape[3])
    xe[:, :, :h, :w] = xp[:, :, :h, :w]
    sN, sC, sH, sW = xe.strides
    return np.lib.stride_tricks.as_strided(
        xe,
        shape=(spec.N, p.nth, p.ntw, spec.C, p.Th + eh - 1, p.Tw + ew - 1),
        strides=(sN, p.Th * sH, p.Tw * sW, sC, sH, sW),
        writeable=False,
    )


def _weight_spectrum(w, spec, p: Plan, workers: int) -> np.ndarray:
    """``rfft2`` of the flipped kernels at the plan's size, as (F, groups, Og, Cg).

    Correlating with ``w`` is convolving with ``w`` flipped, so no conjugate pass is needed.
    Transforming over the two leading axes of a (KH, KW, O, Cg) view yields the frequencies
    first, every frequency's (Og x Cg) matrix contiguous for BLAS, without a transposing copy.
    """
    import scipy.fft

    taps_first = w[:, :, ::-1, ::-1].transpose(2, 3, 0, 1)
    Wf = scipy.fft.rfft2(taps_first, s=(p.Lh, p.Lw), axes=(0, 1), workers=workers)
    G = spec.groups
    return Wf.reshape(p.n_freq, G, spec.O // G, spec.C // G)


def _correlate_columns(blocks, W, spec, p: Plan, workers: int) -> np.ndarray:
    """Valid correlation of input blocks (P, C, bh, bw) with the spectrum W: (P, O, Th, Tw)."""
    import scipy.fft

    P, G = blocks.shape[0], spec.groups
    X = scipy.fft.rfft2(blocks, s=(p.Lh, p.Lw), axes=(-2, -1), workers=workers)  # (P, C, Lh, Lw//2+1)
    Xf = np.ascontiguousarray(X.reshape(P, G, spec.C // G, -1).transpose(3, 1, 2, 0))  # (F, G, Cg, P)
    Yf = np.matmul(W, Xf)  # (F, G, Og, P)
    Y = np.ascontiguousarray(Yf.transpose(3, 1, 2, 0)).reshape(P, spec.O, p.Lh, p.Lw // 2 + 1)
    y = scipy.fft.irfft2(Y, s=(p.Lh, p.Lw), axes=(-2, -1), workers=workers)
    # a full (linear) convolution: valid outputs start after the kernel's first KH-1 / KW-1
    return y[:, :, spec.KH - 1 : spec.KH - 1 + p.Th, spec.KW - 1 : spec.KW - 1 + p.Tw]


def fft_workers() -> int:
    """Threads for the transforms: as many as BLAS has, so one setting governs the backend."""
    libs = blas_pools().lib_controllers
    return max((lib.num_threads for lib in libs), default=1)


def cost_features(op, spec) -> dict[str, float] | None:
    """Work for ``auto``: transform sizes (after splitting stride phases into channels, see
    :func:`polyphase`), the frequency-domain complex multiply-adds, and the outputs."""
    if op != "conv2d":
        return None
    s1 = stride1_spec(spec)
    p = plan(s1)
    cols = max(spec.N, 1) * p.nth * p.ntw
    L = p.Lh * p.Lw
    Cg = s1.C // s1.groups
    return {
        "call": 1.0,
        "fft": float((cols * (s1.C + s1.O) + s1.O * Cg) * L * math.log2(max(L, 2))),
        "cmacs": float(cols * p.n_freq * s1.O * Cg),
        "groups": float(s1.groups * p.n_freq),
        "outputs": float(spec.N * spec.O * spec.OH * spec.OW),
    }


COST = CostModel(cost_features, {"call": 0.000129, "cmacs": 3.41e-10, "fft": 4.78e-10, "groups": 3e-10,
                                 "outputs": 8.17e-10}, source="convbench calibrate --threads 1 (non-negative least squares on relative error) from convbench bench --suite resnet50,vgg16,mobilenetv2,large_kernels --batch 1 --threads 1 on the project machine (2-core AMD Zen 5 VM, OpenBLAS with the OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE overrides, numpy 2.4, numba 0.68, torch 2.13 CPU), 2026-11-25: median fit error 1.13x (im2col) to 1.46x (fft)")

BACKEND = Backend(
    name="fft",
    device="cpu",
    # conv2d_backward: grad_weight by FFT correlation (stride 1, no dilation), the rest lowered (impls/_fft_ops.py)
    ops={"conv2d": in_float32(conv2d), "conv2d_backward": in_float32(_fft_ops.conv2d_backward)},
    dtypes=frozenset(DTYPES),  # float16/bfloat16: transforms in float32, rounded once (impls/_half.py)
    features={"conv2d": CONV2D_FEATURES, "conv2d_backward": OP_FEATURES["conv2d_backward"]},
    exact=False,
    deterministic=True,
    nonfinite=False,  # one NaN/Inf spreads over its whole transform (tile or image)
    error_model="fft",
    workspace_bytes=workspace_bytes,
    auto_rank=60,
    cost=COST,
    description="scipy.fft real transforms, overlap-save tiles, channels as batched complex GEMM",
)
