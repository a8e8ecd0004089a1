"""Pooling: torch's rules and tie-breaking, PyTorch's sample grid, adaptive/global/pyramid pooling, counts."""

import numpy as np
import pytest

import harness
from harness.ops.table import op_info
from harness.ops import metrics
from harness.ops.cases.pool import MaxPool2dCase
from harness.ops.pool_spec import adaptive_windows, pool2d_spec, pooled_size
from impls.torch import load_torch

from conftest import backend_params

POOL_OPS = ["max_pool2d", "avg_pool2d", "adaptive_max_pool2d", "adaptive_avg_pool2d"]


def pool_backends():
    return [p for p in backend_params() if any(op in harness.get_backend(p.values[0]).ops for op in POOL_OPS)]


@pytest.mark.parametrize("backend", pool_backends())
@pytest.mark.parametrize("op", POOL_OPS)
def test_backends_pass_pytorchs_grid_and_random_cases(backend, op):
    if op not in harness.get_backend(backend).ops:
        pytest.skip(f"{backend} has no {op}")
    report = harness.verify(backend, op=op, cases=20, seed=3)
    failed = report[report.status == "failed"]
    assert failed.empty, failed[["case", "message"]].to_string()
    assert (report.status == "passed").mean() > 0.95
    if op.startswith("max") or op == "adaptive_max_pool2d":
        assert (report[report.status == "passed"].max_units == 0).all()  # maxima are bit-exact


def test_ties_and_nan_follow_torch():
    torch = load_torch()
    x = np.array([[[[1.0, 3.0, 3.0], [3.0, np.nan, 2.0], [np.nan, 0.0, 3.0]]]])
    for kernel, stride in ((2, 1), (3, 1), (2, 2)):
        want_y, want_i = torch.nn.functional.max_pool2d(torch.from_numpy(x), kernel, stride, return_indices=True,
                                                        ceil_mode=True)
        for backend in ("naive", "torch"):
            y, i = harness.max_pool2d(x, kernel, stride, ceil_mode=True, return_indices=True, backend=backend)
            np.testing.assert_array_equal(i, want_i.numpy(), err_msg=f"{backend} k={kernel}")
            np.testing.assert_array_equal(y, want_y.numpy())
    # first maximum in row-major window order wins a tie
    _, index = harness.max_pool2d(np.ones((1, 1, 2, 2)), 2, return_indices=True, backend="naive")
    assert index.item() == 0


@pytest.mark.parametrize("size,k,s,p,d", [(7, 3, 2, 1, 1), (6, 3, 2, 1, 1), (5, 2, 2, 0, 1), (8, 3, 3, 1, 2),
                                          (4, 3, 2, 1, 1), (2, 3, 3, 1, 1), (9, 2, 4, 1, 3)])
@pytest.mark.parametrize("ceil", [False, True])
def test_output_size_with_ceil_mode_matches_torch(size, k, s, p, d, ceil):
    torch = load_torch()
    y = torch.nn.functional.max_pool2d(torch.zeros(1, 1, size, size), k, s, p, d, ceil_mode=ceil)
    assert pooled_size(size, k, s, p, d, ceil) == y.shape[-1]




def test_avg_divisors_count_padding_as_torch():
    x = np.ones((1, 1, 4, 4))
    torch = load_torch()
    for include in (True, False):
        got = harness.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=include, backend="naive")
        want = torch.nn.functional.avg_pool2d(torch.from_numpy(x), 3, 2, 1, True, include).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-15)
    assert harness.avg_pool2d(x, 2, divisor_override=-8, backend="naive").max() == -0.5


