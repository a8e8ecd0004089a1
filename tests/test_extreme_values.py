"""Data at the ends of the dtype's range: transforms keep their intermediates in range (exact
power-of-two scaling), and the verifier's fills reach there so it catches a backend that does not."""

import dataclasses

import numpy as np
import pytest

import harness
from conftest import assert_close
from harness.ops.cases.tools import fill
from harness.ops.cases.conv2d import Conv2dCase, table_cases
from harness.verify.verifier import check_case
from impls._range_scaling import unit_exponents
from impls.torch import conv2d_on

_torch = conv2d_on("cpu")


def _data(dtype, x_scale, C, K, seed=0):
    """Standard normal x (times ``x_scale``; "near_max": so that the largest output magnitude
    ``max conv(|x|, |w|)`` is half the dtype's max, where winograd used to overflow) and w."""
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((1, C, 40, 40)), rng.standard_normal((3, C, K, K))
    if x_scale == "near_max":
        spec = harness.conv2d_spec(x, w, padding=K // 2)[0]
        x_scale = 0.5 * float(np.finfo(dtype).max) / _torch(np.abs(x), np.abs(w), None, spec).max()
    return (x * x_scale).astype(dtype), w.astype(dtype)


@pytest.mark.parametrize("backend, dtype, x_scale, K", [
    ("fft", "float32", 1e36, 15),   # was all NaN
    ("fft", "float32", 1e34, 15),   # was spurious Inf
    ("fft", "float64", 1e305, 15),  # was all NaN
    ("auto", "float32", 1e36, 15),
    ("winograd", "float32", "near_max", 3),  # was NaN
    ("winograd", "float64", "near_max", 3),
    ("fft", "float32", 1e-41, 15),  # subnormal input: scaled up, computed at full precision
])
def test_transforms_are_right_near_the_ends_of_the_range(backend, dtype, x_scale, K):
    x, w = _data(dtype, x_scale, 2, K)
    b = np.full(3, np.abs(x).max(), dtype)
    with np.errstate(all="ignore"):
        y = harness.conv2d(x, w, b, padding=K // 2, backend=backend)
    assert np.isfinite(y).all()
    model = harness.get_backend(backend).error_model if backend != "auto" else "fft"
    assert_close(y, x, w, b, error_model=model, padding=K // 2)


@pytest.mark.parametrize("backend", ["fft", "winograd"])
def test_an_output_beyond_the_range_is_inf_exactly_where_the_true_output_is(backend):
    x, w = _data("float32", np.finfo(np.float32).max / 4, 2, 3)
    with np.errstate(all="ignore"):
        y = harness.conv2d(x, w, padding=1, backend=backend)
        exact = _torch(x.astype(np.float64), w.astype(np.float64), None,
                       harness.conv2d_spec(x, w, padding=1)[0].with_(dtype="float64"))
        rounded = exact.astype(np.float32)
    assert not np.isnan(y).any()
    assert np.isinf(rounded).any() and np.isfinite(rounded).any()  # the case straddles the limit
    assert np.array_equal(np.isinf(y), np.isinf(rounded)) and (np.sign(y) == np.sign(rounded)).all()


def test_fft_grad_weight_near_the_range_limit():
    from impls._fft_ops import fft_grad_weight

    x, _ = _data("float32", 1e34, 2, 9)
    spec, _ = harness.conv2d_spec(x, np.zeros((3, 2, 9, 9), np.float32), padding=4)
    go = np.random.default_rng(1).standard_normal(spec.out_shape).astype(np.float32)
    gw = fft_grad_weight(x, go, spec)
    direct = np.einsum("nchw,nohw->oc", x.astype(np.float64)[:, :, :40, :40], go.astype(np.float64))
    assert np.isfinite(gw).all()
    centre = gw[:, :, 4, 4].astype(np.float64)  # lag 0: sum over the whole image, no padding
    assert np.allclose(centre, direct, rtol=1e-4, atol=1e-5 * np.abs(direct).max())


def test_moderate_data_is_not_scaled():
    x, w = _data("float32", 1e6, 2, 3)
    assert unit_exponents(x, w, "float32") == (0, 0)
    assert unit_exponents(x * np.float32(1e20), w, "float32") != (0, 0)
    assert unit_exponents(np.full(3, np.nan, np.float32), w, "float32") == (0, 0)


def test_the_fills_reach_the_ends_of_the_range():
    rng = np.random.default_rng(0)
    tiny = fill(rng, (1000,), "subnormal", "float32")
    assert (np.abs(tiny) < np.finfo(np.float32).smallest_normal).all() and (tiny != 0).mean() > 0.9
    assert 1e30 < np.abs(fill(rng, (1000,), "near_max", "float32")).max() < np.finfo(np.float32).max
    case = Conv2dCase((1, 2, 24, 24), (2, 2, 15, 15), bias=True, padding=7, fill="near_max")
    for dtype in ("float32", "float64"):
        x, w, b = dataclasses.replace(case, dtype=dtype).arrays()
        A = _torch(np.abs(x).astype(np.float64), np.abs(w).astype(np.float64), None,
                   dataclasses.replace(case, dtype="float64").spec)
        top = float(np.finfo(dtype).max)
        assert 0.4 * top < A.max() <= 0.5 * top * (1 + 1e-6) and np.abs(b).max() <= 0.1 * top * (1 + 1e-6)
    assert any(c.fill == "near_max" for c in table_cases())


def test_the_verifier_catches_intermediates_that_overflow_where_the_output_does_not():
    def scaled_up(x, w, b, spec):  # the sum computed on 2**40 * x: overflows near the dtype's max
        with np.errstate(over="ignore"):
            big = x * x.dtype.type(2.0**40)
        return _torch(big, w, None if b is None else b * b.dtype.type(2.0**40), spec) / x.dtype.type(2.0**40)

    harness.register_backend("scaled_up", conv2d=scaled_up)
    try:
        near_max = [c for c in table_cases() if c.fill == "near_max" and c.dtype in ("float32", "float64")]
        assert all(check_case("scaled_up", c).status == "failed" for c in near_max)
        normal = next(c for c in table_cases() if c.fill == "normal")
        assert check_case("scaled_up", normal).status == "passed"
    finally:
        harness.backend.registry.unregister_backend("scaled_up")
