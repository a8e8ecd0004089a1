"""hypothesis strategies that draw verifier cases, for property tests with shrinking and a database.

>>> from hypothesis import given
>>> from harness.strategies import conv2d_cases
>>> from harness.testing import assert_case
>>> @given(conv2d_cases(features={"bias", "stride", "padding"}, max_elements=4000))   # doctest: +SKIP
... def test_my_conv2d(case):
...     assert_case(my_conv2d, case, features={"bias", "stride", "padding"})

Each strategy draws a normal case of ``harness/ops/cases/conv2d*.py`` (``Conv2dCase``, ``MaxPool2dCase``,
...), so a drawn case runs with :func:`harness.check_case` / :func:`harness.testing.assert_case`
and prints as a reproducer. Its arguments are drawn field by field, so hypothesis shrinks a
failure towards one channel, a small image, a 1x1 kernel and default arguments. A case uses only
the ``features`` given (default: every feature of the op) and has at most ``max_elements``
elements in its input arrays.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from harness.ops.cases.tools import valid
from harness.ops.cases.conv2d import Conv2dCase
from harness.ops.cases.backward import Conv2dBackwardCase
from harness.ops.cases.pool import (AdaptiveAvgPool2dCase, AdaptiveMaxPool2dCase, AvgPool2dBackwardCase, AvgPool2dCase,
                         MaxPool2dBackwardCase, MaxPool2dCase)
from harness.ops.cases.separable import DepthwiseSeparableCase, SpatiallySeparableCase
from harness.ops.cases.transpose import ConvTranspose2dCase
from harness.backend.registry import OP_FEATURES

DEFAULT_MAX_ELEMENTS = 20_000
DTYPES = ("float32", "float64")
LAYOUTS = ("contiguous", "channels_last", "strided")


def _features(op: str, features) -> frozenset:
    known = OP_FEATURES[op]
    if features is None:
        return known
    if isinstance(features, str):
        raise TypeError("features must be an iterable of feature names, not one string")
    unknown = set(features) - known
    if unknown:
        raise ValueError(f"unknown {op} feature(s) {sorted(unknown)}; known: {', '.join(sorted(known))}")
    return frozenset(features)


def _pair_or_int(draw, on: bool, hi: int, default=1):
    """``default`` when the feature is off, else an int or a pair in [1, hi]."""
    if not on:
        return default
    if draw(st.booleans()):
        return (draw(st.integers(1, hi)), draw(st.integers(1, hi)))
    return draw(st.integers(1, hi))


def _batch(draw, C, H, W, batch_sizes=(1, 2, 3, 0)):
    N = draw(st.sampled_from(batch_sizes))
    return (C, H, W) if N == 1 and draw(st.booleans()) else (N, C, H, W)


def _common(draw, dtypes, fills):
    return dict(dtype=draw(st.sampled_from(sorted(dtypes))), fill=draw(st.sampled_from(fills)),
                layout=draw(st.sampled_from(LAYOUTS)), seed=draw(st.integers(0, 2**31 - 1)))


def _keep(case, op, features, max_elements) -> bool:
    """A valid case that needs only ``features`` and is small enough."""
    return valid(case) and case.spec.features <= features and _elements(case) <= max_elements


def _elements(case) -> int:
    """Elements of the case's input arrays (from their shapes, without making them)."""
    spec = case.spec
    shapes = [getattr(case, "x_shape")] + [s for s in (getattr(case, "w_shape", None),) if s is not None]
    if hasattr(spec, "out_shape") and type(case).__name__.endswith("BackwardCase"):
        shapes.append(spec.out_shape)
    return sum(int(np.prod(s)) for s in shapes)


def _finish(strategy, op, features, max_elements):
    return strategy.filter(lambda case: _keep(case, op, features, max_elements))


def _fills(nonfinite: bool, base=("normal", "exact")):
    return base + (("nan", "inf") if nonfinite else ())


