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
    return torch.from_numpy(a).to(device)


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


def _tensor(a, device):
    return None if a is None else to_tensor(a, device)


def _numpy(t):
    return t.detach().cpu().numpy()


def family_on(device: str) -> dict:
    """Op name -> implementation, for one torch device."""
    F = None

    def functional():
        nonlocal F
        if F is None:
            F = _torch().nn.functional
        return F

    def conv_transpose2d(x, w, bias, spec):
        y = functional().conv_transpose2d(_tensor(x, device), _tensor(w, device), _tensor(bias, device),
                                          spec.stride, spec.padding, spec.output_padding, spec.groups,
                                          spec.dilation)
        return _numpy(y)

    def max_pool2d(x, spec):
        out = functional().max_pool2d(_tensor(x, device), spec.kernel, spec.stride, spec.padding, spec.dilation,
                                      ceil_mode=spec.ceil_mode, return_indices=spec.return_indices)
        return (_numpy(out[0]), _numpy(out[1])) if spec.return_indices else (_numpy(out), None)

    def avg_pool2d(x, spec):
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
        return _pool_backward(lambda t: functional().max_pool2d(t, spec.kernel, spec.stride, spec.padding,
                                                                spec.dilation, ceil_mode=spec.ceil_mode),
                              x, grad_out)

    def avg_pool2d_backward(x, grad_out, spec):
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
