"""Pooling verification cases (forward, adaptive, backward): tables and a random sampler.

The max_pool2d and avg_pool2d tables are PyTorch's OpInfo sample grids (see VERIFY-NOTES.md):
kernel {3, (3, 2)} x stride {2, None, (2, 1)} x padding {0, 1, (1, 1)} x dilation {1, (1, 2)} x
ceil_mode x return_indices for max; ceil_mode x count_include_pad x divisor_override (negative
included) for average. Max pooling's ``ties`` fill uses small integers: many ties, so the
arg-max rule (first maximum in row-major window order) is exercised everywhere. Pooling uses no
``exact`` fill: a maximum is exact anyway, and a mean's division or a backward sum of
normal-valued gradients is not.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from harness.ops.cases.tools import CaseBase, as_pair, draw_cases, fill, laid_out, pair_arg, pick, plain_args, shrink_image, valid
from harness.ops.pool_spec import adaptive_pool2d_spec, pool2d_spec

MAX_ELEMENTS = 60_000


@dataclass(frozen=True, repr=False)
class _Pool2dCase(CaseBase):
    x_shape: tuple
    kernel_size: object
    stride: object = None
    padding: object = 0
    dilation: object = 1
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: object = None
    return_indices: bool = False
    dtype: str = "float32"
    fill: str = "normal"
    layout: str = "contiguous"
    seed: int = 0

    KIND = "max"
    BACKWARD = False

    @property
    def kwargs(self) -> dict:
        """The keyword arguments of the call (max pooling's or average pooling's), as the user wrote them."""
        common = dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                      ceil_mode=self.ceil_mode)
        if self.KIND == "max":
            return dict(common, dilation=self.dilation)
        return dict(common, count_include_pad=self.count_include_pad, divisor_override=self.divisor_override)

    @property
    def spec(self):
        probe = np.empty(self.x_shape, dtype=self.dtype)
        extra = dict(return_indices=self.return_indices) if self.KIND == "max" and not self.BACKWARD else {}
        return pool2d_spec(self.KIND, probe, **self.kwargs, **extra)[0]

    def arrays(self):
        """``(x,)`` or, for a backward case, ``(x, grad_out)``."""
        rng = np.random.default_rng(self.seed)
        x = laid_out(fill(rng, self.x_shape, self.fill, self.dtype), self.layout)
        if not self.BACKWARD:
            return (x,)
        out_shape = self.spec.out_shape if self.batched else self.spec.out_shape[1:]
        return x, laid_out(fill(rng, out_shape, "normal", self.dtype), self.layout)

    def simpler(self):
        out = shrink_image(self)
        if len(self.x_shape) >= 3 and self.x_shape[-3] > 1:
            c = len(self.x_shape) - 3
            shape = list(self.x_shape)
            shape[c] = 1
            out.append(replace(self, x_shape=tuple(shape)))
        out += plain_args(self, dict(ceil_mode=False, padding=0, dilation=1, stride=None, divisor_override=None,
                                     count_include_pad=True, return_indices=False, layout="contiguous"))
        return [case for case in out if valid(case)]


class MaxPool2dCase(_Pool2dCase):
    """One max_pool2d case; ``repr`` is a reproducer."""


class AvgPool2dCase(_Pool2dCase):
    """One avg_pool2d case."""

    KIND = "avg"


class MaxPool2dBackwardCase(_Pool2dCase):
    """One max_pool2d_backward case: arrays are (x, grad_out)."""

    BACKWARD = True


class AvgPool2dBackwardCase(_Pool2dCase):
    """One avg_pool2d_backward case: arrays are (x, grad_out)."""

    KIND = "avg"
    BACKWARD = True


for _cls in (MaxPool2dCase, AvgPool2dCase, MaxPool2dBackwardCase, AvgPool2dBackwardCase):
    dataclass(frozen=True, repr=False)(_cls)


@dataclass(frozen=True, repr=False)
class _AdaptivePool2dCase(CaseBase):
    x_shape: tuple
    output_size: object
    return_indices: bool = False
    dtype: str = "float32"
    fill: str = "normal"
    layout: str = "contiguous"
    seed: int = 0

    KIND = "avg"

    @property
    def spec(self):
        probe = np.empty(self.x_shape, dtype=self.dtype)
        indices = self.return_indices if self.KIND == "max" else False
        return adaptive_pool2d_spec(self.KIND, probe, self.output_size, indices)[0]

    def arrays(self):
        rng = np.random.default_rng(self.seed)
        return (laid_out(fill(rng, self.x_shape, self.fill, self.dtype), self.layout),)

    def simpler(self):
        out = shrink_image(self)
        out += plain_args(self, dict(return_indices=False, layout="contiguous"))
        return [case for case in out if valid(case)]


class AdaptiveAvgPool2dCase(_AdaptivePool2dCase):
    """One adaptive_avg_pool2d case."""


class AdaptiveMaxPool2dCase(_AdaptivePool2dCase):
    """One adaptive_max_pool2d case."""

    KIND = "max"


for _cls in (AdaptiveAvgPool2dCase, AdaptiveMaxPool2dCase):
    dataclass(frozen=True, repr=False)(_cls)


# -- tables --------------------------------------------------------------------------------------------
def max_pool_table(backward: bool = False) -> list:
    """PyTorch's max_pool2d sample grid on one odd-sized image, plus batch/layout/fill edge cases."""
    cls = MaxPool2dBackwardCase if backward else MaxPool2dCase
    rows = []
    grid = itertools.product([3, (3, 2)], [2, None, (2, 1)], [0, 1, (1, 1)], [1, (1, 2)], [False, True],
                             [False] if backward else [False, True])
    for i, (k, s, p, d, ceil, idx) in enumerate(grid):
        rows.append(cls((1, 2, 7, 9), k, s, p, d, ceil, return_indices=idx, fill="ties" if i % 2 else "normal",
                        seed=i))
    rows += [
        cls((3, 6, 6), 2, dtype="float64"),  # unbatched
        cls((0, 2, 5, 5), 2),  # empty batch
        cls((2, 3, 8, 8), 3, 2, 1, ceil_mode=True, layout="channels_last", dtype="float64"),
        cls((1, 3, 7, 7), 2, 1, layout="strided", fill="ties"),  # overlapping windows
        cls((1, 2, 6, 6), 3, 2, 1, fill="nan"),
        cls((1, 2, 6, 6), 2, fill="inf", dtype="float64"),
        cls((1, 1, 1, 1), 1),
        # per-side padding ((top, bottom), (left, right)): windows start at -top, overhang is clipped
        cls((1, 2, 7, 9), 3, 2, ((0, 1), (1, 0)), fill="ties"),
        cls((1, 2, 7, 9), (3, 2), 2, ((1, 0), (0, 1)), (1, 2), ceil_mode=True),
        cls((2, 2, 6, 7), 4, (3, 2), ((2, 0), (1, 2)), ceil_mode=True, fill="inf", dtype="float64"),
        cls((1, 2, 5, 6), 3, 2, ((1, 0), (0, 1)), dtype="float16"),
        cls((1, 2, 5, 6), 2, 1, dtype="bfloat16", fill="ties"),
    ]
    return rows


