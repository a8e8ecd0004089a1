"""Whole networks, layer by layer in order: per-network totals and receptive fields.

The suite files list each distinct conv shape once; a network's totals need every layer, in
order, with its repeats, its pooling, its fully connected layers and its activations. These
are the forward passes of LeNet-5, AlexNet, VGG-16 and ResNet-50 as the suite files' sources
describe them (same input sizes, same papers).

Counting conventions (``convbench shapes --network NAME`` prints them):

* conv and fully connected layers: the FLOP definition of :mod:`harness.ops.metrics`
  (``2n - 1`` per output for a reduction of ``n``, ``+ 1`` with bias). A fully connected
  layer is a 1x1 convolution on a 1x1 image, so its counts come from the same formulas; its
  CPR (MACs per parameter) is ``N / (1 + 1/inputs)``, about 1 at batch 1: every weight is used
  once, against a conv weight's ``OH * OW`` uses.
* activations, per element: ReLU 1 (a comparison), sigmoid 4 (negate, exp, add, divide; exp
  counted as one FLOP), tanh 5 (two exps, add, subtract, divide). No parameters.
* pooling: :func:`harness.ops.metrics.pool_flops` (max: ``k*k - 1`` comparisons per output;
  average: ``k*k - 1`` adds and one division).
* residual additions (ResNet): one add per element. Batch normalisation is taken as folded
  into the preceding convolution (inference): no FLOPs, no parameters. LRN (AlexNet) is left out.
* parameters: weights plus biases of conv and fully connected layers.
* receptive field: along the main path, from the network's input, through conv and pool
  layers (:func:`harness.ops.metrics.receptive_field_through`); a side branch (ResNet's
  projection shortcut) does not widen it. A fully connected layer sees the whole input.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.ops import metrics
from harness.ops.conv_spec import Conv2dSpec
from harness.ops.pool_spec import Pool2dSpec

#: FLOPs per element of each activation (see the module docstring).
ACTIVATION_FLOPS = {"": 0, "relu": 1, "sigmoid": 4, "tanh": 5}


@dataclass(frozen=True)
class NetLayer:
    """One layer of a network's forward pass.

    kind : ``conv``, ``fc`` (a 1x1 conv on a 1x1 image), ``pool`` or ``add`` (residual sum)
    spec : Conv2dSpec (conv, fc), Pool2dSpec (pool) or None (add)
    activation : applied to the layer's output: ``relu``, ``sigmoid``, ``tanh`` or ``""``
    elements : output elements (N*C*H*W) of the layer
    branch : a side branch (projection shortcut): not on the receptive-field path
    """

    name: str
    kind: str
    spec: object
    activation: str = ""
    elements: int = 0
    branch: bool = False


class _Builder:
    """Appends layers while tracking the running (C, H, W) of the main path."""

    def __init__(self, C: int, H: int, W: int, batch: int, dtype: str):
        self.shape, self.batch, self.dtype = (C, H, W), batch, dtype
        self.layers: list[NetLayer] = []

    def conv(self, name, O, k, stride=1, pad=0, groups=1, bias=True, act="relu", branch_from=None):
        C, H, W = branch_from or self.shape
        spec = Conv2dSpec.from_shapes((self.batch, C, H, W), (O, C // groups, k, k), stride=stride, padding=pad,
                                      groups=groups, bias=bias, dtype=self.dtype)
        out = spec.out_shape
        self.layers.append(NetLayer(name, "conv", spec, act, out[1] * out[2] * out[3] * self.batch,
                                    branch=branch_from is not None))
        if branch_from is None:
            self.shape = out[1:]
        return self

    def pool(self, name, kind, k, stride, pad=0):
        C, H, W = self.shape
        spec = Pool2dSpec(kind, self.batch, C, H, W, (k, k), (stride, stride), (pad, pad), dtype=self.dtype)
        self.layers.append(NetLayer(name, "pool", spec, "", self.batch * C * spec.OH * spec.OW))
        self.shape = (C, spec.OH, spec.OW)
        return self

    def fc(self, name, O, act="relu"):
        C, H, W = self.shape
        spec = Conv2dSpec.from_shapes((self.batch, C * H * W, 1, 1), (O, C * H * W, 1, 1), bias=True,
                                      dtype=self.dtype)
        self.layers.append(NetLayer(name, "fc", spec, act, self.batch * O))
        self.shape = (O, 1, 1)
        return self

    def add(self, name, act="relu"):
        C, H, W = self.shape
        self.layers.append(NetLayer(name, "add", None, act, self.batch * C * H * W))
        return self


def lenet5(batch=1, dtype="float32") -> list[NetLayer]:
    """LeNet-5 (LeCun et al. 1998): 32x32 input, C3 dense, average-pool subsampling, sigmoid units."""
    b = _Builder(1, 32, 32, batch, dtype)
    b.conv("c1", 6, 5, act="sigmoid").pool("s2", "avg", 2, 2)
    b.conv("c3", 16, 5, act="sigmoid").pool("s4", "avg", 2, 2)
    b.conv("c5", 120, 5, act="sigmoid").fc("f6", 84, act="sigmoid").fc("output", 10, act="")
    return b.layers


def alexnet(batch=1, dtype="float32") -> list[NetLayer]:
    """AlexNet as Caffe's bvlc_alexnet deploys it: 227x227 input, conv2/4/5 in two groups."""
    b = _Builder(3, 227, 227, batch, dtype)
    b.conv("conv1", 96, 11, stride=4).pool("pool1", "max", 3, 2)
    b.conv("conv2", 256, 5, pad=2, groups=2).pool("pool2", "max", 3, 2)
    b.conv("conv3", 384, 3, pad=1).conv("conv4", 384, 3, pad=1, groups=2).conv("conv5", 256, 3, pad=1, groups=2)
    b.pool("pool5", "max", 3, 2).fc("fc6", 4096).fc("fc7", 4096).fc("fc8", 1000, act="")
    return b.layers


