"""Argument checking and normalisation: error inputs as data, then the resolved values."""

import re

import numpy as np
import pytest

import harness
from harness.ops.table import op_info
from harness.ops.conv_spec import Conv2dSpec

f32 = np.float32


def arr(*shape, dtype=f32):
    return np.ones(shape, dtype=dtype)


# (id, call kwargs, exception, message regex): what only the public function checks; the spec's own
# error inputs live in the op record (harness.ops.cases.conv2d.error_inputs)
ERROR_CASES = op_info("conv2d").error_inputs() + [
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
