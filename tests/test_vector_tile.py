"""impls._vector_tile: the IR micro-kernel and the masked run copy, against their formulas."""

import threading

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from impls import _vector_tile, numba_cpu  # noqa: E402
from harness.ops.conv_spec import Conv2dSpec  # noqa: E402


def _tile_caller(ob, v):
    tile = _vector_tile.tile_fma(ob, v)

    @numba.njit
    def call(acc, x, base, off, w, ch, bias, n_items):
        tile(acc, x, base, off, w, ch, bias, n_items)

    return call


def _tile_formula(x, base, off, w, ch, bias, n_items, width):
    """acc[o, t] = bias[ch[o]] + sum_r w[ch[o], r] * x[base + off[r] + t], in float64."""
    w2 = w.reshape(-1, n_items).astype(np.float64)
    cols = np.stack([x[base + off[r]: base + off[r] + width] for r in range(n_items)]).astype(np.float64)
    return bias[ch].astype(np.float64)[:, None] + w2[ch] @ cols


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ob, v", [(4, 4), (2, 1), (3, 2)])
def test_tile_is_the_offset_gemm_formula(dtype, ob, v, rng):
    width = v * _vector_tile.lanes(np.dtype(dtype).itemsize)
    n_items, channels = 13, 5
    x = rng.standard_normal(400).astype(dtype)
    w = rng.standard_normal(channels * n_items).astype(dtype)
    off = rng.integers(0, 200, n_items).astype(np.int64)
    ch = rng.integers(0, channels, ob).astype(np.int64)  # repeats allowed, as for a partial block
    bias = rng.standard_normal(channels).astype(dtype)
    acc = np.full(ob * width, np.nan, dtype)
    _tile_caller(ob, v)(acc, x, 7, off, w, ch, bias, n_items)
    want = _tile_formula(x, 7, off, w, ch, bias, n_items, width)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(acc.reshape(ob, width), want, rtol=tol, atol=tol * n_items)


def test_tile_is_exact_on_integer_data_and_keeps_the_bias_with_no_items(rng):
    call = _tile_caller(4, 4)
    x = rng.integers(-8, 9, 300).astype(np.float32)
    w = rng.integers(-8, 9, 3 * 20).astype(np.float32)
    off = rng.integers(0, 200, 20).astype(np.int64)
    ch, bias = np.array([0, 1, 2, 2]), np.array([1.0, -2.0, 3.0], np.float32)
    acc = np.empty(4 * 64, np.float32)
    call(acc, x, 0, off, w, ch, bias, 20)
    assert np.array_equal(acc.reshape(4, 64), _tile_formula(x, 0, off, w, ch, bias, 20, 64))
    call(acc, x, 0, off, w, ch, bias, 0)
    assert np.array_equal(acc.reshape(4, 64), np.repeat(bias[ch][:, None], 64, axis=1))


@numba.njit
def _copy_caller(dst, d0, src, s0, count):
    _vector_tile.copy_run(dst, d0, src, s0, count)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_copy_run_copies_exactly_the_run_for_every_length(dtype):
    src = np.arange(100, dtype=dtype)
    for count in [0, 1, 7, 8, 15, 16, 17, 31, 33, 64, 70, -3]:
        dst = np.full(100, -1, dtype)
        _copy_caller(dst, 5, src, 3, count)
        want = np.full(100, -1, dtype)
        want[5:5 + max(count, 0)] = src[3:3 + max(count, 0)]
        assert np.array_equal(dst, want), count


def test_numba_cpu_scratch_is_per_thread_and_results_do_not_share_it(rng):
    """The padded-input copy is reused by the next call of the same thread: results from two
    threads calling at once, and from calls of different sizes, stay right and distinct."""
    shapes = [((2, 8, 12, 12), (8, 8, 3, 3)), ((1, 16, 20, 20), (16, 4, 3, 3))]
    cases = []
    for x_shape, w_shape in shapes:
        groups = x_shape[1] // w_shape[1]
        spec = Conv2dSpec.from_shapes(x_shape, w_shape, padding=1, groups=groups)
        x, w = rng.standard_normal(x_shape, dtype=np.float32), rng.standard_normal(w_shape, dtype=np.float32)
        cases.append((spec, x, w, numba_cpu.conv2d(x, w, None, spec)))
    results, errors = {}, []

    def worker(i):
        try:
            out = [numba_cpu.conv2d(x, w, None, spec) for spec, x, w, _ in cases for _ in range(20)]
            results[i] = out
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for out in results.values():
        for k, y in enumerate(out):
            assert np.array_equal(y, cases[k // 20][3])
    assert results[0][0] is not results[0][1]
