"""Verification cases as data: a hand-picked table and a seeded random sampler.

A :class:`Conv2dCase` holds everything needed to rebuild a call bit for bit — shapes,
arguments in the form the user would write them (int, pair or string), dtype, how the data
is filled, its memory layout and the seed — so its ``repr`` is a reproducer.

Fills
-----
``normal``   standard normal values.
``exact``    small integers (as oneDNN's benchdnn does): |x| <= 32, |w| <= 32, |b| <= 1024, with
             weights sparsified per output channel so that every partial sum, in any order, stays
             below 2**mantissa_bits; a backend whose arithmetic allows it must then be bit-exact.
``nan``/``inf``  normal values with a few NaN (or +-Inf) planted in ``x``.
``huge``/``tiny``  normal values scaled by 1e15 / 1e-15: products stay normal and finite in
             float32 (1e+-30), so nothing may overflow or flush where torch does not.
``near_max``/``subnormal``  the input near the dtype's overflow limit (for the reduction length)
             or subnormal: see :mod:`harness.ops.cases.extreme`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from harness.ops.cases.tools import CaseBase, as_pair, both_dtypes, draw_cases, in_layout, pair_arg, pick, plain_args, \
    plant_nonfinite, set_axis, shrink_image, valid
from harness.ops.args import HALF_DTYPES
from harness.ops.conv_spec import Conv2dSpec
from harness.ops.cases.extreme import EXTREME_FILLS, bias_scale, input_scale, near_max_conv2d

EXACT_X_MAX = 32
EXACT_W_MAX = 32
EXACT_B_MAX = 1024
#: Significant bits of the dtype the sums are carried in (half dtypes sum in float32, then round once).
MANTISSA_BITS = {"float32": 24, "float64": 53, "float16": 24, "bfloat16": 24}

FILL_SCALES = {"huge": 1e15, "tiny": 1e-15}

#: Random cases stay cheap enough for the naive reference: bounded multiply-adds and loop trips.
MAX_MACS = 3_000_000
MAX_NAIVE_TRIPS = 25_000


@dataclass(frozen=True, repr=False)
class Conv2dCase(CaseBase):
    """One conv2d verification case; ``repr`` is a one-line reproducer."""

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

    KWARGS = ("stride", "padding", "dilation", "groups", "padding_mode")

    @property
    def spec(self) -> Conv2dSpec:
        x_shape = self.x_shape if self.batched else (1,) + tuple(self.x_shape)
        return Conv2dSpec.from_shapes(x_shape, self.w_shape, bias=self.bias, dtype=self.dtype, **self.kwargs)

    def arrays(self):
        """``(x, w, bias)`` filled and laid out as the case says (deterministic in ``seed``)."""
        rng = np.random.default_rng(self.seed)
        spec = self.spec
        if self.fill == "exact":
            x, w, b = _exact_fill(rng, spec, self.x_shape)
        else:
            x = rng.standard_normal(self.x_shape)
            w = rng.standard_normal(self.w_shape)
            b = rng.standard_normal(self.w_shape[0])
            if self.fill in ("nan", "inf"):
                plant_nonfinite(rng, x, self.fill)
            elif self.fill in FILL_SCALES:
                x, w, b = (a * FILL_SCALES[self.fill] for a in (x, w, b))
            elif self.fill == "near_max":
                x, b = near_max_conv2d(x, w, b, spec)
            elif self.fill in EXTREME_FILLS:
                x, b = x * input_scale(self.fill, self.dtype), b * bias_scale(self.fill, self.dtype)
        dt = np.dtype(self.dtype)
        x, w, b = x.astype(dt), w.astype(dt), b.astype(dt)
        return in_layout(x, self.layout), in_layout(w, self.layout), (b if self.bias else None)

    def simpler(self):
        """Candidate cases, each one step simpler (used to shrink a failure)."""
        x, w = list(self.x_shape), list(self.w_shape)
        c = 1 if self.batched else 0
        g = self.groups
        out = shrink_image(self)
        if w[0] > g:  # fewer output channels, keeping O divisible by groups
            out.append(replace(self, w_shape=tuple([w[0] - g] + w[1:])))
        if w[1] > 1:  # fewer input channels per group
            out.append(replace(self, x_shape=set_axis(x, c, x[c] - g), w_shape=tuple([w[0], w[1] - 1] + w[2:])))
        if g > 1 and w[1] == x[c] // g:
            out.append(replace(self, groups=1, x_shape=set_axis(x, c, w[1]), w_shape=tuple([w[0] // g] + w[1:])))
        for axis in (2, 3):
            if w[axis] > 1:
                out.append(replace(self, w_shape=set_axis(w, axis, w[axis] - 1)))
        out += plain_args(self, dict(stride=1, dilation=1, padding=0, padding_mode="zeros", bias=False,
                                     layout="contiguous"))
        return [case for case in out if valid(case)]


def _exact_fill(rng, spec: Conv2dSpec, x_shape):
    """Integers whose every partial sum is exactly representable (see module docstring)."""
    x = rng.integers(-EXACT_X_MAX, EXACT_X_MAX + 1, size=x_shape).astype(np.float64)
    w = rng.integers(-EXACT_W_MAX, EXACT_W_MAX + 1, size=spec.w_shape).astype(np.float64)
    b = rng.integers(-EXACT_B_MAX, EXACT_B_MAX + 1, size=spec.O).astype(np.float64)
    safe_terms = exact_term_limit(spec.dtype)
    per_channel = w.reshape(spec.O, -1)
    if per_channel.shape[1] > safe_terms:
        for row in per_channel:  # keep safe_terms random taps of each output channel
            row[rng.permutation(row.size)[safe_terms:]] = 0.0
    return x, per_channel.reshape(spec.w_shape), b


def exact_term_limit(dtype: str) -> int:
    """Most non-zero products per output that keep every partial sum exact."""
    budget = 2 ** MANTISSA_BITS[dtype] - EXACT_B_MAX
    return budget // (EXACT_X_MAX * EXACT_W_MAX)


# -- the hand-picked table -------------------------------------------------------------
def error_inputs() -> list[tuple]:
    """Calls conv2d must refuse, as data: ``(id, call kwargs, exception type, message regex)``.

    After PyTorch's ``error_inputs_conv2d``, plus what it leaves out (padding modes, empty
    channels, arrays of the wrong kind).
    """
    def arr(*shape, dtype=np.float32):
        return np.ones(shape, dtype=dtype)

    return [
        ("x-2d", dict(x=arr(3, 5), w=arr(2, 3, 1, 1)), ValueError, r"3-D .* or 4-D"),
        ("x-5d", dict(x=arr(1, 1, 3, 5, 5), w=arr(2, 3, 1, 1)), ValueError, r"3-D .* or 4-D"),
        ("w-3d", dict(x=arr(1, 3, 5, 5), w=arr(2, 3, 1)), ValueError, r"4-D weight"),
        ("x-list", dict(x=[[1.0]], w=arr(2, 3, 1, 1)), TypeError, r"x must be a numpy.ndarray, got list"),
        ("x-int", dict(x=np.ones((1, 3, 5, 5), np.int64), w=arr(2, 3, 1, 1)), TypeError, r"dtype int64.*astype"),
        ("x-complex", dict(x=arr(1, 3, 5, 5, dtype=np.complex64), w=arr(2, 3, 1, 1)), TypeError, r"complex64"),
        ("dtype-mismatch", dict(x=arr(1, 3, 5, 5), w=arr(2, 3, 1, 1, dtype=np.float64)), TypeError, r"same dtype"),
        ("channels", dict(x=arr(1, 4, 5, 5), w=arr(2, 3, 3, 3)), ValueError, r"C/groups=3"),
        ("groups-divide-C", dict(x=arr(1, 4, 5, 5), w=arr(3, 2, 3, 3), groups=3), ValueError, r"C=4 .*groups=3"),
        ("groups-divide-O", dict(x=arr(1, 4, 5, 5), w=arr(3, 2, 3, 3), groups=2), ValueError, r"O=3 .*groups=2"),
        ("groups-zero", dict(x=arr(1, 4, 5, 5), w=arr(2, 4, 3, 3), groups=0), ValueError, r"groups must be a positive"),
        ("groups-float", dict(x=arr(1, 4, 5, 5), w=arr(2, 4, 3, 3), groups=1.0), TypeError, r"groups must be an int"),
        ("stride-zero", dict(x=arr(1, 3, 5, 5), w=arr(2, 3, 3, 3), stride=0), ValueError, r"stride must be positive"),
        ("stride-negative", dict(x=arr(1, 3, 5, 5), w=arr(2, 3, 3, 3), stride=(1, -1)), ValueError, r"stride"),
        ("stride-triple", dict(x=arr(1, 3, 5, 5), w=arr(2, 3, 3, 3), stride=(1, 1, 1)), TypeError, r"pair of ints"),
        ("stride-bool", dict(x=arr(1, 3, 5, 5), w=arr(2, 3, 3, 3), stride=True), TypeError, r"stride"),
        ("dilation-zero", dict(x=arr(1, 3, 5, 5), w=arr(2, 3, 3, 3), dilation=0), ValueError, r"dilation must be positive"),
        ("padding-negative", dict(x=arr(1, 3, 5, 5), w=arr(2, 3, 3, 3), padding=-1), ValueError, r"padding must be non-negative"),
        ("padding-per-side-negative", dict(x=arr(1, 3, 5, 5), w=arr(2, 3, 3, 3), padding=((0, -1), (1, 1))),
         ValueError, r"padding must be non-negative"),
        ("padding-per-side-triple", dict(x=arr(1, 3, 5, 5), w=arr(2, 3, 3, 3), padding=((0, 1, 2), (1, 1))),
         TypeError, r"\(\(top, bottom\), \(left, right\)\)"),
        ("padding-string", dict(x=arr(1, 3, 5, 5), w=arr(2, 3, 3, 3), padding="half"), ValueError, r"same.*valid.*full"),
        ("same-strided", dict(x=arr(1, 3, 5, 5), w=arr(2, 3, 3, 3), padding="same", stride=2), ValueError, r"strided"),
        ("no-input-channels", dict(x=arr(1, 0, 5, 5), w=arr(2, 0, 3, 3)), ValueError, r"no channels \(C=0"),
        ("no-output-channels", dict(x=arr(1, 2, 5, 5), w=arr(0, 2, 3, 3)), ValueError, r"no output channels \(O=0"),
        ("kernel-too-big", dict(x=arr(1, 3, 2, 5), w=arr(2, 3, 3, 3)), ValueError, r"larger than the padded input"),
        ("dilated-too-big", dict(x=arr(1, 3, 5, 5), w=arr(2, 3, 3, 3), dilation=3), ValueError, r"dilated: 7"),
        ("mode-unknown", dict(x=arr(1, 3, 5, 5), w=arr(2, 3, 3, 3), padding=1, padding_mode="mirror"), ValueError, r"padding_mode must be one of"),
        ("reflect-too-wide", dict(x=arr(1, 3, 3, 5), w=arr(2, 3, 3, 3), padding=3, padding_mode="reflect"), ValueError, r"reflect.*< input height"),
        ("circular-too-wide", dict(x=arr(1, 3, 3, 5), w=arr(2, 3, 3, 3), padding=4, padding_mode="circular"), ValueError, r"circular.*<= input height"),
        ("bias-shape", dict(x=arr(1, 3, 5, 5), w=arr(2, 3, 3, 3), bias=arr(3)), ValueError, r"bias must have shape \(2,\)"),
        ("bias-dtype", dict(x=arr(1, 3, 5, 5), w=arr(2, 3, 3, 3), bias=arr(2, dtype=np.float64)), TypeError, r"bias dtype"),
    ]


def table_cases() -> list[Conv2dCase]:
    """Hand-picked cases after PyTorch's OpInfo samples, plus what OpInfo leaves out."""
    C = Conv2dCase
    rows = [
        C((2, 4, 7, 7), (6, 4, 3, 3)),
        C((1, 4, 5, 5), (6, 4, 3, 3), bias=True, stride=(2, 2)),
        C((1, 4, 8, 7), (3, 4, 3, 3), bias=True, stride=(3, 2)),
        C((2, 4, 7, 7), (3, 4, 3, 3), stride=2, padding=2),
        C((1, 4, 6, 9), (3, 4, 3, 2), padding=(2, 1)),
        C((1, 4, 6, 6), (3, 4, 3, 3), padding="valid"),
        C((1, 3, 9, 9), (4, 3, 2, 3), padding="same", dilation=3),  # asymmetric 'same'
        C((1, 3, 10, 10), (4, 3, 2, 2), padding="same"),  # even kernel: extra row/col after
        C((1, 3, 12, 12), (4, 3, 2, 2), dilation=(4, 4)),
        C((1, 3, 9, 11), (4, 3, 3, 3), bias=True, dilation=(2, 3), padding=1),
        C((2, 4, 6, 6), (6, 2, 3, 3), bias=True, groups=2),
        C((1, 4, 6, 6), (4, 1, 3, 3), groups=4, padding=1),  # depthwise, multiplier 1
        C((1, 4, 6, 6), (8, 1, 3, 3), bias=True, groups=4),  # depthwise, multiplier 2
        C((1, 3, 1, 1), (5, 3, 1, 1), bias=True),  # 1x1 image
        C((3, 1, 1), (2, 3, 1, 1)),  # unbatched 1x1 image
        C((3, 6, 6), (2, 3, 3, 3), bias=True, padding=1),  # unbatched
        C((0, 3, 5, 5), (2, 3, 3, 3), bias=True),  # empty batch
        C((1, 2, 4, 5), (3, 2, 2, 3), padding="full"),
        C((1, 2, 5, 6), (3, 2, 3, 3), padding=2, padding_mode="reflect"),
        C((1, 2, 5, 6), (3, 2, 3, 3), padding=(1, 3), padding_mode="replicate", stride=2),
        C((1, 2, 4, 5), (3, 2, 3, 3), padding=(4, 5), padding_mode="circular"),  # pad == size
        C((1, 2, 6, 6), (3, 2, 2, 2), padding="same", padding_mode="reflect"),
        C((2, 3, 8, 8), (4, 3, 3, 3), bias=True, padding=1, layout="channels_last"),
        C((2, 3, 8, 8), (4, 3, 3, 3), stride=2, layout="strided"),
        C((1, 130, 4, 4), (3, 130, 3, 3), bias=True, padding=1, fill="exact"),  # long reduction
        C((2, 3, 7, 7), (4, 3, 3, 3), padding=1, fill="exact", dtype="float64"),
        C((1, 3, 6, 6), (2, 3, 3, 3), bias=True, padding=1, fill="nan"),
        C((1, 3, 6, 6), (2, 3, 3, 3), padding=1, fill="inf"),
        C((1, 40, 6, 6), (2, 40, 3, 3), bias=True, padding=1, fill="huge"),
        C((1, 40, 6, 6), (2, 40, 3, 3), bias=True, padding=1, fill="tiny"),
        # near overflow: transforms (fft over a tile, winograd) must keep their intermediates in range
        C((1, 2, 24, 24), (2, 2, 15, 15), bias=True, padding=7, fill="near_max"),
        C((1, 4, 12, 12), (4, 4, 3, 3), bias=True, padding=1, fill="near_max"),
    ]
    exact = [case for case in rows if case.fill == "exact"]
    return (both_dtypes([case for case in rows if case.fill != "exact"]) + exact + half_table_cases()
            + per_side_table_cases())


