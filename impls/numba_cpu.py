"""``numba_cpu``: a direct convolution compiled by Numba, parallel over the CPU cores.

The kernels (``impls/_numba_cpu_kernels.py``, see its docstring) run an *offset GEMM* over the
padded input split into stride phases, whose innermost loop is contiguous for every stride and
dilation. Every padding mode is applied while splitting. Groups with at least 4 output channels
use the dense kernel (4 output channels x 4 reduction items per pass, parallel over batch x group
x output-channel block x output tile); depthwise convolutions and groups with fewer output
channels use the grouped kernel (parallel over batch x group, each group padded into a buffer
that stays in cache). This module only prepares arguments: offsets and tile sizes; the
weights are read in place.

Compilation: the kernels are compiled on first use and cached on disk (``numba`` ``cache=True``,
in ``impls/__pycache__``); :func:`warmup` compiles (or loads) every specialisation — three
kernels x float32/float64 — and returns the seconds it took, so benchmarks never time a compile.
"""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np

from harness.conv_spec import CONV2D_FEATURES
from harness.registry import Backend

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
    g = _Geometry(spec)
    top, _, left, _ = spec.padding
    (sh, sw), mode = spec.stride, k.PADDING_MODE_CODES[spec.padding_mode]
    x3 = _readonly_c(x).reshape(spec.N, spec.C, spec.H * spec.W)
    y3 = y.reshape(spec.N, spec.O, spec.OH * spec.OW)
    off = _item_offsets(spec, g)
    w2 = _readonly_c(w).reshape(spec.O, spec.n_acc)
    b = np.zeros(spec.O, spec.dtype) if bias is None else np.ascontiguousarray(bias, spec.dtype)
    if spec.O // spec.groups >= k.OB:
        size = spec.C * sh * sw * g.plane
        xf = np.empty((spec.N, size + k.VEC), dtype=spec.dtype)
        xf[:, size:] = 0  # the slack only feeds dropped positions; zero keeps them finite
        k.pad_phase_split(x3, spec.H, spec.W, xf, sh, sw, g.hs, g.ws, top, left, g.hp, g.wp, mode)
        n_blocks = -(-(spec.O // spec.groups) // k.OB)
        tile = _tile(g.length, spec, n_blocks, k.VEC)
        k.conv_dense(xf, w2, off, spec.groups, g.group_stride, b, y3, spec.OW, g.ws, g.length, tile)
    else:
        tile = int(min(_ACC_BYTES // np.dtype(spec.dtype).itemsize, -(-g.length // k.VEC) * k.VEC))
        k.conv_grouped(x3, spec.H, spec.W, w2, off, b, y3, spec.groups, spec.OW, sh, sw, g.hs,
                       g.ws, top, left, g.hp, g.wp, mode, g.length, tile)
    return y


def warmup() -> float:
    """Compile (or load from the on-disk cache) every kernel specialisation; seconds taken.

    Each dtype runs one dense and one grouped convolution, so all three kernels get compiled.
    """
    from harness.conv_spec import Conv2dSpec

    start = time.perf_counter()
    for dtype in ("float32", "float64"):
        for O, groups in ((4, 1), (2, 2)):  # dense kernel, then depthwise kernel
            spec = Conv2dSpec.from_shapes((1, 2, 3, 3), (O, 2 // groups, 2, 2), groups=groups, dtype=dtype)
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


def _tile(length, spec, n_blocks, vec):
    """Output positions per task (a multiple of ``vec``): 4 accumulator rows fit in L1, and
    there are enough tasks to share among the cores."""
    tile = _ACC_BYTES // (4 * np.dtype(spec.dtype).itemsize)
    tasks_elsewhere = spec.N * spec.groups * n_blocks
    while tile > 2 * vec and tasks_elsewhere * -(-length // tile) < 16:
        tile //= 2
    return int(min(tile, -(-length // vec) * vec))


BACKEND = Backend(
    name="numba_cpu",
    device="cpu",
    ops={"conv2d": conv2d},
    features={"conv2d": CONV2D_FEATURES},
    exact=True,
    deterministic=True,
    probe=probe,
    auto_rank=40,
    description="Numba njit(parallel) direct convolution: phase-split offset GEMM, "
    "4x4 register blocking, dedicated depthwise kernel",
)
