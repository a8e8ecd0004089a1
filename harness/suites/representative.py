"""The main job's default benchmark: a few layers of each kind, taken from the real networks.

``convbench run`` times every backend and ``auto`` on each layer in interleaved rounds, several
seconds a layer on a 2-core machine; the three whole suites it used to time (63 layers) took
about 20 minutes. These 16 layers keep every group the project reports on — stride-1 3x3
(shallow, deep, wide), strided 3x3, the 7x7 stride-2 stem, 1x1 (expand, reduce, 7x7 maps),
depthwise 3x3 / 5x5 and strided, grouped 3x3 (RegNet, ResNeXt) and large kernels (dense 7x7 and
ConvNeXt's depthwise 7x7) — each under its own suite's name, so results read as the full
suites' do. ``convbench run --suite resnet50,mobilenetv2,large_kernels`` (or any suites) times
whole suites instead.
"""

from __future__ import annotations

from harness.suites import Layer, layers

#: ``suite.layer`` labels, by group (batch is the run's ``--batch``).
LAYERS = (
    # stride-1 3x3: shallow and wide maps, deep and small maps, VGG's wide middle layer
    "resnet50.res2_3x3", "resnet50.res4_3x3", "vgg16.conv3_2",
    # strided 3x3 and the stem
    "resnet50.res3_3x3_s2", "resnet50.conv1",
    # 1x1: expand, reduce on 7x7 maps, inverted-residual expand
    "resnet50.res3_1x1_expand", "resnet50.res5_1x1_reduce", "mobilenetv2.b2_expand",
    # depthwise: 3x3, 3x3 stride 2, 5x5
    "mobilenetv2.b2_dw", "mobilenetv2.b3_dw_s2", "efficientnet_b0.s3_dw5",
    # grouped 3x3: RegNetX (group width 16), ResNeXt-50 (32 groups of 8)
    "regnetx_400mf.s3_3x3", "resnext.x50_conv3_3x3",
    # large kernels: dense 7x7, ConvNeXt's depthwise 7x7
    "large_kernels.dense_7x7", "large_kernels.convnext_s1_dw7",
    # MobileNetV2's 3x3 stride-2 stem on the 3-channel image (ResNet's 7x7 stem is above)
    "mobilenetv2.stem",
)

#: What ``--suite`` names this selection by.
NAME = "representative"


def representative_layers(batches=(1,), dtypes=("float32",)) -> list[tuple[str, Layer]]:
    """``(suite, Layer)`` for :data:`LAYERS` at each batch and dtype, in that order.

    Raises
    ------
    ValueError
        When a label names no layer of its suite (the suite files changed).
    """
    out = []
    for dtype in dtypes:
        for batch in batches:
            by_label = {}
            for label in LAYERS:
                suite = label.split(".")[0]
                if suite not in by_label:
                    by_label[suite] = {layer.label: layer for layer in layers(suite, batch, dtype)}
                if label not in by_label[suite]:
                    raise ValueError(f"representative layer {label!r}: no such layer in suite {suite!r}")
                out.append((suite, by_label[suite][label]))
    return out
