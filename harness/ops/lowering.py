"""Lowerings: every op of the convolution family written once in terms of conv2d.

A backend that implements conv2d gets every op below for free; a backend may still implement
any of them natively (``Backend.ops``), and the native one wins. The registry records which
is which (``Backend.lowered``, ``Backend.op_impl``), so reports can tell them apart.

* ``conv_transpose2d``: conv2d (stride 1) of the zero-interleaved input, padded by
  ``dilation*(K-1) - padding`` (plus ``output_padding`` at the bottom/right), with the
  kernel flipped in space and its in/out channel axes swapped per group.
* ``conv2d_backward``: grad_input is the transposed convolution of grad_out (with the
  output_padding that restores the padded input size), folded back through the padding;
  grad_weight is the correlation of the padded input with grad_out (a conv2d whose batch
  and channel axes are swapped, stride and dilation exchanged); grad_bias is a plain sum.
* ``depthwise_separable_conv2d`` and ``spatially_separable_conv2d``: two conv2d stages.

Each lowered call checks that the backend's conv2d supports the spec it builds, and raises
``harness.Unsupported`` naming what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from harness.ops.adjoint import pad_adjoint
from harness.ops.conv_spec import Conv2dSpec
from harness.errors import Unsupported
from harness.ops.padding import pad_input
from harness.ops.transpose_spec import ConvTranspose2dSpec


def sub_op(declared, op: str, parent: str, run: Callable) -> Callable:
    """``declared``'s ``op`` as a checked callable for use inside the lowering of ``parent``.

    ``run(declared, op, spec, *arrays)`` is the harness's one dispatch path
    (``harness.backend.dispatch.run_op``): read-only arrays, the memory guard and the output
    check apply to every sub-call as to a direct call.
    """
    def call(*args):
        *arrays, spec = args
        why = declared.unsupported_reason(op, spec)
        if why:
            raise Unsupported(f"{parent} lowered to {op}: {why}")
        outs = run(declared, op, spec, *arrays)
        return outs[0] if len(outs) == 1 else outs

    return call


# -- conv_transpose2d ------------------------------------------------------------------------------
def transpose_as_conv2d_spec(t: ConvTranspose2dSpec) -> Conv2dSpec:
    """The stride-1 conv2d that computes ``t`` on the interleaved, padded input."""
    (sh, sw), (dh, dw) = t.stride, t.dilation
    top, bottom, left, right = t.pads
    H = (t.H - 1) * sh + 1 + 2 * dh * (t.KH - 1) + t.output_padding[0] - top - bottom
    W = (t.W - 1) * sw + 1 + 2 * dw * (t.KW - 1) + t.output_padding[1] - left - right
    return Conv2dSpec(t.N, t.C, H, W, t.O, t.KH, t.KW, dilation=t.dilation, groups=t.groups, bias=t.bias,
                      dtype=t.dtype)


def interleave_and_pad(x: np.ndarray, t: ConvTranspose2dSpec) -> np.ndarray:
    """Zeros between input pixels (stride - 1 of them), then the border the conv2d needs.

    The border is ``dilation*(K-1)`` on every side plus ``output_padding`` at the end, minus
    ``padding`` on every side (a crop when padding is larger than the dilated kernel).
    """
    (sh, sw), (dh, dw) = t.stride, t.dilation
    eh, ew = dh * (t.KH - 1), dw * (t.KW - 1)
    full = np.zeros((t.N, t.C, (t.H - 1) * sh + 1 + 2 * eh + t.output_padding[0],
                     (t.W - 1) * sw + 1 + 2 * ew + t.output_padding[1]), dtype=x.dtype)
    full[:, :, eh:eh + (t.H - 1) * sh + 1:sh, ew:ew + (t.W - 1) * sw + 1:sw] = x
    top, bottom, left, right = t.pads
    return full[:, :, top:full.shape[2] - bottom, left:full.shape[3] - right]


def flip_transpose(w: np.ndarray, groups: int) -> np.ndarray:
    """(C, O/g, KH, KW) -> (O, C/g, KH, KW), each kernel rotated by 180 degrees."""
    C, Og, KH, KW = w.shape
    per_group = w.reshape(groups, C // groups, Og, KH, KW).transpose(0, 2, 1, 3, 4)
    return per_group.reshape(groups * Og, C // groups, KH, KW)[:, :, ::-1, ::-1].copy()


def conv_transpose2d_lowered(declared, run) -> Callable:
    conv = sub_op(declared, "conv2d", "conv_transpose2d", run)

    def conv_transpose2d(x, w, bias, spec):
        return conv(interleave_and_pad(x, spec), flip_transpose(w, spec.groups), bias, transpose_as_conv2d_spec(spec))

    return conv_transpose2d


def conv_transpose2d_lowered_features(conv2d_features) -> frozenset[str]:
    """Stride, padding and output_padding become data movement; the rest passes to conv2d."""
    return frozenset({"stride", "padding", "asymmetric_padding", "output_padding"}) | (
        conv2d_features & {"bias", "dilation", "groups", "depthwise"})


# -- conv2d_backward -------------------------------------------------------------------------------
def grad_input_spec(spec: Conv2dSpec) -> ConvTranspose2dSpec:
    """The conv_transpose2d of grad_out that yields the gradient of the *padded* input."""
    top, bottom, left, right = spec.padding
    Hp, Wp = spec.H + top + bottom, spec.W + left + right
    used_h = (spec.OH - 1) * spec.stride[0] + spec.dilation[0] * (spec.KH - 1) + 1
    used_w = (spec.OW - 1) * spec.stride[1] + spec.dilation[1] * (spec.KW - 1) + 1
    # rows the forward conv never read get zero gradient: output_padding restores them
    return ConvTranspose2dSpec(spec.N, spec.O, spec.OH, spec.OW, spec.C, spec.KH, spec.KW, spec.stride,
                               (0, 0), (Hp - used_h, Wp - used_w), spec.dilation, spec.groups, False, spec.dtype)


def grad_weight_spec(spec: Conv2dSpec) -> Conv2dSpec:
    """The conv2d (one per group) correlating the padded input with grad_out.

    Batch and channels swap roles (input channels become the batch, the batch becomes the
    reduction), grad_out is the kernel, and stride and dilation exchange places. The result
    is at least KH x KW; the extra rows and columns (positions no tap reached) are cropped.
    """
    top, bottom, left, right = spec.padding
    Cg, Og = spec.C // spec.groups, spec.O // spec.groups
    return Conv2dSpec(Cg, spec.N, spec.H + top + bottom, spec.W + left + right, Og, spec.OH, spec.OW,
                      stride=spec.dilation, dilation=spec.stride, dtype=spec.dtype)


def grad_input_by(transpose: Callable, w, grad_out, spec: Conv2dSpec) -> np.ndarray:
    """grad_input of conv2d through ``transpose(grad_out, w, None, tspec)`` (a conv_transpose2d)."""
    grad_padded = transpose(grad_out, w, None, grad_input_spec(spec))
    return pad_adjoint(grad_padded, spec).astype(spec.dtype, copy=False)


def grad_weight_by(conv: Callable, x, grad_out, spec: Conv2dSpec) -> np.ndarray:
    """grad_weight of conv2d through ``conv(x', grad_out', None, gspec)`` (one conv2d per group)."""
    xp = pad_input(x, spec)
    gspec = grad_weight_spec(spec)
    Cg, Og = gspec.N, gspec.O
    grad_weight = np.empty(spec.w_shape, dtype=spec.dtype)
    for g in range(spec.groups):
        xs = np.ascontiguousarray(xp[:, g * Cg:(g + 1) * Cg].transpose(1, 0, 2, 3))
        gs = np.ascontiguousarray(grad_out[:, g * Og:(g + 1) * Og].transpose(1, 0, 2, 3))
        full = conv(xs, gs, None, gspec)  # (Cg, Og, >=KH, >=KW)
        grad_weight[g * Og:(g + 1) * Og] = full[:, :, :spec.KH, :spec.KW].transpose(1, 0, 2, 3)
    return grad_weight


def grad_bias_of(grad_out, spec: Conv2dSpec):
    return grad_out.sum(axis=(0, 2, 3), dtype=np.float64).astype(spec.dtype) if spec.bias else None


def conv2d_backward_lowered(declared, run) -> Callable:
    transpose = sub_op(declared, "conv_transpose2d", "conv2d_backward", run)
    conv = sub_op(declared, "conv2d", "conv2d_backward", run)

    def conv2d_backward(x, w, grad_out, spec):
        if spec.N == 0:
            return np.zeros(spec.x_shape, spec.dtype), np.zeros(spec.w_shape, spec.dtype), grad_bias_of(grad_out, spec)
        return (grad_input_by(transpose, w, grad_out, spec), grad_weight_by(conv, x, grad_out, spec),
                grad_bias_of(grad_out, spec))

    return conv2d_backward


def conv2d_backward_lowered_features(conv2d_features, transpose_features) -> frozenset[str]:
    """Padding (any mode, any split) and bias are the harness's; the rest needs the sub-ops."""
    out = {"bias", "padding", "asymmetric_padding", "padding_mode=reflect", "padding_mode=replicate",
           "padding_mode=circular"}
    if {"stride", "output_padding"} <= transpose_features and "dilation" in conv2d_features:
        out.add("stride")
    if "dilation" in transpose_features and "stride" in conv2d_features:
        out.add("dilation")
    if {"groups", "depthwise"} <= transpose_features:
        out |= {"groups", "depthwise"}
    return frozenset(out)


