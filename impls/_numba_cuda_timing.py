"""Timing numba_cuda kernels with CUDA events, hot or with the L2 cache flushed (cold).

A host clock around an asynchronous launch measures the launch, not the kernel; a host clock
around launch + ``synchronize()`` adds the driver's round trip (tens of microseconds, which is
most of a small layer's time). CUDA events are recorded on the stream itself, before and after
the kernel, and the GPU stamps them when it gets there, so their difference is the kernel's time
on the device alone. Everything queued before is drained first (``cuda.synchronize()``), so the
first event does not wait behind earlier work.

Cold mode: between runs, a device-to-device copy of a buffer twice the size of the L2 cache is
queued *before* the start event (so it is not timed); it evicts the kernel's operands, which a
hot run finds in L2 (H100/H200: 50-60 MB of L2 hold every operand of most inference layers). The
L2 size is the device's ``L2_CACHE_SIZE`` attribute; 64 MiB when the driver does not say (the
simulator).

On Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) events are placeholders that always
report -1 ms, and a launch runs to completion on the host before it returns; there the host clock
around the launch is used instead, so the mechanism can be tested without a GPU (the figures
are the simulator's, meaningless as GPU speeds).
"""

from __future__ import annotations

import time

import numpy as np

#: L2 size assumed when the device does not report one.
DEFAULT_L2_BYTES = 64 * 2**20


def l2_bytes() -> int:
    """The current device's L2 cache size in bytes (:data:`DEFAULT_L2_BYTES` if unknown)."""
    from numba import cuda

    try:
        size = int(getattr(cuda.get_current_device(), "L2_CACHE_SIZE", 0) or 0)
    except Exception:  # an attribute the driver or the simulator does not provide
        size = 0
    return size or DEFAULT_L2_BYTES


def event_times(launch, runs: int = 10, cold: bool = False, flush_bytes: int | None = None) -> list[float]:
    """Seconds per run of ``launch()`` on the device, one figure per run, from CUDA events.

    Parameters
    ----------
    launch : callable
        Enqueues the work on the default stream and returns without waiting (e.g. the launcher
        from :func:`impls.numba_cuda.prepare`).
    runs : int
        Timed runs (call ``launch()`` once before, untimed, so compilation is not among them).
    cold : bool
        Flush the L2 cache before every run (untimed), see the module docstring.
    flush_bytes : int, optional
        Size of the flushing copy; default twice :func:`l2_bytes`.
    """
    from numba import cuda

    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    cuda.synchronize()  # nothing queued before the first start event
    source = target = None
    if cold:
        size = int(flush_bytes or 2 * l2_bytes())
        source, target = cuda.device_array(size, np.uint8), cuda.device_array(size, np.uint8)
    times = []
    simulated = _simulated()
    for _ in range(runs):
        if cold:
            target.copy_to_device(source)  # device to device, queued before the start event: untimed
        if simulated:
            begin = time.perf_counter()
            launch()
            cuda.synchronize()
            times.append(time.perf_counter() - begin)
            continue
        start, end = cuda.event(), cuda.event()
        start.record()
        launch()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)  # milliseconds -> seconds
    return times


def _simulated() -> bool:
    from numba import config

    return bool(getattr(config, "ENABLE_CUDASIM", False))
