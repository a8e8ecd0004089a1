"""Shape suites (data files) and the benchdnn / DeepBench readers."""

import pytest

from harness import suites
from harness.ops.conv_spec import Conv2dSpec
from harness.suites.shape_files import parse_benchdnn, parse_deepbench_line, read_rows

REQUIRED = {
    "smoke", "lenet5", "alexnet", "vgg16", "resnet50", "mobilenetv2", "unet_decoder", "deeplab_dilated",
    "large_kernels", "deepbench_training", "deepbench_inference_server", "deepbench_inference_device",
}


def test_every_suite_loads_with_a_source_and_unique_labels():
    assert REQUIRED <= set(suites.names())
    for name in suites.names():
        assert suites.source(name), f"{name} has no header saying where its numbers come from"
        layers = suites.layers(name, batch=1)
        assert layers, name
        labels = [(l.label, l.spec) for l in layers]
        assert len(set(labels)) == len(labels)
        assert all(l.label.startswith(name + ".") for l in layers)


def test_batch_is_a_parameter():
    assert [s.N for _, s in suites.load("resnet50", batch=8)] == [8] * 23
    both = suites.layers("smoke")  # no batch: 1 and 8
    assert sorted({l.spec.N for l in both}) == [1, 8]
    assert all(s.dtype == "float64" for _, s in suites.load("smoke", dtype="float64"))


def test_resnet50_rows():
    layers = dict(suites.load("resnet50"))
    assert len(layers) == 23
    assert layers["resnet50.conv1"] == Conv2dSpec.from_shapes((1, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3)
    assert layers["resnet50.res3_3x3"].out_shape == (1, 128, 28, 28)
    assert layers["resnet50.res5_shortcut"].out_shape == (1, 2048, 7, 7)


def test_mobilenetv2_has_depthwise_and_pointwise():
    specs = [s for _, s in suites.load("mobilenetv2")]
    assert sum(s.is_depthwise for s in specs) == 10
    assert sum(s.KH == s.KW == 1 for s in specs) >= 15
    assert specs[-1].out_shape == (1, 1280, 7, 7)


def test_unet_keeps_transposed_conv_rows():
    ops = [l.op for l in suites.layers("unet_decoder", batch=1)]
    assert ops.count("conv_transpose2d") == 4
    assert all(s.KH == 3 or s.KH == 1 for _, s in suites.load("unet_decoder"))  # load(): conv2d only


def test_deepbench_sets_have_the_published_row_counts():
    for name, rows in (("deepbench_training", 94), ("deepbench_inference_server", 107), ("deepbench_inference_device", 16)):
        assert len(read_rows(suites.suite_path(name), prefix=name)) == rows
    first = suites.layers("deepbench_training")[0]
    assert first.spec.x_shape == (4, 1, 161, 700) and first.spec.w_shape == (32, 1, 5, 20)


def test_benchdnn_descriptor_with_every_field():
    name, spec, mb = parse_benchdnn('g1mb50ic3ih224iw224oc64oh112ow112kh7kw7sh2sw2ph3pw3n"resnet_50:conv1"')
    assert (name, mb) == ("resnet_50:conv1", 50)
    assert spec == Conv2dSpec.from_shapes((50, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3)


def test_benchdnn_defaults_and_deductions():
    # mb defaults to 2, width takes height's values, output deduced with padding 0
    _, spec, mb = parse_benchdnn("ic16ih10oc8kh3")
    assert mb == 2 and spec.x_shape == (2, 16, 10, 10) and spec.out_shape == (2, 8, 8, 8)
    # padding deduced from the output size; '_' separators ignored
    _, spec, _ = parse_benchdnn("mb1_ic64oc64_ih56oh56kh3")
    assert spec.padding == (1, 1, 1, 1)
    # benchdnn's dilation 1 = one gap = torch dilation 2
    _, spec, _ = parse_benchdnn("mb1ic32ih33oc32oh33kh3dh1")
    assert spec.dilation == (2, 2) and spec.padding == (2, 2, 2, 2)
    # deduced padding that cannot be symmetric: benchdnn's right padding makes oh exact
    _, spec, _ = parse_benchdnn("mb1ic3ih224oc64oh112kh7sh2")
    assert spec.padding == (2, 3, 2, 3) and spec.OH == 112
    # groups (depthwise)
    _, spec, _ = parse_benchdnn("g32mb1ic32ih112oc32oh112kh3ph1")
    assert spec.is_depthwise


@pytest.mark.parametrize("bad", ["ic3ih224oc64", "ic3ih224oc64kh3xx7", "ic3id8ih8oc4kd3kh3", "g3ic4ih8oc6kh3"])
def test_benchdnn_rejects_what_it_cannot_mean(bad):
    with pytest.raises(ValueError):
        parse_benchdnn(bad)


def test_deepbench_tuple_and_files(tmp_path):
    _, spec, n = parse_deepbench_line("std::make_tuple(151, 40, 1, 1, 32, 20, 5, 8, 8, 8, 2),")
    assert n == 1 and spec.stride == (2, 8) and spec.padding == (8, 8, 8, 8) and spec.out_shape == (1, 32, 26, 19)

    deepbench = tmp_path / "mine.txt"
    deepbench.write_text("// w, h, c, n, k, fw, fh, pw, ph, ws, hs\n(56, 56, 64, 4, 64, 3, 3, 1, 1, 1, 1)\n\n7,7,512,2,512,3,3,1,1,1,1\n")
    rows = read_rows(deepbench)
    assert [r.batch for r in rows] == [4, 2] and rows[0].label.startswith("mine.001_")

    benchdnn = tmp_path / "shapes_resnet"
    benchdnn.write_text('# comment\nmb2ic64ih56oc64oh56kh3ph1n"res2:3x3"\n\nmb2ic64ih56oc256oh56kh1ph0n"res2:1x1" # tail\n')
    rows = read_rows(benchdnn)
    assert [r.label for r in rows] == ["shapes_resnet.res2:3x3", "shapes_resnet.res2:1x1"]
    assert rows[1].spec.w_shape == (256, 64, 1, 1)

    broken = tmp_path / "broken.txt"
    broken.write_text("(1, 2, 3)\n")
    with pytest.raises(ValueError, match="broken.txt:1"):
        read_rows(broken)


def test_unknown_suite_lists_the_known_ones():
    with pytest.raises(ValueError, match="resnet50"):
        suites.load("resnet51")