# -- separable convolutions --------------------------------------------------------------------------
def depthwise_separable_lowered(declared, run) -> Callable:
    conv = sub_op(declared, "conv2d", "depthwise_separable_conv2d", run)

    def depthwise_separable_conv2d(x, w_depthwise, w_pointwise, bias_depthwise, bias_pointwise, spec):
        mid = conv(x, w_depthwise, bias_depthwise, spec.depthwise)
        return conv(mid, w_pointwise, bias_pointwise, spec.pointwise)

    return depthwise_separable_conv2d


def spatially_separable_lowered(declared, run) -> Callable:
    conv = sub_op(declared, "conv2d", "spatially_separable_conv2d", run)

    def spatially_separable_conv2d(x, w_column, w_row, bias, spec):
        return conv(conv(x, w_column, None, spec.column), w_row, bias, spec.row)

    return spatially_separable_conv2d


# -- the lowerings (each op's record in harness.ops.table names its own) --------------------------------
@dataclass(frozen=True)
class Lowering:
    """How the harness provides an op from other ops of a backend."""

    needs: tuple[str, ...]
    build: Callable  # build(backend, run) -> implementation
    features: Callable  # features(backend) -> frozenset of the op's features it supports
    applies: Callable = lambda backend: True  # noqa: E731


CONV_TRANSPOSE2D = Lowering(
    needs=("conv2d",),
    build=conv_transpose2d_lowered,
    features=lambda b: conv_transpose2d_lowered_features(b.features.get("conv2d", frozenset())),
)
CONV2D_BACKWARD = Lowering(
    needs=("conv2d", "conv_transpose2d"),
    build=conv2d_backward_lowered,
    features=lambda b: conv2d_backward_lowered_features(b.features.get("conv2d", frozenset()),
                                                        b.features.get("conv_transpose2d", frozenset())),
)
DEPTHWISE_SEPARABLE = Lowering(
    needs=("conv2d",),
    build=depthwise_separable_lowered,
    features=lambda b: b.features.get("conv2d", frozenset()) - {"groups", "depthwise"},
    applies=lambda b: "depthwise" in b.features.get("conv2d", frozenset()),
)
SPATIALLY_SEPARABLE = Lowering(
    needs=("conv2d",),
    build=spatially_separable_lowered,
    features=lambda b: b.features.get("conv2d", frozenset()),
)
