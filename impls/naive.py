"""``naive``: the defining formula, as loops, accumulating in float64.

    y[n, o, i, j] = b[o] + sum_c sum_p sum_q  x[n, g*Cg + c, i*sh + p*dh, j*sw + q*dw] * w[o, c, p, q]

for output channel ``o`` in group ``g = o // (O / groups)`` and ``Cg = C / groups``, with ``x``
already padded. The loops run over groups, output channels and kernel taps; each step is one
multiply-add over the whole (n, i, j) output plane, so the code reads like the formula while
running at numpy speed. It is the harness's own ground truth and is itself checked against torch.
"""

import numpy as np

from harness.conv_spec import CONV2D_FEATURES
from harness.padding import pad_input
from harness.registry import Backend


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


BACKEND = Backend(
    name="naive",
    device="cpu",
    ops={"conv2d": conv2d},
    features={"conv2d": CONV2D_FEATURES},
    exact=True,
    deterministic=True,
    auto_rank=1000,
    description="the defining formula as loops, float64 accumulation (ground truth)",
)
