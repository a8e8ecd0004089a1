"""Public convolution ops, ``torch.nn.functional`` semantics: conv2d and the family beyond it.

Transposed convolution, the conv2d backward pass, and depthwise-separable and spatially
separable convolutions. Every backend with conv2d has them (natively or through
:mod:`harness.ops.lowering`); inputs are never modified.
"""

from __future__ import annotations

import numpy as np

from harness.api.resolve import auto_backend, resolve_backend
from harness.backend.dispatch import run_case, run_op
from harness.ops.args import check_array
from harness.ops.conv_spec import conv2d_spec
from harness.ops.separable import depthwise_separable_spec, spatially_separable_spec
from harness.ops.transpose_spec import conv_transpose2d_spec
from harness.support.finite_guard import NonFiniteData, requiring_finite


def conv2d(
    x,
    w,
    bias=None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    padding_mode="zeros",
    backend="auto",
):
    """2-D convolution (cross-correlation) with ``torch.nn.functional.conv2d`` semantics.

    Parameters
    ----------
    x : numpy.ndarray
        Input, (N, C, H, W) or unbatched (C, H, W); float32 or float64.
    w : numpy.ndarray
        Weight, (O, C/groups, KH, KW), same dtype as ``x``.
    bias : numpy.ndarray, optional
        (O,), same dtype.
    stride, dilation : int or (int, int)
    padding : int, (int, int), or one of 'same', 'valid', 'full'
        'same' splits odd totals as torch does (smaller half on top/left); 'full' pads
        ``dilation * (kernel - 1)`` on every side.
    groups : int
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
    backend : str
        A registered backend name, or 'auto': the fastest available backend for the call
        by the measured cost model of :mod:`harness.autoselect` (torch is not a candidate);
        with NaN/Inf in the data, only backends that propagate them as torch does.

    Returns
    -------
    numpy.ndarray
        (N, O, OH, OW), or (O, OH, OW) for unbatched input, of the input's dtype.
        The inputs are never modified.
    """
    spec, batched = conv2d_spec(x, w, bias, stride, padding, dilation, groups, padding_mode)
    arrays = (x, w, bias)
    picked, guarded = _backend_for(backend, "conv2d", spec, *arrays)
    if guarded:
        try:
            with requiring_finite():
                (y,) = run_case(picked, "conv2d", spec, batched, arrays)
            return y
        except NonFiniteData:  # the pick found NaN/Inf in its own pass over the data
            picked = resolve_backend("auto", "conv2d", spec, finite=False)
    (y,) = run_case(picked, "conv2d", spec, batched, arrays)
    return y


def _backend_for(name, op, spec, *arrays):
    """``(backend, guarded)`` for a call: the one named, or for 'auto' :func:`auto_backend`'s."""
    if name != "auto":
        return resolve_backend(name, op, spec), False
    return auto_backend(op, spec, *arrays)


def conv_transpose2d(x, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                     backend="auto"):
    """2-D transposed convolution ("fractionally strided", "deconvolution"), as torch's.

    Parameters
    ----------
    x : numpy.ndarray
        (N, C, H, W) or (C, H, W).
    w : numpy.ndarray
        (C, O/groups, KH, KW): input channels first, as torch lays it out.
    bias : numpy.ndarray, optional
        (O,).
    stride, padding, output_padding, dilation : int or (int, int)
        ``OH = (H-1)*stride - 2*padding + dilation*(KH-1) + output_padding + 1``;
        ``output_padding`` must be below ``stride`` or ``dilation`` on each axis.
    groups : int
    backend : str

    Returns
    -------
    numpy.ndarray
        (N, O, OH, OW), or (O, OH, OW) for an unbatched input.
    """
    spec, batched = conv_transpose2d_spec(x, w, bias, stride, padding, output_padding, groups, dilation)
    (y,) = run_op(resolve_backend(backend, "conv_transpose2d", spec), "conv_transpose2d", spec,
                  x if batched else x[np.newaxis], w, bias)
    return y if batched else y[0]


