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

from .conv_spec import Conv2dSpec


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
