"""Backward passes: conv2d (grad_input, grad_weight, grad_bias) and pooling, against torch's autograd."""

import numpy as np
import pytest

import harness
from harness.ops.conv_spec import conv2d_spec

from conftest import backend_params


def _inner(a, b):
    return float(np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64)))


@pytest.mark.parametrize("kwargs", [
    dict(), dict(stride=2, padding=(1, 2)), dict(groups=2, dilation=(2, 1), padding=2),
    dict(padding="same", padding_mode="reflect"), dict(padding=3, padding_mode="circular", stride=(1, 2)),
    dict(padding=(2, 1), padding_mode="replicate", groups=4),
], ids=["plain", "stride", "groups-dilation", "reflect", "circular", "replicate-depthwise"])
@pytest.mark.parametrize("backend", ["naive", "torch", "naive:lowered"])
def test_gradients_are_the_adjoint_of_conv2d(backend, kwargs):
    # <conv2d(x, w) + b, g> = <x, grad_input> + <w, grad_weight> + <b, grad_bias> for a bilinear map:
    # checks the backward pass by mathematics alone, independent of torch
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 7, 8))
    groups = kwargs.get("groups", 1)
    w = rng.standard_normal((4, 4 // groups, 3, 2))
    b = rng.standard_normal(4)
    y = harness.conv2d(x, w, b, backend="naive", **kwargs)
    g = rng.standard_normal(y.shape)
    gi, gw, gb = harness.conv2d_backward(x, w, g, bias=True, backend=backend, **kwargs)
    # the map is linear in x for fixed w: <conv(x), g> = <x, gi>; and in w for fixed x: = <w, gw>
    y0 = harness.conv2d(x, w, backend="naive", **kwargs)
    assert _inner(y0, g) == pytest.approx(_inner(x, gi), rel=1e-11)
    assert _inner(y0, g) == pytest.approx(_inner(w, gw), rel=1e-11)
    assert _inner(y - y0, g) == pytest.approx(_inner(b, gb), rel=1e-11)


@pytest.mark.parametrize("backend", backend_params())
def test_every_backend_matches_autograd(backend):
    report = harness.verify(backend, op="conv2d_backward", cases=10, seed=4, table=False)
    failed = report[report.status == "failed"]
    assert failed.empty, failed[["case", "message"]].to_string()


def test_torch_passes_the_conv2d_table_backward_against_naive():
    report = harness.verify("torch", op="conv2d_backward", cases=0, seed=0)
    failed = report[report.status == "failed"]
    assert failed.empty, failed[["case", "message"]].to_string()
    assert report.exact.any()  # integer data: the gradients were compared bit for bit


def test_max_pool_backward_routes_to_the_arg_max():
    x = np.array([[[[1.0, 5.0, 2.0], [5.0, 0.0, 1.0], [3.0, 4.0, 9.0]]]])
    g = np.array([[[[10.0, 20.0], [30.0, 40.0]]]])
    for backend in ("naive", "torch"):
        gi = harness.max_pool2d_backward(x, g, 2, stride=1, backend=backend)
        # windows: {1,5,5,0} -> first 5 at (0,1); {5,2,0,1} -> (0,1); {5,0,3,4} -> (1,0); {0,1,4,9} -> (2,2)
        np.testing.assert_array_equal(gi[0, 0], [[0, 30, 0], [30, 0, 0], [0, 0, 40]], err_msg=backend)


def test_avg_pool_backward_is_the_adjoint():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 6))
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    y = harness.avg_pool2d(x, backend="naive", **kw)
    g = rng.standard_normal(y.shape)
    for backend in ("naive", "torch"):
        gi = harness.avg_pool2d_backward(x, g, backend=backend, **kw)
        assert _inner(y, g) == pytest.approx(_inner(x, gi), rel=1e-12)


@pytest.mark.parametrize("op", ["max_pool2d_backward", "avg_pool2d_backward"])
@pytest.mark.parametrize("backend", ["naive", "torch", "numba_cpu"])
def test_pool_backward_verified(backend, op):
    report = harness.verify(backend, op=op, cases=15, seed=6)
    failed = report[report.status == "failed"]
    assert failed.empty, failed[["case", "message"]].to_string()


def test_backward_argument_errors():
    x, w = np.zeros((1, 2, 5, 5)), np.zeros((3, 2, 3, 3))
    with pytest.raises(ValueError, match=r"grad_out must have the forward output's shape \(1, 3, 3, 3\)"):
        harness.conv2d_backward(x, w, np.zeros((1, 3, 5, 5)))
    with pytest.raises(TypeError, match="bias must be True or False"):
        harness.conv2d_backward(x, w, np.zeros((1, 3, 3, 3)), bias=np.zeros(3))
    with pytest.raises(ValueError, match="grad_out must have"):
        harness.max_pool2d_backward(x, np.zeros((1, 2, 3, 3)), 2)


def test_unbatched_and_no_bias():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    spec, _ = conv2d_spec(x, w)
    g = rng.standard_normal(spec.out_shape[1:])
    gi, gw, gb = harness.conv2d_backward(x, w, g, backend="torch")
    assert gi.shape == x.shape and gw.shape == w.shape and gb is None
    gi2, gw2, _ = harness.conv2d_backward(x, w, g, backend="torch:lowered")
    np.testing.assert_allclose(gi2, gi, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw2, gw, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["naive", "torch", "torch:lowered", "im2col", "im2col:lowered", "fft"])
def test_large_sweep(backend):
    report = harness.verify(backend, op="conv2d_backward", cases=300, seed=9)
    failed = report[report.status == "failed"]
    assert failed.empty, failed[["case", "message"]].to_string()


def test_fft_grad_weight_by_correlation(monkeypatch):
    from harness.ops.cases.backward import Conv2dBackwardCase
    from impls import _fft_ops

    for case in (Conv2dBackwardCase((2, 3, 12, 12), (4, 3, 9, 9), bias=True, padding=4),
                 Conv2dBackwardCase((1, 4, 14, 13), (6, 2, 9, 10), groups=2, padding=(4, 5), dtype="float64")):
        result = harness.check_case("fft", case)
        assert result.status == "passed", result.message
    monkeypatch.setattr(_fft_ops, "MIN_KERNEL_AREA", 1)  # the FFT path on every small random kernel too
    report = harness.verify("fft", op="conv2d_backward", cases=12, seed=8, table=False)
    assert not (report.status == "failed").any(), report[report.status == "failed"].message.tolist()
