"""Counts of the 1-D and 3-D ops: the seed's FLOP definition (``harness.ops.metrics``) per spatial axis.

A conv's dense FLOPs are ``N*O*prod(out) * (2*C/groups*prod(kernel) - 1 [+1 with bias])``;
useful FLOPs leave out taps in zero padding (benchdnn's count), exact from per-axis counts since
the in-bounds taps of an output factor over the axes. Transposed conv: ``2 * MACs`` (+ bias adds);
backward: grad_input and grad_weight ``2 * MACs`` each, grad_bias one add per grad_out element;
max pooling ``window - 1`` comparisons per output, average pooling ``window - 1`` adds and one
division; pooling backward one add per routed gradient (max) or per tap plus the division (avg).
Every forward record also reports (through the op table) parameters, CPR (MACs per parameter), minimal traffic, intensity and
the layer's receptive field per axis (``receptive_field``, e.g. ``3x7x7``).
"""

from __future__ import annotations

import numpy as np

from harness.ops.conv_nd_spec import spatial_prod
from harness.ops.metrics import receptive_field


def _shape_text(shape) -> str:
    return "x".join(map(str, shape))


def _valid_taps(n_out: int, k: int, stride: int, dilation: int, before: int, size: int) -> np.ndarray:
    pos = np.arange(n_out)[:, None] * stride + np.arange(k)[None, :] * dilation - before
    return ((pos >= 0) & (pos < size)).sum(axis=1)


def conv_params(spec) -> int:
    """Weights plus bias (the weight's shape is the op's own: OI... or IO...)."""
    return spatial_prod(spec.w_shape) + int(spec.bias) * spec.O


def conv_useful_flops(spec) -> int:
    """Dense FLOPs without the taps that land in zero padding."""
    outputs = spatial_prod(spec.out_dims)
    if spec.padding_mode != "zeros":
        return spec.N * spec.O * outputs * (2 * spec.n_acc - 1 + int(spec.bias))
    taps, nonempty = 1, 1
    for o, k, s, d, (before, _), n in zip(spec.out_dims, spec.kernel, spec.stride, spec.dilation, spec.padding,
                                          spec.size):
        per_axis = _valid_taps(o, k, s, d, before, n)
        taps *= int(per_axis.sum())
        nonempty *= int(np.count_nonzero(per_axis))
    per_plane = 2 * (spec.C // spec.groups) * taps - nonempty + int(spec.bias) * nonempty
    return spec.N * spec.O * per_plane


def layer_receptive_field(spec) -> str:
    """The receptive field of one output of this layer, per axis (``d*(k-1) + 1``)."""
    return _shape_text(receptive_field([(k, s, d, 0)]).size for k, s, d in
                       zip(spec.kernel, spec.stride, spec.dilation))


def stack_receptive_field(specs) -> tuple:
    """Per axis, :class:`harness.ops.metrics.ReceptiveField` of a stack of N-d conv specs, first layer first."""
    specs = list(specs)
    ndim = specs[0].ndim if specs else 0
    return tuple(receptive_field((s.kernel[a], s.stride[a], s.dilation[a], s.padding[a][0]) for s in specs)
                 for a in range(ndim))


def traffic_elements(spec) -> int:
    """Elements a forward call moves at least once: input, parameters (if any) and output."""
    params = conv_params(spec) if hasattr(spec, "w_shape") else 0
    return spatial_prod(spec.x_shape) + params + spatial_prod(spec.out_shape)


def conv_nd_counts(spec) -> dict:
    """Counts of a conv1d / conv3d call (see the module docstring)."""
    params = conv_params(spec)
    outputs = spec.N * spec.O * spatial_prod(spec.out_dims)
    counts = {"out_shape": _shape_text(spec.out_shape), "macs": spec.macs,
              "flops_dense": outputs * (2 * spec.n_acc - 1 + int(spec.bias)),
              "flops_useful": conv_useful_flops(spec), "flops_torch": 2 * spec.macs, "params": params,
              "receptive_field": layer_receptive_field(spec)}
    return counts


def conv_transpose_nd_counts(spec) -> dict:
    """Every product lands on a real output: ``2 * MACs`` plus the bias adds."""
    params = conv_params(spec)
    outputs = spec.N * spec.O * spatial_prod(spec.out_dims)
    counts = {"out_shape": _shape_text(spec.out_shape), "macs": spec.macs,
              "flops_dense": 2 * spec.macs + int(spec.bias) * outputs, "params": params,
              "receptive_field": layer_receptive_field(spec)}
    return counts


def conv_nd_backward_counts(spec) -> dict:
    grad_bias = spec.N * spec.O * spatial_prod(spec.out_dims) if spec.bias else 0
    return {"out_shape": _shape_text(spec.x_shape), "macs": 2 * spec.macs, "flops_dense": 4 * spec.macs + grad_bias,
            "params": conv_params(spec), "receptive_field": layer_receptive_field(spec)}


def pool_nd_counts(spec) -> dict:
    outputs = spec.N * spec.C * spatial_prod(spec.out_dims)
    counts = {"out_shape": _shape_text(spec.out_shape), "macs": 0,
              "flops_dense": outputs * (spec.window - 1 + (spec.kind == "avg")), "params": 0,
              "receptive_field": layer_receptive_field(spec)}
    return counts


def pool_nd_backward_counts(spec) -> dict:
    outputs = spec.N * spec.C * spatial_prod(spec.out_dims)
    return {"out_shape": _shape_text(spec.x_shape), "macs": 0,
            "flops_dense": outputs if spec.kind == "max" else outputs * (spec.window + 1), "params": 0,
            "receptive_field": layer_receptive_field(spec)}
