"""``numba_cpu``: a direct convolution compiled by Numba, parallel over the CPU cores.

The kernels (``impls/_numba_cpu_kernels.py``, see its docstring) run an *offset GEMM* over the
padded input split into stride phases, whose innermost loop is contiguous for every stride and
dilation. Every padding mode is applied while splitting. Groups with at least 4 output channels
use the dense kernel (register tiles of 4 output channels x 64 positions over the whole
reduction, parallel over runs of batch x group x output-channel block x tile). Depthwise convolutions (one input channel per group)
with zero padding use the depthwise kernel: parallel over (batch x output channel) planes, each
thread's padded plane buffer zeroed once and only the data copied in per plane, a 3x3 kernel in
one pass. Other padding modes and groups with fewer than 4 output channels use the grouped
kernel (parallel over batch x group, each group padded into a buffer that stays in cache).
This module only prepares arguments: offsets and tile sizes; the weights are read in place.

Compilation: the kernels are compiled on first use and cached on disk (``numba`` ``cache=True``,
in ``impls/__pycache__``); :func:`warmup` compiles (or loads) every specialisation — four
kernels x float32/float64 — and returns the seconds it took, so benchmarks never time a compile.
"""

from __future__ import annotations

import threading
import time
from functools import lru_cache

import numpy as np

from harness.ops.conv_spec import CONV2D_FEATURES
from harness.backend.registry import OP_FEATURES, Backend, CostModel
from harness.ops.metrics import conv2d_work

from . import _numba_cpu_pool
from ._half import in_float32
from ._vector_tile import lanes
from harness.ops.args import DTYPES

#: Bytes of accumulator per output tile: 4 channels x tile elements stay well inside L1.
_ACC_BYTES = 8192


@lru_cache(maxsize=None)
def kernels():
    """The compiled kernel module (imports numba; compiles or loads from cache on first call)."""
    from impls import _numba_cpu_kernels

    return _numba_cpu_kernels


def probe():
    try:
        import numba  # noqa: F401
    except ImportError as exc:
        return f"numba is not installed ({exc})"
    return None


def conv2d(x, w, bias, spec):
    """``conv2d`` op: see the module docstring. Inputs are read, never written."""
    y = np.empty(spec.out_shape, dtype=spec.dtype)
    if y.size == 0:
        return y
    k = kernels()
    if spec.groups == spec.C and (spec.padding_mode == "zeros" or not any(spec.padding)):
        return _depthwise(k, x, w, bias, spec, y)
    g = _Geometry(spec)
    top, _, left, _ = spec.padding
    (sh, sw), mode = spec.stride, k.PADDING_MODE_CODES[spec.padding_mode]
    x3 = _readonly_c(x).reshape(spec.N, spec.C, spec.H * spec.W)
    y3 = y.reshape(spec.N, spec.O, spec.OH * spec.OW)
    off = _cached_offsets(spec)
    w2 = _readonly_c(w).reshape(spec.O, spec.n_acc)
    b = _bias(bias, spec)
    if spec.O // spec.groups >= k.OB:
        size = spec.C * sh * sw * g.plane
        xf = _scratch((spec.N, size + k.SLACK), spec.dtype)
        xf[:, size:] = 0  # the slack only feeds dropped positions; zero keeps them finite
        k.pad_phase_split(x3, spec.H, spec.W, xf, sh, sw, g.hs, g.ws, top, left, g.hp, g.wp, mode)
        tile = k.TILE_VECTORS * lanes(np.dtype(spec.dtype).itemsize)
        k.conv_dense(xf, w2, off, spec.groups, g.group_stride, b, y.reshape(-1), spec.OH, spec.OW,
                     g.ws, g.length, tile, 4 * _threads())
    else:
        tile = _one_row_tile(g.length, spec, k.VEC)
        k.conv_grouped(x3, spec.H, spec.W, w2, off, b, y3, spec.groups, spec.OW, sh, sw, g.hs,
                       g.ws, top, left, g.hp, g.wp, mode, g.length, tile)
    return y


def _depthwise(k, x, w, bias, spec, y):
    """One input channel per group, zero padding: :func:`conv_depthwise` (padding positions
    zeroed once per thread, data copied in through precomputed offsets)."""
    g = _Geometry(spec)
    (sh, sw), (top, _, left, _) = spec.stride, spec.padding
    tile = _one_row_tile(g.length, spec, k.VEC)
    k.conv_depthwise(_readonly_c(x).reshape(-1), spec.H, spec.W,
                     _readonly_c(w).reshape(spec.O, spec.n_acc), _cached_offsets(spec),
                     _bias(bias, spec), y.reshape(-1), spec.C, spec.OH, spec.OW, sh, sw, g.hs,
                     g.ws, top, left, g.length, tile,
                     k.DW_TILE_VECTORS * lanes(np.dtype(spec.dtype).itemsize), 4 * _threads())
    return y


#: Largest input copy kept for the next call, per thread (bytes); larger ones are allocated anew
#: (what a process keeps after its largest layer: at most this much per calling thread).
SCRATCH_BYTES = 64 << 20
_SCRATCH = threading.local()


def _scratch(shape, dtype):
    """An uninitialised array for the padded input copy, reused by this thread's next call: a
    fresh multi-megabyte array costs a page fault per 4 KiB on every call (about 5% of a
    56x56 layer). Only :func:`conv2d` uses it, and it returns before the next call needs it."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if nbytes > SCRATCH_BYTES:
        return np.empty(shape, dtype)
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _SCRATCH.buf = np.empty(max(nbytes, 1 << 20), np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


def _threads():
    """Numba's current thread count (numba is imported by then: the kernels are loaded)."""
    import numba

    return numba.get_num_threads()


