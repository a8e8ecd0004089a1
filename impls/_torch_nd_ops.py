"""The ``torch`` backend's 1-D and 3-D ops: ``torch.nn.functional``'s conv1d / conv3d, their
transposes and pooling, and backward passes by autograd through them (what a torch training
step computes). Non-zero padding modes and uneven padding go through ``F.pad`` first, as
``torch.nn.Conv1d`` / ``Conv3d`` do.
"""

from __future__ import annotations

import numpy as np

from ._torch_ops import load_torch, to_tensor

_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def _t(a, device):
    return None if a is None else to_tensor(a, device)


def _np(t):
    return t.detach().cpu().numpy()


def conv_nd_tensor(xt, wt, bt, spec):
    """F.conv1d / F.conv3d on tensors with the spec's padding (any mode, any split)."""
    F = load_torch().nn.functional
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[spec.ndim]
    if spec.padding_mode == "zeros" and all(b == a for b, a in spec.padding):
        return conv(xt, wt, bt, spec.stride, tuple(b for b, _ in spec.padding), spec.dilation, spec.groups)
    # F.pad takes the last axis first: (left, right) of W, then H, then D
    widths = [p for pair in reversed(spec.padding) for p in pair]
    xt = F.pad(xt, widths, mode=_PAD_MODES[spec.padding_mode])
    return conv(xt, wt, bt, spec.stride, 0, spec.dilation, spec.groups)


def _pool_call(spec, t, indices: bool = False):
    F = load_torch().nn.functional
    if spec.kind == "max":
        pool = {1: F.max_pool1d, 3: F.max_pool3d}[spec.ndim]
        return pool(t, spec.kernel, spec.stride, spec.padding, spec.dilation, ceil_mode=spec.ceil_mode,
                    return_indices=indices)
    if spec.ndim == 1:  # torch's avg_pool1d has no divisor_override
        return F.avg_pool1d(t, spec.kernel, spec.stride, spec.padding, spec.ceil_mode, spec.count_include_pad)
    return F.avg_pool3d(t, spec.kernel, spec.stride, spec.padding, spec.ceil_mode, spec.count_include_pad,
                        spec.divisor_override)


def nd_family_on(device: str) -> dict:
    """Op name -> implementation of every 1-D and 3-D op, for one torch device."""

    def conv(x, w, bias, spec):
        if spec.N == 0:  # F.pad's non-constant modes refuse an empty batch; the answer is empty
            return np.zeros(spec.out_shape, dtype=spec.dtype)
        return _np(conv_nd_tensor(_t(x, device), _t(w, device), _t(bias, device), spec))

    def conv_transpose(x, w, bias, spec):
        F = load_torch().nn.functional
        fn = {1: F.conv_transpose1d, 3: F.conv_transpose3d}[spec.ndim]
        return _np(fn(_t(x, device), _t(w, device), _t(bias, device), spec.stride, spec.padding,
                      spec.output_padding, spec.groups, spec.dilation))

    def conv_backward(x, w, grad_out, spec):
        if spec.N == 0:
            zeros = lambda shape: np.zeros(shape, dtype=spec.dtype)  # noqa: E731
            return zeros(spec.x_shape), zeros(spec.w_shape), zeros((spec.O,)) if spec.bias else None
        torch = load_torch()
        # contiguous leaves: torch's CPU conv backward refuses to write a strided grad_weight
        xt = _t(x, device).detach().contiguous().requires_grad_(True)
        wt = _t(w, device).detach().contiguous().requires_grad_(True)
        bt = torch.zeros(spec.O, dtype=wt.dtype, device=device, requires_grad=True) if spec.bias else None
        conv_nd_tensor(xt, wt, bt, spec).backward(_t(grad_out, device))
        return _np(xt.grad), _np(wt.grad), (_np(bt.grad) if spec.bias else None)

    def max_pool(x, spec):
        out = _pool_call(spec, _t(x, device), spec.return_indices)
        return (_np(out[0]), _np(out[1])) if spec.return_indices else (_np(out), None)

    def avg_pool(x, spec):
        return _np(_pool_call(spec, _t(x, device)))

    def pool_backward(x, grad_out, spec):
        xt = _t(x, device).detach().contiguous().requires_grad_(True)
        _pool_call(spec, xt).backward(_t(grad_out, device))
        return _np(xt.grad)

    ops = {}
    for d in ("1d", "3d"):
        ops.update({f"conv{d}": conv, f"conv_transpose{d}": conv_transpose, f"conv{d}_backward": conv_backward,
                    f"max_pool{d}": max_pool, f"avg_pool{d}": avg_pool, f"max_pool{d}_backward": pool_backward,
                    f"avg_pool{d}_backward": pool_backward})
    return ops
