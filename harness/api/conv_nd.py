"""Public 1-D and 3-D ops with ``torch.nn.functional`` semantics on NumPy arrays.

conv1d / conv3d (NCL / NCDHW input, OIL / OIDHW weight), their transposes and backward passes,
and max / average pooling with their backward passes. Each public function is a thin,
documented wrapper around one dimension-generic call: the arguments are checked by
:mod:`harness.ops.conv_nd_spec` / :mod:`harness.ops.pool_nd_spec`, the call goes through the one
dispatch path, and inputs are never modified. Every backend with the 2-D op has the 1-D one
(lowered onto an image of height 1); conv3d is lowered onto conv2d where a backend has no
native one (see ``convbench backends``).
"""

from __future__ import annotations

import numpy as np

from harness.api.resolve import resolve_backend
from harness.backend.dispatch import run_case
from harness.ops.args import check_array
from harness.ops.conv_nd_spec import conv_nd_spec, conv_transpose_nd_spec
from harness.ops.pool_nd_spec import pool_nd_spec


def _run(op, spec, batched, *arrays, backend):
    return run_case(resolve_backend(backend, op, spec), op, spec, batched, arrays)


def _conv(ndim, x, w, bias, stride, padding, dilation, groups, padding_mode, backend):
    op = f"conv{ndim}d"
    spec, batched = conv_nd_spec(op, ndim, x, w, bias, stride, padding, dilation, groups, padding_mode)
    return _run(op, spec, batched, x, w, bias, backend=backend)[0]


def _transpose(ndim, x, w, bias, stride, padding, output_padding, groups, dilation, backend):
    op = f"conv_transpose{ndim}d"
    spec, batched = conv_transpose_nd_spec(op, ndim, x, w, bias, stride, padding, output_padding, groups, dilation)
    return _run(op, spec, batched, x, w, bias, backend=backend)[0]


def _check_grad_out(grad_out, x, out_shape, batched):
    check_array(grad_out, "grad_out")
    want = tuple(out_shape if batched else out_shape[1:])
    if grad_out.shape != want:
        raise ValueError(f"grad_out must have the forward output's shape {want}, got {grad_out.shape}")
    if grad_out.dtype != x.dtype:
        raise TypeError(f"grad_out dtype {grad_out.dtype} does not match x dtype {x.dtype}")


def _conv_backward(ndim, x, w, grad_out, stride, padding, dilation, groups, padding_mode, bias, backend):
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False (whether the forward conv had one), got {bias!r}")
    op = f"conv{ndim}d"
    spec, batched = conv_nd_spec(op, ndim, x, w, None, stride, padding, dilation, groups, padding_mode)
    spec = spec.with_(bias=bool(bias))
    _check_grad_out(grad_out, x, spec.out_shape, batched)
    outs = _run(f"{op}_backward", spec, batched, x, w, grad_out, backend=backend)
    return outs[0], outs[1], (outs[2] if bias else None)


def _pool(kind, ndim, x, backend, return_indices=False, **options):
    op = f"{kind}_pool{ndim}d"
    spec, batched = pool_nd_spec(kind, ndim, x, return_indices=return_indices, **options)
    outs = _run(op, spec, batched, x, backend=backend)
    return outs if return_indices else outs[0]


def _pool_backward(kind, ndim, x, grad_out, backend, **options):
    op = f"{kind}_pool{ndim}d_backward"
    spec, batched = pool_nd_spec(kind, ndim, x, **options)
    _check_grad_out(grad_out, x, spec.out_shape, batched)
    return _run(op, spec, batched, x, grad_out, backend=backend)[0]


# -- convolutions ---------------------------------------------------------------------------------------------
def conv1d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros", backend="auto"):
    """1-D convolution (cross-correlation), as ``torch.nn.functional.conv1d``.

    Parameters
    ----------
    x : numpy.ndarray
        (N, C, L) or unbatched (C, L), float32 or float64.
    w : numpy.ndarray
        (O, C/groups, K).
    bias : numpy.ndarray, optional
        (O,).
    stride, dilation : int or (int,)
    padding : int, (int,), or 'same', 'valid', 'full'
        'same' puts the smaller half before (torch's split); a causal convolution is 'valid' on
        an input padded by ``dilation*(K-1)`` in front.
    groups : int
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
    backend : str

    Returns
    -------
    numpy.ndarray
        (N, O, OL), or (O, OL) for an unbatched input.
    """
    return _conv(1, x, w, bias, stride, padding, dilation, groups, padding_mode, backend)


def conv3d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros", backend="auto"):
    """3-D convolution (cross-correlation), as ``torch.nn.functional.conv3d``.

    Parameters
    ----------
    x : numpy.ndarray
        (N, C, D, H, W) or unbatched (C, D, H, W), float32 or float64.
    w : numpy.ndarray
        (O, C/groups, KD, KH, KW).
    bias : numpy.ndarray, optional
    stride, dilation : int or (int, int, int)
    padding : int, (int, int, int), or 'same', 'valid', 'full'
    groups : int
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
    backend : str

    Returns
    -------
    numpy.ndarray
        (N, O, OD, OH, OW), or (O, OD, OH, OW) for an unbatched input.
    """
    return _conv(3, x, w, bias, stride, padding, dilation, groups, padding_mode, backend)