def avg_pool_table(backward: bool = False) -> list:
    """PyTorch's avg_pool2d samples (ceil_mode, count_include_pad, divisor_override incl. negative)."""
    cls = AvgPool2dBackwardCase if backward else AvgPool2dCase
    rows = []
    grid = itertools.product([3, (3, 2)], [None, 2, (2, 1)], [0, 1], [False, True], [True, False], [None, 3, -2])
    for i, (k, s, p, ceil, include, divisor) in enumerate(grid):
        if divisor is not None and not include:
            continue  # count_include_pad does not matter once the divisor is given
        rows.append(cls((1, 2, 7, 8), k, s, p, ceil_mode=ceil, count_include_pad=include, divisor_override=divisor,
                        dtype="float64" if i % 3 == 0 else "float32", seed=i))
    rows += [
        cls((3, 6, 6), 2),
        cls((0, 2, 5, 5), 2),
        cls((2, 3, 8, 8), 3, 2, 1, ceil_mode=True, count_include_pad=False, layout="channels_last"),
        cls((1, 3, 7, 7), 2, 1, layout="strided"),
        cls((1, 2, 6, 6), 3, 2, 1, fill="nan"),
        cls((1, 2, 6, 6), 2, fill="inf", dtype="float64"),
        cls((1, 2, 2, 2), 3, 3, 1, ceil_mode=True),  # one window, mostly padding
        # per-side padding: divisors count the padding on the padded side only
        cls((1, 2, 7, 8), 3, 2, ((0, 1), (1, 0))),
        cls((1, 2, 7, 8), 3, 2, ((1, 0), (0, 1)), ceil_mode=True, count_include_pad=False),
        cls((1, 2, 7, 8), (4, 3), (3, 2), ((2, 0), (1, 1)), ceil_mode=True, dtype="float64"),
        cls((1, 2, 7, 8), 3, 2, ((0, 1), (1, 1)), divisor_override=4),
        cls((2, 3, 6, 6), 3, 2, 1, dtype="float16"),
        cls((2, 3, 6, 6), 3, 2, ((1, 0), (1, 0)), dtype="bfloat16", count_include_pad=False),
    ]
    return rows


