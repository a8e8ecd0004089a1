"""A steady heap while timing: large buffers reused, not mapped afresh and faulted in on every call.

glibc's malloc serves blocks above its mmap threshold (dynamic, 128 KB to 32 MB) with fresh
``mmap`` pages and returns them on ``free``; a call that allocates a few MB of temporaries then
pays a page fault per 4 KB page, every call, and the threshold itself moves with what the process
freed before. torch's ResNet-50 stem (7x7 stride 2, 3 to 64 channels) took 2.3-2.9 ms per call in
a fresh process and 0.62 ms once large blocks stayed in the heap (20 ms and 5.6 ms at batch 8; 2
threads, AMD EPYC, 2026-12-02), and 0.76 ms after numba_cpu had run, 2.0 ms after im2col: the
baseline's time depended on which backend ran before it. So the benchmarks fix malloc's state
(:func:`steady_heap`): a fixed mmap threshold of 64 MB (32 MB where glibc refuses more), freed
memory kept up to 1 GB at the top of the heap, and 64 MB of padding per heap extension. Every
backend gets the same heap; memory a run has freed stays with the process until it exits.

The verifier does not call it: only what times calls does (``harness.bench``, calibration, ``auto``'s
measured choice, the asv benchmarks; tests that exercise those set it in the test process too).
"""

from __future__ import annotations

import ctypes
import ctypes.util

#: mallopt parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

_APPLIED: list = []  # the description, once applied ("" when it could not be)


def steady_heap() -> str:
    """Set glibc malloc as the module docstring says, once per process; returns what was set
    ("" where this is not glibc or mallopt refused)."""
    if _APPLIED:
        return _APPLIED[0]
    _APPLIED.append(_apply())
    return _APPLIED[0]


def _apply() -> str:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return ""
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    threshold = next((mb for mb in (64, 32) if mallopt(M_MMAP_THRESHOLD, mb * 2**20) == 1), None)
    if threshold is None:
        return ""
    if mallopt(M_TRIM_THRESHOLD, 2**30) != 1 or mallopt(M_TOP_PAD, 64 * 2**20) != 1:
        return ""
    return f"glibc malloc: mmap threshold {threshold} MB (fixed), trim threshold 1 GB, top pad 64 MB"
