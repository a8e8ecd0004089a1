"""Separable convolutions: equal to their dense equivalents, the SVD factorisation, and the accounting."""

import numpy as np
import pytest

import harness
from harness.ops.table import op_info
from harness.ops import metrics
from harness.ops.separable import dense_depthwise_separable, dense_from_separable, depthwise_separable_spec

from conftest import backend_params


def test_rank_one_kernels_factor_exactly():
    sobel = np.outer([1.0, 2.0, 1.0], [1.0, 0.0, -1.0])
    gauss = np.outer([1.0, 4.0, 6.0, 4.0, 1.0], [1.0, 4.0, 6.0, 4.0, 1.0]) / 256
    for kernel in (sobel, gauss):
        f = harness.factor_spatially_separable(kernel[None, None])
        assert (f.rank, f.numerical_rank, f.exact) == (1, 1, True)
        assert f.residual < 1e-14 and "exact" in f.statement
        assert f.w_column.shape == (1, 1, kernel.shape[0], 1) and f.w_row.shape == (1, 1, 1, kernel.shape[1])


def test_dense_kernels_need_their_full_rank_and_truncation_says_so():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3))
    f = harness.factor_spatially_separable(w)
    assert f.numerical_rank == 9 and f.exact  # the (C*KH) x (O*KW) unfolding is 9 x 12
    np.testing.assert_allclose(dense_from_separable(f.w_column, f.w_row), w, atol=1e-12)
    low = harness.factor_spatially_separable(w, rank=2)
    assert not low.exact and 0 < low.residual < 1 and "approximate (numerical rank 9)" in low.statement
    # per-channel (depthwise) kernels factor group by group
    blur = np.stack([np.outer(v, v) for v in rng.standard_normal((4, 3))])[:, None]
    fg = harness.factor_spatially_separable(blur, groups=4)
    assert fg.rank == 1 and fg.w_column.shape == (4, 1, 3, 1)
    np.testing.assert_allclose(dense_from_separable(fg.w_column, fg.w_row, groups=4), blur, atol=1e-12)


@pytest.mark.parametrize("kwargs", [dict(padding=1), dict(stride=2, padding="valid"), dict(padding="same", dilation=2),
                                    dict(padding=(1, 2), padding_mode="reflect")])
def test_separable_passes_equal_the_dense_conv(kwargs):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 9, 10))
    w = rng.standard_normal((4, 3, 3, 3))
    f = harness.factor_spatially_separable(w)
    y = harness.spatially_separable_conv2d(x, f.w_column, f.w_row, backend="torch", **kwargs)
    np.testing.assert_allclose(y, harness.conv2d(x, w, backend="torch", **kwargs), atol=1e-11)


def test_depthwise_separable_equals_its_dense_kernel():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 8, 8))
    wd, wp = rng.standard_normal((8, 1, 3, 3)), rng.standard_normal((5, 8, 1, 1))
    y = harness.depthwise_separable_conv2d(x, wd, wp, stride=2, padding=1, backend="naive")
    dense = dense_depthwise_separable(wd, wp, C=4)
    np.testing.assert_allclose(y, harness.conv2d(x, dense, stride=2, padding=1, backend="torch"), atol=1e-11)
    with pytest.raises(ValueError, match=r"w_pointwise must be \(O, 8, 1, 1\)"):
        harness.depthwise_separable_conv2d(x, wd, rng.standard_normal((5, 4, 1, 1)))


def test_accounting_against_the_dense_equivalent():
    x = np.empty((1, 32, 56, 56), np.float32)
    spec, _ = depthwise_separable_spec(x, np.empty((32, 1, 3, 3), np.float32), np.empty((64, 32, 1, 1), np.float32),
                                       padding=1)
    counts = metrics.separable_accounting(spec)
    assert counts["macs_ratio"] == pytest.approx(1 / 64 + 1 / 9)  # MobileNet's 1/O + 1/K^2
    assert counts["params"] == 32 * 9 + 64 * 32 and counts["params_dense"] == 64 * 32 * 9
    from harness.ops.separable import spatially_separable_spec

    sspec, _ = spatially_separable_spec(x, np.empty((8, 32, 3, 1), np.float32), np.empty((64, 8, 1, 3), np.float32),
                                        padding=1)
    s = metrics.separable_accounting(sspec)
    assert s["macs_ratio"] == pytest.approx(8 * (32 * 3 + 64 * 3) / (64 * 32 * 9))
    assert op_info("spatially_separable_conv2d").counts(sspec)["params"] == 8 * 32 * 3 + 64 * 8 * 3


@pytest.mark.parametrize("op", ["depthwise_separable_conv2d", "spatially_separable_conv2d"])
@pytest.mark.parametrize("backend", backend_params())
def test_every_backend_composes_them(backend, op):
    report = harness.verify(backend, op=op, cases=8, seed=1)
    failed = report[report.status == "failed"]
    assert failed.empty, failed[["case", "message"]].to_string()


@pytest.mark.slow
@pytest.mark.parametrize("op", ["depthwise_separable_conv2d", "spatially_separable_conv2d"])
@pytest.mark.parametrize("backend", ["naive", "torch", "im2col", "numba_cpu", "fft"])
def test_large_sweep(backend, op):
    report = harness.verify(backend, op=op, cases=300, seed=12)
    failed = report[report.status == "failed"]
    assert failed.empty, failed[["case", "message"]].to_string()
