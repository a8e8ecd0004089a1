"""Analysis of a conv2d problem: sizes, operation counts, traffic, and the roofline.

The FLOP definition
-------------------
convbench has **one** FLOP definition, the seed formula, reported as ``dense`` FLOPs::

    dense_flops = N * O * OH * OW * (2 * C/groups * KH * KW - 1 [+ 1 with bias])

Each output element is a sum of ``n = C/groups*KH*KW`` products: ``n`` multiplies and
``n - 1`` adds, plus one add for the bias. Taps that land in the padding are counted, as
MIOpen counts them. Every GFLOP/s figure convbench prints uses this count unless it says
otherwise.

Two other counts are reported next to it, never instead of it:

* ``useful`` FLOPs (as oneDNN's benchdnn counts): the same formula with each output
  element's reduction length replaced by the number of its taps that land inside the
  input (zero padding contributes nothing). An output whose taps all land in the padding
  costs nothing (its value is just the bias). With ``padding_mode`` other than zeros the
  padded values are real data, so useful == dense.
* ``torch_flops``: torch's ``FlopCounterMode`` convention, ``2 * MACs`` (bias ignored),
  which happens to equal ``dense_flops`` with bias.

MACs are ``N*O*OH*OW*C/groups*KH*KW``; parameters are weights plus bias; CPR (compute per
parameter) is MACs / parameters; arithmetic intensity is dense FLOPs per byte of the
minimal traffic (x, w and bias read once, y written once, at the dtype's size).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.ops.conv_spec import Conv2dSpec


def output_shape(spec: Conv2dSpec) -> tuple[int, int, int, int]:
    """(N, O, OH, OW) of the convolution."""
    return spec.out_shape


def macs(spec: Conv2dSpec) -> int:
    """Multiply-accumulates, padding taps included: N*O*OH*OW * C/groups*KH*KW."""
    return spec.N * spec.O * spec.OH * spec.OW * spec.n_acc


def dense_flops(spec: Conv2dSpec) -> int:
    """FLOPs by the seed formula (padding taps counted, bias add counted when present).

    >>> dense_flops(Conv2dSpec(1, 1, 5, 5, 1, 3, 3))   # 9 outputs * (2*9 - 1)
    153
    """
    per_output = 2 * spec.n_acc - 1 + int(spec.bias)
    return spec.N * spec.O * spec.OH * spec.OW * per_output


def useful_flops(spec: Conv2dSpec) -> int:
    """FLOPs excluding taps that land in zero padding (benchdnn's count).

    The number of in-bounds taps of output (i, j) factors as ``rows(i) * cols(j)``, so the
    count is exact from two short per-axis vectors instead of a pass over the output.
    """
    if spec.padding_mode != "zeros":
        return dense_flops(spec)
    top, _, left, _ = spec.padding
    rows = _valid_taps(spec.OH, spec.KH, spec.stride[0], spec.dilation[0], top, spec.H)
    cols = _valid_taps(spec.OW, spec.KW, spec.stride[1], spec.dilation[1], left, spec.W)
    taps = int(rows.sum()) * int(cols.sum())
    nonempty = int(np.count_nonzero(rows)) * int(np.count_nonzero(cols))
    per_plane = 2 * (spec.C // spec.groups) * taps - nonempty + int(spec.bias) * nonempty
    return spec.N * spec.O * per_plane


def _valid_taps(n_out: int, k: int, stride: int, dilation: int, before: int, size: int) -> np.ndarray:
    """For each output index along one axis, how many of its k taps fall inside [0, size)."""
    pos = np.arange(n_out)[:, None] * stride + np.arange(k)[None, :] * dilation - before
    return ((pos >= 0) & (pos < size)).sum(axis=1)


def torch_flops(spec: Conv2dSpec) -> int:
    """torch.utils.flop_counter.FlopCounterMode's count: 2 * MACs, bias ignored."""
    return 2 * macs(spec)


def params(spec: Conv2dSpec) -> int:
    """Weights plus bias: O * C/groups * KH * KW (+ O)."""
    return spec.O * (spec.C // spec.groups) * spec.KH * spec.KW + spec.O * int(spec.bias)


def cpr(spec: Conv2dSpec) -> float:
    """Compute per parameter: MACs / parameters (OH*OW*N without bias)."""
    return macs(spec) / params(spec)


def min_bytes(spec: Conv2dSpec) -> int:
    """Minimal memory traffic: read x, w, bias once and write y once."""
    itemsize = np.dtype(spec.dtype).itemsize
    elements = (
        spec.N * spec.C * spec.H * spec.W
        + params(spec)
        + spec.N * spec.O * spec.OH * spec.OW
    )
    return itemsize * elements


def intensity(spec: Conv2dSpec) -> float:
    """Arithmetic intensity: dense FLOPs per byte of minimal traffic."""
    moved = min_bytes(spec)
    return dense_flops(spec) / moved if moved else 0.0


def roofline_gflops(intensity_flops_per_byte: float, peak_gflops: float, bandwidth_gbs: float) -> float:
    """Attainable GFLOP/s: min(peak, intensity * bandwidth)."""
    return min(peak_gflops, intensity_flops_per_byte * bandwidth_gbs)


def pct_of(achieved_gflops: float, attainable_gflops: float) -> float:
    """Achieved as a percentage of what is attainable (NaN when nothing is attainable)."""
    return 100.0 * achieved_gflops / attainable_gflops if attainable_gflops > 0 else float("nan")


def analyse(spec: Conv2dSpec) -> dict[str, float]:
    """Every count above for one spec, as a flat dict (the columns of ``convbench shapes``)."""
    return {
        "out_shape": "x".join(map(str, spec.out_shape)),
        "macs": macs(spec),
        "flops_dense": dense_flops(spec),
        "flops_useful": useful_flops(spec),
        "flops_torch": torch_flops(spec),
        "params": params(spec),
        "cpr": cpr(spec),
        "bytes": min_bytes(spec),
        "intensity": intensity(spec),
    }


# -- receptive field ---------------------------------------------------------------------
@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one output unit after a stack of layers, along one axis.

    size : input pixels that can influence one output unit
    jump : distance in input pixels between adjacent output units (product of strides)
    start : input coordinate of the centre of the first output unit's field (may be < 0,
        i.e. in the padding)
    """

    size: int
    jump: int
    start: float


def receptive_field(layers) -> ReceptiveField:
    """Receptive field along one axis of a stack of layers.

    Parameters
    ----------
    layers : iterable of (kernel, stride, dilation, padding)
        ``padding`` is the amount added before the input (top or left), first layer first.

    Examples
    --------
    >>> receptive_field([(3, 1, 1, 1), (3, 1, 1, 1)])   # two 3x3 convs see 5x5
    ReceptiveField(size=5, jump=1, start=0.0)
    """
    size, jump, start = 1, 1, 0.0
    for kernel, stride, dilation, padding in layers:
        extent = dilation * (kernel - 1) + 1
        start += ((extent - 1) / 2 - padding) * jump
        size += (extent - 1) * jump
        jump *= stride
    return ReceptiveField(size, jump, start)


def receptive_field_of_specs(specs) -> tuple[ReceptiveField, ReceptiveField]:
    """(height, width) receptive fields of a stack of Conv2dSpecs, first layer first."""
    specs = list(specs)
    height = receptive_field((s.KH, s.stride[0], s.dilation[0], s.padding[0]) for s in specs)
    width = receptive_field((s.KW, s.stride[1], s.dilation[1], s.padding[2]) for s in specs)
    return height, width


# -- the rest of the convolution family ----------------------------------------------------------
# Counting conventions, the seed's applied to each op:
#   transposed conv: the MACs of its forward pair (every input pixel times every tap of its
#     group's kernel), FLOPs = 2 * MACs (each product is added into its output) + bias adds;
#   max pooling: KH*KW - 1 comparisons per output (padding taps counted, as for conv);
#   average pooling: KH*KW - 1 adds and one division per output;
#   adaptive pooling: the same per output, with that output's own window;
#   conv2d backward: grad_input and grad_weight each cost the forward MACs; grad_bias one add
#     per grad_out element;
#   pooling backward: one add per routed gradient (max), or per window tap plus the division (avg).
# No pooling op has parameters.


def transpose_macs(spec) -> int:
    """MACs of a :class:`~harness.ops.transpose_spec.ConvTranspose2dSpec`: N*C*H*W * O/groups*KH*KW."""
    return spec.macs


def transpose_flops(spec) -> int:
    """2 * MACs, plus one add per output element with bias."""
    return 2 * spec.macs + int(spec.bias) * spec.N * spec.O * spec.OH * spec.OW


def transpose_params(spec) -> int:
    return spec.C * (spec.O // spec.groups) * spec.KH * spec.KW + int(spec.bias) * spec.O


def transpose_forward_pair(spec) -> Conv2dSpec:
    """The conv2d whose input gradient this transposed conv computes (same MACs when output_padding < stride)."""
    pads = getattr(spec, "pads", None) or (spec.padding[0], spec.padding[0], spec.padding[1], spec.padding[1])
    return Conv2dSpec(spec.N, spec.O, spec.OH, spec.OW, spec.C, spec.KH, spec.KW, spec.stride, pads,
                      spec.dilation, spec.groups, dtype=spec.dtype)


def pool_flops(spec) -> int:
    """Comparisons (max) or adds + one division (avg) per output, for fixed or adaptive windows."""
    from harness.ops.pool_spec import AdaptivePool2dSpec, adaptive_windows

    planes = spec.N * spec.C
    if isinstance(spec, AdaptivePool2dSpec):
        rows = [e - s for s, e in adaptive_windows(spec.H, spec.OH)]
        cols = [e - s for s, e in adaptive_windows(spec.W, spec.OW)]
        taps = sum(rows) * sum(cols)  # sum over outputs of window areas
        per_output_extra = 0 if spec.kind == "max" else 1
        return planes * (taps - spec.OH * spec.OW + per_output_extra * spec.OH * spec.OW)
    per_output = spec.window - 1 + (spec.kind == "avg")
    return planes * spec.OH * spec.OW * per_output


def conv2d_backward_flops(spec: Conv2dSpec) -> dict[str, int]:
    """FLOPs of each gradient: grad_input and grad_weight 2 * MACs each, grad_bias one add per grad_out element."""
    m = macs(spec)
    return {"grad_input": 2 * m, "grad_weight": 2 * m,
            "grad_bias": spec.N * spec.O * spec.OH * spec.OW if spec.bias else 0}


def pool_backward_flops(spec) -> int:
    """Max: one add per output's routed gradient; avg: a division per output and an add per tap."""
    outputs = spec.N * spec.C * spec.OH * spec.OW
    return outputs if spec.kind == "max" else outputs * (spec.window + 1)


def separable_accounting(spec) -> dict[str, float]:
    """Parameters and MACs of a separable conv against the dense conv computing the same function.

    ``spec`` is a :class:`~harness.ops.separable.DepthwiseSeparableSpec` or
    :class:`~harness.ops.separable.SpatiallySeparableSpec`. For depthwise-separable with multiplier 1
    and no bias, ``macs_ratio = 1/O + 1/(KH*KW)`` (MobileNet's reduction); for spatially
    separable, ``M*(C*KH + O*KW) / (O*C*KH*KW)`` per group when the stages keep the image size.
    """
    first, second = (spec.depthwise, spec.pointwise) if hasattr(spec, "depthwise") else (spec.column, spec.row)
    dense = spec.dense
    out = {
        "params": params(first) + params(second),
        "params_dense": params(dense),
        "macs": macs(first) + macs(second),
        "macs_dense": macs(dense),
        "flops": dense_flops(first) + dense_flops(second),
        "flops_dense": dense_flops(dense),
    }
    out["params_ratio"] = out["params"] / out["params_dense"] if out["params_dense"] else float("nan")
    out["macs_ratio"] = out["macs"] / out["macs_dense"] if out["macs_dense"] else float("nan")
    return out


# -- receptive field through pooling and transposed layers -----------------------------------------------
def receptive_field_through(layers) -> ReceptiveField:
    """Receptive field along one axis through conv, pooling and transposed-conv layers.

    Parameters
    ----------
    layers : iterable of (kind, kernel, stride, dilation, padding)
        ``kind`` is ``"conv"`` or ``"pool"`` (same geometry: a window of ``kernel`` taps
        ``dilation`` apart, moved by ``stride``) or ``"transpose"`` (a transposed conv, which
        *divides* the jump by its stride). First layer first.

    Returns
    -------
    ReceptiveField
        ``size`` is the largest number of input pixels one output unit can depend on; ``jump``
        is a :class:`fractions.Fraction` once a transposed layer upsamples (1/2 = two output
        units per input pixel); ``start`` is the centre of the first output unit's footprint in
        continuous input coordinates (after a transposed layer it can fall between pixels).

    Examples
    --------
    >>> receptive_field_through([("conv", 3, 1, 1, 1), ("pool", 2, 2, 1, 0), ("conv", 3, 1, 1, 1)])
    ReceptiveField(size=8, jump=2, start=0.5)
    >>> receptive_field_through([("transpose", 2, 2, 1, 0)]).size   # U-Net up-conv: one input pixel each
    1
    """
    from fractions import Fraction

    size, jump, start = 1, Fraction(1), 0.0
    for kind, kernel, stride, dilation, padding in layers:
        extent = dilation * (kernel - 1) + 1
        if kind in ("conv", "pool"):
            start += ((extent - 1) / 2 - padding) * float(jump)
            size += (extent - 1) * jump
            jump *= stride
        elif kind == "transpose":
            # output i reads inputs j with j*stride = i + padding - k*dilation: the taps that land
            # on stride multiples span at most floor((extent - 1) / stride) input steps
            start += ((padding - (extent - 1) / 2) / stride) * float(jump)
            size += ((extent - 1) // stride) * jump
            jump /= stride
        else:
            raise ValueError(f"layer kind must be 'conv', 'pool' or 'transpose', got {kind!r}")
    jump = int(jump) if jump.denominator == 1 else jump
    size = int(size) if getattr(size, "denominator", 1) == 1 else size
    return ReceptiveField(size, jump, start)


# -- the work behind a call, for cost models ------------------------------------------------------------
def conv2d_work(spec: Conv2dSpec) -> dict[str, float]:
    """The counts every conv2d cost model starts from: one call, and its multiply-adds, split
    into ``macs`` and ``thin_macs`` (groups with fewer than 8 output or input channels, such as
    depthwise, which no GEMM or vector loop runs at full rate)."""
    G = spec.groups
    Og, Cg = spec.O // G, spec.C // G
    total = float(spec.N * spec.O * spec.OH * spec.OW * Cg * spec.KH * spec.KW)
    thin = Og < 8 or Cg < 8
    return {"call": 1.0, "macs": 0.0 if thin else total, "thin_macs": total if thin else 0.0}
