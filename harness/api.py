"""The public ops: argument checking, backend choice, and the call itself."""

from __future__ import annotations

import numpy as np

from .conv_spec import conv2d_spec
from .errors import BackendError, ResourceLimit, Unsupported
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
    finite = backend != "auto" or all(a is None or np.isfinite(a).all() for a in (x, w, bias))
    return run_conv2d(resolve_backend(backend, "conv2d", spec, finite), x, w, bias, spec, batched)


def run_conv2d(declared: Backend, x, w, bias, spec, batched=True) -> np.ndarray:
    """Call a backend's conv2d on checked arguments and check what it returns."""
    fn = declared.check("conv2d", spec)
    check_memory(declared, "conv2d", spec)
    x4 = _read_only(x if batched else x[np.newaxis])
    y = fn(x4, _read_only(w), None if bias is None else _read_only(bias), spec)
    _check_output(declared, y, spec)
    return y if batched else y[0]


def resolve_backend(name, op: str, spec, finite: bool = True) -> Backend:
    """The backend named, or for 'auto' the fastest by :func:`harness.autoselect.estimate`, else
    (no cost model for the call) the first available one that supports it, by ``auto_rank``.

    ``finite=False`` (the data holds NaN or Inf) keeps 'auto' to backends that propagate them
    element by element as torch does (not FFT or Winograd, which smear them over a tile).
    """
    if name != "auto":
        return get_backend(name)
    from .autoselect import estimate

    choice = estimate(op, spec) if finite else None
    if choice is not None:
        return get_backend(choice.backend)
    candidates = [b for b in backends() if b.available and b.unsupported_reason(op, spec) is None
                  and (finite or b.nonfinite)]
    if not candidates:
        raise Unsupported(f"no available backend supports {op} on {spec}")
    return min(candidates, key=lambda b: (b.auto_rank, b.name))


def conv2d_memory_bytes(declared: Backend, op: str, spec) -> int:
    """Bytes a call allocates: output, a padded input copy, and the backend's workspace."""
    item = np.dtype(spec.dtype).itemsize
    return item * (spec.padded_size + spec.out_size) + int(declared.workspace_bytes(op, spec))


def available_memory_bytes() -> int | None:
    """MemAvailable, capped by a cgroup memory limit when one is set; None when unknown."""
    limits = []
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        text = open("/sys/fs/cgroup/memory.max").read().strip()
        if text.isdigit():
            limits.append(int(text))
    except OSError:
        pass
    return min(limits) if limits else None


def check_memory(declared: Backend, op: str, spec) -> None:
    """Refuse, before allocating anything, a call that cannot fit in available memory."""
    need = conv2d_memory_bytes(declared, op, spec)
    have = available_memory_bytes()
    if have is not None and need > have:
        raise ResourceLimit(
            f"{op} on {declared.name!r} would need about {need / 2**30:.1f} GiB (output {spec.out_shape}, "
            f"padded input and workspace) but only {have / 2**30:.1f} GiB is available"
        )


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


# -- every other op: one generic runner ---------------------------------------------------------------
def expected_outputs(op: str, spec) -> tuple:
    """(shape, dtype) of each output of ``op`` on ``spec``; None marks an output that must be None."""
    if op == "conv2d_backward":
        return ((spec.x_shape, spec.dtype), (spec.w_shape, spec.dtype),
                ((spec.O,), spec.dtype) if spec.bias else None)
    if op in ("max_pool2d_backward", "avg_pool2d_backward"):
        return ((spec.x_shape, spec.dtype),)
    if op == "conv2d":
        return ((spec.out_shape, spec.dtype),)
    return spec.outputs


def run_op(declared: Backend, op: str, spec, *arrays) -> tuple:
    """Call a backend's ``op`` on checked, batched (4-D) arrays; a tuple of its checked outputs.

    The arrays reach the backend as read-only views (so no backend can modify the caller's
    data), followed by ``spec``. Whatever the op returns (one array or a tuple) is checked
    against :func:`expected_outputs` and returned as a tuple.
    """
    fn = declared.check(op, spec)
    out = fn(*[None if a is None else _read_only(a) for a in arrays], spec)
    outs = out if isinstance(out, tuple) else (out,)
    expected = expected_outputs(op, spec)
    if len(outs) != len(expected):
        raise BackendError(f"backend {declared.name!r} {op} returned {len(outs)} outputs, expected {len(expected)}")
    for i, (y, want) in enumerate(zip(outs, expected)):
        if want is None:
            if y is not None:
                raise BackendError(f"backend {declared.name!r} {op} output {i} should be None")
            continue
        shape, dtype = want
        if not isinstance(y, np.ndarray):
            raise BackendError(f"backend {declared.name!r} {op} output {i} is {type(y).__name__}, not an ndarray")
        if y.shape != tuple(shape) or y.dtype.name != dtype:
            raise BackendError(f"backend {declared.name!r} {op} output {i} has shape {y.shape} and dtype "
                               f"{y.dtype}, expected {tuple(shape)} and {dtype}")
    return outs
