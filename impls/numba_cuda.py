"""``numba_cuda``: a tiled implicit-GEMM convolution written with ``numba.cuda.jit``.

The kernel is in ``impls/_numba_cuda_kernels.py`` (shared-memory tiles of the input patch and the
weights, one thread block per 64-channel x 64-pixel output tile, 4 x 4 outputs per thread). The
host pads the input (every padding mode, ``harness.ops.padding.pad_input``) and uploads it.

Two ways in:

* the ``conv2d`` op does the whole trip: pad, upload, launch, download;
* :func:`prepare` uploads once and returns a launcher that runs only the kernel on the
  device-resident arrays, so benchmarks time the kernel alone: :func:`time_kernel` times it with
  CUDA events after a sync, hot or with the L2 cache flushed between runs (``cold=True``; see
  ``impls/_numba_cuda_timing.py``). ``python -m harness.bench.cuda_events`` prints both per layer.

With ``NUMBA_ENABLE_CUDASIM=1`` set before ``numba`` is imported, the same code runs on Numba's
CUDA simulator (Python threads; slow, for correctness checks on tiny shapes): ``probe()`` then
reports the backend available and its description says so.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from harness.ops.conv_spec import CONV2D_FEATURES
from harness.ops.padding import pad_input
from harness.backend.registry import Backend

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


@lru_cache(maxsize=None)
def kernels():
    """The kernel module (imports numba.cuda)."""
    from impls import _numba_cuda_kernels

    return _numba_cuda_kernels


def probe():
    try:
        from numba import cuda
    except ImportError as exc:
        return f"numba-cuda is not installed ({exc})"
    if SIMULATED or cuda.is_available():
        return None
    try:  # is_available() hides why; initialising the driver says it
        cuda.current_context()
    except Exception as exc:
        detail = " ".join(str(exc).split()).rstrip(": ")  # the driver's message spans lines
        return f"no CUDA driver/GPU usable by numba-cuda: {type(exc).__name__}: {detail}"
    return "no CUDA driver/GPU usable by numba-cuda"


def sync():
    from numba import cuda

    cuda.synchronize()


def prepare(x, w, bias, spec):
    """Upload the operands once; return ``launch()``, which runs only the kernel.

    ``launch()`` enqueues the kernel on the device-resident arrays and returns the device
    output ``(N, O, OH * OW)`` without waiting (call ``sync()`` before reading a clock);
    ``launch.result()`` copies the output back as an ``(N, O, OH, OW)`` NumPy array.
    """
    from numba import cuda

    k = kernels()
    xd = cuda.to_device(np.ascontiguousarray(pad_input(x, spec)))
    w2 = np.ascontiguousarray(w).reshape(spec.O, spec.n_acc)
    wd = cuda.to_device(w2)
    b = np.zeros(spec.O, spec.dtype) if bias is None else np.ascontiguousarray(bias)
    bd = cuda.to_device(b)
    n_pix = spec.OH * spec.OW
    yd = cuda.device_array((spec.N, spec.O, n_pix), dtype=spec.dtype)
    kernel = k.kernel(spec.dtype)[k.grid(spec), k.THREADS]
    sizes = (spec.C // spec.groups, spec.O // spec.groups, spec.KH, spec.KW, *spec.stride,
             *spec.dilation, spec.OW, n_pix, spec.n_acc)

    def launch():
        kernel(xd, wd, bd, yd, *sizes)
        return yd

    def result():
        return yd.copy_to_host().reshape(spec.out_shape)

    launch.result = result
    return launch


def time_kernel(x, w, bias, spec, runs: int = 10, cold: bool = False) -> list[float]:
    """Seconds per kernel run on the device, from CUDA events (one untimed warm-up launch first).

    ``cold=True`` flushes the L2 cache before every run (untimed). Only the kernel is timed: the
    operands are uploaded once, before."""
    from impls._numba_cuda_timing import event_times

    launch = prepare(x, w, bias, spec)
    launch()  # compiles on first use: never timed
    return event_times(launch, runs=runs, cold=cold)


def conv2d(x, w, bias, spec):
    """``conv2d`` op: host -> device, kernel, device -> host. Inputs are never written."""
    if 0 in spec.out_shape:
        return np.zeros(spec.out_shape, dtype=spec.dtype)
    launch = prepare(x, w, bias, spec)
    launch()
    return launch.result()


BACKEND = Backend(
    name="numba_cuda",
    device="cuda",
    ops={"conv2d": conv2d},
    features={"conv2d": CONV2D_FEATURES},
    exact=True,
    deterministic=True,
    probe=probe,
    sync=sync,
    auto_rank=30,
    description=("SIMULATED (NUMBA_ENABLE_CUDASIM=1): " if SIMULATED else "")
    + "numba.cuda implicit-GEMM direct convolution, shared-memory tiles 64x64x16, 4x4 per thread",
)
