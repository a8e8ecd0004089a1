"""Edge inputs get one behaviour on every op and backend: zero-size shapes follow torch (refused
with the harness's own ValueError where torch raises), masked and byte-swapped arrays are refused
with TypeError by the one array check, integer arguments accept numpy ints and refuse bools."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import harness
from harness import Unsupported
from harness.verify.coverage import coverage, coverage_line

BACKENDS = [b.name for b in harness.backends() if b.available] + ["auto"]
z = np.zeros

# (label, torch call, harness call) on zero-size shapes; float32 zeros throughout
ZERO_SIZE = [
    ("conv H=0, padding 1", lambda: F.conv2d(torch.zeros(1, 2, 0, 5), torch.zeros(3, 2, 3, 3), padding=1),
     lambda b: harness.conv2d(z((1, 2, 0, 5), "f4"), z((3, 2, 3, 3), "f4"), padding=1, backend=b)),
    ("conv W=0, padding 1, 1x1", lambda: F.conv2d(torch.zeros(1, 2, 5, 0), torch.zeros(3, 2, 1, 1), padding=1),
     lambda b: harness.conv2d(z((1, 2, 5, 0), "f4"), z((3, 2, 1, 1), "f4"), padding=1, backend=b)),
    ("conv N=0, H=0, padding 2", lambda: F.conv2d(torch.zeros(0, 2, 0, 5), torch.zeros(3, 2, 3, 3), padding=2),
     lambda b: harness.conv2d(z((0, 2, 0, 5), "f4"), z((3, 2, 3, 3), "f4"), padding=2, backend=b)),
    ("conv N=0", lambda: F.conv2d(torch.zeros(0, 2, 5, 5), torch.zeros(3, 2, 3, 3)),
     lambda b: harness.conv2d(z((0, 2, 5, 5), "f4"), z((3, 2, 3, 3), "f4"), backend=b)),
    ("conv_transpose C=0", lambda: F.conv_transpose2d(torch.zeros(1, 0, 4, 4), torch.zeros(0, 3, 3, 3)),
     lambda b: harness.conv_transpose2d(z((1, 0, 4, 4), "f4"), z((0, 3, 3, 3), "f4"), backend=b)),
    ("conv_transpose O=0", lambda: F.conv_transpose2d(torch.zeros(1, 2, 4, 4), torch.zeros(2, 0, 3, 3)),
     lambda b: harness.conv_transpose2d(z((1, 2, 4, 4), "f4"), z((2, 0, 3, 3), "f4"), backend=b)),
    ("conv_transpose H=0", lambda: F.conv_transpose2d(torch.zeros(1, 2, 0, 4), torch.zeros(2, 3, 3, 3)),
     lambda b: harness.conv_transpose2d(z((1, 2, 0, 4), "f4"), z((2, 3, 3, 3), "f4"), backend=b)),
    ("conv_transpose N=0", lambda: F.conv_transpose2d(torch.zeros(0, 2, 4, 4), torch.zeros(2, 3, 3, 3)),
     lambda b: harness.conv_transpose2d(z((0, 2, 4, 4), "f4"), z((2, 3, 3, 3), "f4"), backend=b)),
    ("max_pool H=0, padding 1", lambda: F.max_pool2d(torch.zeros(1, 2, 0, 4), 3, padding=1),
     lambda b: harness.max_pool2d(z((1, 2, 0, 4), "f4"), 3, padding=1, backend=b)),
    ("avg_pool C=0", lambda: F.avg_pool2d(torch.zeros(1, 0, 4, 4), 2),
     lambda b: harness.avg_pool2d(z((1, 0, 4, 4), "f4"), 2, backend=b)),
    ("adaptive_avg H=0", lambda: F.adaptive_avg_pool2d(torch.zeros(1, 2, 0, 4), 2),
     lambda b: harness.adaptive_avg_pool2d(z((1, 2, 0, 4), "f4"), 2, backend=b)),
    ("max_pool N=0", lambda: F.max_pool2d(torch.zeros(0, 2, 4, 4), 2),
     lambda b: harness.max_pool2d(z((0, 2, 4, 4), "f4"), 2, backend=b)),
]


@pytest.mark.parametrize("label, torch_call, harness_call", ZERO_SIZE, ids=[row[0] for row in ZERO_SIZE])
def test_zero_size_shapes_follow_torch_on_every_backend(label, torch_call, harness_call):
    try:
        expected = tuple(torch_call().shape)
    except RuntimeError:
        expected = None
    for backend in BACKENDS:
        try:
            got = harness_call(backend)
        except Unsupported:
            continue  # a backend may decline an op it does not implement
        except ValueError:
            assert expected is None, f"{backend}: refused what torch answers with shape {expected}"
            continue
        assert expected is not None, f"{backend}: answered {got.shape} where torch refuses"
        assert got.shape == expected, backend


def _calls(x, w, b):
    """Every op's entry point, with ``x`` (4-D input), ``w`` (3x3 weights) and bias ``b``."""
    dw, pw = w[:2, :1], np.ascontiguousarray(w[:, :2, :1, :1])
    wc, wr = np.ascontiguousarray(w[:, :, :, :1]), np.ascontiguousarray(w[:, :3, :1, :])
    go = np.zeros((1, 3, 4, 4), x.dtype) if x.dtype.isnative else np.zeros((1, 3, 4, 4), "f4")
    return {
        "conv2d": lambda: harness.conv2d(x, w, b),
        "conv_transpose2d": lambda: harness.conv_transpose2d(x, np.ascontiguousarray(w.transpose(1, 0, 2, 3)), b),
        "max_pool2d": lambda: harness.max_pool2d(x, 2),
        "avg_pool2d": lambda: harness.avg_pool2d(x, 2),
        "adaptive_avg_pool2d": lambda: harness.adaptive_avg_pool2d(x, 2),
        "adaptive_max_pool2d": lambda: harness.adaptive_max_pool2d(x, 2),
        "global_avg_pool2d": lambda: harness.global_avg_pool2d(x),
        "spatial_pyramid_pool2d": lambda: harness.spatial_pyramid_pool2d(x),
        "conv2d_backward": lambda: harness.conv2d_backward(x, w, go),
        "max_pool2d_backward": lambda: harness.max_pool2d_backward(x, np.zeros((1, 3, 3, 3), "f4"), 2),
        "depthwise_separable_conv2d": lambda: harness.depthwise_separable_conv2d(x[:, :2], dw, pw),
        "spatially_separable_conv2d": lambda: harness.spatially_separable_conv2d(x, wc, wr),
    }