def conv2d_backward(x, w, grad_out, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros", bias=False,
                    backend="auto"):
    """Gradients of ``conv2d(x, w, b, ...)`` given ``grad_out``: ``(grad_input, grad_weight, grad_bias)``.

    Parameters
    ----------
    x, w : numpy.ndarray
        The forward call's input and weight (as :func:`harness.conv2d`).
    grad_out : numpy.ndarray
        Gradient of the loss with respect to the forward output, of its shape.
    stride, padding, dilation, groups, padding_mode
        The forward call's arguments.
    bias : bool
        Whether the forward call had a bias (then ``grad_bias`` is returned, else None).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray or None)
        grad_input shaped like ``x``, grad_weight like ``w``, grad_bias (O,) or None.
    """
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False (whether the forward conv had one), got {bias!r}")
    spec, batched = conv2d_spec(x, w, None, stride, padding, dilation, groups, padding_mode)
    spec = spec.with_(bias=bool(bias))
    check_array(grad_out, "grad_out")
    want = spec.out_shape if batched else spec.out_shape[1:]
    if grad_out.shape != tuple(want):
        raise ValueError(f"grad_out must have the forward output's shape {tuple(want)}, got {grad_out.shape}")
    if grad_out.dtype != x.dtype:
        raise TypeError(f"grad_out dtype {grad_out.dtype} does not match x dtype {x.dtype}")
    gi, gw, gb = run_op(resolve_backend(backend, "conv2d_backward", spec), "conv2d_backward", spec,
                        x if batched else x[np.newaxis], w, grad_out if batched else grad_out[np.newaxis])
    return (gi if batched else gi[0]), gw, gb


def depthwise_separable_conv2d(x, w_depthwise, w_pointwise, bias_depthwise=None, bias_pointwise=None, stride=1,
                               padding=0, dilation=1, padding_mode="zeros", backend="auto"):
    """A depthwise conv (groups = C) then a pointwise 1x1 conv, as in MobileNet.

    Parameters
    ----------
    w_depthwise : numpy.ndarray
        (C * multiplier, 1, KH, KW).
    w_pointwise : numpy.ndarray
        (O, C * multiplier, 1, 1).
    bias_depthwise, bias_pointwise : numpy.ndarray, optional
    stride, padding, dilation, padding_mode
        Of the depthwise stage (the pointwise stage is 1x1, stride 1).

    See :func:`harness.ops.metrics.separable_accounting` for its FLOPs and parameters against the
    dense conv it factors.
    """
    spec, batched = depthwise_separable_spec(x, w_depthwise, w_pointwise, bias_depthwise, bias_pointwise, stride,
                                             padding, dilation, padding_mode)
    (y,) = run_op(resolve_backend(backend, "depthwise_separable_conv2d", spec), "depthwise_separable_conv2d",
                  spec, x if batched else x[np.newaxis], w_depthwise, w_pointwise, bias_depthwise, bias_pointwise)
    return y if batched else y[0]


def spatially_separable_conv2d(x, w_column, w_row, bias=None, stride=1, padding=0, dilation=1, groups=1,
                               padding_mode="zeros", backend="auto"):
    """A KHx1 column pass to M channels, then a 1xKW row pass: the KHxKW conv with kernel
    ``W[o, c] = sum_m w_row[o, m] (outer) w_column[m, c]`` (per group).

    Parameters
    ----------
    w_column : numpy.ndarray
        (M, C/groups, KH, 1).
    w_row : numpy.ndarray
        (O, M/groups, 1, KW).
    stride, padding, dilation, groups, padding_mode
        Those of the dense KHxKW equivalent ('same' and 'full' included).

    Use :func:`harness.factor_spatially_separable` to factor a dense kernel (its result states
    the rank and whether the factorisation is exact).
    """
    spec, batched = spatially_separable_spec(x, w_column, w_row, bias, stride, padding, dilation, groups,
                                             padding_mode)
    for a, name in ((w_column, "w_column"), (w_row, "w_row")):
        if a.dtype != x.dtype:
            raise TypeError(f"{name} dtype {a.dtype} does not match x dtype {x.dtype}")
    (y,) = run_op(resolve_backend(backend, "spatially_separable_conv2d", spec), "spatially_separable_conv2d",
                  spec, x if batched else x[np.newaxis], w_column, w_row, bias)
    return y if batched else y[0]
