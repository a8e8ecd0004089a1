"""numba_cpu: agreement with torch on every declared feature, both kernels, both dtypes."""

import numpy as np
import pytest

import harness
from harness.ops.cases.conv2d import Conv2dCase
from harness.verify.verifier import check_case

from conftest import assert_close

pytestmark = pytest.mark.skipif(
    not harness.get_backend("numba_cpu").available,
    reason=f"numba_cpu unavailable: {harness.get_backend('numba_cpu').reason}",
)

# (x_shape, w_shape, bias, kwargs): each row exercises one path or edge of the kernels
CASES = [
    ((2, 8, 9, 11), (8, 8, 3, 3), True, dict(padding=1)),                     # dense, O = 2 blocks
    ((1, 5, 7, 6), (6, 5, 2, 3), False, dict()),                             # O not a multiple of 4
    ((1, 6, 10, 13), (12, 3, 3, 2), True, dict(stride=(2, 3), padding=(1, 2), dilation=(2, 1), groups=2)),
    ((1, 3, 23, 21), (8, 3, 7, 7), True, dict(stride=2, padding=3)),          # conv1-like, 147 items
    ((1, 7, 6, 6), (9, 7, 1, 1), False, dict()),                             # 1x1, 7 items: remainder
    ((1, 4, 40, 44), (4, 4, 3, 3), False, dict(padding=1)),                  # several output tiles
    ((2, 5, 9, 9), (5, 1, 3, 3), True, dict(groups=5, padding=1, padding_mode="reflect")),  # depthwise
    ((1, 4, 12, 12), (8, 1, 3, 3), False, dict(groups=4, stride=2, padding=1, padding_mode="circular")),
    ((1, 6, 7, 7), (6, 2, 3, 3), True, dict(groups=3, padding="same", dilation=2, padding_mode="replicate")),
    ((1, 3, 50, 47), (3, 1, 5, 5), False, dict(groups=3, padding=(2, 1), stride=(1, 2))),  # depthwise tiles
    ((1, 4, 8, 9), (4, 4, 2, 2), False, dict(padding="same", padding_mode="reflect")),  # asymmetric
    # the zero-padding depthwise kernel: row copies (width >= MAP_WIDTH) and index maps (narrower)
    ((2, 6, 13, 13), (12, 1, 3, 3), True, dict(groups=6, padding=1, stride=2)),  # odd width, x2
    ((1, 5, 7, 9), (5, 1, 3, 3), False, dict(groups=5, padding=(1, 2), dilation=(1, 2))),
    ((1, 3, 8, 9), (3, 1, 2, 4), True, dict(groups=3, padding="same", dilation=(2, 1))),  # 8 items
    ((1, 4, 9, 10), (8, 1, 3, 3), True, dict(groups=4, stride=3, padding=1)),     # 3 phases
    ((1, 40, 20, 20), (40, 1, 3, 3), True, dict(groups=40, padding=1)),            # many planes
    ((1, 2, 60, 61), (2, 1, 3, 3), False, dict(groups=2, padding=1)),              # 2 tiles
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", CASES, ids=[str(i) for i in range(len(CASES))])
def test_agrees_with_torch(x_shape, w_shape, bias, kwargs, dtype, rng):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    copies = [a.copy() for a in (x, w)]
    y = harness.conv2d(x, w, b, backend="numba_cpu", **kwargs)
    assert_close(y, x, w, b, **kwargs)
    for before, after in zip(copies, (x, w)):
        np.testing.assert_array_equal(before, after)  # inputs unchanged


def test_non_contiguous_input_matches_contiguous(rng):
    base = rng.standard_normal((2, 6, 14, 16)).astype(np.float32)
    x = base[:, ::2, 1::2, ::-1]  # strided and reversed
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    y = harness.conv2d(x, w, padding=1, backend="numba_cpu")
    np.testing.assert_array_equal(y, harness.conv2d(np.ascontiguousarray(x), w, padding=1, backend="numba_cpu"))
    assert_close(y, x, w, padding=1)


@pytest.mark.parametrize("groups, O", [(1, 8), (4, 4)], ids=["dense", "depthwise"])
def test_empty_batch(groups, O):
    x = np.zeros((0, 4, 5, 5), np.float64)
    w = np.ones((O, 4 // groups, 3, 3), np.float64)
    y = harness.conv2d(x, w, padding=1, groups=groups, padding_mode="circular", backend="numba_cpu")
    assert y.shape == (0, O, 5, 5) and y.dtype == np.float64


def test_same_bits_for_one_and_two_threads(rng):
    import numba

    x = rng.standard_normal((2, 8, 20, 20)).astype(np.float32)
    w = rng.standard_normal((12, 8, 3, 3)).astype(np.float32)
    wd = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    before = numba.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            results.append((harness.conv2d(x, w, padding=1, backend="numba_cpu"),
                            harness.conv2d(x, wd, padding=1, groups=8, backend="numba_cpu")))
    finally:
        numba.set_num_threads(before)
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("groups", [1, 4], ids=["dense", "depthwise"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_exact_on_integer_data(groups, dtype):
    case = Conv2dCase((2, 4, 11, 9), (8, 4 // groups, 3, 3), bias=True, padding=1, groups=groups,
                      dtype=dtype, fill="exact", seed=7)
    result = check_case("numba_cpu", case)
    assert result.status in ("passed", "mistrusted"), result
    assert result.max_units == 0, result  # exact=True is claimed: no rounding at all


def test_inf_stays_inf_not_nan():
    # a kernel that pads the reduction with zero weights would make 0 * inf = NaN here
    x = np.full((1, 1, 3, 3), np.inf, np.float32)
    w = np.ones((1, 1, 1, 1), np.float32)
    assert np.all(harness.conv2d(x, w, backend="numba_cpu") == np.inf)


def test_harness_verify_has_no_failures():
    report = harness.verify("numba_cpu", cases=100, seed=0)
    bad = report[report.status.isin(["failed", "error"])]
    assert bad.empty, bad[["status", "message", "reproducer"]].to_string()


def test_warmup_reports_compile_seconds():
    from impls import numba_cpu

    assert numba_cpu.warmup() >= 0.0