def adaptive_table(kind: str) -> list:
    cls = AdaptiveMaxPool2dCase if kind == "max" else AdaptiveAvgPool2dCase
    rows = [cls((2, 3, 8, 8), 1), cls((2, 3, 8, 8), 4), cls((1, 3, 7, 10), (3, 4)), cls((1, 2, 5, 5), (7, 3)),
            cls((1, 2, 6, 9), (None, 4)), cls((3, 7, 7), (2, 5), dtype="float64"), cls((0, 2, 5, 5), 2),
            cls((1, 2, 9, 9), (4, 4), layout="channels_last"), cls((1, 2, 6, 6), 4, fill="nan"),
            cls((1, 2, 6, 6), (3, 2), fill="inf", dtype="float64"), cls((1, 2, 5, 5), (0, 3))]
    if kind == "max":
        rows.append(cls((1, 3, 6, 7), (4, 5), fill="ties"))
    if kind == "max":
        rows += [replace(case, return_indices=True) for case in rows[:6]]
    return rows


# -- random sampler ------------------------------------------------------------------------------------
def pool_random_cases(cls, features, dtypes, count: int, seed: int, nonfinite: bool = True) -> list:
    """Seeded random cases of a (max/avg, forward/backward) pooling case class."""
    def draw(rng, wanted, forced, dtype, nonfinite_ok):
        kernel = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        kernel_arg = kernel[0] if kernel[0] == kernel[1] and rng.random() < 0.5 else kernel
        stride = pair_arg(rng, 1, 4) if "stride" in wanted else pick(rng, [None, kernel_arg])
        padding = (int(rng.integers(0, kernel[0] // 2 + 1)), int(rng.integers(0, kernel[1] // 2 + 1))) \
            if "padding" in wanted else 0
        if "asymmetric_padding" in wanted:  # ((top, bottom), (left, right)), each side <= kernel // 2
            top, bottom, left, right = (int(rng.integers(0, k // 2 + 1)) for k in (kernel[0], kernel[0],
                                                                                   kernel[1], kernel[1]))
            padding = ((top, bottom), (left, right))
        dilation = pair_arg(rng, 1, 3) if "dilation" in wanted and cls.KIND == "max" else 1
        divisor = int(pick(rng, [-3, -1, 1, 2, 5])) if "divisor_override" in wanted else None
        extent = [d * (k - 1) + 1 for d, k in zip(as_pair(dilation), kernel)]
        H, W = (max(int(v), e) for v, e in zip(rng.integers(1, 16, size=2), extent))
        N = pick(rng, [0, 1, 2, 3], p=[0.05, 0.45, 0.3, 0.2])
        C = int(rng.integers(1, 6))
        unbatched = N == 1 and rng.random() < 0.2
        fills = ["normal", "ties", "nan", "inf"] if cls.KIND == "max" else ["normal", "nan", "inf"]
        weights = [0.6, 0.3, 0.05, 0.05] if cls.KIND == "max" else [0.9, 0.05, 0.05]
        if not nonfinite_ok:
            fills, weights = fills[:len(fills) - 2], None
        case = cls((C, H, W) if unbatched else (N, C, H, W), kernel_arg, stride, padding, dilation,
                   ceil_mode=("ceil_mode" in wanted) or bool(rng.random() < 0.2),
                   count_include_pad=not ("count_include_pad=False" in wanted),
                   divisor_override=divisor, return_indices="return_indices" in wanted and not cls.BACKWARD,
                   dtype=dtype, fill=pick(rng, fills, p=weights),
                   layout=pick(rng, ["contiguous", "channels_last", "strided"], p=[0.7, 0.15, 0.15]),
                   seed=int(rng.integers(2**31)))
        if not valid(case) or np.prod(case.spec.x_shape) > MAX_ELEMENTS:
            return None
        return case

    return draw_cases(draw, features, dtypes, count, seed, nonfinite)


def adaptive_random_cases(cls, features, dtypes, count: int, seed: int, nonfinite: bool = True) -> list:
    def draw(rng, wanted, forced, dtype, nonfinite_ok):
        H, W = (int(v) for v in rng.integers(1, 14, size=2))
        if "uneven" in wanted:
            out = (int(rng.integers(1, H + 4)), int(rng.integers(1, W + 4)))
        else:
            out = tuple(int(pick(rng, [d for d in range(1, n + 1) if n % d == 0])) for n in (H, W))
        output_size = out[0] if out[0] == out[1] and rng.random() < 0.5 else out
        N = pick(rng, [0, 1, 2, 3], p=[0.05, 0.45, 0.3, 0.2])
        C = int(rng.integers(1, 6))
        unbatched = N == 1 and rng.random() < 0.2
        fills, weights = ["normal", "ties", "nan", "inf"], [0.6, 0.3, 0.05, 0.05]
        if cls.KIND == "avg":
            fills, weights = ["normal", "nan", "inf"], [0.9, 0.05, 0.05]
        if not nonfinite_ok:
            fills, weights = fills[:-2], None
        case = cls((C, H, W) if unbatched else (N, C, H, W), output_size,
                   return_indices="return_indices" in wanted, dtype=dtype, fill=pick(rng, fills, p=weights),
                   layout=pick(rng, ["contiguous", "channels_last", "strided"], p=[0.7, 0.15, 0.15]),
                   seed=int(rng.integers(2**31)))
        return case if valid(case) else None

    return draw_cases(draw, features, dtypes, count, seed, nonfinite)


def error_inputs(op: str) -> list[tuple]:
    """Calls ``op`` must refuse, as data: ``(id, call kwargs, exception type, message regex)``."""
    x = np.zeros((1, 2, 5, 5))
    rows = [
        ("max_pool2d", dict(kernel_size=3, padding=2), ValueError, "at most half of the kernel"),
        ("max_pool2d", dict(kernel_size=0), ValueError, "kernel_size must be positive"),
        ("max_pool2d", dict(kernel_size=2, stride=0), ValueError, "stride must be positive"),
        ("max_pool2d", dict(kernel_size=2, padding=-1), ValueError, "padding must be non-negative"),
        ("max_pool2d", dict(kernel_size=2, dilation=0), ValueError, "dilation must be positive"),
        ("max_pool2d", dict(kernel_size=9), ValueError, "too small"),
        ("max_pool2d", dict(kernel_size=2.0), TypeError, "kernel_size must be an int"),
        ("avg_pool2d", dict(kernel_size=3, divisor_override=0), ValueError, "divisor_override must be non-zero"),
        ("avg_pool2d", dict(kernel_size=3, padding=2), ValueError, "at most half of the kernel"),
        ("avg_pool2d", dict(kernel_size=3, divisor_override=1.5), TypeError, "divisor_override must be an int"),
        ("max_pool2d", dict(kernel_size=3, padding=((0, 2), (0, 0))), ValueError,
         r"kernel size: got padding \(top, bottom, left, right\)=\(0, 2, 0, 0\)"),
        ("avg_pool2d", dict(kernel_size=3, padding=((0, -1), (1, 1))), ValueError, r"non-negative, got \(\(0, -1\)"),
        ("adaptive_avg_pool2d", dict(output_size=-1), ValueError, "non-negative"),
        ("adaptive_max_pool2d", dict(output_size=(2, 2, 2)), TypeError, "output_size"),
    ]
    return [(f"{name}-{match[:24]}", dict(x=x, **kwargs), error, match) for name, kwargs, error, match in rows if name == op]
