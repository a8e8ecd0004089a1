"""The scale tier: verification cases at production sizes, for every op of the family.

Random cases stay small (N <= 3, planes below 20x20, at most 300 channels per group) so that
hundreds of them run in seconds; blocked, tiled and threaded kernels break at the sizes those
never reach. The tier adds, per op, cases that each push one size to what real networks use —
batch 32, 2048 channels per group, 64 groups of several channels, 960 depthwise channels,
planes of 112x112 and 224x224 (and a 256x256 one), reductions of 18,432 terms — and real layers
of the suites (ResNet-50, MobileNetV2, VGG-16, DeepLab, ResNeXt; a seeded few per suite, so
other seeds verify other layers), each cut to at most :data:`MAX_CASE_MACS` multiply-adds by
cropping its plane and choosing its batch.

Checking stays cheap: the reference is torch in float64 (a few times the backend's own cost);
half the cases use the ``exact`` integer fill, so exact backends are compared bit for bit;
where the full reference is too slow — torch is checked against the ``naive`` loops, and torch's
own float64 grouped convolution runs group by group — conv2d is checked on a stratified sample
of outputs (see :mod:`harness.verify.sampled_check` for what a sample detects, with which probability)
and the other ops, for torch, are skipped with that reason.

A backend too slow for a tier case is not waited on: cases run smallest first, the backend's
rate (work per second) is measured on each, and a case whose estimated time is above
:data:`CASE_SECONDS` is reported *skipped* for time, with the estimate.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from harness import suites
from harness.ops.cases.conv2d import Conv2dCase
from harness.ops.cases.backward import Conv2dBackwardCase
from harness.ops.cases.pool import AdaptiveAvgPool2dCase, AdaptiveMaxPool2dCase, AvgPool2dBackwardCase, AvgPool2dCase, \
    MaxPool2dBackwardCase, MaxPool2dCase
from harness.ops.cases.separable import DepthwiseSeparableCase, SpatiallySeparableCase
from harness.ops.cases.transpose import ConvTranspose2dCase
from harness.verify import scale_nd

#: Suites whose real layers join conv2d's tier (conv2d rows only).
SCALE_SUITES = ("resnet50", "mobilenetv2", "vgg16", "deeplab_dilated", "resnext")
#: Layers drawn per suite and seed (other seeds draw other layers).
LAYERS_PER_SUITE = 2
#: Multiply-adds of one tier case at most: a suite layer above it has its plane cropped.
MAX_CASE_MACS = 40_000_000
#: Batches tried for a suite layer, largest first: the largest within MAX_CASE_MACS is used.
BATCHES = (32, 16, 8, 4, 2, 1)
#: A tier case whose estimated time on the backend is above this is skipped for time.
CASE_SECONDS = 3.0
#: Per-case time limit of tier cases (a call still running then is skipped, and so are the larger ones).
CASE_TIME_LIMIT_S = 10.0


def conv2d_extremes() -> list[Conv2dCase]:
    """One case per production-size extreme (each under MAX_CASE_MACS)."""
    C = Conv2dCase
    return [
        C((32, 16, 20, 20), (16, 16, 3, 3), bias=True, padding=1, fill="exact"),  # batch 32 > any thread count
        C((1, 2048, 7, 7), (256, 2048, 1, 1), bias=True, fill="exact"),  # resnet50.res5_1x1_reduce: 2048 per group
        C((1, 2048, 7, 7), (32, 2048, 3, 3), padding=2, dilation=2, fill="exact"),  # ASPP-like: 18,432 terms
        C((1, 2048, 7, 7), (32, 2048, 3, 3), bias=True, padding=2, dilation=2),  # the same, rounding
        C((1, 512, 7, 7), (128, 512, 3, 3), padding=1, dtype="float64"),  # 4,608 terms in float64
        C((1, 3, 224, 224), (16, 3, 7, 7), bias=True, stride=2, padding=3, fill="exact"),  # stem: 112x112 out
        C((1, 4, 256, 256), (8, 4, 3, 3), padding=1),  # 65,536 outputs per plane
        C((1, 256, 56, 56), (256, 4, 3, 3), padding=1, groups=64, fill="exact"),  # ResNeXt-101 64x4d
        C((1, 2048, 7, 7), (2048, 32, 3, 3), bias=True, padding=1, groups=64),  # 64 groups x 32
        C((8, 960, 7, 7), (960, 1, 3, 3), bias=True, padding=1, groups=960, fill="exact"),  # depthwise 960
        C((4, 144, 56, 56), (144, 1, 3, 3), padding=1, groups=144),  # MobileNetV2 depthwise at 56x56
        C((2, 32, 112, 112), (32, 1, 3, 3), bias=True, padding=1, groups=32, fill="exact"),  # depthwise 112x112
    ]


def suite_layer_cases(seed: int) -> list[Conv2dCase]:
    """``LAYERS_PER_SUITE`` real layers of each suite in :data:`SCALE_SUITES`, drawn with ``seed``."""
    out = []
    for k, name in enumerate(SCALE_SUITES):
        layers = suites.load(name, batch=1)
        rng = np.random.default_rng([seed, k, 18])
        for pick in sorted(rng.choice(len(layers), size=min(LAYERS_PER_SUITE, len(layers)), replace=False)):
            fill = "exact" if (k + pick) % 2 == 0 else "normal"
            out.append(layer_case(layers[pick][1], fill=fill, seed=int(rng.integers(2**31))))
    return out


def layer_case(spec, fill: str = "normal", seed: int = 0) -> Conv2dCase:
    """A suite layer as a case within MAX_CASE_MACS: the plane cropped if needed, the largest batch that fits."""
    macs = spec.O * spec.OH * spec.OW * spec.n_acc
    H, W = spec.H, spec.W
    if macs > MAX_CASE_MACS:
        shrink = np.sqrt(MAX_CASE_MACS / macs)
        (dh, dw), top, left = spec.dilation, spec.padding[0], spec.padding[2]
        H = max(int(H * shrink), dh * (spec.KH - 1) + 1 - 2 * top, 1)
        W = max(int(W * shrink), dw * (spec.KW - 1) + 1 - 2 * left, 1)
    one = spec.with_(N=1, H=H, W=W)
    per_image = one.O * one.OH * one.OW * one.n_acc
    N = next((b for b in BATCHES if b * per_image <= MAX_CASE_MACS), 1)
    top, bottom, left, right = spec.padding
    return Conv2dCase(
        (N, spec.C, H, W), spec.w_shape, bias=True, stride=_arg(spec.stride), padding=_arg((top, left)),
        dilation=_arg(spec.dilation), groups=spec.groups, fill=fill, seed=seed)


def _arg(pair):
    """A pair as the user would write it: an int when both are equal."""
    return pair[0] if pair[0] == pair[1] else tuple(pair)


def family_cases() -> dict[str, list]:
    """Production-size cases of the ops beyond conv2d (each under MAX_CASE_MACS or a few MB)."""
    T, B = ConvTranspose2dCase, Conv2dBackwardCase
    D, S = DepthwiseSeparableCase, SpatiallySeparableCase
    return {
        "conv_transpose2d": [
            T((8, 64, 14, 14), (64, 32, 2, 2), bias=True, stride=2, fill="exact"),  # U-Net up-conv, batch 8
            T((1, 1024, 7, 7), (1024, 128, 2, 2), stride=2),  # 1,024 input channels
            T((32, 16, 14, 14), (16, 16, 3, 3), stride=2, padding=1, output_padding=1),  # batch 32
            T((1, 256, 28, 28), (256, 4, 3, 3), padding=1, groups=64, fill="exact"),  # 64 groups x 4
            T((1, 4, 112, 112), (4, 4, 3, 3), bias=True, padding=1),  # 112x112 plane
        ],
        "conv2d_backward": [
            B((32, 16, 14, 14), (16, 16, 3, 3), bias=True, padding=1),  # batch 32; grad_weight sums 6,272 terms
            B((1, 1024, 7, 7), (256, 1024, 1, 1)),  # 1,024 channels per group
            B((2, 256, 28, 28), (256, 4, 3, 3), padding=1, groups=64),  # 64 groups x 4
            B((1, 960, 7, 7), (960, 1, 3, 3), bias=True, padding=1, groups=960),  # depthwise 960
            B((1, 3, 112, 112), (16, 3, 7, 7), stride=2, padding=3),  # 112x112 plane
        ],
        "max_pool2d": [
            MaxPool2dCase((8, 64, 112, 112), 3, 2, 1, fill="ties"),  # ResNet stem pool
            MaxPool2dCase((32, 512, 14, 14), 2, 2),  # VGG-16 pool5, batch 32
        ],
        "avg_pool2d": [
            AvgPool2dCase((8, 256, 56, 56), 3, 1, 1, count_include_pad=False),
            AvgPool2dCase((32, 512, 14, 14), 2, 2),
        ],
        "adaptive_max_pool2d": [
            AdaptiveMaxPool2dCase((32, 2048, 7, 7), 1),  # global pooling head
            AdaptiveMaxPool2dCase((2, 512, 33, 33), (5, 7), fill="ties"),
        ],
        "adaptive_avg_pool2d": [
            AdaptiveAvgPool2dCase((32, 2048, 7, 7), 1),
            AdaptiveAvgPool2dCase((8, 256, 13, 13), 6),  # AlexNet's 6x6
        ],
        "max_pool2d_backward": [
            MaxPool2dBackwardCase((4, 64, 112, 112), 3, 2, 1, fill="ties"),
            MaxPool2dBackwardCase((32, 512, 14, 14), 2, 2),
        ],
        "avg_pool2d_backward": [
            AvgPool2dBackwardCase((4, 64, 112, 112), 3, 2, 1),
            AvgPool2dBackwardCase((32, 1024, 14, 14), 2, 2),
        ],
        "depthwise_separable_conv2d": [
            D((2, 144, 56, 56), (3, 3), 24, padding=1),  # MobileNetV2 block at 56x56
            D((2, 960, 7, 7), (3, 3), 320, bias=True, padding=1),  # 960 channels
            D((32, 32, 28, 28), (3, 3), 16, padding=1),  # batch 32
        ],
        "spatially_separable_conv2d": [
            S((1, 192, 17, 17), (7, 7), 64, 96, padding=3),  # Inception's 7x1 / 1x7 at 192 channels
            S((32, 8, 28, 28), (3, 3), 8, 8, bias=True, padding=1),  # batch 32
            S((1, 128, 56, 56), (3, 3), 128, 128, groups=64, padding=1),  # 64 groups
        ],
        **scale_nd.family_cases(),  # the 1-D and 3-D ops
    }


def tier_cases(op: str, seed: int = 0) -> list:
    """Every scale-tier case of ``op`` for ``seed``, smallest work first (float32 unless stated)."""
    if op == "conv2d":
        drawn = conv2d_extremes() + suite_layer_cases(seed)
    else:
        drawn = family_cases().get(op, [])
    rng = np.random.default_rng([seed, 18])
    drawn = [c if c.seed else replace(c, seed=int(rng.integers(2**31))) for c in drawn]
    return sorted(drawn, key=work)


def cases_for(declared, op: str, seed: int = 0) -> list:
    """The tier cases ``declared`` can take: its features, dtypes and limits (others are left out,
    as random cases are drawn only within them)."""
    features = declared.features.get(op, frozenset())
    return [case for case in tier_cases(op, seed)
            if case.spec.features <= features and case.dtype in declared.dtypes
            and declared.limits(op, case.spec) is None]


def sample_instead(case, full_reference: bool) -> bool:
    """Whether a conv2d tier case is checked on a sample of float64 dot products, not in full.

    The full reference is avoided where it is slow: when it is the naive loops
    (``full_reference`` False: the backend under test is torch) and for grouped convolutions,
    which torch's float64 convolution runs group by group (seconds for hundreds of groups).
    """
    return not full_reference or case.spec.groups > 1


def work(case) -> float:
    """Multiply-adds (or, for pooling, window reads) of a case: what its time grows with."""
    spec = case.spec
    if hasattr(spec, "depthwise"):  # depthwise separable: two stages
        return float(_work(spec.depthwise) + _work(spec.pointwise))
    if hasattr(spec, "column"):
        return float(_work(spec.column) + _work(spec.row))
    return float(_work(spec))


def _work(spec) -> int:
    return int(np.prod(spec.out_shape)) * max(1, int(getattr(spec, "n_acc", 1) or 1))


def sizes(case) -> dict:
    """The sizes a case reaches: batch, channels per group, groups, input plane, reduction length."""
    spec = case.spec
    for stage in ("depthwise", "column"):
        if hasattr(spec, stage):
            spec = getattr(spec, stage)  # the first stage sees the input
    x_shape = tuple(spec.x_shape) if hasattr(spec, "x_shape") else tuple(case.x_shape)
    groups = int(getattr(spec, "groups", 1))
    N, C, *plane = x_shape if hasattr(spec, "x_shape") else (1,) + x_shape  # spec shapes are batched; any rank
    return {"N": int(N), "C_per_group": int(C) // max(1, groups), "groups": groups,
            "plane": tuple(int(v) for v in plane), "n_acc": int(getattr(spec, "n_acc", 0) or 0)}


class TimePlanner:
    """Skips tier cases whose estimated time is above ``limit_s``, from the rates measured so far.

    The rate is work per second of the backend's call, the best one seen on the tier's cases so
    far (cases run smallest first; a first call slowed by warming up must not skip the rest).
    Only ungrouped cases set it: a grouped call's time per multiply-add says how the backend
    loops over groups, not its throughput. Until a rate is known nothing is skipped (the
    per-case time limit still stops a call that runs too long). Work is multiply-adds, which a
    loop-per-tap backend (naive) does not scale with; so once a case has run past the per-case
    limit, every later (larger) case is skipped too.
    """

    def __init__(self, backend: str, limit_s: float | None = None):
        self.backend = backend
        self.limit_s = CASE_SECONDS if limit_s is None else limit_s
        self.rate = None
        self.timed_out = None  # the work of the first case that ran past the per-case limit

    def skip_reason(self, case) -> str | None:
        if self.timed_out is not None and work(case) >= self.timed_out:
            return (f"skipped for time: a smaller tier case ({self.timed_out / 1e6:.3g} M) ran past the per-case "
                    f"limit of {CASE_TIME_LIMIT_S:g} s on {self.backend}")
        if self.rate is None:
            return None
        estimate = work(case) / self.rate
        if estimate <= self.limit_s:
            return None
        return (f"skipped for time: estimated {estimate:.3g} s on {self.backend} (tier limit {self.limit_s:g} s "
                f"per case; best rate {self.rate / 1e6:.3g} M/s measured on smaller tier cases)")

    def ran_out_of_time(self, case) -> None:
        """Record that ``case`` ran past the per-case limit: larger cases are skipped."""
        self.timed_out = work(case) if self.timed_out is None else min(self.timed_out, work(case))

    def observe(self, case, seconds: float) -> None:
        if getattr(case.spec, "groups", 1) > 1:
            return
        if seconds > 0 and np.isfinite(seconds):
            rate = work(case) / max(seconds, 1e-4)
            self.rate = rate if self.rate is None else max(self.rate, rate)


def largest(case_list) -> dict:
    """Largest N, C/groups, groups, plane (by area) and reduction length over ``case_list``."""
    reached = [sizes(c) for c in case_list]
    if not reached:
        return {}
    return {
        "N": max(r["N"] for r in reached),
        "C_per_group": max(r["C_per_group"] for r in reached),
        "groups": max(r["groups"] for r in reached),
        "plane": max((r["plane"] for r in reached), key=lambda p: int(np.prod(p))),  # any rank
        "n_acc": max(r["n_acc"] for r in reached),
    }

