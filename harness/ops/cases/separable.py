"""Separable-convolution verification cases: depthwise-separable and spatially separable."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from harness.ops.cases.tools import SMALL_INT, CaseBase, both_dtypes, draw_cases, fill, laid_out, pick, plain_args, \
    shrink_image, valid
from harness.ops.cases.conv2d import MANTISSA_BITS
from harness.ops.separable import depthwise_separable_spec, spatially_separable_spec


def _exact_fits(spec) -> bool:
    """Integers in [-4, 4] through both stages stay exact: 4**3 * n1 * n2 (+ biases) < 2**mantissa."""
    first, second = (spec.depthwise, spec.pointwise) if hasattr(spec, "depthwise") else (spec.column, spec.row)
    return SMALL_INT**3 * (first.n_acc + 1) * (second.n_acc + 1) < 2 ** MANTISSA_BITS[spec.dtype]


@dataclass(frozen=True, repr=False)
class DepthwiseSeparableCase(CaseBase):
    """x (N, C, H, W), a KHxKW depthwise stage with ``multiplier`` outputs per channel, then 1x1 to O."""

    x_shape: tuple
    kernel: tuple
    O: int
    multiplier: int = 1
    bias: bool = False
    stride: object = 1
    padding: object = 0
    dilation: object = 1
    padding_mode: str = "zeros"
    dtype: str = "float32"
    fill: str = "normal"
    layout: str = "contiguous"
    seed: int = 0

    REPR_ALWAYS = 3
    KWARGS = ("stride", "padding", "dilation", "padding_mode")

    @property
    def C(self) -> int:
        return self.x_shape[-3]

    @property
    def shapes(self):
        Cm = self.C * self.multiplier
        return (Cm, 1) + tuple(self.kernel), (self.O, Cm, 1, 1)

    @property
    def spec(self):
        wd, wp = self.shapes
        e = lambda s: np.empty(s, self.dtype)  # noqa: E731
        b = (e(wd[0]), e(self.O)) if self.bias else (None, None)
        return depthwise_separable_spec(e(self.x_shape), e(wd), e(wp), *b, **self.kwargs)[0]

    def arrays(self):
        """``(x, w_depthwise, w_pointwise, bias_depthwise, bias_pointwise)``."""
        rng = np.random.default_rng(self.seed)
        kind = "exact" if self.fill == "exact" and _exact_fits(self.spec) else \
            ("normal" if self.fill == "exact" else self.fill)
        weights = "exact" if kind == "exact" else "normal"
        wd, wp = self.shapes
        x = fill(rng, self.x_shape, kind, self.dtype)
        arrays = [x, fill(rng, wd, weights, self.dtype), fill(rng, wp, weights, self.dtype)]
        biases = [fill(rng, (wd[0],), weights, self.dtype), fill(rng, (self.O,), weights, self.dtype)]
        return tuple(laid_out(a, self.layout) for a in arrays) + (tuple(biases) if self.bias else (None, None))

    def simpler(self):
        out = shrink_image(self)
        if self.O > 1:
            out.append(replace(self, O=self.O - 1))
        if self.multiplier > 1:
            out.append(replace(self, multiplier=self.multiplier - 1))
        for axis in (0, 1):
            if self.kernel[axis] > 1:
                k = list(self.kernel)
                k[axis] -= 1
                out.append(replace(self, kernel=tuple(k)))
        out += plain_args(self, dict(stride=1, dilation=1, padding=0, padding_mode="zeros", bias=False,
                                     layout="contiguous"))
        return [case for case in out if valid(case)]


@dataclass(frozen=True, repr=False)
class SpatiallySeparableCase(CaseBase):
    """x (N, C, H, W), a KHx1 stage to M channels, then a 1xKW stage to O, in ``groups``."""

    x_shape: tuple
    kernel: tuple
    M: int
    O: int
    groups: int = 1
    bias: bool = False
    stride: object = 1
    padding: object = 0
    dilation: object = 1
    padding_mode: str = "zeros"
    dtype: str = "float32"
    fill: str = "normal"
    layout: str = "contiguous"
    seed: int = 0

    REPR_ALWAYS = 4
    KWARGS = ("stride", "padding", "dilation", "groups", "padding_mode")

    @property
    def shapes(self):
        C = self.x_shape[-3]
        return (self.M, C // self.groups, self.kernel[0], 1), (self.O, self.M // self.groups, 1, self.kernel[1])

    @property
    def spec(self):
        wc, wr = self.shapes
        e = lambda s: np.empty(s, self.dtype)  # noqa: E731
        return spatially_separable_spec(e(self.x_shape), e(wc), e(wr), e(self.O) if self.bias else None,
                                        **self.kwargs)[0]

    def arrays(self):
        """``(x, w_column, w_row, bias)``."""
        rng = np.random.default_rng(self.seed)
        kind = "exact" if self.fill == "exact" and _exact_fits(self.spec) else \
            ("normal" if self.fill == "exact" else self.fill)
        weights = "exact" if kind == "exact" else "normal"
        wc, wr = self.shapes
        x = fill(rng, self.x_shape, kind, self.dtype)
        wc, wr, b = fill(rng, wc, weights, self.dtype), fill(rng, wr, weights, self.dtype), \
            fill(rng, (self.O,), weights, self.dtype)
        return laid_out(x, self.layout), laid_out(wc, self.layout), laid_out(wr, self.layout), \
            (b if self.bias else None)

    def simpler(self):
        out = shrink_image(self)
        g = self.groups
        if self.O > g:
            out.append(replace(self, O=self.O - g))
        if self.M > g:
            out.append(replace(self, M=self.M - g))
        for axis in (0, 1):
            if self.kernel[axis] > 1:
                k = list(self.kernel)
                k[axis] -= 1
                out.append(replace(self, kernel=tuple(k)))
        out += plain_args(self, dict(stride=1, dilation=1, padding=0, padding_mode="zeros", bias=False,
                                     layout="contiguous"))
        return [case for case in out if valid(case)]


# -- tables -----------------------------------------------------------------------------------------------
def depthwise_table() -> list[DepthwiseSeparableCase]:
    D = DepthwiseSeparableCase
    rows = [
        D((2, 4, 8, 8), (3, 3), 6, padding=1),  # MobileNet block
        D((1, 4, 9, 9), (3, 3), 5, multiplier=2, bias=True, stride=2, padding=1),
        D((1, 3, 10, 10), (5, 5), 4, padding="same", dilation=2),
        D((1, 3, 7, 7), (3, 3), 3, padding=1, padding_mode="reflect"),
        D((3, 6, 6), (3, 3), 2, bias=True),  # unbatched
        D((0, 2, 5, 5), (3, 3), 2),
        D((1, 1, 6, 6), (3, 3), 3, bias=True),  # one input channel: the depthwise stage is dense
        D((2, 4, 8, 8), (3, 3), 6, padding=1, layout="channels_last"),
        D((1, 4, 8, 8), (3, 3), 6, padding=1, fill="nan"),
    ]
    return both_dtypes(rows) + [D((1, 8, 6, 6), (3, 3), 4, bias=True, padding=1, fill="exact")]


def spatial_table() -> list[SpatiallySeparableCase]:
    S = SpatiallySeparableCase
    rows = [
        S((2, 3, 8, 8), (3, 3), 2, 4, padding=1),
        S((1, 3, 9, 10), (5, 3), 4, 2, bias=True, stride=(2, 1), padding=(2, 1)),
        S((1, 4, 9, 9), (3, 3), 4, 4, groups=4, padding="same"),  # per-channel (e.g. Gaussian blur)
        S((1, 4, 9, 9), (3, 5), 4, 6, groups=2, dilation=(2, 1), padding="full"),
        S((1, 2, 7, 7), (3, 3), 2, 2, padding=1, padding_mode="circular", stride=2),
        S((2, 6, 6), (3, 3), 3, 2, bias=True),  # unbatched
        S((0, 2, 5, 5), (3, 3), 1, 2),
        S((1, 3, 8, 8), (7, 1), 3, 3, padding=(3, 0), layout="strided"),  # Inception's 7x1
    ]
    return both_dtypes(rows) + [S((1, 6, 7, 7), (3, 3), 6, 4, bias=True, padding=1, fill="exact")]


# -- random samplers --------------------------------------------------------------------------------------
def _common(rng, wanted, kernel):
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) if "stride" in wanted else 1
    dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) if "dilation" in wanted else 1
    if stride == (1, 1):
        stride = 1
    if dilation == (1, 1):
        dilation = 1
    modes = sorted(f.split("=")[1] for f in wanted if f.startswith("padding_mode="))
    padding_mode = pick(rng, modes) if modes else "zeros"
    if "asymmetric_padding" in wanted and stride == 1 and any(k % 2 == 0 for k in kernel):
        padding = "same"
    elif "padding" in wanted or modes:
        padding = (int(rng.integers(0, 3)), int(rng.integers(1, 3)))
    else:
        padding = 0
    return stride, padding, dilation, padding_mode


def _image(rng, C, kernel, dilation, padding_mode):
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    H, W = (max(int(v), di * (k - 1) + 1, 6 if padding_mode != "zeros" else 1)
            for v, k, di in zip(rng.integers(3, 14, size=2), kernel, d))
    N = pick(rng, [0, 1, 2], p=[0.05, 0.6, 0.35])
    return (C, H, W) if N == 1 and rng.random() < 0.2 else (N, C, H, W)


def depthwise_random_cases(features, dtypes, count: int, seed: int, nonfinite: bool = True):
    def draw(rng, wanted, forced, dtype, nonfinite_ok):
        kernel = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        stride, padding, dilation, mode = _common(rng, wanted, kernel)
        C = int(rng.integers(1, 9))
        fills = ["normal", "exact", "nan"] if nonfinite_ok else ["normal", "exact"]
        return DepthwiseSeparableCase(
            _image(rng, C, kernel, dilation, mode), kernel, int(rng.integers(1, 9)), int(rng.integers(1, 3)),
            bias="bias" in wanted, stride=stride, padding=padding, dilation=dilation, padding_mode=mode, dtype=dtype,
            fill=pick(rng, fills), layout=pick(rng, ["contiguous", "channels_last", "strided"], p=[0.7, 0.15, 0.15]),
            seed=int(rng.integers(2**31)))

    return draw_cases(draw, features, dtypes, count, seed, nonfinite)


def spatial_random_cases(features, dtypes, count: int, seed: int, nonfinite: bool = True):
    def draw(rng, wanted, forced, dtype, nonfinite_ok):
        kernel = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        stride, padding, dilation, mode = _common(rng, wanted, kernel)
        groups = int(rng.integers(2, 4)) if {"groups", "depthwise"} & wanted else 1
        C = groups * (1 if "depthwise" in wanted and rng.random() < 0.5 else int(rng.integers(1, 4)))
        M = groups * int(rng.integers(1, 4))
        O = groups * int(rng.integers(1, 4))
        fills = ["normal", "exact", "nan"] if nonfinite_ok else ["normal", "exact"]
        return SpatiallySeparableCase(
            _image(rng, C, kernel, dilation, mode), kernel, M, O, groups=groups, bias="bias" in wanted,
            stride=stride, padding=padding, dilation=dilation, padding_mode=mode, dtype=dtype, fill=pick(rng, fills),
            layout=pick(rng, ["contiguous", "channels_last", "strided"], p=[0.7, 0.15, 0.15]),
            seed=int(rng.integers(2**31)))

    return draw_cases(draw, features, dtypes, count, seed, nonfinite)
