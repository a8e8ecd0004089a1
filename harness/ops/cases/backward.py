"""conv2d_backward verification cases: conv2d's cases plus a grad_out.

A :class:`Conv2dBackwardCase` has the fields of :class:`harness.ops.cases.conv2d.Conv2dCase` (the forward
call) and draws ``grad_out`` after ``x``, ``w`` from the same seed. Its ``exact`` fill uses
small integers everywhere and is kept only while every gradient's reduction (``O/groups*KH*KW``
for grad_input, ``N*OH*OW`` for grad_weight and grad_bias) stays exactly representable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from harness.ops.cases.tools import SMALL_INT, CaseBase, draw_cases, fill, laid_out
from harness.ops.cases.conv2d import MANTISSA_BITS, Conv2dCase, draw_case as draw_conv2d
from harness.ops.cases.conv2d import table_cases as conv2d_table


@dataclass(frozen=True, repr=False)
class Conv2dBackwardCase(CaseBase):
    """One conv2d_backward case; arrays are (x, w, grad_out); ``bias`` asks for grad_bias."""

    x_shape: tuple
    w_shape: tuple
    bias: bool = False
    stride: object = 1
    padding: object = 0
    dilation: object = 1
    groups: int = 1
    padding_mode: str = "zeros"
    dtype: str = "float32"
    fill: str = "normal"
    layout: str = "contiguous"
    seed: int = 0

    KWARGS = Conv2dCase.KWARGS

    @property
    def forward(self) -> Conv2dCase:
        return Conv2dCase(**asdict(self))

    @property
    def spec(self):
        return self.forward.spec

    def arrays(self):
        rng = np.random.default_rng(self.seed)
        spec = self.spec
        kind = "exact" if self.fill == "exact" and exact_ok(spec) else ("normal" if self.fill == "exact" else self.fill)
        x = fill(rng, self.x_shape, kind, self.dtype)
        w = fill(rng, self.w_shape, "exact" if kind == "exact" else "normal", self.dtype)
        out_shape = spec.out_shape if self.batched else spec.out_shape[1:]
        go = fill(rng, out_shape, "exact" if kind == "exact" else "normal", self.dtype)
        return laid_out(x, self.layout), laid_out(w, self.layout), laid_out(go, self.layout)

    def simpler(self):
        return [Conv2dBackwardCase(**asdict(case)) for case in self.forward.simpler()]


def exact_ok(spec) -> bool:
    """Whether integer data in [-4, 4] keeps every gradient's partial sums exact."""
    longest = max(spec.O // spec.groups * spec.KH * spec.KW * (9 if spec.padding_mode != "zeros" else 1),
                  max(1, spec.N) * spec.OH * spec.OW)
    return longest * SMALL_INT * SMALL_INT < 2 ** MANTISSA_BITS[spec.dtype]


def table_cases() -> list[Conv2dBackwardCase]:
    """conv2d's hand-picked table, each case as a backward case."""
    return [Conv2dBackwardCase(**asdict(case)) for case in conv2d_table()]


def random_cases(features, dtypes, count: int, seed: int, nonfinite: bool = True) -> list[Conv2dBackwardCase]:
    """conv2d's random cases (same sampler, so the same coverage of features and argument forms)."""
    def draw(rng, wanted, forced, dtype, nonfinite_ok):
        case = draw_conv2d(rng, wanted, forced, dtype, nonfinite_ok, seed=int(rng.integers(2**31)))
        return None if case is None else Conv2dBackwardCase(**asdict(case))

    return draw_cases(draw, features, dtypes, count, seed, nonfinite)