@pytest.mark.parametrize("make", [
    lambda a: np.ma.masked_array(a, mask=np.zeros(a.shape, bool)),
    lambda a: a.astype(a.dtype.newbyteorder(">" if a.dtype.isnative and np.little_endian else "<")),
], ids=["masked", "byte-swapped"])
@pytest.mark.parametrize("argument", ["x", "w", "bias"])
def test_masked_and_byte_swapped_arrays_are_refused_by_every_op(make, argument):
    rng = np.random.default_rng(0)
    arrays = {"x": rng.standard_normal((1, 3, 6, 6)).astype("f4"),
              "w": rng.standard_normal((3, 3, 3, 3)).astype("f4"), "bias": np.zeros(3, "f4")}
    arrays[argument] = make(arrays[argument])
    calls = _calls(arrays["x"], arrays["w"], arrays["bias"])
    if argument != "x":  # the ops taking this argument as it is (not a converted copy)
        calls = {k: calls[k] for k in (("conv2d", "conv_transpose2d") if argument == "bias" else
                                       ("conv2d", "conv2d_backward", "depthwise_separable_conv2d"))}
    for op, call in calls.items():
        with pytest.raises(TypeError, match="masked array|byte order"):
            call()


def test_integer_arguments_accept_numpy_ints_and_refuse_bools_everywhere():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 6, 6)).astype("f4")
    w = rng.standard_normal((2, 2, 3, 3)).astype("f4")
    wc, wr = np.ascontiguousarray(w[:, :, :, :1]), np.ascontiguousarray(w[:, :, :1, :])
    for value in (np.int64(1), np.int32(1)):
        harness.conv2d(x, w, groups=value, stride=value, backend="naive")
        harness.spatially_separable_conv2d(x, wc, wr, groups=value, backend="naive")
        harness.factor_spatially_separable(w, groups=value, rank=value)
        harness.max_pool2d(x, value + 1, stride=value, backend="naive")
    for call in (lambda: harness.conv2d(x, w, groups=True, backend="naive"),
                 lambda: harness.spatially_separable_conv2d(x, wc, wr, groups=True, backend="naive"),
                 lambda: harness.factor_spatially_separable(w, groups=True),
                 lambda: harness.factor_spatially_separable(w, rank=True),
                 lambda: harness.factor_spatially_separable(w, rank=1.7),
                 lambda: harness.max_pool2d(x, True, backend="naive")):
        with pytest.raises(TypeError):
            call()


@pytest.mark.parametrize("kwargs", [dict(rank=0), dict(rank=-3), dict(rtol=-1.0), dict(rtol=float("nan")),
                                    dict(groups=0)])
def test_factor_spatially_separable_refuses_bad_rank_rtol_groups(kwargs):
    with pytest.raises(ValueError):
        harness.factor_spatially_separable(np.ones((2, 2, 3, 3), "f4"), **kwargs)


def test_coverage_line_for_a_backend_declaring_no_optional_features():
    report = coverage(frozenset(), ["float32"], 5)
    assert coverage_line(report).startswith("features reached: 0/0")
