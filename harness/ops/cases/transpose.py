"""conv_transpose2d verification cases: a hand-picked table and a seeded random sampler."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from harness.ops.cases.tools import CaseBase, as_pair, both_dtypes, draw_cases, fill, laid_out, pair_arg, pick, plain_args, \
    shrink_image, valid
from harness.ops.args import HALF_DTYPES
from harness.ops.cases.conv2d import exact_term_limit
from harness.ops.transpose_spec import ConvTranspose2dSpec

MAX_MACS = 2_000_000
MAX_NAIVE_TRIPS = 20_000


@dataclass(frozen=True, repr=False)
class ConvTranspose2dCase(CaseBase):
    """One conv_transpose2d case; ``repr`` is a reproducer. ``w_shape`` is (C, O/groups, KH, KW)."""

    x_shape: tuple
    w_shape: tuple
    bias: bool = False
    stride: object = 1
    padding: object = 0
    output_padding: object = 0
    groups: int = 1
    dilation: object = 1
    dtype: str = "float32"
    fill: str = "normal"
    layout: str = "contiguous"
    seed: int = 0

    KWARGS = ("stride", "padding", "output_padding", "groups", "dilation")

    @property
    def spec(self) -> ConvTranspose2dSpec:
        x_shape = self.x_shape if self.batched else (1,) + tuple(self.x_shape)
        return ConvTranspose2dSpec.from_shapes(x_shape, self.w_shape, bias=self.bias, dtype=self.dtype, **self.kwargs)

    def arrays(self):
        """``(x, w, bias)``; the ``exact`` fill keeps every output's partial sums exactly representable."""
        rng = np.random.default_rng(self.seed)
        spec = self.spec
        x = fill(rng, self.x_shape, self.fill, "float64")
        w = fill(rng, self.w_shape, "exact" if self.fill == "exact" else "normal", "float64")
        b = fill(rng, (spec.O,), "exact" if self.fill == "exact" else "normal", "float64")
        if self.fill == "exact":
            _sparsify(rng, w, spec)
        return laid_out(x.astype(self.dtype), self.layout), laid_out(w.astype(self.dtype), self.layout), \
            (b.astype(self.dtype) if self.bias else None)

    def simpler(self):
        out = shrink_image(self)
        C, Og, KH, KW = self.w_shape
        c_axis = 1 if self.batched else 0
        g = self.groups
        if C > g:
            x = list(self.x_shape)
            x[c_axis] = C - g
            out.append(replace(self, x_shape=tuple(x), w_shape=(C - g, Og, KH, KW)))
        if Og > 1:
            out.append(replace(self, w_shape=(C, Og - 1, KH, KW)))
        if KH > 1:
            out.append(replace(self, w_shape=(C, Og, KH - 1, KW)))
        if KW > 1:
            out.append(replace(self, w_shape=(C, Og, KH, KW - 1)))
        if g > 1:
            out.append(replace(self, groups=1))
        out += plain_args(self, dict(output_padding=0, stride=1, dilation=1, padding=0, bias=False,
                                     layout="contiguous"))
        return [case for case in out if valid(case)]


