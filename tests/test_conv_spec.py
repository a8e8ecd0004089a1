"""Argument checking and normalisation: error inputs as data, then the resolved values."""

import re

import numpy as np
import pytest

import harness
from harness.ops.conv_spec import Conv2dSpec

f32 = np.float32


def arr(*shape, dtype=f32):
    return np.ones(shape, dtype=dtype)


# (id, call kwargs, exception, message regex) -- after PyTorch's error_inputs_conv2d
ERROR_CASES = [
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
    ("backend-unknown", dict(x=arr(1, 3, 5, 5), w=arr(2, 3, 3, 3), backend="cudnn"), ValueError, r"unknown backend 'cudnn'; known backends: auto, .*naive"),
    ("backend-type", dict(x=arr(1, 3, 5, 5), w=arr(2, 3, 3, 3), backend=3), TypeError, r"backend must be a name"),
]


@pytest.mark.parametrize("kwargs, exc, pattern", [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
@pytest.mark.parametrize("backend", [b.name for b in harness.backends()] + ["auto"])
def test_invalid_calls_raise_clear_errors(kwargs, exc, pattern, backend):
    # arguments are checked before any backend is consulted: unavailable backends answer alike
    kwargs = {"backend": backend, **kwargs}
    with pytest.raises(exc, match=pattern):
        harness.conv2d(**kwargs)


@pytest.mark.parametrize(
    "kwargs, pads",
    [
        (dict(padding=2), (2, 2, 2, 2)),
        (dict(padding=(2, 1)), (2, 2, 1, 1)),
        (dict(padding="valid"), (0, 0, 0, 0)),
        (dict(padding="same"), (1, 2, 0, 1)),  # kernel 4x2: totals 3 and 1, smaller half first
        (dict(padding="same", dilation=3), (4, 5, 1, 2)),  # dilated totals 9 and 3
        (dict(padding="full"), (3, 3, 1, 1)),
        (dict(padding="full", dilation=(2, 1)), (6, 6, 1, 1)),
    ],
)
def test_padding_resolves_as_torch(kwargs, pads):
    spec = Conv2dSpec.from_shapes((1, 2, 9, 9), (3, 2, 4, 2), **kwargs)
    assert spec.padding == pads


def test_same_padding_keeps_the_size_and_full_grows_it():
    same = Conv2dSpec.from_shapes((1, 2, 9, 10), (3, 2, 4, 3), padding="same", dilation=2)
    full = Conv2dSpec.from_shapes((1, 2, 9, 10), (3, 2, 4, 3), padding="full")
    assert same.out_shape == (1, 3, 9, 10)
    assert full.out_shape == (1, 3, 9 + 4 - 1, 10 + 3 - 1)


def test_features_of_a_call():
    plain = Conv2dSpec.from_shapes((1, 4, 8, 8), (4, 4, 3, 3))
    assert plain.features == frozenset()
    depthwise = Conv2dSpec.from_shapes((1, 4, 8, 8), (8, 1, 3, 3), groups=4, padding="same", bias=True)
    assert depthwise.features == {"depthwise", "padding", "bias"}
    grouped = Conv2dSpec.from_shapes((1, 4, 8, 8), (4, 2, 2, 3), groups=2, padding="same", stride=1,
                                     padding_mode="reflect", dilation=(1, 2))
    assert grouped.features == {"groups", "padding", "asymmetric_padding", "padding_mode=reflect", "dilation"}
    # a padding mode without padding changes nothing and needs nothing
    assert Conv2dSpec.from_shapes((1, 4, 8, 8), (4, 4, 3, 3), padding_mode="circular").features == frozenset()


def test_message_names_the_shapes():
    with pytest.raises(ValueError, match=re.escape("(3, 4, 3, 3)")):
        harness.conv2d(arr(1, 3, 5, 5), arr(3, 4, 3, 3), backend="naive")
