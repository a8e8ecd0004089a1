"""The ``torch`` backend's helpers (torch loaded once, tensors from read-only arrays, conv2d with
any padding) and its convolution family: ``torch.nn.functional`` ops and autograd.

Backward passes run torch's autograd through the forward op (so they are exactly what a torch
training step computes), seeded with the given grad_out.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_TORCH_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


@lru_cache(maxsize=None)
def load_torch():
    """Import torch once, with the settings that make it a trustworthy reference."""
    import torch

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return torch


def to_tensor(a, device="cpu"):
    torch = load_torch()
    if any(s < 0 for s in a.strides):  # torch.from_numpy refuses negative strides
        a = a.copy()  # (ascontiguousarray keeps a negative stride on an axis of length 1)
    if not a.flags.writeable:
        # harness.conv2d hands backends read-only views; torch only reads them, but
        # from_numpy insists on a writable array, so take a writable view where numpy allows.
        a = a.view()
        try:
            a.flags.writeable = True
        except ValueError:  # the caller's own array is read-only
            a = a.copy()
    if a.dtype.name == "bfloat16":  # torch.from_numpy knows no ml_dtypes: the same 16 bits as int16
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16).to(device)
    return torch.from_numpy(a).to(device)


def to_numpy(t) -> np.ndarray:
    """A tensor's values as a numpy array of the same dtype (bfloat16 as ``ml_dtypes.bfloat16``)."""
    t = t.detach().cpu()
    if t.dtype == load_torch().bfloat16:
        import ml_dtypes

        return t.view(load_torch().int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def conv2d_tensor(xt, wt, bt, spec):
    """F.conv2d on tensors with the spec's padding (any mode, any split)."""
    torch = load_torch()
    F = torch.nn.functional
    top, bottom, left, right = spec.padding
    if spec.padding_mode == "zeros" and top == bottom and left == right:
        padding = (top, left)
    else:
        xt = F.pad(xt, (left, right, top, bottom), mode=_TORCH_PAD_MODES[spec.padding_mode])
        padding = 0
    return F.conv2d(xt, wt, bt, spec.stride, padding, spec.dilation, spec.groups)



def _torch():
    return load_torch()


# -- per-side pooling padding: torch pads pooling windows symmetrically only -------------------------
def _per_side(spec) -> bool:
    top, bottom, left, right = spec.pads
    return top != bottom or left != right


def _first_inside(out: int, stride: int, before: int, dilation: int):
    """Per window along one axis: the first tap inside the input (torch's index of a window of -inf)."""
    start = np.arange(out) * stride - before
    return start + (-(-np.maximum(-start, 0) // dilation)) * dilation


def max_pool_per_side(t, spec):
    """(y, indices) of max pooling with per-side padding: an explicit -inf border, no implicit padding.

    Indices are mapped back to the unpadded plane; a window whose taps inside the input are all
    -inf points at its first tap inside the input, as torch's implicit padding does.
    """
    torch = load_torch()
    F = torch.nn.functional
    top, bottom, left, right = spec.pads
    padded = F.pad(t, (left, right, top, bottom), value=float("-inf"))
    y, index = F.max_pool2d(padded, spec.kernel, spec.stride, 0, spec.dilation, ceil_mode=spec.ceil_mode,
                            return_indices=True)
    y, index = y[..., :spec.OH, :spec.OW], index[..., :spec.OH, :spec.OW]  # torch may keep a window we drop
    Wp = spec.W + left + right
    rows, cols = index // Wp - top, index % Wp - left
    first_row = torch.as_tensor(_first_inside(spec.OH, spec.stride[0], top, spec.dilation[0]))[:, None]
    first_col = torch.as_tensor(_first_inside(spec.OW, spec.stride[1], left, spec.dilation[1]))[None, :]
    outside = (rows < 0) | (rows >= spec.H) | (cols < 0) | (cols >= spec.W)
    rows, cols = torch.where(outside, first_row, rows), torch.where(outside, first_col, cols)
    return y, rows * spec.W + cols


def avg_pool_per_side(t, spec):
    """Average pooling with per-side padding: window sums over a zero border (in float32 for half
    dtypes), divided by the spec's divisors (``harness.ops.pool_spec.avg_divisors``)."""
    from harness.ops.pool_spec import avg_divisors

    torch = load_torch()
    F = torch.nn.functional
    top, bottom, left, right = spec.pads
    work = t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
    padded = F.pad(work, (left, right, top, bottom))
    sums = F.avg_pool2d(padded, spec.kernel, spec.stride, 0, spec.ceil_mode, True, 1)[..., :spec.OH, :spec.OW]
    return (sums / torch.as_tensor(avg_divisors(spec), dtype=work.dtype)).to(t.dtype)


def _tensor(a, device):
    return None if a is None else to_tensor(a, device)


def _numpy(t):
    return to_numpy(t)


def family_on(device: str) -> dict:
    """Op name -> implementation, for one torch device."""
    F = None

    def functional():
        nonlocal F
        if F is None:
            F = _torch().nn.functional
        return F

    def conv_transpose2d(x, w, bias, spec):
        # per-side padding (torch has none here): the uncropped output (padding 0), then the crop
        top, bottom, left, right = spec.pads
        padding = (0, 0) if _per_side(spec) else spec.padding
        y = functional().conv_transpose2d(_tensor(x, device), _tensor(w, device), _tensor(bias, device),
                                          spec.stride, padding, spec.output_padding, spec.groups,
                                          spec.dilation)
        if _per_side(spec):
            y = y[..., top:top + spec.OH, left:left + spec.OW]
        return _numpy(y)

    def max_pool2d(x, spec):
        if _per_side(spec):
            y, index = max_pool_per_side(_tensor(x, device), spec)
            return _numpy(y), (_numpy(index) if spec.return_indices else None)
        out = functional().max_pool2d(_tensor(x, device), spec.kernel, spec.stride, spec.padding, spec.dilation,
                                      ceil_mode=spec.ceil_mode, return_indices=spec.return_indices)
        return (_numpy(out[0]), _numpy(out[1])) if spec.return_indices else (_numpy(out), None)

    def avg_pool2d(x, spec):
        if _per_side(spec):
            return _numpy(avg_pool_per_side(_tensor(x, device), spec))
        return _numpy(functional().avg_pool2d(_tensor(x, device), spec.kernel, spec.stride, spec.padding,
                                              spec.ceil_mode, spec.count_include_pad, spec.divisor_override))

    def adaptive_avg_pool2d(x, spec):
        return _numpy(functional().adaptive_avg_pool2d(_tensor(x, device), (spec.OH, spec.OW)))

    def adaptive_max_pool2d(x, spec):
        y, index = functional().adaptive_max_pool2d(_tensor(x, device), (spec.OH, spec.OW), return_indices=True)
        return _numpy(y), (_numpy(index) if spec.return_indices else None)

    def conv2d_backward(x, w, grad_out, spec):
        torch = _torch()
        if spec.N == 0:  # F.pad's non-constant modes refuse an empty batch; every gradient is zero
            zeros = lambda shape: np.zeros(shape, dtype=spec.dtype)  # noqa: E731
            return zeros(spec.x_shape), zeros(spec.w_shape), zeros((spec.O,)) if spec.bias else None
        # contiguous leaves: torch's CPU conv backward refuses to write a strided grad_weight
        xt = _tensor(x, device).detach().contiguous().requires_grad_(True)
        wt = _tensor(w, device).detach().contiguous().requires_grad_(True)
        bt = torch.zeros(spec.O, dtype=wt.dtype, device=device, requires_grad=True) if spec.bias else None
        conv2d_tensor(xt, wt, bt, spec).backward(_tensor(grad_out, device))
        return _numpy(xt.grad), _numpy(wt.grad), (_numpy(bt.grad) if spec.bias else None)

    def _pool_backward(forward, x, grad_out):
        xt = _tensor(x, device).detach().contiguous().requires_grad_(True)
        forward(xt).backward(_tensor(grad_out, device))
        return _numpy(xt.grad)

    def max_pool2d_backward(x, grad_out, spec):
        if _per_side(spec):  # each output's gradient to its (mapped) arg-max, summed
            _, index = max_pool_per_side(_tensor(x, device), spec)
            go = _tensor(grad_out, device)
            grad = _torch().zeros(spec.N, spec.C, spec.H * spec.W, dtype=go.dtype, device=device)
            grad.scatter_add_(2, index.reshape(spec.N, spec.C, -1), go.reshape(spec.N, spec.C, -1))
            return _numpy(grad.reshape(spec.x_shape))
        return _pool_backward(lambda t: functional().max_pool2d(t, spec.kernel, spec.stride, spec.padding,
                                                                spec.dilation, ceil_mode=spec.ceil_mode),
                              x, grad_out)

    def avg_pool2d_backward(x, grad_out, spec):
        if _per_side(spec):
            return _pool_backward(lambda t: avg_pool_per_side(t, spec), x, grad_out)
        return _pool_backward(lambda t: functional().avg_pool2d(t, spec.kernel, spec.stride, spec.padding,
                                                                spec.ceil_mode, spec.count_include_pad,
                                                                spec.divisor_override),
                              x, grad_out)

    return {
        "conv_transpose2d": conv_transpose2d,
        "conv2d_backward": conv2d_backward,
        "max_pool2d": max_pool2d,
        "avg_pool2d": avg_pool2d,
        "adaptive_max_pool2d": adaptive_max_pool2d,
        "adaptive_avg_pool2d": adaptive_avg_pool2d,
        "max_pool2d_backward": max_pool2d_backward,
        "avg_pool2d_backward": avg_pool2d_backward,
    }
