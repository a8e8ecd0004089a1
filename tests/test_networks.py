"""Whole-network counts and receptive fields, pinned by worked examples."""

import math

import pytest

from harness.ops.metrics import receptive_field
from harness.suites import networks


def test_two_3x3_convs_see_5x5_and_lenet5_c5_sees_the_whole_32x32_input():
    assert receptive_field([(3, 1, 1, 1), (3, 1, 1, 1)]).size == 5
    # by hand, r += (k - 1) * jump, jump *= stride: c1 5 -> s2 6 (jump 2) -> c3 6 + 4*2 = 14 -> s4 16 (jump 4)
    # -> c5 16 + 4*4 = 32: the whole input; f6 and the output layer see it all too
    table = networks.table(networks.lenet5())
    assert table.receptive_field.tolist() == [5, 6, 14, 16, 32, 32, 32]


def test_lenet5_totals_by_hand():
    # MACs: c1 6*28*28*1*25 = 117600; c3 16*10*10*6*25 = 240000; c5 120*16*25 = 48000;
    #       f6 120*84 = 10080; output 84*10 = 840                        -> 416520
    # params (weights + biases): 156 + 2416 + 48120 + 10164 + 850        -> 61706
    # layer FLOPs, 2n per output with bias: c1 4704*50 = 235200; c3 1600*300 = 480000; c5 120*800 = 96000;
    #       f6 84*240 = 20160; output 10*168 = 1680; pools (3 adds + 1 division per output):
    #       s2 1176*4 = 4704, s4 400*4 = 1600                            -> 839344
    # sigmoid, 4 per element: (4704 + 1600 + 120 + 84) * 4 = 26032       -> total 865376
    totals = networks.totals(networks.lenet5())
    assert totals["macs"] == 416520
    assert totals["params"] == 61706
    assert totals["activation_flops"] == 26032
    assert totals["flops"] == 865376
    assert totals["cpr"] == pytest.approx(416520 / 61706)


def test_a_fully_connected_layer_has_cpr_about_one_a_conv_layer_its_output_area():
    table = networks.table(networks.lenet5()).set_index("layer")
    # f6: 120*84 MACs on 120*84 + 84 parameters: each weight used once per image
    assert table.loc["f6", "cpr"] == pytest.approx(10080 / 10164)
    # c1: each of its 150 weights is used at all 28x28 output positions (156 parameters with the biases)
    assert table.loc["c1", "cpr"] == pytest.approx(117600 / 156)


def test_activation_conventions():
    assert networks.ACTIVATION_FLOPS["relu"] == 1 and networks.ACTIVATION_FLOPS["sigmoid"] == 4
    vgg = networks.table(networks.vgg16()).set_index("layer")
    assert vgg.loc["conv1_1", "activation_flops"] == 64 * 224 * 224  # one ReLU comparison per output element


@pytest.mark.parametrize("name, params, macs, field", [
    # published parameter counts: Caffe's bvlc_alexnet 60,965,224; torchvision's vgg16 138,357,544;
    # torchvision's resnet50 25,557,032 less its 53,120 batch-norm parameters (folded here) = 25,503,912
    ("alexnet", 60_965_224, 724_406_816, 195),
    ("vgg16", 138_357_544, 15_470_264_320, 212),
    ("resnet50", 25_503_912, 4_089_184_256, None),
])
def test_published_networks(name, params, macs, field):
    totals = networks.totals(networks.network(name))
    assert totals["params"] == params
    assert totals["macs"] == macs  # ResNet-50: torchvision's "4.09 GFLOPS" are these multiply-adds
    if field is not None:  # AlexNet's pool5 and VGG-16's pool5 receptive fields (Araujo et al., Distill 2019)
        assert totals["receptive_field"] == field


def test_vgg16_conv5_3_sees_196_pixels_and_batch_scales_macs_not_params():
    assert networks.table(networks.vgg16()).set_index("layer").loc["conv5_3", "receptive_field"] == 196
    one, eight = networks.totals(networks.resnet50(1)), networks.totals(networks.resnet50(8))
    assert eight["macs"] == 8 * one["macs"] and eight["params"] == one["params"]
    assert math.isclose(eight["cpr"], 8 * one["cpr"])


def test_unknown_network_lists_the_known_ones():
    with pytest.raises(ValueError, match="known networks: lenet5, alexnet"):
        networks.network("lenet6")
