"""Error bounds of the 1-D and 3-D ops, from the one formula (:func:`harness.ops.tolerance.gamma`).

Direct summation (``elementwise`` error models): a conv output sums ``C/groups * prod(kernel)``
products (+ the bias); a 3-D op may be computed as KD partial 2-D sums added in the dtype (its
lowering), which the bound charges as ``KD - 1`` more terms. Transform methods (FFT, Winograd)
only ever run the 2-D convolutions of the lowerings: their model's bound is applied to each of
those 2-D calls at the magnitudes of the whole output (each call's are smaller), summed over the
calls, plus the roundings of adding the calls' results.
"""

from __future__ import annotations

import numpy as np

from harness.ops.lowering import grad_input_spec, grad_weight_spec, transpose_as_conv2d_spec
from harness.ops.lowering_nd import depth_slice_spec, grad_input_spec_nd, grad_weight_spec_nd, transpose_as_conv_spec
from harness.ops.tolerance import gamma, largest, model_bound, worst_case


def _depth_terms(spec) -> int:
    """Partial sums a lowered 3-D conv adds in the dtype (one per depth tap past the first)."""
    return spec.kernel[0] - 1 if spec.ndim == 3 else 0


def conv_nd_bounds(ctx, case, arrays, A):
    spec = case.spec
    if ctx.model.elementwise:
        return (gamma(spec.dtype, spec.n_acc + spec.bias + _depth_terms(spec), A[0]),)
    return (_model_conv_bound(ctx.model, spec, A[0], case.batched),)


def _model_conv_bound(model, spec, A, batched: bool) -> np.ndarray:
    """A transform method's bound on a conv1d (its 2-D call) or conv3d (KD 2-D calls, planes stacked)."""
    A = np.asarray(A, dtype=np.float64)
    if spec.ndim == 1:
        A4 = A[..., None, :]  # (N, O, 1, L): the 2-D call's output
        return np.broadcast_to(model.bound(spec.as_conv2d(), A4), A4.shape)[..., 0, :]
    A5 = A if batched else A[None]
    N, O, OD, OH, OW = A5.shape
    A4 = A5.transpose(0, 2, 1, 3, 4).reshape(N * OD, O, OH, OW)
    per_call = np.broadcast_to(model.bound(depth_slice_spec(spec), A4), A4.shape)
    bound = per_call.reshape(N, OD, O, OH, OW).transpose(0, 2, 1, 3, 4) * spec.kernel[0]
    bound = bound + worst_case(spec.dtype, spec.kernel[0], A5)
    return bound if batched else bound[0]


def _slices(spec3d, count: int) -> list:
    return [depth_slice_spec(spec3d)] * count


def conv_transpose_nd_bounds(ctx, case, arrays, A):
    spec = case.spec
    x, w = arrays[0], arrays[1]
    if ctx.model.elementwise:
        return (gamma(spec.dtype, spec.n_acc + spec.bias + _depth_terms(spec), A[0]),)
    if spec.ndim == 1:
        return (model_bound(ctx.model, [transpose_as_conv2d_spec(spec.as_conv_transpose2d())], A[0], largest(x, w)),)
    calls = _slices(transpose_as_conv_spec(spec), spec.kernel[0])
    return (model_bound(ctx.model, calls, A[0], largest(x, w)) + worst_case(spec.dtype, spec.kernel[0], A[0]),)


def conv_nd_backward_bounds(ctx, case, arrays, A):
    """grad_input: ``O/groups * prod(kernel)`` terms (times 3 per axis when non-zero padding folds
    border gradients back); grad_weight and grad_bias: ``N * prod(out)`` terms."""
    spec = case.spec
    fold = 3 ** spec.ndim if spec.padding_mode != "zeros" else 1
    reduction = max(1, spec.N * int(np.prod(spec.out_dims)))
    if ctx.model.elementwise:
        lengths = [spec.O // spec.groups * int(np.prod(spec.kernel)) * fold + _depth_terms(spec),
                   reduction + (spec.out_dims[0] if spec.ndim == 3 else 0), reduction]
        return tuple(gamma(spec.dtype, n, a) for n, a in zip(lengths, A))
    x, w, go = arrays
    if spec.ndim == 1:
        s2 = spec.as_conv2d()
        bounds = [model_bound(ctx.model, [transpose_as_conv2d_spec(grad_input_spec(s2))], A[0], largest(go, w)),
                  model_bound(ctx.model, [grad_weight_spec(s2)], A[1], largest(x, go))]
    else:
        gi = _slices(transpose_as_conv_spec(grad_input_spec_nd(spec)), spec.kernel[0])
        gw = _slices(grad_weight_spec_nd(spec), spec.out_dims[0])
        bounds = [model_bound(ctx.model, gi, A[0], largest(go, w)) + worst_case(spec.dtype, len(gi), A[0]),
                  model_bound(ctx.model, gw, A[1], largest(x, go)) + worst_case(spec.dtype, len(gw), A[1])]
    if spec.bias:  # grad_bias is a plain sum in the lowering
        bounds.append(gamma(spec.dtype, reduction, A[2]))
    return tuple(bounds)
