"""Lowerings of the 1-D and 3-D ops, and the N-d data movements they (and N-d backends) share.

* Every **1-D** op is its 2-D op on an image of height 1 (kernel, stride, padding and
  dilation of 1 along the height): a backend with the 2-D op gets the 1-D one, with the 2-D
  op's features (the names are the same). Max-pooling indices are unchanged (``h = 0``).
* **conv3d** is a sum over the kernel's depth taps of conv2d calls: for depth tap ``kd`` the
  input planes ``kd*dd + od*sd`` of every output depth ``od`` are stacked into the batch and
  convolved with ``w[:, :, kd]``; the KD partial outputs are added in the dtype. Padding (any
  mode, any split) is done here, so the conv2d calls are unpadded.
* **conv_transpose3d** is conv3d (stride 1) of the zero-interleaved, padded input with the
  kernel flipped and its channel axes swapped per group; **conv3d_backward** is a transposed
  convolution (grad_input) and a conv3d with batch and channels swapped (grad_weight), as
  :mod:`harness.ops.lowering` does for 2-D, written here for any number of spatial axes.

Every sub-call goes through the harness's one dispatch path (``lowering.sub_op``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from harness.ops.conv_nd_spec import ConvNdSpec, ConvTransposeNdSpec
from harness.ops.conv_spec import Conv2dSpec
from harness.ops.lowering import Lowering, conv2d_backward_lowered_features, sub_op
from harness.ops.padding import NUMPY_MODES

PADDING_FEATURES = frozenset({"padding", "asymmetric_padding", "padding_mode=reflect", "padding_mode=replicate",
                              "padding_mode=circular"})


# -- N-d data movement ------------------------------------------------------------------------------
def pad_nd(x: np.ndarray, spec: ConvNdSpec) -> np.ndarray:
    """``x`` (N, C, *size) padded by ``spec.padding`` in ``spec.padding_mode`` (``x`` itself when unpadded)."""
    if not any(b or a for b, a in spec.padding):
        return x
    return np.pad(x, ((0, 0), (0, 0), *spec.padding), mode=NUMPY_MODES[spec.padding_mode])


def pad_nd_adjoint(grad_padded: np.ndarray, spec: ConvNdSpec) -> np.ndarray:
    """The gradient with respect to ``x`` of :func:`pad_nd`, given the padded gradient.

    Zero padding drops the border's gradient; the other modes copy input elements into the
    border, whose gradient flows back to them (each axis's source index is ``arange(size)``
    padded in the same mode, so the adjoint cannot disagree with the padding).
    """
    if spec.padding_mode == "zeros":
        inner = tuple(slice(b, b + n) for n, (b, _) in zip(spec.size, spec.padding))
        return np.ascontiguousarray(grad_padded[(slice(None), slice(None), *inner)])
    g = grad_padded
    for axis, (n, pads) in enumerate(zip(spec.size, spec.padding), start=2):
        source = np.pad(np.arange(n), pads, mode=NUMPY_MODES[spec.padding_mode])
        folded = np.zeros(g.shape[:axis] + (n,) + g.shape[axis + 1:], dtype=g.dtype)
        np.add.at(folded, (slice(None),) * axis + (source,), g)
        g = folded
    return g


def tap_window(tap, spec, out_dims) -> tuple:
    """Per spatial axis, the slice of the padded input that kernel tap ``tap`` reads for every output."""
    return tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                 for t, d, s, o in zip(tap, spec.dilation, spec.stride, out_dims))


# -- 1-D onto 2-D -------------------------------------------------------------------------------------
def conv1d_lowered(declared, run) -> Callable:
    conv = sub_op(declared, "conv2d", "conv1d", run)
    return lambda x, w, bias, spec: conv(x[:, :, None], w[:, :, None], bias, spec.as_conv2d())[:, :, 0]


def conv_transpose1d_lowered(declared, run) -> Callable:
    transpose = sub_op(declared, "conv_transpose2d", "conv_transpose1d", run)
    return lambda x, w, bias, spec: transpose(x[:, :, None], w[:, :, None], bias, spec.as_conv_transpose2d())[:, :, 0]


def conv1d_backward_lowered(declared, run) -> Callable:
    backward = sub_op(declared, "conv2d_backward", "conv1d_backward", run)

    def conv1d_backward(x, w, grad_out, spec):
        gi, gw, gb = backward(x[:, :, None], w[:, :, None], grad_out[:, :, None], spec.as_conv2d())
        return gi[:, :, 0], gw[:, :, 0], gb

    return conv1d_backward


def pool1d_lowered(op2d: str, op1d: str, outputs: int) -> Callable:
    """A 1-D pooling op (forward: ``outputs`` results; backward: one) through its 2-D op."""
    def build(declared, run):
        pool = sub_op(declared, op2d, op1d, run)

        def pool1d(*args):
            *arrays, spec = args
            result = pool(*[a[:, :, None] for a in arrays], spec.as_pool2d())
            if outputs == 1:
                return result[:, :, 0]
            return tuple(None if r is None else r[:, :, 0] for r in result)

        return pool1d

    return build


def same_features(op2d: str) -> Callable:
    return lambda b: b.features.get(op2d, frozenset())


# -- conv3d onto conv2d ---------------------------------------------------------------------------------
def depth_slice_spec(spec: ConvNdSpec) -> Conv2dSpec:
    """The unpadded conv2d each depth tap of a conv3d runs, all output depths stacked in the batch."""
    _, Hp, Wp = spec.padded_dims
    OD, _, _ = spec.out_dims
    return Conv2dSpec(spec.N * OD, spec.C, Hp, Wp, spec.O, spec.kernel[1], spec.kernel[2], spec.stride[1:],
                      (0, 0, 0, 0), spec.dilation[1:], spec.groups, "zeros", spec.bias, spec.dtype)


def conv3d_by_depth_taps(conv, x, w, bias, spec: ConvNdSpec) -> np.ndarray:
    """conv3d as the sum over depth taps of one conv2d each (``conv(x, w, bias, Conv2dSpec)``)."""
    xp = pad_nd(x, spec)
    OD, OH, OW = spec.out_dims
    s2 = depth_slice_spec(spec)
    y = None
    for kd in range(spec.kernel[0]):
        start = kd * spec.dilation[0]
        planes = xp[:, :, start:start + (OD - 1) * spec.stride[0] + 1:spec.stride[0]]  # (N, C, OD, Hp, Wp)
        stacked = np.ascontiguousarray(planes.transpose(0, 2, 1, 3, 4)).reshape(s2.N, spec.C, s2.H, s2.W)
        first = kd == 0  # the bias is added once, by the first tap's call
        part = conv(stacked, np.ascontiguousarray(w[:, :, kd]), bias if first else None,
                    s2 if first else s2.with_(bias=False))
        y = np.array(part) if first else y + part
    return np.ascontiguousarray(y.reshape(spec.N, OD, spec.O, OH, OW).transpose(0, 2, 1, 3, 4))


def conv3d_lowered(declared, run) -> Callable:
    conv = sub_op(declared, "conv2d", "conv3d", run)
    return lambda x, w, bias, spec: conv3d_by_depth_taps(conv, x, w, bias, spec)


def conv3d_lowered_features(conv2d_features) -> frozenset[str]:
    """Padding is the harness's; depth stride and dilation are slicing, the rest conv2d's."""
    return PADDING_FEATURES | (conv2d_features & {"bias", "stride", "dilation", "groups", "depthwise"})


# -- conv_transpose3d onto conv3d (any number of axes) ----------------------------------------------------
def transpose_as_conv_spec(t: ConvTransposeNdSpec) -> ConvNdSpec:
    """The stride-1 convolution that computes ``t`` on the interleaved, padded input."""
    size = tuple((n - 1) * s + 1 + 2 * d * (k - 1) + op - 2 * p for n, k, s, p, op, d in
                 zip(t.size, t.kernel, t.stride, t.padding, t.output_padding, t.dilation))
    ones = (1,) * t.ndim
    return ConvNdSpec(t.N, t.C, t.O, size, t.kernel, ones, ((0, 0),) * t.ndim, t.dilation, t.groups, "zeros",
                      t.bias, t.dtype)


def interleave_nd(x: np.ndarray, t: ConvTransposeNdSpec) -> np.ndarray:
    """``stride - 1`` zeros between input elements, a border of ``dilation*(k-1) - padding`` (plus
    ``output_padding`` at the end) on every axis: a crop where padding is the larger."""
    border = [d * (k - 1) for k, d in zip(t.kernel, t.dilation)]
    dims = [(n - 1) * s + 1 + 2 * e + op for n, s, e, op in zip(t.size, t.stride, border, t.output_padding)]
    full = np.zeros((t.N, t.C, *dims), dtype=x.dtype)
    full[(slice(None), slice(None), *[slice(e, e + (n - 1) * s + 1, s) for n, s, e in zip(t.size, t.stride, border)])] = x
    return full[(slice(None), slice(None), *[slice(p, dim - p) for p, dim in zip(t.padding, dims)])]


def flipped_kernel(w: np.ndarray, groups: int) -> np.ndarray:
    """(C, O/g, *k) -> (O, C/g, *k), each kernel reversed along every spatial axis."""
    C, Og, *kernel = w.shape
    swapped = w.reshape(groups, C // groups, Og, *kernel).swapaxes(1, 2).reshape(groups * Og, C // groups, *kernel)
    return np.ascontiguousarray(swapped[(slice(None), slice(None), *[slice(None, None, -1)] * len(kernel))])


def conv_transpose3d_lowered(declared, run) -> Callable:
    conv = sub_op(declared, "conv3d", "conv_transpose3d", run)
    return lambda x, w, bias, spec: conv(interleave_nd(x, spec), flipped_kernel(w, spec.groups), bias,
                                         transpose_as_conv_spec(spec))


def conv_transpose3d_lowered_features(conv3d_features) -> frozenset[str]:
    return frozenset({"stride", "padding", "output_padding"}) | (
        conv3d_features & {"bias", "dilation", "groups", "depthwise"})


# -- conv3d_backward onto conv_transpose3d and conv3d (any number of axes) -----------------------------------
def grad_input_spec_nd(spec: ConvNdSpec) -> ConvTransposeNdSpec:
    """The transposed convolution of grad_out that yields the gradient of the *padded* input;
    output_padding restores the elements the forward conv never read (zero gradient)."""
    used = [(o - 1) * s + d * (k - 1) + 1 for o, s, d, k in zip(spec.out_dims, spec.stride, spec.dilation, spec.kernel)]
    return ConvTransposeNdSpec(spec.N, spec.O, spec.C, spec.out_dims, spec.kernel, spec.stride, (0,) * spec.ndim,
                               tuple(p - u for p, u in zip(spec.padded_dims, used)), spec.dilation, spec.groups,
                               False, spec.dtype)


def grad_weight_spec_nd(spec: ConvNdSpec) -> ConvNdSpec:
    """The convolution (one per group) of the padded input with grad_out as its kernel: input
    channels as the batch, the batch as the reduction, stride and dilation exchanged."""
    n = spec.ndim
    return ConvNdSpec(spec.C // spec.groups, spec.N, spec.O // spec.groups, spec.padded_dims, spec.out_dims,
                      spec.dilation, ((0, 0),) * n, spec.stride, 1, "zeros", False, spec.dtype)


def conv_nd_backward_by(transpose, conv, x, w, grad_out, spec: ConvNdSpec):
    """(grad_input, grad_weight, grad_bias) of an N-d conv through a transposed conv and a conv."""
    if spec.N == 0:
        return (np.zeros(spec.x_shape, spec.dtype), np.zeros(spec.w_shape, spec.dtype),
                np.zeros(spec.O, spec.dtype) if spec.bias else None)
    grad_input = pad_nd_adjoint(transpose(grad_out, w, None, grad_input_spec_nd(spec)), spec).astype(spec.dtype)
    xp, gspec = pad_nd(x, spec), grad_weight_spec_nd(spec)
    Cg, Og = gspec.N, gspec.O
    crop = (slice(None), slice(None), *[slice(0, k) for k in spec.kernel])
    grad_weight = np.empty(spec.w_shape, dtype=spec.dtype)
    for g in range(spec.groups):
        xs = np.ascontiguousarray(xp[:, g * Cg:(g + 1) * Cg].swapaxes(0, 1))
        gs = np.ascontiguousarray(grad_out[:, g * Og:(g + 1) * Og].swapaxes(0, 1))
        grad_weight[g * Og:(g + 1) * Og] = conv(xs, gs, None, gspec)[crop].swapaxes(0, 1)
    axes = tuple(i for i in range(grad_out.ndim) if i != 1)
    grad_bias = grad_out.sum(axis=axes, dtype=np.float64).astype(spec.dtype) if spec.bias else None
    return grad_input, grad_weight, grad_bias


def conv3d_backward_lowered(declared, run) -> Callable:
    transpose = sub_op(declared, "conv_transpose3d", "conv3d_backward", run)
    conv = sub_op(declared, "conv3d", "conv3d_backward", run)
    return lambda x, w, grad_out, spec: conv_nd_backward_by(transpose, conv, x, w, grad_out, spec)


# -- the lowerings (each 1-D / 3-D op record in harness.ops.table names its own) ------------------------------
CONV1D = Lowering(needs=("conv2d",), build=conv1d_lowered, features=same_features("conv2d"))
CONV3D = Lowering(needs=("conv2d",), build=conv3d_lowered,
                  features=lambda b: conv3d_lowered_features(b.features.get("conv2d", frozenset())))
CONV_TRANSPOSE1D = Lowering(needs=("conv_transpose2d",), build=conv_transpose1d_lowered,
                            features=same_features("conv_transpose2d"))
CONV_TRANSPOSE3D = Lowering(needs=("conv3d",), build=conv_transpose3d_lowered,
                            features=lambda b: conv_transpose3d_lowered_features(b.features.get("conv3d", frozenset())))
CONV1D_BACKWARD = Lowering(needs=("conv2d_backward",), build=conv1d_backward_lowered,
                           features=same_features("conv2d_backward"))
CONV3D_BACKWARD = Lowering(
    needs=("conv3d", "conv_transpose3d"), build=conv3d_backward_lowered,
    features=lambda b: conv2d_backward_lowered_features(b.features.get("conv3d", frozenset()),
                                                        b.features.get("conv_transpose3d", frozenset())))


def pool1d_lowering(op2d: str, op1d: str, outputs: int, drop=frozenset()) -> Lowering:
    """The lowering of a 1-D pooling op onto ``op2d`` (``drop``: 2-D features the 1-D op lacks)."""
    return Lowering(needs=(op2d,), build=pool1d_lowered(op2d, op1d, outputs),
                    features=lambda b: b.features.get(op2d, frozenset()) - drop)
