"""Verification cases of 1-D and 3-D max and average pooling (forward and backward).

One dimension-generic case class, specialised by ``NDIM``, ``KIND`` and ``BACKWARD`` (one class
per op, so a reproducer names its op). The tables take the 2-D tables' grids per axis — kernel,
stride (None = kernel), padding up to half the kernel, dilation, ceil_mode, return_indices for
max; ceil_mode, count_include_pad and divisor_override (negative included; none for avg_pool1d,
which torch does not give one) for average — on small odd-sized inputs, plus unbatched input,
empty batch, strided memory, ties (small integers) and NaN/Inf fills.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from harness.ops.cases.conv_nd import n_arg, nd_dtypes, shrink_nd
from harness.ops.cases.tools import CaseBase, draw_cases, fill, laid_out, pick, plain_args, valid
from harness.ops.pool_nd_spec import pool_nd_spec

MAX_ELEMENTS = 40_000


@dataclass(frozen=True, repr=False)
class _PoolNdCase(CaseBase):
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

    NDIM = 1
    KIND = "max"
    BACKWARD = False

    @property
    def batched(self) -> bool:
        return len(self.x_shape) == self.NDIM + 2

    @property
    def kwargs(self) -> dict:
        """The keyword arguments of the call, as the user wrote them."""
        common = dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding, ceil_mode=self.ceil_mode)
        if self.KIND == "max":
            return dict(common, dilation=self.dilation)
        extra = {} if self.NDIM == 1 else dict(divisor_override=self.divisor_override)
        return dict(common, count_include_pad=self.count_include_pad, **extra)

    @property
    def spec(self):
        probe = np.empty(self.x_shape, dtype=self.dtype)
        extra = dict(return_indices=self.return_indices) if self.KIND == "max" and not self.BACKWARD else {}
        return pool_nd_spec(self.KIND, self.NDIM, probe, **self.kwargs, **extra)[0]

    def arrays(self):
        """``(x,)``, or for a backward case ``(x, grad_out)``."""
        rng = np.random.default_rng(self.seed)
        x = laid_out(fill(rng, self.x_shape, self.fill, self.dtype), self.layout)
        if not self.BACKWARD:
            return (x,)
        out_shape = self.spec.out_shape if self.batched else self.spec.out_shape[1:]
        return x, laid_out(fill(rng, out_shape, "normal", self.dtype), self.layout)

    def simpler(self):
        out = shrink_nd(self, self.NDIM)
        out += plain_args(self, dict(ceil_mode=False, padding=0, dilation=1, stride=None, divisor_override=None,
                                     count_include_pad=True, return_indices=False, layout="contiguous"))
        return [case for case in out if valid(case)]


def _case_class(ndim: int, kind: str, backward: bool):
    """The case class of one pooling op (its own name, so a reproducer imports it by that name)."""
    name = f"{kind.title()}Pool{ndim}d{'Backward' if backward else ''}Case"
    doc = f"One {kind}_pool{ndim}d{'_backward' if backward else ''} case; arrays (x,){' + grad_out' if backward else ''}."
    cls = type(name, (_PoolNdCase,), {"__doc__": doc, "__module__": __name__, "NDIM": ndim, "KIND": kind,
                                      "BACKWARD": backward})
    return dataclass(frozen=True, repr=False)(cls)


CASE_CLASSES = {(ndim, kind, backward): _case_class(ndim, kind, backward)
                for ndim in (1, 3) for kind in ("max", "avg") for backward in (False, True)}
(MaxPool1dCase, MaxPool1dBackwardCase, AvgPool1dCase, AvgPool1dBackwardCase, MaxPool3dCase, MaxPool3dBackwardCase,
 AvgPool3dCase, AvgPool3dBackwardCase) = CASE_CLASSES.values()


# -- tables --------------------------------------------------------------------------------------------------
def pool_table(ndim: int, kind: str, backward: bool = False) -> list:
    """The 2-D tables' grids per axis, on one odd-sized input, plus edge cases."""
    cls = CASE_CLASSES[(ndim, kind, backward)]
    shape = (1, 2, 13) if ndim == 1 else (1, 2, 5, 7, 6)
    uneven = 3 if ndim == 1 else (3, 2, 3)
    rows = []
    if kind == "max":
        grid = itertools.product([3, uneven], [2, None], [0, 1], [1, 2], [False, True],
                                 [False] if backward else [False, True])
        for i, (k, s, p, d, ceil, idx) in enumerate(grid):
            rows.append(cls(shape, k, s, p, d, ceil, return_indices=idx, fill="ties" if i % 2 else "normal", seed=i))
    else:
        divisors = [None] if ndim == 1 else [None, 3, -2]
        grid = itertools.product([3, uneven], [None, 2], [0, 1], [False, True], [True, False], divisors)
        for i, (k, s, p, ceil, include, divisor) in enumerate(grid):
            if divisor is not None and not include:
                continue  # count_include_pad does not matter once the divisor is given
            rows.append(cls(shape, k, s, p, ceil_mode=ceil, count_include_pad=include, divisor_override=divisor,
                            dtype="float64" if i % 3 == 0 else "float32", seed=i))
    unbatched = (3, 9) if ndim == 1 else (2, 4, 4, 4)
    rows += [
        cls(unbatched, 2, dtype="float64"),
        cls((0, 2) + shape[2:], 2),
        cls((2, 3) + shape[2:], 2, 1, layout="strided", fill="ties" if kind == "max" else "normal"),
        cls(shape, 3, 2, 1, fill="nan"),
        cls(shape, 2, fill="inf", dtype="float64"),
        cls((1, 1) + (1,) * ndim, 1),
    ]
    return rows


