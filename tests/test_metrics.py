"""harness.ops.metrics pinned to worked examples, and the useful-FLOP count to brute force."""

import itertools

import numpy as np
import pytest

import harness
from harness.ops import metrics
from harness.ops.conv_spec import Conv2dSpec


def test_5x5_input_3x3_kernel_is_153_flops_without_bias():
    spec = Conv2dSpec(N=1, C=1, H=5, W=5, O=1, KH=3, KW=3)
    assert spec.out_shape == (1, 1, 3, 3)
    assert metrics.dense_flops(spec) == 9 * (2 * 9 - 1) == 153
    assert metrics.dense_flops(spec.with_(bias=True)) == 9 * 2 * 9 == 162
    assert metrics.macs(spec) == 81


def test_3x3_input_2x2_kernel_worked_example():
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    k = np.arange(4, dtype=np.float64).reshape(1, 1, 2, 2)
    for backend in ("naive", "torch"):
        y = harness.conv2d(x, k, backend=backend)
        np.testing.assert_array_equal(y[0, 0], [[19, 25], [37, 43]])
    spec = Conv2dSpec(N=1, C=1, H=3, W=3, O=1, KH=2, KW=2, dtype="float64")
    assert metrics.output_shape(spec) == (1, 1, 2, 2)
    assert metrics.dense_flops(spec) == 4 * (2 * 4 - 1)


def test_resnet50_stem():
    spec = Conv2dSpec.from_shapes((1, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3)
    assert spec.out_shape == (1, 64, 112, 112)
    assert metrics.params(spec) == 9408
    assert metrics.macs(spec) == 118_013_952  # 118M MACs per image
    assert metrics.cpr(spec) == 112 * 112  # CPR = OH*OW per image without bias
    assert metrics.cpr(spec.with_(N=8)) == 8 * 112 * 112
    assert metrics.torch_flops(spec) == 2 * metrics.macs(spec)
    assert metrics.dense_flops(spec.with_(bias=True)) == metrics.torch_flops(spec)
    # 4 bytes each: x 3*224*224, w 9408, y 64*112*112
    assert metrics.min_bytes(spec) == 4 * (150528 + 9408 + 802816)
    assert metrics.intensity(spec) == pytest.approx(metrics.dense_flops(spec) / metrics.min_bytes(spec))


def _useful_brute_force(spec):
    """benchdnn's definition, loop by loop."""
    top, _, left, _ = spec.padding
    taps, nonempty = 0, 0
    for i, j in itertools.product(range(spec.OH), range(spec.OW)):
        v = sum(
            1
            for p, q in itertools.product(range(spec.KH), range(spec.KW))
            if 0 <= i * spec.stride[0] + p * spec.dilation[0] - top < spec.H
            and 0 <= j * spec.stride[1] + q * spec.dilation[1] - left < spec.W
        )
        taps += v
        nonempty += v > 0
    cg = spec.C // spec.groups
    return spec.N * spec.O * (2 * cg * taps - nonempty + int(spec.bias) * nonempty)


@pytest.mark.parametrize(
    "spec",
    [
        Conv2dSpec(2, 4, 7, 6, 6, 3, 3, padding=(1, 1, 1, 1)),
        Conv2dSpec(1, 4, 9, 8, 4, 5, 3, stride=(2, 3), padding=(2, 1, 0, 3), dilation=(1, 2), groups=2, bias=True),
        Conv2dSpec(1, 2, 3, 3, 2, 3, 3, padding=(4, 4, 4, 4), bias=True),  # outputs entirely in padding
        Conv2dSpec(1, 3, 5, 5, 3, 3, 3, padding=(1, 1, 1, 1), padding_mode="reflect"),
    ],
)
def test_useful_flops_match_brute_force(spec):
    expected = metrics.dense_flops(spec) if spec.padding_mode != "zeros" else _useful_brute_force(spec)
    assert metrics.useful_flops(spec) == expected
    assert metrics.useful_flops(spec) <= metrics.dense_flops(spec)


def test_useful_equals_dense_without_padding():
    spec = Conv2dSpec(3, 8, 12, 10, 4, 3, 5, stride=(2, 1))
    assert metrics.useful_flops(spec) == metrics.dense_flops(spec)


def test_receptive_field_of_stacks():
    assert metrics.receptive_field([(3, 1, 1, 1)] * 2) == metrics.ReceptiveField(5, 1, 0.0)
    # VGG stage: 3x3, 3x3, 2x2/2 pool, 3x3 -> 10 (1 + 2 + 2 + 1*1 + 2*2)
    rf = metrics.receptive_field([(3, 1, 1, 1), (3, 1, 1, 1), (2, 2, 1, 0), (3, 1, 1, 1)])
    assert (rf.size, rf.jump) == (10, 2)
    # a dilated 3x3 (rate 2) sees 5 pixels; a rate-4 one after it 5 + 8
    assert metrics.receptive_field([(3, 1, 2, 2), (3, 1, 4, 4)]).size == 13
    # ResNet-50 stem conv + 3x3/2 max-pool: 7 + 2*2 = 11, jump 4, first centre at 0
    h, w = metrics.receptive_field_of_specs([
        Conv2dSpec.from_shapes((1, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3),
        Conv2dSpec.from_shapes((1, 64, 112, 112), (64, 64, 3, 3), stride=2, padding=1),
    ])
    assert h == w == metrics.ReceptiveField(11, 4, 0.0)


def test_roofline_and_percent():
    assert metrics.roofline_gflops(1.0, peak_gflops=100.0, bandwidth_gbs=20.0) == 20.0
    assert metrics.roofline_gflops(50.0, peak_gflops=100.0, bandwidth_gbs=20.0) == 100.0
    assert metrics.pct_of(25.0, 100.0) == 25.0


def test_torch_flop_counter_convention():
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    spec = Conv2dSpec.from_shapes((2, 6, 9, 9), (4, 3, 3, 3), stride=2, padding=1, groups=2, bias=True)
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.conv2d(torch.zeros(spec.x_shape), torch.zeros(spec.w_shape), torch.zeros(4),
                                   stride=2, padding=1, groups=2)
    assert counter.get_total_flops() == metrics.torch_flops(spec) == metrics.dense_flops(spec)