def vgg16(batch=1, dtype="float32") -> list[NetLayer]:
    """VGG-16 (configuration D): 3x3 convs with padding 1, 2x2 max pools, three FC layers."""
    b = _Builder(3, 224, 224, batch, dtype)
    for stage, (width, convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], start=1):
        for i in range(1, convs + 1):
            b.conv(f"conv{stage}_{i}", width, 3, pad=1)
        b.pool(f"pool{stage}", "max", 2, 2)
    b.fc("fc6", 4096).fc("fc7", 4096).fc("fc8", 1000, act="")
    return b.layers


def resnet50(batch=1, dtype="float32") -> list[NetLayer]:
    """ResNet-50 v1.5 (torchvision's): bottlenecks [3, 4, 6, 3], stride on each stage's first 3x3."""
    b = _Builder(3, 224, 224, batch, dtype)
    b.conv("conv1", 64, 7, stride=2, pad=3, bias=False).pool("pool1", "max", 3, 2, pad=1)
    for stage, (width, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], start=2):
        for block in range(1, blocks + 1):
            stride = 2 if block == 1 and stage > 2 else 1
            block_in, name = b.shape, f"res{stage}.{block}"
            b.conv(f"{name}.1x1_reduce", width, 1, bias=False)
            b.conv(f"{name}.3x3", width, 3, stride=stride, pad=1, bias=False)
            b.conv(f"{name}.1x1_expand", 4 * width, 1, bias=False, act="")
            if block == 1:
                b.conv(f"{name}.shortcut", 4 * width, 1, stride=stride, bias=False, act="", branch_from=block_in)
            b.add(f"{name}.add")
    b.pool("avgpool", "avg", b.shape[1], 1).fc("fc", 1000, act="")
    return b.layers


NETWORKS = {"lenet5": lenet5, "alexnet": alexnet, "vgg16": vgg16, "resnet50": resnet50}


def network(name: str, batch: int = 1, dtype: str = "float32") -> list[NetLayer]:
    """The layers of network ``name``; ValueError lists the known ones."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; known networks: {', '.join(NETWORKS)}")
    return NETWORKS[name](batch, dtype)


def layer_counts(layer: NetLayer) -> dict:
    """MACs, FLOPs (the layer's own, and its activation's), parameters and CPR of one layer."""
    macs = flops = params = 0
    if layer.kind in ("conv", "fc"):
        macs, flops, params = metrics.macs(layer.spec), metrics.dense_flops(layer.spec), metrics.params(layer.spec)
    elif layer.kind == "pool":
        flops = metrics.pool_flops(layer.spec)
    elif layer.kind == "add":
        flops = layer.elements
    return {"macs": macs, "flops": flops, "activation_flops": ACTIVATION_FLOPS[layer.activation] * layer.elements,
            "params": params, "cpr": macs / params if params else float("nan")}


def table(layers) -> pd.DataFrame:
    """One row per layer: kind, output shape, counts, and the receptive field (height) on the main path."""
    layers = list(layers)
    rows, path = [], []
    input_size = layers[0].spec.x_shape[2] if layers else 0
    for layer in layers:
        spec = layer.spec
        if isinstance(spec, Pool2dSpec):
            path.append(("pool", spec.kernel[0], spec.stride[0], spec.dilation[0], spec.padding[0]))
            out = spec.out_shape
        elif layer.kind == "conv" and not layer.branch:
            path.append(("conv", spec.KH, spec.stride[0], spec.dilation[0], spec.padding[0]))
            out = spec.out_shape
        else:
            out = spec.out_shape if spec is not None else out  # a residual add keeps the shape
        if layer.kind == "fc":
            field = input_size  # every output depends on every input pixel
        else:
            field = metrics.receptive_field_through(path).size if path else 1
        rows.append({"layer": layer.name, "kind": layer.kind + (" (branch)" if layer.branch else ""),
                     "activation": layer.activation, "out": f"{out[1]}x{out[2]}x{out[3]}",
                     **layer_counts(layer), "receptive_field": field})
    return pd.DataFrame(rows)


def totals(layers) -> dict:
    """The whole network: MACs, FLOPs (layers + activations), parameters, CPR = MACs / parameters,
    and the receptive field of the last conv or pool layer (the features the classifier reads)."""
    frame = table(layers)
    spatial = frame[~frame.kind.isin(["fc", "add"])]
    macs, params = int(frame.macs.sum()), int(frame.params.sum())
    return {"layers": len(frame), "macs": macs, "flops": int(frame.flops.sum() + frame.activation_flops.sum()),
            "activation_flops": int(frame.activation_flops.sum()), "params": params, "cpr": macs / params,
            "receptive_field": int(spatial.receptive_field.iloc[-1]) if not spatial.empty else 0}