# -- convolutions --------------------------------------------------------------------------------------
def _padding(draw, features, strided):
    options = [0, "valid"]
    if "padding" in features:
        options += ["int", "pair", "full"] + ([] if strided else ["same"])
    elif "asymmetric_padding" in features and not strided:
        options.append("same")
    kind = draw(st.sampled_from(options))
    if kind == "int":
        return draw(st.integers(1, 3))
    if kind == "pair":
        return (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    return kind


@st.composite
def _conv2d(draw, features, dtypes, nonfinite, cls=Conv2dCase):
    shapes = draw(st.sampled_from(["dense"] + [f for f in ("groups", "depthwise") if f in features]))
    groups = 1 if shapes == "dense" else draw(st.integers(2, 4))
    per_group = 1 if shapes == "depthwise" else draw(st.integers(1, 8))
    C, O = groups * per_group, groups * draw(st.integers(1, 3 if shapes == "depthwise" else 8))
    KH, KW = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = _pair_or_int(draw, "stride" in features, 3)
    dilation = _pair_or_int(draw, "dilation" in features, 3)
    padding = _padding(draw, features, stride not in (1, (1, 1)))
    modes = ["zeros"] + sorted(f.split("=")[1] for f in features if f.startswith("padding_mode="))
    padding_mode = draw(st.sampled_from(modes)) if padding not in (0, "valid") else "zeros"
    H, W = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    return cls(x_shape=_batch(draw, C, H, W), w_shape=(O, per_group, KH, KW),
               bias="bias" in features and draw(st.booleans()), stride=stride, padding=padding, dilation=dilation,
               groups=groups, padding_mode=padding_mode,
               **_common(draw, dtypes, _fills(nonfinite, ("normal", "exact", "huge", "tiny"))))


def conv2d_cases(features=None, dtypes=DTYPES, *, max_elements: int = DEFAULT_MAX_ELEMENTS, nonfinite: bool = True):
    """A strategy of :class:`harness.ops.cases.conv2d.Conv2dCase` using only ``features`` (default: all).

    Parameters
    ----------
    features : iterable of str, optional
        conv2d features the cases may need (:data:`harness.CONV2D_FEATURES`).
    dtypes : iterable of str
        Array dtypes drawn.
    max_elements : int
        Most elements of the input arrays together (keeps each example fast).
    nonfinite : bool
        Also draw NaN/Inf fills.
    """
    features = _features("conv2d", features)
    return _finish(_conv2d(features, dtypes, nonfinite), "conv2d", features, max_elements)


def conv2d_backward_cases(features=None, dtypes=DTYPES, *, max_elements: int = DEFAULT_MAX_ELEMENTS,
                          nonfinite: bool = True):
    """A strategy of :class:`harness.ops.cases.backward.Conv2dBackwardCase` (conv2d's arguments and a grad_out)."""
    features = _features("conv2d_backward", features)
    return _finish(_conv2d(features, dtypes, nonfinite, cls=Conv2dBackwardCase), "conv2d_backward", features,
                   max_elements)


@st.composite
def _transpose(draw, features, dtypes, nonfinite):
    shapes = draw(st.sampled_from(["dense"] + [f for f in ("groups", "depthwise") if f in features]))
    groups = 1 if shapes == "dense" else draw(st.integers(2, 4))
    C = groups * (1 if shapes == "depthwise" else draw(st.integers(1, 6)))
    stride = _pair_or_int(draw, "stride" in features, 3)
    dilation = _pair_or_int(draw, "dilation" in features, 2)
    output_padding = 0
    if "output_padding" in features:  # below stride or dilation on each axis
        room = [max(s, d) - 1 for s, d in zip(_as_pair(stride), _as_pair(dilation))]
        output_padding = tuple(draw(st.integers(0, r)) for r in room)
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2))) if "padding" in features else 0
    return ConvTranspose2dCase(
        x_shape=_batch(draw, C, draw(st.integers(1, 8)), draw(st.integers(1, 8))),
        w_shape=(C, draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))),
        bias="bias" in features and draw(st.booleans()), stride=stride, padding=padding,
        output_padding=output_padding, groups=groups, dilation=dilation, **_common(draw, dtypes, _fills(nonfinite)))