def _sparsify(rng, w, spec):
    """Keep at most the exact-sum limit of non-zero taps feeding each output channel."""
    limit = exact_term_limit(spec.dtype) // 4  # computed for |x|,|w| <= 32; ours are <= 4, so it is safe
    Cg = spec.C // spec.groups
    for g in range(spec.groups):
        for o in range(spec.O // spec.groups):
            block = w[g * Cg:(g + 1) * Cg, o]
            if block.size > limit:
                flat = block.reshape(-1)
                flat[rng.permutation(flat.size)[limit:]] = 0.0
                w[g * Cg:(g + 1) * Cg, o] = flat.reshape(block.shape)


def table_cases() -> list[ConvTranspose2dCase]:
    """Hand-picked: torch's output_padding rule at its edges, padding that crops, U-Net's 2x2/2."""
    T = ConvTranspose2dCase
    rows = [
        T((2, 4, 5, 5), (4, 3, 3, 3)),
        T((1, 4, 5, 6), (4, 3, 3, 3), bias=True, stride=2),
        T((1, 4, 5, 6), (4, 3, 3, 3), stride=2, padding=1, output_padding=1),  # 2x upsampling
        T((1, 2, 4, 4), (2, 2, 2, 2), bias=True, stride=2),  # U-Net up-convolution
        T((1, 3, 4, 5), (3, 2, 3, 2), stride=(3, 2), output_padding=(2, 1)),  # output_padding = stride - 1
        T((1, 3, 4, 4), (3, 2, 3, 3), dilation=2, output_padding=1),  # allowed by dilation, not stride
        T((1, 3, 6, 6), (3, 2, 3, 3), padding=(2, 1), dilation=(1, 2)),
        T((1, 2, 3, 3), (2, 2, 1, 1), padding=0, stride=3),  # 1x1 kernel: zeros between pixels
        T((1, 2, 6, 6), (2, 2, 1, 1), padding=1),  # padding beyond the dilated kernel: crops the input itself
        T((2, 4, 5, 5), (4, 3, 3, 3), bias=True, groups=2, stride=2),
        T((1, 4, 5, 5), (4, 1, 3, 3), groups=4, padding=1),  # depthwise
        T((1, 4, 5, 5), (4, 2, 3, 3), groups=4, stride=2, output_padding=1),  # depthwise, multiplier 2
        T((3, 4, 4), (3, 2, 3, 3), bias=True),  # unbatched
        T((0, 3, 4, 4), (3, 2, 3, 3), bias=True),  # empty batch
        T((2, 3, 5, 5), (3, 2, 3, 3), stride=2, layout="channels_last"),
        T((1, 3, 5, 5), (3, 4, 3, 3), bias=True, stride=2, layout="strided"),
        T((1, 3, 5, 5), (3, 2, 3, 3), bias=True, stride=2, fill="nan"),
        T((1, 3, 5, 5), (3, 2, 3, 3), padding=1, fill="inf"),
    ]
    exact = [T((1, 96, 4, 4), (96, 3, 3, 3), bias=True, stride=2, fill="exact"),
             T((2, 3, 5, 5), (3, 2, 3, 3), padding=1, fill="exact", dtype="float64")]
    per_side = [  # ((top, bottom), (left, right)): the uncropped output cropped unevenly
        T((1, 3, 5, 6), (3, 2, 3, 3), stride=2, padding=((0, 1), (1, 0)), output_padding=1),
        T((2, 4, 4, 5), (4, 2, 3, 2), bias=True, stride=(2, 3), padding=((2, 0), (0, 1)), groups=2),
        T((1, 3, 4, 4), (3, 2, 3, 3), dilation=2, padding=((3, 1), (0, 2))),  # crops past the dilated kernel
    ]
    half = [T((2, 4, 5, 5), (4, 3, 3, 3), bias=True, stride=2, padding=1, output_padding=1),
            T((1, 96, 4, 4), (96, 3, 3, 3), bias=True, stride=2, fill="exact"),
            T((1, 3, 5, 6), (3, 2, 3, 3), stride=2, padding=((0, 1), (1, 0)))]
    return (both_dtypes(rows + per_side) + exact
            + [replace(case, dtype=dt) for case in half for dt in HALF_DTYPES])


def random_cases(features, dtypes, count: int, seed: int, nonfinite: bool = True) -> list[ConvTranspose2dCase]:
    """Seeded random cases using only ``features`` (see :func:`harness.ops.cases.tools.draw_cases`)."""
    return draw_cases(_draw, features, dtypes, count, seed, nonfinite)


def _draw(rng, wanted, forced, dtype, nonfinite):
    if "depthwise" in wanted and (forced == "depthwise" or "groups" not in wanted or rng.random() < 0.5):
        groups = int(rng.integers(2, 9))
        C, Og = groups, int(rng.integers(1, 3))
    else:
        groups = int(rng.integers(2, 4)) if "groups" in wanted else 1
        C = groups * int(np.exp(rng.uniform(0, np.log(16))))
        Og = int(rng.integers(1, 6))
    KH, KW = (int(k) for k in rng.integers(1, 5, size=2))
    stride = pair_arg(rng, 1, 4) if "stride" in wanted else pick(rng, [1, (1, 1)])
    dilation = pair_arg(rng, 1, 3) if "dilation" in wanted else 1
    s, d = as_pair(stride), as_pair(dilation)
    if "output_padding" in wanted:
        room = [max(a, b) - 1 for a, b in zip(s, d)]  # below stride or dilation
        output_padding = tuple(int(rng.integers(0, r + 1)) for r in room)
        if room[0] == room[1] and rng.random() < 0.5:
            output_padding = output_padding[0]
    else:
        output_padding = 0
    padding = (int(rng.integers(0, 3)), int(rng.integers(0, 3))) if "padding" in wanted else 0
    if isinstance(padding, tuple) and padding[0] == padding[1] and rng.random() < 0.5:
        padding = padding[0]
    if "asymmetric_padding" in wanted:  # ((top, bottom), (left, right))
        top, bottom, left, right = (int(v) for v in rng.integers(0, 3, size=4))
        padding = ((top, bottom), (left, (right + 1) % 3 if (top, left) == (bottom, right) else right))
    H, W = (int(v) for v in rng.integers(1, 10, size=2))
    N = pick(rng, [0, 1, 2, 3], p=[0.05, 0.45, 0.3, 0.2])
    unbatched = N == 1 and rng.random() < 0.2
    fill_kind = pick(rng, ["normal", "exact", "nan", "inf"], p=[0.7, 0.22, 0.04, 0.04] if nonfinite else [0.75, 0.25, 0, 0])
    case = ConvTranspose2dCase(
        x_shape=(C, H, W) if unbatched else (N, C, H, W), w_shape=(C, Og, KH, KW), bias="bias" in wanted,
        stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation,
        dtype=dtype, fill=fill_kind, layout=pick(rng, ["contiguous", "channels_last", "strided"], p=[0.7, 0.15, 0.15]),
        seed=int(rng.integers(2**31)),
    )
    if not valid(case):
        return None
    spec = case.spec
    trips = spec.C * (spec.O // spec.groups) * spec.KH * spec.KW
    if trips > MAX_NAIVE_TRIPS or max(1, spec.N) * spec.OH * spec.OW * spec.O * spec.n_acc > MAX_MACS:
        return None
    return case