def test_adaptive_global_and_pyramid_pooling():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 10))
    assert adaptive_windows(10, 4) == [(0, 3), (2, 5), (5, 8), (7, 10)]  # overlapping, uneven
    np.testing.assert_allclose(harness.global_avg_pool2d(x)[..., 0, 0], x.mean(axis=(2, 3)), rtol=1e-13)
    np.testing.assert_array_equal(harness.global_max_pool2d(x)[..., 0, 0], x.max(axis=(2, 3)))
    for size in ((7, 10), (13, 5), (4, 4)):  # any image size gives the same vector length
        v = harness.spatial_pyramid_pool2d(rng.standard_normal((2, 3) + size), levels=(1, 2, 4))
        assert v.shape == (2, 3 * (1 + 4 + 16))
    v = harness.spatial_pyramid_pool2d(x, levels=(1, 2), mode="avg")
    np.testing.assert_allclose(v[:, :3], x.mean(axis=(2, 3)), rtol=1e-13)  # level 1 first, channel by channel
    assert harness.spatial_pyramid_pool2d(x[0], levels=(2,)).shape == (12,)
    with pytest.raises(ValueError, match="positive ints"):
        harness.spatial_pyramid_pool2d(x, levels=(0, 2))


def test_pool_counts():
    spec, _ = pool2d_spec("max", np.empty((2, 3, 8, 8)), 3, 2, 1)
    assert spec.out_shape == (2, 3, 4, 4)
    assert metrics.pool_flops(spec) == 2 * 3 * 16 * 8  # 9 taps: 8 comparisons per output
    avg, _ = pool2d_spec("avg", np.empty((2, 3, 8, 8)), 3, 2, 1)
    assert metrics.pool_flops(avg) == 2 * 3 * 16 * 9  # 8 adds and a division per output
    from harness.ops.pool_spec import adaptive_pool2d_spec

    adaptive, _ = adaptive_pool2d_spec("avg", np.empty((1, 1, 10, 10)), 4)
    assert metrics.pool_flops(adaptive) == 144  # window areas 3*3 per output, 16 outputs: 8 adds + 1 divide
    assert op_info("max_pool2d").counts(spec)["params"] == 0


def test_inputs_stay_unchanged():
    case = MaxPool2dCase((2, 3, 7, 7), 3, 2, 1, layout="strided", fill="ties")
    (x,) = case.arrays()
    before = x.copy()
    harness.max_pool2d(x, 3, 2, 1, return_indices=True, backend="naive")
    harness.avg_pool2d(x, 3, 2, 1, backend="torch")
    np.testing.assert_array_equal(x, before)


@pytest.mark.slow
@pytest.mark.parametrize("op", POOL_OPS + ["max_pool2d_backward", "avg_pool2d_backward"])
@pytest.mark.parametrize("backend", ["naive", "torch", "numba_cpu"])
def test_large_sweep(backend, op):
    if op not in harness.get_backend(backend).ops:
        pytest.skip(f"{backend} has no {op}")
    report = harness.verify(backend, op=op, cases=500, seed=11)
    failed = report[report.status == "failed"]
    assert failed.empty, failed[["case", "message"]].to_string()


def test_verifier_catches_wrong_tie_breaking_and_divisors():
    from harness.backend.registry import register_backend, unregister_backend
    from impls import _naive_ops

    def last_max(x, spec):  # ties go to the last maximum instead of the first (>= for >)
        best = np.full(spec.out_shape, -np.inf)
        index = np.full(spec.out_shape, -1, dtype=np.int64)
        for rows, cols, inside in _naive_ops._taps(spec):
            value = x.astype(np.float64)[:, :, rows[:, None], cols[None, :]]
            take = inside & ((value >= best) | np.isnan(value) | (index < 0))
            best = np.where(take, value, best)
            index = np.where(take, rows[:, None] * spec.W + cols[None, :], index)
        return best.astype(spec.dtype), (index if spec.return_indices else None)

    def window_divisor(x, spec):  # always divides by KH*KW, ignoring count_include_pad and ceil_mode
        return _naive_ops.avg_pool2d(x, spec.with_(divisor_override=spec.window))

    register_backend("mutant_pool", max_pool2d=last_max, avg_pool2d=window_divisor, exact=True)
    try:
        for op in ("max_pool2d", "avg_pool2d"):
            report = harness.verify("mutant_pool", op=op, cases=0, seed=0, shrink_failures=False)
            assert (report.status == "failed").sum() >= 5, op
    finally:
        unregister_backend("mutant_pool")