def conv_transpose1d(x, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, backend="auto"):
    """1-D transposed convolution, as ``torch.nn.functional.conv_transpose1d``.

    ``x`` is (N, C, L) or (C, L); ``w`` is (C, O/groups, K);
    ``OL = (L-1)*stride - 2*padding + dilation*(K-1) + output_padding + 1``.
    """
    return _transpose(1, x, w, bias, stride, padding, output_padding, groups, dilation, backend)


def conv_transpose3d(x, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, backend="auto"):
    """3-D transposed convolution, as ``torch.nn.functional.conv_transpose3d``.

    ``x`` is (N, C, D, H, W) or (C, D, H, W); ``w`` is (C, O/groups, KD, KH, KW); each output size
    as for :func:`conv_transpose1d`, per axis.
    """
    return _transpose(3, x, w, bias, stride, padding, output_padding, groups, dilation, backend)


def conv1d_backward(x, w, grad_out, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros", bias=False,
                    backend="auto"):
    """Gradients of ``conv1d(x, w, b, ...)`` given ``grad_out``: ``(grad_input, grad_weight, grad_bias)``.

    ``bias`` says whether the forward call had one (else ``grad_bias`` is None); the other
    arguments are the forward call's.
    """
    return _conv_backward(1, x, w, grad_out, stride, padding, dilation, groups, padding_mode, bias, backend)


def conv3d_backward(x, w, grad_out, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros", bias=False,
                    backend="auto"):
    """Gradients of ``conv3d(x, w, b, ...)`` given ``grad_out``: ``(grad_input, grad_weight, grad_bias)``."""
    return _conv_backward(3, x, w, grad_out, stride, padding, dilation, groups, padding_mode, bias, backend)


# -- pooling --------------------------------------------------------------------------------------------------
def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False,
               backend="auto"):
    """1-D max pooling, as ``torch.nn.functional.max_pool1d``: (N, C, L) or (C, L); with
    ``return_indices`` also the int64 index of each window's (first) maximum."""
    return _pool("max", 1, x, backend, return_indices, kernel_size=kernel_size, stride=stride, padding=padding,
                 dilation=dilation, ceil_mode=ceil_mode)


def max_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False,
               backend="auto"):
    """3-D max pooling, as ``torch.nn.functional.max_pool3d``: indices are flat, ``d*H*W + h*W + w``."""
    return _pool("max", 3, x, backend, return_indices, kernel_size=kernel_size, stride=stride, padding=padding,
                 dilation=dilation, ceil_mode=ceil_mode)


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, backend="auto"):
    """1-D average pooling, as ``torch.nn.functional.avg_pool1d`` (which takes no divisor_override)."""
    return _pool("avg", 1, x, backend, kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                 count_include_pad=count_include_pad)


def avg_pool3d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, backend="auto"):
    """3-D average pooling, as ``torch.nn.functional.avg_pool3d`` (divisor as :func:`harness.avg_pool2d`)."""
    return _pool("avg", 3, x, backend, kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                 count_include_pad=count_include_pad, divisor_override=divisor_override)


def max_pool1d_backward(x, grad_out, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                        backend="auto"):
    """Gradient of :func:`max_pool1d` with respect to ``x``: each output's gradient goes to its arg-max."""
    return _pool_backward("max", 1, x, grad_out, backend, kernel_size=kernel_size, stride=stride, padding=padding,
                          dilation=dilation, ceil_mode=ceil_mode)


def max_pool3d_backward(x, grad_out, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                        backend="auto"):
    """Gradient of :func:`max_pool3d` with respect to ``x``."""
    return _pool_backward("max", 3, x, grad_out, backend, kernel_size=kernel_size, stride=stride, padding=padding,
                          dilation=dilation, ceil_mode=ceil_mode)


def avg_pool1d_backward(x, grad_out, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                        backend="auto"):
    """Gradient of :func:`avg_pool1d`: each output's gradient / divisor spread over its window inside the input."""
    return _pool_backward("avg", 1, x, grad_out, backend, kernel_size=kernel_size, stride=stride, padding=padding,
                          ceil_mode=ceil_mode, count_include_pad=count_include_pad)


def avg_pool3d_backward(x, grad_out, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                        divisor_override=None, backend="auto"):
    """Gradient of :func:`avg_pool3d` with respect to ``x``."""
    return _pool_backward("avg", 3, x, grad_out, backend, kernel_size=kernel_size, stride=stride, padding=padding,
                          ceil_mode=ceil_mode, count_include_pad=count_include_pad, divisor_override=divisor_override)
