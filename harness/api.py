"""The public ops: argument checking, backend choice, and the call itself."""

from __future__ import annotations

import numpy as np

from .conv_spec import conv2d_spec
from .errors import BackendError, Unsupported
from .registry import Backend, backends, get_backend


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
        A registered backend name, or 'auto' for the preferred available one that
        supports the call.

    Returns
    -------
    numpy.ndarray
        (N, O, OH, OW), or (O, OH, OW) for unbatched input, of the input's dtype.
        The inputs are never modified.
    """
    spec, batched = conv2d_spec(x, w, bias, stride, padding, dilation, groups, padding_mode)
    return run_conv2d(resolve_backend(backend, "conv2d", spec), x, w, bias, spec, batched)


def run_conv2d(declared: Backend, x, w, bias, spec, batched=True) -> np.ndarray:
    """Call a backend's conv2d on checked arguments and check what it returns."""
    fn = declared.check("conv2d", spec)
    x4 = _read_only(x if batched else x[np.newaxis])
    y = fn(x4, _read_only(w), None if bias is None else _read_only(bias), spec)
    _check_output(declared, y, spec)
    return y if batched else y[0]


def resolve_backend(name, op: str, spec) -> Backend:
    """The backend named, or for 'auto' the first available one that supports the call."""
    if name != "auto":
        return get_backend(name)
    candidates = [b for b in backends() if b.available and b.unsupported_reason(op, spec) is None]
    if not candidates:
        raise Unsupported(f"no available backend supports {op} on {spec}")
    return min(candidates, key=lambda b: (b.auto_rank, b.name))


def _read_only(a: np.ndarray) -> np.ndarray:
    """A view that cannot be written through, so no backend can modify the caller's data."""
    view = a.view()
    view.flags.writeable = False
    return view


def _check_output(declared: Backend, y, spec) -> None:
    if not isinstance(y, np.ndarray):
        raise BackendError(f"backend {declared.name!r} returned {type(y).__name__}, not a numpy.ndarray")
    if y.shape != spec.out_shape:
        raise BackendError(
            f"backend {declared.name!r} returned shape {y.shape}, expected {spec.out_shape}"
        )
    if y.dtype.name != spec.dtype:
        raise BackendError(f"backend {declared.name!r} returned dtype {y.dtype}, expected {spec.dtype}")