def conv_transpose2d_cases(features=None, dtypes=DTYPES, *, max_elements: int = DEFAULT_MAX_ELEMENTS,
                           nonfinite: bool = True):
    """A strategy of :class:`harness.ops.cases.transpose.ConvTranspose2dCase`."""
    features = _features("conv_transpose2d", features)
    return _finish(_transpose(features, dtypes, nonfinite), "conv_transpose2d", features, max_elements)


def _as_pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# -- pooling -------------------------------------------------------------------------------------------
@st.composite
def _pool(draw, cls, features, dtypes, nonfinite):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    kernel_size = kernel[0] if kernel[0] == kernel[1] and draw(st.booleans()) else kernel
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2))) \
        if "padding" in features else 0
    fills = ("normal", "ties") if cls.KIND == "max" else ("normal",)
    return cls(
        _batch(draw, draw(st.integers(1, 4)), draw(st.integers(1, 12)), draw(st.integers(1, 12))), kernel_size,
        stride=_pair_or_int(draw, "stride" in features, 3, default=None), padding=padding,
        dilation=_pair_or_int(draw, "dilation" in features and cls.KIND == "max", 2),
        ceil_mode="ceil_mode" in features and draw(st.booleans()),
        count_include_pad=not ("count_include_pad=False" in features and draw(st.booleans())),
        divisor_override=draw(st.sampled_from([None, 1, 2, 5, -3])) if "divisor_override" in features else None,
        return_indices="return_indices" in features and not cls.BACKWARD and draw(st.booleans()),
        **_common(draw, dtypes, _fills(nonfinite, fills)))


@st.composite
def _adaptive(draw, cls, features, dtypes, nonfinite):
    H, W = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    if "uneven" in features:
        out = (draw(st.integers(1, H + 3)), draw(st.integers(1, W + 3)))
    else:
        out = tuple(draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0])) for n in (H, W))
    fills = ("normal", "ties") if cls.KIND == "max" else ("normal",)
    return cls(_batch(draw, draw(st.integers(1, 4)), H, W, (1, 2, 3)), out[0] if out[0] == out[1] else out,
               return_indices="return_indices" in features and draw(st.booleans()),
               **_common(draw, dtypes, _fills(nonfinite, fills)))


def _pool_strategy(op, draw_fn, cls):
    def strategy(features=None, dtypes=DTYPES, *, max_elements: int = DEFAULT_MAX_ELEMENTS, nonfinite: bool = True):
        chosen = _features(op, features)
        return _finish(draw_fn(cls, chosen, dtypes, nonfinite), op, chosen, max_elements)

    strategy.__name__ = f"{op}_cases"
    strategy.__doc__ = f"A strategy of :class:`harness.ops.cases.pool.{cls.__name__}` using only ``features``."
    return strategy


max_pool2d_cases = _pool_strategy("max_pool2d", _pool, MaxPool2dCase)
avg_pool2d_cases = _pool_strategy("avg_pool2d", _pool, AvgPool2dCase)
max_pool2d_backward_cases = _pool_strategy("max_pool2d_backward", _pool, MaxPool2dBackwardCase)
avg_pool2d_backward_cases = _pool_strategy("avg_pool2d_backward", _pool, AvgPool2dBackwardCase)
adaptive_max_pool2d_cases = _pool_strategy("adaptive_max_pool2d", _adaptive, AdaptiveMaxPool2dCase)
adaptive_avg_pool2d_cases = _pool_strategy("adaptive_avg_pool2d", _adaptive, AdaptiveAvgPool2dCase)


# -- separable -----------------------------------------------------------------------------------------
def _stage_args(draw, features, kernel):
    stride = _pair_or_int(draw, "stride" in features, 2)
    dilation = _pair_or_int(draw, "dilation" in features, 2)
    padding = _padding(draw, features, stride not in (1, (1, 1)))
    modes = ["zeros"] + sorted(f.split("=")[1] for f in features if f.startswith("padding_mode="))
    mode = draw(st.sampled_from(modes)) if padding not in (0, "valid") else "zeros"
    return dict(stride=stride, padding=padding, dilation=dilation, padding_mode=mode)