def half_table_cases() -> list[Conv2dCase]:
    """float16 and bfloat16 rows: long reductions (where a half-precision accumulator drifts),
    exact integer data (bit-exact after the one final rounding), bias, groups, 'same'."""
    C = Conv2dCase
    rows = [
        C((2, 4, 7, 7), (6, 4, 3, 3), bias=True, padding=1),
        C((1, 64, 6, 6), (4, 64, 3, 3), padding=1),  # 576 terms
        C((1, 130, 4, 4), (3, 130, 3, 3), bias=True, padding=1, fill="exact"),
        C((2, 4, 6, 6), (6, 2, 3, 3), bias=True, groups=2, stride=2),
        C((1, 4, 6, 6), (8, 1, 3, 3), groups=4, padding="same"),
        C((1, 3, 10, 10), (4, 3, 2, 2), padding=((0, 1), (1, 0))),
        C((1, 4, 12, 12), (4, 4, 3, 3), bias=True, padding=1, fill="near_max"),
        C((1, 3, 6, 6), (2, 3, 3, 3), padding=1, fill="nan"),
    ]
    return [replace(case, dtype=dt) for case in rows for dt in HALF_DTYPES]


def per_side_table_cases() -> list[Conv2dCase]:
    """Explicit per-side padding ``((top, bottom), (left, right))`` and ONNX's SAME_LOWER split."""
    C = Conv2dCase
    return [
        C((1, 3, 7, 8), (4, 3, 3, 3), padding=((0, 2), (1, 0))),
        C((2, 3, 7, 8), (4, 3, 3, 2), bias=True, stride=2, padding=((2, 1), (0, 3))),
        C((1, 2, 6, 6), (3, 2, 3, 3), padding=((1, 2), (2, 0)), padding_mode="reflect"),
        C((1, 2, 6, 6), (3, 2, 3, 3), padding=((0, 1), (1, 1)), padding_mode="circular", dilation=2),
        C((1, 3, 9, 9), (4, 3, 2, 3), padding="same_lower", dilation=3),
        C((1, 3, 10, 10), (4, 3, 2, 2), padding="same_lower"),
        C((3, 6, 6), (2, 3, 2, 2), bias=True, padding="same_lower", padding_mode="replicate"),
    ]


