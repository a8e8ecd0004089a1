"""Public pooling ops with ``torch.nn.functional`` semantics on NumPy arrays.

Max, average, adaptive, global and spatial-pyramid pooling, and the backward passes of max
and average pooling. Arguments are checked by :mod:`harness.ops.pool_spec`; inputs are never
modified; ``backend="auto"`` picks the preferred available backend that supports the call.
"""

from __future__ import annotations

import numpy as np

from harness.api.resolve import resolve_backend
from harness.backend.dispatch import run_op
from harness.ops.args import check_array
from harness.ops.pool_spec import adaptive_pool2d_spec, check_levels, pool2d_spec


def _batched(a, batched):
    return a if batched else a[np.newaxis]


def _unbatched(y, batched):
    return y if batched or y is None else y[0]


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False,
               backend="auto"):
    """2-D max pooling, as ``torch.nn.functional.max_pool2d``.

    Parameters
    ----------
    x : numpy.ndarray
        (N, C, H, W) or (C, H, W), float32 or float64.
    kernel_size, stride, padding, dilation : int or (int, int)
        ``stride`` defaults to ``kernel_size``; ``padding <= kernel_size // 2`` (padding is -inf).
    ceil_mode : bool
        Round the output size up, keeping a last partial window that starts inside the
        input or its left/top padding.
    return_indices : bool
        Also return, per output, the flat index ``h * W + w`` of the maximum in its input
        plane (the first one on ties; a NaN wins, as in torch).
    backend : str

    Returns
    -------
    numpy.ndarray, or (numpy.ndarray, numpy.ndarray of int64) with ``return_indices``.
    """
    spec, batched = pool2d_spec("max", x, kernel_size, stride, padding, dilation, ceil_mode,
                                return_indices=return_indices)
    y, index = run_op(resolve_backend(backend, "max_pool2d", spec), "max_pool2d", spec, _batched(x, batched))
    y = _unbatched(y, batched)
    return (y, _unbatched(index, batched)) if return_indices else y


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, backend="auto"):
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``.

    The divisor is ``divisor_override`` when given (any non-zero int), else the window size
    clipped to the padded input (``count_include_pad=True``) or the number of its taps inside
    the input (``count_include_pad=False``).
    """
    spec, batched = pool2d_spec("avg", x, kernel_size, stride, padding, 1, ceil_mode, count_include_pad,
                                divisor_override)
    (y,) = run_op(resolve_backend(backend, "avg_pool2d", spec), "avg_pool2d", spec, _batched(x, batched))
    return _unbatched(y, batched)


def adaptive_avg_pool2d(x, output_size, backend="auto"):
    """Average over windows ``[floor(i*H/OH), ceil((i+1)*H/OH))``, as torch's adaptive_avg_pool2d.

    ``output_size`` is an int, a pair, or None on an axis to keep the input size.
    """
    spec, batched = adaptive_pool2d_spec("avg", x, output_size)
    (y,) = run_op(resolve_backend(backend, "adaptive_avg_pool2d", spec), "adaptive_avg_pool2d", spec,
                  _batched(x, batched))
    return _unbatched(y, batched)


def adaptive_max_pool2d(x, output_size, return_indices=False, backend="auto"):
    """Maximum over the adaptive windows (see :func:`adaptive_avg_pool2d`), as torch's adaptive_max_pool2d."""
    spec, batched = adaptive_pool2d_spec("max", x, output_size, return_indices)
    y, index = run_op(resolve_backend(backend, "adaptive_max_pool2d", spec), "adaptive_max_pool2d", spec,
                      _batched(x, batched))
    y = _unbatched(y, batched)
    return (y, _unbatched(index, batched)) if return_indices else y


def global_avg_pool2d(x, backend="auto"):
    """Mean over each whole plane: (N, C, 1, 1). Adaptive average pooling to 1x1."""
    return adaptive_avg_pool2d(x, 1, backend=backend)


def global_max_pool2d(x, backend="auto"):
    """Maximum over each whole plane: (N, C, 1, 1). Adaptive max pooling to 1x1."""
    return adaptive_max_pool2d(x, 1, backend=backend)


def spatial_pyramid_pool2d(x, levels=(1, 2, 4), mode="max", backend="auto"):
    """Spatial pyramid pooling: a fixed-length vector from any image size.

    Each level ``L`` pools the image adaptively to L x L (max or average); the results are
    flattened per sample as (C, L, L) and concatenated in the order of ``levels``, giving
    ``C * sum(L**2)`` features (He et al., 2014, with torch's adaptive windows, which differ
    from the paper's ``ceil``/``floor`` windows only when the size is not a multiple of L).

    Returns
    -------
    numpy.ndarray
        (N, C * sum(L**2)), or (C * sum(L**2),) for an unbatched input.
    """
    levels = check_levels(levels)
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    check_array(x, "x")
    pool = adaptive_max_pool2d if mode == "max" else adaptive_avg_pool2d
    parts = [pool(x, level, backend=backend) for level in levels]
    return np.concatenate([p.reshape(p.shape[:-3] + (-1,)) for p in parts], axis=-1)


def max_pool2d_backward(x, grad_out, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                        backend="auto"):
    """Gradient of ``max_pool2d(x, ...)`` with respect to ``x``, given ``grad_out``.

    Each output's gradient goes to the position of its window's maximum (the index
    :func:`max_pool2d` returns, ties as torch); positions that are the maximum of several
    windows receive the sum.
    """
    spec, batched = pool2d_spec("max", x, kernel_size, stride, padding, dilation, ceil_mode)
    _check_grad_out(grad_out, x, spec.out_shape, batched)
    (g,) = run_op(resolve_backend(backend, "max_pool2d_backward", spec), "max_pool2d_backward", spec,
                  _batched(x, batched), _batched(grad_out, batched))
    return _unbatched(g, batched)


def avg_pool2d_backward(x, grad_out, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None, backend="auto"):
    """Gradient of ``avg_pool2d(x, ...)`` with respect to ``x``: each output's gradient divided
    by its divisor and spread evenly over its window's taps inside the input."""
    spec, batched = pool2d_spec("avg", x, kernel_size, stride, padding, 1, ceil_mode, count_include_pad,
                                divisor_override)
    _check_grad_out(grad_out, x, spec.out_shape, batched)
    (g,) = run_op(resolve_backend(backend, "avg_pool2d_backward", spec), "avg_pool2d_backward", spec,
                  _batched(x, batched), _batched(grad_out, batched))
    return _unbatched(g, batched)


def _check_grad_out(grad_out, x, out_shape, batched):
    check_array(grad_out, "grad_out")
    want = out_shape if batched else out_shape[1:]
    if grad_out.shape != tuple(want):
        raise ValueError(f"grad_out must have the forward output's shape {tuple(want)}, got {grad_out.shape}")
    if grad_out.dtype != x.dtype:
        raise TypeError(f"grad_out dtype {grad_out.dtype} does not match x dtype {x.dtype}")