@st.composite
def _depthwise(draw, features, dtypes, nonfinite):
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    C = draw(st.integers(1, 6))
    return DepthwiseSeparableCase(
        _batch(draw, C, draw(st.integers(1, 12)), draw(st.integers(1, 12))), kernel, draw(st.integers(1, 6)),
        multiplier=draw(st.integers(1, 2)), bias="bias" in features and draw(st.booleans()),
        **_stage_args(draw, features, kernel), **_common(draw, dtypes, _fills(nonfinite)[:3]))


@st.composite
def _spatial(draw, features, dtypes, nonfinite):
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    groups = draw(st.integers(2, 3)) if {"groups", "depthwise"} & features and draw(st.booleans()) else 1
    return SpatiallySeparableCase(
        _batch(draw, groups * draw(st.integers(1, 3)), draw(st.integers(1, 12)), draw(st.integers(1, 12))), kernel,
        groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3)), groups=groups,
        bias="bias" in features and draw(st.booleans()), **_stage_args(draw, features, kernel),
        **_common(draw, dtypes, _fills(nonfinite)[:3]))


def depthwise_separable_conv2d_cases(features=None, dtypes=DTYPES, *, max_elements: int = DEFAULT_MAX_ELEMENTS,
                                     nonfinite: bool = True):
    """A strategy of :class:`harness.ops.cases.separable.DepthwiseSeparableCase`."""
    chosen = _features("depthwise_separable_conv2d", features)
    return _finish(_depthwise(chosen, dtypes, nonfinite), "depthwise_separable_conv2d", chosen, max_elements)


def spatially_separable_conv2d_cases(features=None, dtypes=DTYPES, *, max_elements: int = DEFAULT_MAX_ELEMENTS,
                                     nonfinite: bool = True):
    """A strategy of :class:`harness.ops.cases.separable.SpatiallySeparableCase`."""
    chosen = _features("spatially_separable_conv2d", features)
    return _finish(_spatial(chosen, dtypes, nonfinite), "spatially_separable_conv2d", chosen, max_elements)


#: op -> its strategy function
STRATEGIES = {
    "conv2d": conv2d_cases,
    "conv_transpose2d": conv_transpose2d_cases,
    "conv2d_backward": conv2d_backward_cases,
    "max_pool2d": max_pool2d_cases,
    "avg_pool2d": avg_pool2d_cases,
    "adaptive_max_pool2d": adaptive_max_pool2d_cases,
    "adaptive_avg_pool2d": adaptive_avg_pool2d_cases,
    "max_pool2d_backward": max_pool2d_backward_cases,
    "avg_pool2d_backward": avg_pool2d_backward_cases,
    "depthwise_separable_conv2d": depthwise_separable_conv2d_cases,
    "spatially_separable_conv2d": spatially_separable_conv2d_cases,
}


def op_cases(op: str, features=None, dtypes=DTYPES, *, max_elements: int = DEFAULT_MAX_ELEMENTS,
             nonfinite: bool = True):
    """The strategy for ``op`` (any op of :data:`harness.ops.table.OPS`), as the functions above."""
    if op not in STRATEGIES:
        raise ValueError(f"unknown op {op!r}; known ops: {', '.join(sorted(STRATEGIES))}")
    return STRATEGIES[op](features, dtypes, max_elements=max_elements, nonfinite=nonfinite)


def backend_cases(backend, op: str = "conv2d", *, max_elements: int = DEFAULT_MAX_ELEMENTS):
    """The strategy for ``op`` within a registered backend's declared features, dtypes and NaN/Inf claim.

    Its ``limits`` (kernel sizes, say) are applied as a filter.
    """
    from harness.backend.registry import get_backend

    declared = get_backend(backend)
    strategy = op_cases(op, declared.features.get(op, ()), declared.dtypes, max_elements=max_elements,
                        nonfinite=declared.nonfinite)
    return strategy.filter(lambda case: declared.limits(op, case.spec) is None)


__all__ = sorted(f.__name__ for f in STRATEGIES.values()) + ["backend_cases", "op_cases"]