# -- random sampler --------------------------------------------------------------------------------------------
def pool_nd_random_cases(cls):
    """The random-case function of a pooling case class."""
    ndim = cls.NDIM

    def random_cases(features, dtypes, count: int, seed: int, nonfinite: bool = True) -> list:
        def draw(rng, wanted, forced, dtype, nonfinite_ok):
            kernel = tuple(int(k) for k in rng.integers(1, 6 if ndim == 1 else 4, size=ndim))
            kernel_arg = kernel[0] if len(set(kernel)) == 1 and rng.random() < 0.5 else kernel
            stride = n_arg(rng, ndim, 1, 4) if "stride" in wanted else pick(rng, [None, kernel_arg])
            padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel) if "padding" in wanted else 0
            padding = padding[0] if ndim == 1 and padding != 0 else padding
            dilation = n_arg(rng, ndim, 1, 3) if "dilation" in wanted and cls.KIND == "max" else 1
            divisor = int(pick(rng, [-3, -1, 1, 2, 5])) if "divisor_override" in wanted else None
            dil = (dilation,) * ndim if isinstance(dilation, int) else dilation
            size = tuple(max(int(v), d * (k - 1) + 1) for v, d, k in
                         zip(rng.integers(1, 30 if ndim == 1 else 9, size=ndim), dil, kernel))
            N = pick(rng, [0, 1, 2, 3], p=[0.05, 0.45, 0.3, 0.2])
            C = int(rng.integers(1, 5))
            unbatched = N == 1 and rng.random() < 0.2
            fills = ["normal", "ties", "nan", "inf"] if cls.KIND == "max" else ["normal", "nan", "inf"]
            weights = [0.6, 0.3, 0.05, 0.05] if cls.KIND == "max" else [0.9, 0.05, 0.05]
            if not nonfinite_ok:
                fills, weights = fills[:len(fills) - 2], None
            case = cls((C, *size) if unbatched else (N, C, *size), kernel_arg, stride, padding, dilation,
                       ceil_mode=("ceil_mode" in wanted) or bool(rng.random() < 0.2),
                       count_include_pad="count_include_pad=False" not in wanted, divisor_override=divisor,
                       return_indices="return_indices" in wanted and not cls.BACKWARD, dtype=dtype,
                       fill=pick(rng, fills, p=weights), layout=pick(rng, ["contiguous", "strided"], p=[0.8, 0.2]),
                       seed=int(rng.integers(2**31)))
            if not valid(case) or np.prod(case.spec.x_shape) > MAX_ELEMENTS:
                return None
            return case

        return draw_cases(draw, features, nd_dtypes(dtypes), count, seed, nonfinite)

    return random_cases


def error_inputs(op: str, ndim: int) -> list[tuple]:
    """Calls ``harness.<op>`` must refuse: ``(id, call kwargs, exception type, message regex)``."""
    x = np.zeros((1, 2) + (5,) * ndim)
    rows = [
        ("half-kernel", dict(kernel_size=3, padding=2), ValueError, "at most half of the kernel"),
        ("kernel-zero", dict(kernel_size=0), ValueError, "kernel_size must be positive"),
        ("stride-zero", dict(kernel_size=2, stride=0), ValueError, "stride must be positive"),
        ("too-small", dict(kernel_size=9), ValueError, "too small"),
        ("kernel-float", dict(kernel_size=2.0), TypeError, "kernel_size must be an int"),
        ("rank", dict(kernel_size=2, x=np.zeros((5,) * (ndim + 3))), ValueError, "input"),
    ]
    if op.startswith("avg") and ndim == 3:
        rows.append(("divisor-zero", dict(kernel_size=3, divisor_override=0), ValueError, "non-zero"))
    return [(name, dict(dict(x=x), **kwargs), error, match) for name, kwargs, error, match in rows]
