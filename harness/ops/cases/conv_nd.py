"""Verification cases of the 1-D and 3-D convolutions (forward, transposed, backward).

One dimension-generic case class per op family; the 1-D and 3-D classes differ only in
``NDIM`` (and each op has its own class, so a case names its op in a reproducer). Tables follow
conv2d's (PyTorch OpInfo samples plus padding modes, 'same' with even kernels, empty batch,
unbatched input, strided memory, exact and NaN/Inf fills), with layers of the shape real 1-D
and 3-D networks use (dilated causal 1-D, 3x3x3 and 1x3x3 3-D kernels). Fills: ``normal``;
``exact`` small integers (every partial sum exact, so ``exact`` backends must be bit-exact);
``nan`` / ``inf`` planted in ``x``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from harness.ops.args import FLOAT_DTYPES
from harness.ops.cases.tools import CaseBase, draw_cases, fill, laid_out, pick, plain_args, valid
from harness.ops.conv_nd_spec import conv_nd_from_shapes, conv_transpose_nd_from_shapes, spatial_prod

#: Random cases stay cheap for the naive loops (one numpy step per channel pair and tap).
MAX_MACS = 1_000_000
MAX_NAIVE_TRIPS = 6_000
LAYOUTS = ("contiguous", "strided")


def shrink_nd(case, ndim: int) -> list:
    """One-step smaller inputs: batch 1, each spatial axis one shorter or halved."""
    shape = list(case.x_shape)
    out = []
    if len(shape) == ndim + 2 and shape[0] > 1:
        out.append(replace(case, x_shape=(1, *shape[1:])))
    for axis in range(len(shape) - ndim, len(shape)):
        for smaller in {shape[axis] - 1, shape[axis] // 2}:
            if 0 < smaller < shape[axis]:
                out.append(replace(case, x_shape=tuple(shape[:axis] + [smaller] + shape[axis + 1:])))
    return out


def n_arg(rng, ndim: int, lo: int, hi: int):
    """An int, or a tuple of ``ndim`` ints, in [lo, hi), not all ``lo``."""
    if ndim == 1 or rng.random() < 0.5:
        return int(rng.integers(lo + 1, hi))
    values = tuple(int(v) for v in rng.integers(lo, hi, size=ndim))
    return values if any(v != lo for v in values) else (lo + 1,) + values[1:]


@dataclass(frozen=True, repr=False)
class _ConvNdCase(CaseBase):
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

    NDIM = 1
    OP = "conv1d"
    BACKWARD = False
    KWARGS = ("stride", "padding", "dilation", "groups", "padding_mode")

    @property
    def batched(self) -> bool:
        return len(self.x_shape) == self.NDIM + 2

    @property
    def spec(self):
        x_shape = self.x_shape if self.batched else (1,) + tuple(self.x_shape)
        return conv_nd_from_shapes(self.OP, x_shape, self.w_shape, bias=self.bias, dtype=self.dtype, **self.kwargs)

    def arrays(self):
        """``(x, w, bias)``, or for a backward case ``(x, w, grad_out)`` (``bias`` asks for grad_bias)."""
        rng = np.random.default_rng(self.seed)
        spec = self.spec
        small = "exact" if self.fill == "exact" else "normal"
        x = laid_out(fill(rng, self.x_shape, self.fill, self.dtype), self.layout)
        w = laid_out(fill(rng, self.w_shape, small, self.dtype), self.layout)
        if self.BACKWARD:
            out_shape = spec.out_shape if self.batched else spec.out_shape[1:]
            return x, w, laid_out(fill(rng, out_shape, small, self.dtype), self.layout)
        b = fill(rng, (spec.O,), small, self.dtype)
        return x, w, (b if self.bias else None)

    def simpler(self):
        out = shrink_nd(self, self.NDIM)
        O, Cg, *kernel = self.w_shape
        c = 1 if self.batched else 0
        g = self.groups
        if O > g:
            out.append(replace(self, w_shape=(O - g, Cg, *kernel)))
        if Cg > 1:
            x = list(self.x_shape)
            x[c] -= g
            out.append(replace(self, x_shape=tuple(x), w_shape=(O, Cg - 1, *kernel)))
        for axis, k in enumerate(kernel):
            if k > 1:
                out.append(replace(self, w_shape=(O, Cg, *kernel[:axis], k - 1, *kernel[axis + 1:])))
        out += plain_args(self, dict(stride=1, dilation=1, padding=0, padding_mode="zeros", bias=False,
                                     layout="contiguous"))
        return [case for case in out if valid(case)]


@dataclass(frozen=True, repr=False)
class _ConvTransposeNdCase(CaseBase):
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

    NDIM = 1
    OP = "conv_transpose1d"
    KWARGS = ("stride", "padding", "output_padding", "groups", "dilation")

    @property
    def batched(self) -> bool:
        return len(self.x_shape) == self.NDIM + 2

    @property
    def spec(self):
        x_shape = self.x_shape if self.batched else (1,) + tuple(self.x_shape)
        return conv_transpose_nd_from_shapes(self.OP, x_shape, self.w_shape, bias=self.bias, dtype=self.dtype,
                                             **self.kwargs)

    def arrays(self):
        rng = np.random.default_rng(self.seed)
        small = "exact" if self.fill == "exact" else "normal"
        x = laid_out(fill(rng, self.x_shape, self.fill, self.dtype), self.layout)
        w = laid_out(fill(rng, self.w_shape, small, self.dtype), self.layout)
        b = fill(rng, (self.spec.O,), small, self.dtype)
        return x, w, (b if self.bias else None)

    def simpler(self):
        out = shrink_nd(self, self.NDIM)
        C, Og, *kernel = self.w_shape
        if Og > 1:
            out.append(replace(self, w_shape=(C, Og - 1, *kernel)))
        for axis, k in enumerate(kernel):
            if k > 1:
                out.append(replace(self, w_shape=(C, Og, *kernel[:axis], k - 1, *kernel[axis + 1:])))
        out += plain_args(self, dict(stride=1, dilation=1, padding=0, output_padding=0, bias=False,
                                     layout="contiguous"))
        return [case for case in out if valid(case)]


def _case_class(base, name: str, doc: str, **flags):
    """A frozen case class of its own name (reproducers import it by that name) with ``flags`` set."""
    return dataclass(frozen=True, repr=False)(type(name, (base,), {"__doc__": doc, "__module__": __name__, **flags}))


Conv1dCase = _case_class(_ConvNdCase, "Conv1dCase", "One conv1d case: x (N, C, L), w (O, C/groups, K).")
Conv3dCase = _case_class(_ConvNdCase, "Conv3dCase", "One conv3d case: x (N, C, D, H, W), w (O, C/groups, KD, KH, KW).",
                         NDIM=3, OP="conv3d")
Conv1dBackwardCase = _case_class(_ConvNdCase, "Conv1dBackwardCase",
                                 "One conv1d_backward case: arrays (x, w, grad_out); bias asks for grad_bias.",
                                 BACKWARD=True)
Conv3dBackwardCase = _case_class(_ConvNdCase, "Conv3dBackwardCase", "One conv3d_backward case: arrays (x, w, grad_out).",
                                 NDIM=3, OP="conv3d", BACKWARD=True)
ConvTranspose1dCase = _case_class(_ConvTransposeNdCase, "ConvTranspose1dCase",
                                  "One conv_transpose1d case: w is (C, O/groups, K).")
ConvTranspose3dCase = _case_class(_ConvTransposeNdCase, "ConvTranspose3dCase",
                                  "One conv_transpose3d case: w is (C, O/groups, KD, KH, KW).", NDIM=3,
                                  OP="conv_transpose3d")


# -- hand-picked tables ------------------------------------------------------------------------------------
def conv1d_rows(cls=Conv1dCase) -> list:
    C = cls
    return [
        C((2, 4, 17), (6, 4, 3)),
        C((1, 4, 20), (6, 4, 5), bias=True, stride=3),
        C((2, 4, 16), (3, 4, 3), stride=2, padding=2),
        C((1, 3, 24), (4, 3, 2), dilation=4, padding="same"),  # WaveNet-style dilated, even kernel: 'same' split
        C((1, 3, 12), (4, 3, 3), padding="full", bias=True),
        C((1, 2, 30), (2, 2, 2), dilation=8),  # dilated causal conv on a pre-padded input (TCN)
        C((2, 4, 12), (6, 2, 3), bias=True, groups=2, padding=1),
        C((1, 4, 10), (8, 1, 3), groups=4, padding="valid"),  # depthwise, multiplier 2
        C((3, 11), (2, 3, 3), bias=True, padding=1),  # unbatched
        C((0, 3, 9), (2, 3, 3), bias=True),  # empty batch
        C((1, 2, 9), (3, 2, 3), padding=2, padding_mode="reflect"),
        C((1, 2, 9), (3, 2, 4), padding="same", padding_mode="replicate"),
        C((1, 2, 6), (3, 2, 3), padding=6, padding_mode="circular"),  # pad == size
        C((1, 1, 40), (2, 1, 10), stride=5, layout="strided"),  # wav2vec 2.0's first layer, shrunk
        C((1, 130, 9), (3, 130, 3), bias=True, padding=1, fill="exact"),  # long reduction
        C((1, 3, 12), (2, 3, 3), padding=1, fill="nan"),
        C((1, 3, 12), (2, 3, 3), bias=True, fill="inf"),
    ]


def conv3d_rows(cls=Conv3dCase) -> list:
    C = cls
    return [
        C((2, 3, 5, 6, 6), (4, 3, 3, 3, 3)),
        C((1, 3, 6, 7, 7), (4, 3, 3, 3, 3), bias=True, padding=1),  # C3D's 3x3x3 'same'
        C((1, 2, 7, 8, 8), (3, 2, 1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),  # (2+1)-D spatial part
        C((1, 2, 8, 5, 5), (3, 2, 3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0)),  # temporal part
        C((1, 2, 6, 6, 6), (3, 2, 2, 3, 2), padding="same", dilation=(2, 1, 1)),
        C((1, 2, 4, 5, 5), (2, 2, 2, 2, 2), padding="full"),
        C((1, 2, 7, 7, 7), (2, 2, 3, 3, 3), dilation=(1, 2, 3), bias=True),
        C((1, 4, 5, 5, 5), (4, 2, 3, 3, 3), groups=2, padding=1),
        C((1, 4, 5, 5, 5), (8, 1, 3, 3, 3), groups=4, bias=True),  # depthwise, multiplier 2
        C((2, 4, 4, 4), (3, 2, 3, 3, 3), padding=1),  # unbatched
        C((0, 2, 4, 4, 4), (3, 2, 3, 3, 3), bias=True),  # empty batch
        C((1, 2, 4, 5, 5), (2, 2, 3, 3, 3), padding=(1, 2, 1), padding_mode="reflect"),
        C((1, 2, 4, 5, 5), (2, 2, 3, 3, 3), padding=2, padding_mode="replicate", stride=2),
        C((1, 2, 3, 4, 4), (2, 2, 3, 3, 3), padding=(3, 2, 4), padding_mode="circular"),
        C((1, 2, 6, 6, 6), (3, 2, 3, 3, 3), stride=2, layout="strided"),
        C((1, 40, 4, 4, 4), (2, 40, 3, 3, 3), bias=True, padding=1, fill="exact"),  # 1,080-term reduction
        C((1, 2, 4, 5, 5), (2, 2, 3, 3, 3), padding=1, fill="nan"),
        C((1, 2, 4, 5, 5), (2, 2, 3, 3, 3), fill="inf"),
    ]


def _both_dtypes(rows) -> list:
    """Every row in float32 and float64, the exact-fill rows also in float64 only once."""
    return [replace(case, dtype=dt) for case in rows for dt in ("float32", "float64")]


def conv1d_table() -> list:
    return _both_dtypes(conv1d_rows())


def conv3d_table() -> list:
    return _both_dtypes(conv3d_rows())


def conv1d_backward_table() -> list:
    return [Conv1dBackwardCase(**asdict(case)) for case in conv1d_table()]


def conv3d_backward_table() -> list:
    return [Conv3dBackwardCase(**asdict(case)) for case in conv3d_table()]


def conv_transpose1d_table() -> list:
    T = ConvTranspose1dCase
    return _both_dtypes([
        T((2, 4, 9), (4, 3, 3)),
        T((1, 4, 8), (4, 2, 4), bias=True, stride=2, padding=1),  # up-sampling by 2
        T((1, 4, 7), (4, 2, 3), stride=3, padding=1, output_padding=2),
        T((1, 4, 7), (4, 2, 3), dilation=3, padding=2, output_padding=1, stride=2),
        T((1, 4, 6), (4, 3, 3), groups=2, bias=True),
        T((1, 4, 6), (4, 1, 3), groups=4, stride=2),  # depthwise
        T((3, 8), (3, 2, 5), padding=2),  # unbatched
        T((0, 3, 5), (3, 2, 3), bias=True),  # empty batch
        T((1, 2, 16), (2, 3, 4), stride=4, layout="strided"),
        T((1, 60, 6), (60, 2, 3), bias=True, fill="exact"),
        T((1, 3, 6), (3, 2, 3), stride=2, fill="nan"),
    ])


def conv_transpose3d_table() -> list:
    T = ConvTranspose3dCase
    return _both_dtypes([
        T((1, 4, 3, 4, 4), (4, 3, 2, 2, 2), stride=2, bias=True),  # 3-D U-Net up-convolution
        T((2, 3, 3, 3, 3), (3, 2, 3, 3, 3), padding=1),
        T((1, 3, 3, 4, 4), (3, 2, 3, 3, 3), stride=(1, 2, 2), padding=1, output_padding=(0, 1, 1)),
        T((1, 2, 3, 3, 3), (2, 2, 2, 3, 2), dilation=(2, 1, 2), stride=2, output_padding=1),
        T((1, 4, 3, 3, 3), (4, 1, 3, 3, 3), groups=2, bias=True),
        T((1, 4, 3, 3, 3), (4, 2, 3, 3, 3), groups=4),  # depthwise, multiplier 2
        T((2, 3, 3, 3), (2, 2, 2, 2, 2), stride=2),  # unbatched
        T((0, 2, 3, 3, 3), (2, 2, 2, 2, 2), bias=True),  # empty batch
        T((1, 30, 3, 3, 3), (30, 2, 3, 3, 3), bias=True, fill="exact"),
        T((1, 2, 3, 3, 3), (2, 2, 2, 2, 2), stride=2, fill="inf"),
    ])


# -- random sampler ---------------------------------------------------------------------------------------------
def _draw_conv(cls, ndim: int, rng, wanted: set, forced, dtype: str, nonfinite: bool, seed: int):
    """One random conv case of ``cls`` wanting the features ``wanted``, or None (invalid or too costly)."""
    if "depthwise" in wanted and (forced == "depthwise" or "groups" not in wanted or rng.random() < 0.5):
        groups = int(rng.integers(2, 7))
        C, O = groups, groups * int(rng.integers(1, 3))
    else:
        groups = int(rng.integers(2, 4)) if "groups" in wanted else 1
        long = rng.random() < 0.1
        C = groups * (int(rng.integers(32, 120)) if long else int(rng.integers(1, 6)))
        O = groups * int(rng.integers(1, 4 if long else 6))
    kmax, smax = (8, 30) if ndim == 1 else (4, 9)
    kernel = tuple(int(k) for k in rng.integers(1, kmax, size=ndim))
    stride = n_arg(rng, ndim, 1, 4) if "stride" in wanted else 1
    dilation = n_arg(rng, ndim, 1, 4) if "dilation" in wanted else 1
    strided = stride != 1
    padding_mode = "zeros"
    if "asymmetric_padding" in wanted and not strided:
        padding = "same"
        kernel = (kernel[0] + (kernel[0] % 2 == 1),) + kernel[1:]  # an even kernel: the split is uneven
        if dilation != 1 and (dilation if isinstance(dilation, int) else dilation[0]) % 2 == 0:
            dilation = 1
    elif "padding" in wanted or any(f.startswith("padding_mode=") for f in wanted):
        padding = pick(rng, ["int", "tuple", "same", "full"])
        if padding == "same" and strided:
            padding = "int"
        if padding == "int":
            padding = int(rng.integers(1, 4))
        elif padding == "tuple":
            padding = tuple(int(v) for v in rng.integers(0, 4, size=ndim)) if ndim > 1 else int(rng.integers(1, 4))
        modes = sorted(f.split("=")[1] for f in wanted if f.startswith("padding_mode="))
        if modes:
            padding_mode = pick(rng, modes)
    else:
        padding = pick(rng, [0, "valid"])
    dil = (dilation,) * ndim if isinstance(dilation, int) else dilation
    size = tuple(max(int(n), d * (k - 1) + 1, 5 if padding_mode != "zeros" else 1)
                 for n, k, d in zip(rng.integers(1, smax, size=ndim), kernel, dil))
    N = pick(rng, [0, 1, 2, 3], p=[0.05, 0.5, 0.3, 0.15])
    unbatched = N == 1 and rng.random() < 0.2
    fill_kind = pick(rng, ["normal", "exact", "nan", "inf"], p=[0.62, 0.3, 0.04, 0.04] if nonfinite else
                     [0.7, 0.3, 0, 0])
    case = cls(x_shape=(C, *size) if unbatched else (N, C, *size), w_shape=(O, C // groups, *kernel),
               bias="bias" in wanted, stride=stride, padding=padding, dilation=dilation, groups=groups,
               padding_mode=padding_mode, dtype=dtype, fill=fill_kind,
               layout=pick(rng, LAYOUTS, p=[0.8, 0.2]), seed=seed)
    try:
        spec = case.spec
    except ValueError:
        return None
    if spec.O * spec.n_acc > MAX_NAIVE_TRIPS or max(1, spec.N) * spec.O * spatial_prod(spec.out_dims) * spec.n_acc \
            > MAX_MACS:
        return None
    return case


def _draw_transpose(cls, ndim: int, rng, wanted: set, forced, dtype: str, nonfinite: bool, seed: int):
    if "depthwise" in wanted and (forced == "depthwise" or "groups" not in wanted or rng.random() < 0.5):
        groups = int(rng.integers(2, 6))
        C, Og = groups, int(rng.integers(1, 3))
    else:
        groups = int(rng.integers(2, 4)) if "groups" in wanted else 1
        C, Og = groups * int(rng.integers(1, 5)), int(rng.integers(1, 5))
    kmax, smax = (7, 20) if ndim == 1 else (4, 6)
    kernel = tuple(int(k) for k in rng.integers(1, kmax, size=ndim))
    stride = n_arg(rng, ndim, 1, 4) if "stride" in wanted else 1
    dilation = n_arg(rng, ndim, 1, 3) if "dilation" in wanted else 1
    padding = n_arg(rng, ndim, 0, 3) if "padding" in wanted else 0
    output_padding = 0
    if "output_padding" in wanted:
        s = (stride,) * ndim if isinstance(stride, int) else stride
        d = (dilation,) * ndim if isinstance(dilation, int) else dilation
        output_padding = tuple(int(rng.integers(0, max(a, b))) for a, b in zip(s, d)) if ndim > 1 else \
            int(rng.integers(0, max(s[0], d[0])))
    size = tuple(int(n) for n in rng.integers(1, smax, size=ndim))
    N = pick(rng, [0, 1, 2], p=[0.05, 0.6, 0.35])
    unbatched = N == 1 and rng.random() < 0.2
    fill_kind = pick(rng, ["normal", "exact", "nan"], p=[0.65, 0.3, 0.05] if nonfinite else [0.7, 0.3, 0])
    case = cls(x_shape=(C, *size) if unbatched else (N, C, *size), w_shape=(C, Og, *kernel), bias="bias" in wanted,
               stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation,
               dtype=dtype, fill=fill_kind, layout=pick(rng, LAYOUTS, p=[0.8, 0.2]), seed=seed)
    try:
        spec = case.spec
    except ValueError:
        return None
    if spec.C * Og * spatial_prod(kernel) > MAX_NAIVE_TRIPS or \
            max(1, spec.N) * spec.C * spatial_prod(spec.size) * Og * spatial_prod(kernel) > MAX_MACS:
        return None
    return case


def nd_dtypes(dtypes) -> list:
    """The declared dtypes the 1-D and 3-D ops take: float32 and float64 (half precision is 2-D only)."""
    return [d for d in dtypes if d in FLOAT_DTYPES]


def random_cases_of(cls, count_kind: str = "conv"):
    """The random-case function of a case class (``conv`` draws serve the backward classes too)."""
    draw_one = _draw_transpose if count_kind == "transpose" else _draw_conv

    def random_cases(features, dtypes, count: int, seed: int, nonfinite: bool = True) -> list:
        def draw(rng, wanted, forced, dtype, nonfinite_ok):
            return draw_one(cls, cls.NDIM, rng, wanted, forced, dtype, nonfinite_ok, seed=int(rng.integers(2**31)))

        return draw_cases(draw, features, nd_dtypes(dtypes), count, seed, nonfinite)

    return random_cases


# -- calls the public functions must refuse ----------------------------------------------------------------------
def error_inputs(op: str, ndim: int) -> list[tuple]:
    """``(id, call kwargs, exception type, message regex)`` for ``harness.<op>`` (conv1d / conv3d)."""
    def arr(*shape, dtype=np.float32):
        return np.ones(shape, dtype=dtype)

    sp = (6,) * ndim
    k3 = (3,) * ndim
    return [
        ("x-rank", dict(x=arr(3, *sp, 2), w=arr(2, 3, *k3)), ValueError, r"input"),
        ("w-rank", dict(x=arr(1, 3, *sp), w=arr(2, 3)), ValueError, r"weight"),
        ("x-list", dict(x=[[1.0]], w=arr(2, 3, *k3)), TypeError, r"x must be a numpy.ndarray"),
        ("x-int", dict(x=np.ones((1, 3, *sp), np.int64), w=arr(2, 3, *k3)), TypeError, r"astype"),
        ("dtype-mismatch", dict(x=arr(1, 3, *sp), w=arr(2, 3, *k3, dtype=np.float64)), TypeError, r"same dtype"),
        ("channels", dict(x=arr(1, 4, *sp), w=arr(2, 3, *k3)), ValueError, r"C/groups=3"),
        ("groups-zero", dict(x=arr(1, 4, *sp), w=arr(2, 4, *k3), groups=0), ValueError, r"groups must be a positive"),
        ("stride-zero", dict(x=arr(1, 3, *sp), w=arr(2, 3, *k3), stride=0), ValueError, r"stride must be positive"),
        ("stride-wrong-length", dict(x=arr(1, 3, *sp), w=arr(2, 3, *k3), stride=(1,) * (ndim + 1)), TypeError,
         r"stride must be an int"),
        ("padding-negative", dict(x=arr(1, 3, *sp), w=arr(2, 3, *k3), padding=-1), ValueError, r"non-negative"),
        ("padding-string", dict(x=arr(1, 3, *sp), w=arr(2, 3, *k3), padding="half"), ValueError, r"same.*valid"),
        ("same-strided", dict(x=arr(1, 3, *sp), w=arr(2, 3, *k3), padding="same", stride=2), ValueError, r"strided"),
        ("kernel-too-big", dict(x=arr(1, 3, *(2,) * ndim), w=arr(2, 3, *k3)), ValueError, r"larger than the padded"),
        ("mode-unknown", dict(x=arr(1, 3, *sp), w=arr(2, 3, *k3), padding=1, padding_mode="mirror"), ValueError,
         r"padding_mode must be one of"),
        ("reflect-too-wide", dict(x=arr(1, 3, *sp), w=arr(2, 3, *k3), padding=6, padding_mode="reflect"), ValueError,
         r"reflect"),
        ("bias-shape", dict(x=arr(1, 3, *sp), w=arr(2, 3, *k3), bias=arr(3)), ValueError, r"bias must have shape"),
    ]


def transpose_error_inputs(op: str, ndim: int) -> list[tuple]:
    def arr(*shape):
        return np.ones(shape, dtype=np.float32)

    sp, k = (4,) * ndim, (3,) * ndim
    return [
        ("x-rank", dict(x=arr(3, *sp, 2), w=arr(3, 2, *k)), ValueError, r"input"),
        ("weight-channels", dict(x=arr(1, 3, *sp), w=arr(2, 3, *k)), ValueError, r"input channels\s+first|C=3"),
        ("output-padding", dict(x=arr(1, 3, *sp), w=arr(3, 2, *k), stride=2, output_padding=2), ValueError,
         r"output_padding must be smaller"),
        ("too-much-padding", dict(x=arr(1, 3, *sp), w=arr(3, 2, *k), padding=5), ValueError, r"too small"),
        ("bias-shape", dict(x=arr(1, 3, *sp), w=arr(3, 2, *k), bias=arr(3)), ValueError, r"bias must have shape"),
    ]