def _bias(bias, spec):
    """Bias as a read-only contiguous vector, zeros when there is none (one specialisation)."""
    return _readonly_c(np.zeros(spec.O, spec.dtype) if bias is None else np.ascontiguousarray(bias, spec.dtype))


def warmup() -> float:
    """Compile (or load from the on-disk cache) every kernel specialisation; seconds taken.

    Each dtype runs a dense, a grouped and a depthwise convolution, so all four kernels (the
    phase split included) get compiled.
    """
    from harness.ops.conv_spec import Conv2dSpec

    start = time.perf_counter()
    for dtype in ("float32", "float64"):
        for O, groups in ((4, 1), (2, 2), (4, 4)):  # dense, grouped (2 in, 1 out), depthwise
            spec = Conv2dSpec.from_shapes((1, 4, 3, 3), (O, 4 // groups, 2, 2), groups=groups, dtype=dtype)
            conv2d(np.ones(spec.x_shape, dtype), np.ones(spec.w_shape, dtype), None, spec)
    return time.perf_counter() - start


# -- host-side preparation ---------------------------------------------------------------
class _Geometry:
    """Sizes of the padded, phase-split input and of the extended flat output."""

    def __init__(self, spec):
        top, bottom, left, right = spec.padding
        sh, sw = spec.stride
        self.hp, self.wp = spec.H + top + bottom, spec.W + left + right
        self.hs, self.ws = -(-self.hp // sh), -(-self.wp // sw)
        self.plane = self.hs * self.ws  # one phase of one channel
        self.group_stride = spec.C // spec.groups * sh * sw * self.plane
        self.length = (spec.OH - 1) * self.ws + spec.OW


def _readonly_c(x):
    """``x`` as a read-only C-contiguous array: one compiled specialisation per dtype."""
    x = np.ascontiguousarray(x)
    if x.flags.writeable:
        x = x.view()
        x.flags.writeable = False
    return x


def _item_offsets(spec, geometry):
    """Offset of each reduction item (c, p, q) within its group's phase-split input."""
    sh, sw = spec.stride
    dh, dw = spec.dilation
    Cg, plane, ws = spec.C // spec.groups, geometry.plane, geometry.ws
    c = np.arange(Cg)[:, None, None]
    p = np.arange(spec.KH)[None, :, None] * dh
    q = np.arange(spec.KW)[None, None, :] * dw
    off = ((c * sh + p % sh) * sw + q % sw) * plane + (p // sh) * ws + q // sw
    return off.reshape(-1).astype(np.int64)


@lru_cache(maxsize=64)
def _cached_offsets(spec):
    """:func:`_item_offsets`, read-only and kept per spec: the NumPy calls cost as much as a
    small depthwise layer's arithmetic, and a network runs the same layers again and again."""
    return _readonly_c(_item_offsets(spec, _Geometry(spec)))


def _one_row_tile(length, spec, vec):
    """Output positions per pass of the one-channel kernels: one accumulator row in L1."""
    return int(min(_ACC_BYTES // np.dtype(spec.dtype).itemsize, -(-length // vec) * vec))


def cost_features(op, spec) -> dict[str, float] | None:
    """Work for ``auto``: multiply-adds, the padded input it reads, the outputs it writes."""
    if op != "conv2d":
        return None
    top, bottom, left, right = spec.padding
    padded = spec.N * spec.C * (spec.H + top + bottom) * (spec.W + left + right)
    return {**conv2d_work(spec), "inputs": float(padded), "outputs": float(spec.N * spec.O * spec.OH * spec.OW)}


COST = CostModel(cost_features, {"call": 7.86e-05, "inputs": 2.01e-10, "macs": 2.64e-11, "thin_macs": 4.06e-11},
                 source="convbench calibrate --threads 1 (non-negative least squares on relative error) from convbench bench --suite resnet50,vgg16,mobilenetv2,large_kernels --batch 1 --threads 1 on the project machine (2-core AMD Zen 5 VM, OpenBLAS with the OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE overrides, numpy 2.4, numba 0.68, torch 2.13 CPU), 2026-11-25: median fit error 1.13x (im2col) to 1.46x (fft)")

BACKEND = Backend(
    name="numba_cpu",
    device="cpu",
    # pooling and its backward: one thread per plane, torch's window scan (impls/_numba_cpu_pool*.py)
    ops={op: in_float32(fn) for op, fn in {  # float16/bfloat16 computed in float32 (impls/_half.py)
        "conv2d": conv2d, "max_pool2d": _numba_cpu_pool.max_pool2d, "avg_pool2d": _numba_cpu_pool.avg_pool2d,
        "max_pool2d_backward": _numba_cpu_pool.max_pool2d_backward,
        "avg_pool2d_backward": _numba_cpu_pool.avg_pool2d_backward}.items()},
    dtypes=frozenset(DTYPES),
    features={"conv2d": CONV2D_FEATURES,
              # its pooling kernels place windows by one padding per axis: no per-side padding
              **{op: OP_FEATURES[op] - {"asymmetric_padding"} for op in ("max_pool2d", "avg_pool2d",
                                                                        "max_pool2d_backward", "avg_pool2d_backward")}},
    exact=True,
    deterministic=True,
    probe=probe,
    auto_rank=40,
    cost=COST,
    description="Numba njit(parallel) direct convolution: phase-split offset GEMM, "
    "register-tiled IR micro-kernel, dedicated depthwise kernel",
)