# -- the random sampler ------------------------------------------------------------------
def random_cases(features, dtypes, count: int, seed: int, nonfinite: bool = True) -> list[Conv2dCase]:
    """``count`` seeded random cases, each requiring only features in ``features``.

    Case ``i`` forces feature ``i mod len(features)`` on (so every declared feature is hit
    every ``len(features)`` cases), turns others on at random, alternates dtypes and the
    int / pair / string argument forms, and varies the data fill and memory layout.
    """
    def draw(rng, wanted, forced, dtype, nonfinite_ok):
        return draw_case(rng, wanted, forced, dtype, nonfinite_ok, seed=int(rng.integers(2**31)))

    return draw_cases(draw, features, dtypes, count, seed, nonfinite)


def per_side_padding(rng) -> tuple:
    """A random ``((top, bottom), (left, right))`` in 0..3 with at least one axis uneven."""
    top, bottom, left, right = (int(v) for v in rng.integers(0, 4, size=4))
    if top == bottom and left == right:
        bottom = (top + 1) % 4
    return ((top, bottom), (left, right))


def draw_case(rng, wanted: set, forced, dtype: str, nonfinite: bool, seed: int) -> Conv2dCase | None:
    """One random case wanting the features ``wanted`` (``forced`` among them), or None when the draw
    is invalid or too costly for the naive reference (see :data:`MAX_MACS`, :data:`MAX_NAIVE_TRIPS`)."""
    # groups and channels
    if "depthwise" in wanted and (forced == "depthwise" or "groups" not in wanted or rng.random() < 0.5):
        groups = int(rng.integers(2, 17))
        C, O = groups, groups * int(rng.integers(1, 4))
    else:
        groups = int(rng.integers(2, 5)) if "groups" in wanted else 1
        large = rng.random() < 0.15  # a long reduction: many channels, small everything else
        cg = int(rng.integers(64, 300)) if large else int(np.exp(rng.uniform(0, np.log(24))))
        og = int(rng.integers(1, 5)) if large else int(rng.integers(1, 9))
        C, O = groups * cg, groups * og
    KH, KW = (int(k) for k in rng.integers(1, 6, size=2))
    if rng.random() < 0.15:
        KH = KW = 1
    stride = pair_arg(rng, 1, 4) if "stride" in wanted else pick(rng, [1, (1, 1)])
    dilation = pair_arg(rng, 1, 4) if "dilation" in wanted else 1
    strided = stride not in (1, (1, 1))
    # asymmetric padding: 'same' / 'same_lower' (odd d*(k-1)) or explicit ((top, bottom), (left, right))
    padding_mode = "zeros"
    if "asymmetric_padding" in wanted:
        form = pick(rng, ["same", "same_lower", "per_side"] if not strided else ["same_lower", "per_side"])
        if form == "per_side":
            padding = per_side_padding(rng)
        else:
            padding = form
            KH += (KH % 2 == 1 and as_pair(dilation)[0] % 2 == 1)  # make d*(k-1) odd on the height axis
        modes = sorted(f.split("=")[1] for f in wanted if f.startswith("padding_mode="))
        if modes and rng.random() < 0.5:
            padding_mode = pick(rng, modes)
    elif "padding" in wanted or any(f.startswith("padding_mode=") for f in wanted):
        padding = pick(rng, ["int", "pair", "same", "full"])
        if padding in ("same",) and strided:
            padding = "int"
        if padding == "int":
            padding = int(rng.integers(1, 4))
        elif padding == "pair":
            padding = (int(rng.integers(0, 4)), int(rng.integers(1, 4)))
        modes = sorted(f.split("=")[1] for f in wanted if f.startswith("padding_mode="))
        if modes:
            padding_mode = pick(rng, modes)
    else:
        padding = pick(rng, [0, (0, 0), "valid"])
    H, W = (int(v) for v in rng.integers(1, 20, size=2))
    # grow the image until the kernel fits (and reflect has room), instead of rejecting
    H = max(H, as_pair(dilation)[0] * (KH - 1) + 1, 6 if padding_mode != "zeros" else 1)
    W = max(W, as_pair(dilation)[1] * (KW - 1) + 1, 6 if padding_mode != "zeros" else 1)
    N = pick(rng, [0, 1, 2, 3], p=[0.05, 0.45, 0.3, 0.2])
    unbatched = N == 1 and rng.random() < 0.2
    # near_max and subnormal take shares of huge's and tiny's, placed after them, so other cases keep their fills
    fills = ["normal", "exact", "huge", "near_max", "tiny", "subnormal", "nan", "inf"]
    fill = pick(rng, fills, p=[0.62, 0.24, 0.015, 0.015, 0.015, 0.015, 0.04, 0.04] if nonfinite
                else [0.7, 0.24, 0.015, 0.015, 0.015, 0.015, 0, 0])
    if dtype in HALF_DTYPES and fill in FILL_SCALES:  # 1e+-15 is outside float16's range
        fill = "normal"
    if dtype == "bfloat16" and fill == "subnormal":
        # bfloat16's subnormals are float32's (checked in float32 cases); torch's bfloat16 CPU
        # kernels (oneDNN) read them as zero, a flush-to-zero this fill would report as a failure
        fill = "normal"
    layout = pick(rng, ["contiguous", "channels_last", "strided"], p=[0.7, 0.15, 0.15])
    case = Conv2dCase(
        x_shape=(C, H, W) if unbatched else (N, C, H, W),
        w_shape=(O, C // groups, KH, KW),
        bias=("bias" in wanted),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
        dtype=dtype,
        fill=fill,
        layout=layout,
        seed=seed,
    )
    try:
        spec = case.spec
    except ValueError:
        return None
    trips = spec.O * (spec.C // spec.groups) * spec.KH * spec.KW
    macs = max(1, spec.N) * spec.O * spec.OH * spec.OW * spec.n_acc
    if trips > MAX_NAIVE_TRIPS or macs > MAX_MACS:
        return None
    return case
