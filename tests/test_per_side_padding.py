"""Explicit per-side padding ((top, bottom), (left, right)) and ONNX's SAME_LOWER, for conv2d,
conv_transpose2d and pooling, on every backend that declares ``asymmetric_padding``."""

import numpy as np
import pytest

import harness
from harness.ops.cases.conv2d import per_side_table_cases
from harness.ops.conv_spec import Conv2dSpec
from harness.ops.pool_spec import pool2d_spec
from harness.ops.transpose_spec import ConvTranspose2dSpec
from harness.suites.shape_files import _pads, parse_benchdnn

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.filterwarnings("ignore:Using padding=.same.")
def test_torch_same_is_onnx_same_upper_and_same_lower_mirrors_it():
    x, w = _normal(1, 2, 9, 8), _normal(3, 2, 4, 2, seed=1)
    # ONNX SAME_UPPER: floor(P/2) before, the rest after; P = d*(k-1) at stride 1
    upper = F.conv2d(F.pad(torch.tensor(x), (0, 1, 1, 2)), torch.tensor(w)).numpy()
    assert np.allclose(F.conv2d(torch.tensor(x), torch.tensor(w), padding="same").numpy(), upper)
    assert Conv2dSpec.from_shapes(x.shape, w.shape, padding="same").padding == (1, 2, 0, 1)
    assert Conv2dSpec.from_shapes(x.shape, w.shape, padding="same_lower").padding == (2, 1, 1, 0)
    # ONNX SAME_LOWER at stride 2: ceil(size / stride) outputs, the odd extra pad before
    strided = Conv2dSpec.from_shapes((1, 2, 9, 8), (3, 2, 4, 3), padding="same_lower", stride=2)
    assert (strided.OH, strided.OW, strided.padding) == (5, 4, (2, 1, 1, 0))


@pytest.mark.parametrize("backend", ["naive", "im2col", "torch", "numba_cpu", "fft"])
def test_conv2d_per_side_equals_explicit_pad_then_valid(backend):
    if not harness.get_backend(backend).available:
        pytest.skip(harness.get_backend(backend).reason)
    x, w = _normal(2, 3, 7, 8).astype(np.float32), _normal(4, 3, 3, 2, seed=1).astype(np.float32)
    y = harness.conv2d(x, w, padding=((0, 2), (3, 1)), stride=(2, 1), backend=backend)
    expected = F.conv2d(F.pad(torch.tensor(x, dtype=torch.float64), (3, 1, 0, 2)), torch.tensor(w, dtype=torch.float64),
                        stride=(2, 1)).numpy()
    assert y.shape == expected.shape
    assert np.allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_per_side_table_rows_pass_on_im2col_and_torch():
    for case in per_side_table_cases():
        for backend in ("im2col", "torch"):
            result = harness.check_case(backend, case)
            assert result.status == "passed", (backend, case, result.message)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pooling_per_side_windows_start_in_the_top_left_padding(kind, ceil_mode):
    x = _normal(2, 3, 7, 9).astype(np.float32)
    padding = ((0, 1), (1, 0))
    pool = harness.max_pool2d if kind == "max" else harness.avg_pool2d
    extra = dict(count_include_pad=False) if kind == "avg" else dict(return_indices=True)
    results = {b: pool(x, 3, 2, padding, ceil_mode=ceil_mode, backend=b, **extra) for b in ("naive", "torch")}
    spec, _ = pool2d_spec(kind, x, 3, 2, padding, ceil_mode=ceil_mode)
    assert spec.pads == (0, 1, 1, 0) and "asymmetric_padding" in spec.features
    first = results["naive"][0] if kind == "max" else results["naive"]
    assert first.shape == spec.out_shape
    for got in results.values():
        if kind == "max":
            assert np.array_equal(got[0], results["naive"][0]) and np.array_equal(got[1], results["naive"][1])
        else:
            assert np.allclose(got, results["naive"], rtol=1e-5, atol=1e-6)
    if kind == "max" and not ceil_mode:  # independent: an explicit -inf border, then no padding
        padded = F.pad(torch.tensor(x), (1, 0, 0, 1), value=float("-inf"))
        assert np.array_equal(results["torch"][0], F.max_pool2d(padded, 3, 2).numpy())


def test_pooling_per_side_refusals():
    x = np.zeros((1, 1, 6, 6), np.float32)
    with pytest.raises(ValueError, match="at most half of the kernel"):
        harness.max_pool2d(x, 3, padding=((0, 2), (0, 0)))
    with pytest.raises(ValueError, match="non-negative"):
        harness.avg_pool2d(x, 3, padding=((0, -1), (0, 0)))
    with pytest.raises(TypeError, match="top, bottom"):
        harness.conv2d(x, np.zeros((1, 1, 3, 3), np.float32), padding=((0, 1, 2), (0, 0)))
    assert "asymmetric_padding" not in harness.get_backend("numba_cpu").features["max_pool2d"]


def test_conv_transpose2d_per_side_crops_the_uncropped_output():
    x, w = _normal(1, 4, 5, 6).astype(np.float32), _normal(4, 3, 3, 3, seed=1).astype(np.float32)
    full = F.conv_transpose2d(torch.tensor(x), torch.tensor(w), stride=2, output_padding=1).numpy()
    spec = ConvTranspose2dSpec.from_shapes(x.shape, w.shape, stride=2, padding=((0, 2), (1, 0)), output_padding=1)
    assert spec.pads == (0, 2, 1, 0) and (spec.OH, spec.OW) == (full.shape[2] - 2, full.shape[3] - 1)
    for backend in ("naive", "im2col", "torch", "numba_cpu"):  # numba_cpu: the harness lowering
        y = harness.conv_transpose2d(x, w, stride=2, padding=((0, 2), (1, 0)), output_padding=1, backend=backend)
        assert np.allclose(y, full[:, :, 0:spec.OH, 1:1 + spec.OW], rtol=1e-5, atol=1e-5), backend


def test_shape_files_carry_per_side_padding():
    assert _pads("0:1x1:0") == (0, 1, 1, 0) and _pads("2:1") == (2, 1, 2, 1) and _pads("3x1") == (3, 3, 1, 1)
    # benchdnn: the end padding is what makes the output exactly oh (TensorFlow's SAME at stride 2)
    _, spec, _ = parse_benchdnn('mb1ic8ih56oc16oh28kh3sh2ph0n"tf_same"')
    assert spec.padding == (0, 1, 0, 1) and spec.OH == 28
    assert "asymmetric_padding" in spec.features


def test_avg_pool_per_side_counts_the_padding_on_the_padded_sides_only():
    x = _normal(1, 2, 6, 7).astype(np.float64)
    # count_include_pad=True without ceil_mode: every window lies in the padded image, divisor k*k
    padded = F.pad(torch.tensor(x), (2, 0, 1, 0))
    for backend in ("naive", "torch"):
        y = harness.avg_pool2d(x, 4, 2, ((1, 0), (2, 0)), backend=backend)
        assert np.allclose(y, F.avg_pool2d(padded, 4, 2).numpy(), rtol=1e-12, atol=1e-12)
