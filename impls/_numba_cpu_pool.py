"""``numba_cpu``'s pooling ops: thin wrappers that import the Numba kernels on first use.

The kernels (``impls/_numba_cpu_pool_kernels.py``) scan each window as torch does; see there.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from harness.ops.pool_spec import avg_divisors


@lru_cache(maxsize=None)
def _kernels():
    from . import _numba_cpu_pool_kernels

    return _numba_cpu_pool_kernels


def max_pool2d(x, spec):
    """Max pooling with torch's arg-max rule; the window-major scan only when indices are asked for."""
    y = np.empty(spec.out_shape, dtype=spec.dtype)
    args = (*spec.kernel, *spec.stride, *spec.padding, *spec.dilation)
    if not spec.return_indices:  # values only: the faster tap-major sweep
        if y.size:
            _kernels()._max_pool_values(np.ascontiguousarray(x), y, *args)
        return y, None
    index = np.empty(spec.out_shape, dtype=np.int64)
    if y.size:
        _kernels()._max_pool(np.ascontiguousarray(x), y, index, *args)
    return y, index


def avg_pool2d(x, spec):
    """Average pooling: float64 sum of the taps inside the input, one division by torch's divisor."""
    y = np.empty(spec.out_shape, dtype=spec.dtype)
    if y.size:
        _kernels()._avg_pool(np.ascontiguousarray(x), y, avg_divisors(spec), *spec.kernel, *spec.stride,
                             *spec.padding)
    return y


def max_pool2d_backward(x, grad_out, spec):
    """Gradient to each window's arg-max, accumulated in float64 per plane."""
    grad = np.zeros(spec.x_shape)
    if grad_out.size:
        _kernels()._max_pool_backward(np.ascontiguousarray(x), np.ascontiguousarray(grad_out), grad,
                                      *spec.kernel, *spec.stride, *spec.padding, *spec.dilation)
    return grad.astype(spec.dtype)


def avg_pool2d_backward(x, grad_out, spec):
    """Each output's share (gradient / divisor) to its window's taps, accumulated in float64."""
    grad = np.zeros(spec.x_shape)
    if grad_out.size:
        _kernels()._avg_pool_backward(np.ascontiguousarray(grad_out), grad, avg_divisors(spec), *spec.kernel,
                                      *spec.stride, *spec.padding)
    return grad.astype(spec.dtype)
