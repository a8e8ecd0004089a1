"""``naive``: the defining formula, as loops, accumulating in float64.

    y[n, o, i, j] = b[o] + sum_c sum_p sum_q  x[n, g*Cg + c, i*sh + p*dh, j*sw + q*dw] * w[o, c, p, q]

for output channel ``o`` in group ``g = o // (O / groups)`` and ``Cg = C / groups``, with ``x``
already padded. The loops run over groups, output channels and kernel taps; each step is one
multiply-add over the whole (n, i, j) output plane, so the code reads like the formula while
running at numpy speed. It is the harness's own ground truth and is itself checked against torch.
"""

import numpy as np

from harness.ops.padding import pad_input
from harness.backend.registry import OP_FEATURES, Backend, CostModel
from harness.ops.args import DTYPES
from harness.ops.table import op_info

from . import _naive_nd_ops, _naive_ops


def conv2d(x, w, bias, spec):
    xp = pad_input(x, spec).astype(np.float64)
    w64 = w.astype(np.float64)
    y = np.zeros(spec.out_shape, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf inputs propagate as in torch
        _accumulate(y, xp, w64, bias, spec)
    return y.astype(spec.dtype)


def _accumulate(y, xp, w64, bias, spec):
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    OH, OW = spec.OH, spec.OW
    Cg, Og = spec.C // spec.groups, spec.O // spec.groups
    for o in range(spec.O):
        g = o // Og
        for c in range(Cg):
            plane = xp[:, g * Cg + c]
            for p in range(spec.KH):
                for q in range(spec.KW):
                    # x[n, c, i*sh + p*dh, j*sw + q*dw] for every output position (i, j)
                    taps = plane[:, p * dh : p * dh + (OH - 1) * sh + 1 : sh,
                                    q * dw : q * dw + (OW - 1) * sw + 1 : sw]
                    y[:, o] += taps * w64[o, c, p, q]
        if bias is not None:
            y[:, o] += bias[o]


def workspace_bytes(op, spec):
    """float64 copies of the (padded) input and the outputs, besides the results themselves."""
    return op_info(op).memory_bytes(spec) * 8 // np.dtype(spec.dtype).itemsize


def cost_features(op, spec) -> dict[str, float] | None:
    """The loops: one numpy multiply-add over the (N, OH, OW) output plane per (o, c, p, q) for
    conv2d, over the (N, H, W) input plane per (c, o, p, q) for the transposed conv."""
    if op == "conv2d":
        loops, plane = spec.O * (spec.C // spec.groups) * spec.KH * spec.KW, spec.N * spec.OH * spec.OW
    elif op == "conv_transpose2d":
        loops, plane = spec.C * (spec.O // spec.groups) * spec.KH * spec.KW, spec.N * spec.H * spec.W
    else:
        return None
    return {"loops": float(loops), "elements": float(loops * plane)}


#: About 4 us of overhead per loop plus 1.5 ns per element.
COST = CostModel(cost_features, {"loops": 4e-6, "elements": 1.5e-9},
                 source="16->16 3x3 layers at 8x8 to 56x56 on the project's 2-core test machine (numpy 2.4)")

BACKEND = Backend(
    name="naive",
    device="cpu",
    ops={
        "conv2d": conv2d,
        # the rest of the convolution family, each its own formula as loops (impls/_naive_ops.py)
        "conv_transpose2d": _naive_ops.conv_transpose2d,
        "conv2d_backward": _naive_ops.conv2d_backward,
        "max_pool2d": _naive_ops.max_pool2d,
        "avg_pool2d": _naive_ops.avg_pool2d,
        "adaptive_max_pool2d": _naive_ops.adaptive_max_pool2d,
        "adaptive_avg_pool2d": _naive_ops.adaptive_avg_pool2d,
        "max_pool2d_backward": _naive_ops.max_pool2d_backward,
        "avg_pool2d_backward": _naive_ops.avg_pool2d_backward,
        # the 1-D and 3-D ops: one dimension-generic formula each (impls/_naive_nd_ops.py)
        **_naive_nd_ops.ops_of_rank(1, 3),
    },
    features={op: OP_FEATURES[op] for op in (
        "conv2d", "conv_transpose2d", "conv2d_backward", "max_pool2d", "avg_pool2d", "adaptive_max_pool2d",
        "adaptive_avg_pool2d", "max_pool2d_backward", "avg_pool2d_backward", *_naive_nd_ops.ops_of_rank(1, 3))},
    dtypes=frozenset(DTYPES),  # float64 sums, rounded once to any output dtype
    exact=True,
    deterministic=True,
    role="reference",
    cost=COST,
    workspace_bytes=workspace_bytes,
    auto_rank=1000,
    description="the defining formula as loops, float64 accumulation (ground truth)",
)
