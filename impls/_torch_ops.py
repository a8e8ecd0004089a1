"""The ``torch`` backend's convolution family: ``torch.nn.functional`` ops and autograd.

Backward passes run torch's autograd through the forward op (so they are exactly what a torch
training step computes), seeded with the given grad_out.
"""

from __future__ import annotations

import numpy as np


def _torch():
    from .torch import load_torch

    return load_torch()


def _tensor(a, device):
    from .torch import to_tensor

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
        from .torch import conv2d_tensor

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
