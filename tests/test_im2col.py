"""im2col against torch on every declared feature, its tiling, and its exactness claims."""

import numpy as np
import pytest

import harness
from impls import im2col

from conftest import assert_close, case_id as ids, make_case as make

BACKEND = "im2col"

# (x_shape, w_shape, bias, kwargs): every feature im2col declares, and both GEMM layouts
CASES = [
    ((2, 4, 9, 10), (6, 4, 3, 3), True, dict(padding=1)),
    ((2, 4, 11, 10), (6, 4, 3, 2), False, dict(stride=(2, 3), padding=(1, 2), dilation=(2, 1))),
    ((1, 4, 10, 9), (6, 2, 2, 3), True, dict(groups=2, padding="same", dilation=(3, 1))),
    ((2, 4, 8, 8), (8, 1, 3, 3), True, dict(groups=4, padding=1, padding_mode="reflect")),
    ((1, 3, 7, 6), (5, 3, 3, 3), False, dict(padding=(2, 1), padding_mode="replicate")),
    ((2, 3, 6, 7), (4, 3, 3, 3), True, dict(padding=2, padding_mode="circular")),
    ((3, 8, 5, 6), (4, 8, 1, 1), True, {}),
    ((2, 8, 9, 9), (4, 4, 1, 1), False, dict(stride=2, groups=2)),
    ((4, 6, 5, 5), (6, 3, 3, 3), True, dict(groups=2)),  # few positions: one wide GEMM
    # the packing's paths (impls/_im2col_pack.py): exact rows (wide output), stride phases with
    # exact rows and with extended runs, and a wide GEMM of exact rows
    ((1, 2, 6, 40), (3, 2, 3, 3), True, dict(padding=1)),
    ((1, 2, 9, 70), (3, 2, 3, 3), False, dict(stride=2, padding=1, padding_mode="replicate")),
    ((2, 3, 13, 12), (4, 3, 3, 3), True, dict(stride=2, dilation=2, padding=2, padding_mode="reflect")),
    ((3, 2, 4, 34), (70, 2, 1, 3), False, dict(padding=(0, 1))),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=ids)
def test_matches_torch(case, dtype):
    x, w, b, kwargs = make(case, dtype)
    assert_close(harness.conv2d(x, w, b, backend=BACKEND, **kwargs), x, w, b, **kwargs)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_integer_data_is_bit_exact(case):
    x, w, b, kwargs = make(case, "float32")
    x, w = np.round(4 * x), np.round(4 * w)
    b = None if b is None else np.round(4 * b)
    expected = harness.conv2d(x, w, b, backend="naive", **kwargs)
    np.testing.assert_array_equal(harness.conv2d(x, w, b, backend=BACKEND, **kwargs), expected)


@pytest.mark.parametrize("kwargs", [dict(stride=2, dilation=(2, 1), padding=(3, 2)), dict(stride=(3, 1)),
                                    dict(padding=1, groups=2)])
def test_packed_columns_are_the_taps(kwargs):
    """Both packings give the taps' values; exact rows never read past a phase's extent, and
    extended runs read zeros there (junk columns stay finite: no NaN or denormal in the GEMM)."""
    from impls import _im2col_pack

    x = np.random.default_rng(3).standard_normal((2, 4, 11, 13)).astype(np.float32)
    spec, _ = harness.conv2d_spec(x, np.zeros((4, 4 // kwargs.get("groups", 1), 3, 3), np.float32), **kwargs)
    xp = _im2col_pack.padded(x, spec)
    clean = _im2col_pack.source(x, spec)
    src = np.array(clean)
    if _im2col_pack.splits_phases(spec):  # poison what lies past each phase's extent
        (sh, sw), (hp, wp) = spec.stride, xp.shape[2:]
        phases = src.reshape(2, 4, sh, sw, -(-hp // sh), -(-wp // sw))
        for a in range(sh):
            phases[:, :, a, :, -(-(hp - a) // sh):] = np.nan
        for b in range(sw):
            phases[:, :, :, b, :, -(-(wp - b) // sw):] = np.nan
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    taps = np.stack([xp[:, c, p * dh:p * dh + (spec.OH - 1) * sh + 1:sh, q * dw:q * dw + (spec.OW - 1) * sw + 1:sw]
                     for c in range(4) for p in range(3) for q in range(3)])  # (R, N, OH, OW)
    off, row_step, col_step = _im2col_pack.layout(spec)
    cols = np.empty((len(off), 2 * 2 * spec.OW), np.float32)  # output rows 1:3 of both images
    _im2col_pack.pack(src, off, row_step, col_step, spec.OW, 1, 3, cols)
    np.testing.assert_array_equal(cols, taps[:, :, 1:3].reshape(len(off), -1))
    if col_step == 1:
        runs = np.empty((len(off), 2 * 2 * row_step), np.float32)
        _im2col_pack.pack_runs(clean, off, row_step, spec.OW, 1, 3, runs)
        runs = runs.reshape(len(off), 2, 2, row_step)
        np.testing.assert_array_equal(runs[..., :spec.OW], taps[:, :, 1:3])
        assert np.isfinite(runs).all()  # the junk columns too: they pass through the GEMM


def test_non_contiguous_input_and_weight():
    x, w, b, kwargs = make(CASES[1], "float32")
    x_nc = np.asfortranarray(x)[:, ::-1][:, ::-1]  # same values, Fortran-ordered strides
    w_nc = np.ascontiguousarray(w[..., ::-1])[..., ::-1]  # negative strides
    assert not x_nc.flags.c_contiguous and w_nc.strides[-1] < 0
    np.testing.assert_array_equal(
        harness.conv2d(x_nc, w_nc, b, backend=BACKEND, **kwargs), harness.conv2d(x, w, b, backend=BACKEND, **kwargs)
    )


def test_plain_gemm_on_non_contiguous_input():
    x = np.random.default_rng(1).standard_normal((3, 10, 8, 8)).astype(np.float32)[:, ::2]
    w = np.random.default_rng(2).standard_normal((4, 5, 1, 1)).astype(np.float32)
    assert_close(harness.conv2d(x, w, backend=BACKEND), x, w)


def test_empty_batch_and_unbatched_input():
    x, w, b, kwargs = make(CASES[3], "float64")
    assert harness.conv2d(x[:0], w, b, backend=BACKEND, **kwargs).shape == (0, 8, 8, 8)
    y = harness.conv2d(x[0], w, b, backend=BACKEND, **kwargs)
    np.testing.assert_array_equal(y, harness.conv2d(x[:1], w, b, backend=BACKEND, **kwargs)[0])


@pytest.mark.parametrize("budget_mb", [0.002, 0.02, 0.06])
def test_memory_budget_tiles(monkeypatch, budget_mb):
    case = ((3, 6, 20, 17), (8, 6, 3, 3), True, dict(padding=1, stride=(1, 2)))
    x, w, b, kwargs = make(case, "float32")
    spec, _ = harness.conv2d_spec(x, w, b, **kwargs)
    monkeypatch.setattr(im2col, "BUDGET_MB", budget_mb)
    tiles = list(im2col._tiles(spec, im2col.budget_bytes()))
    assert len(tiles) > 1  # really tiled: by images at 0.06 MB, by output rows below
    row_bytes = spec.C * spec.KH * spec.KW * spec.OW * 4
    assert all((n1 - n0) * (i1 - i0) * row_bytes <= max(im2col.budget_bytes(), row_bytes) for n0, n1, i0, i1 in tiles)
    assert_close(harness.conv2d(x, w, b, backend=BACKEND, **kwargs), x, w, b, **kwargs)
    assert im2col._block_count(spec, im2col.budget_bytes()) == len(tiles)  # what auto's cost model counts


def test_the_cost_model_counts_the_blocks_and_the_weights_each_packs():
    from harness.ops.conv_spec import Conv2dSpec

    for x_shape, w_shape, padding, stride in [((1, 32, 32, 32), (32, 32, 15, 15), 7, 1),
                                              ((8, 3, 224, 224), (64, 3, 7, 7), 3, 2),
                                              ((4, 64, 56, 56), (64, 64, 3, 3), 1, 1)]:
        spec = Conv2dSpec.from_shapes(x_shape, w_shape, padding=padding, stride=stride)
        blocks = len(list(im2col._tiles(spec, im2col.block_bytes(spec))))
        assert blocks > 1
        assert im2col.cost_features("conv2d", spec)["weight_reads"] == blocks * spec.O * spec.n_acc
    plain = Conv2dSpec.from_shapes((2, 64, 14, 14), (128, 64, 1, 1))  # one GEMM per image: weights packed once
    assert im2col.cost_features("conv2d", plain)["weight_reads"] == 128 * 64


def test_blocks_hold_enough_columns_within_the_last_level_cache(monkeypatch):
    from harness.ops.conv_spec import Conv2dSpec

    small = Conv2dSpec.from_shapes((1, 3, 224, 224), (64, 3, 7, 7), padding=3, stride=2)
    wide = Conv2dSpec.from_shapes((1, 64, 28, 28), (64, 64, 11, 11), padding=5)  # 7,744 rows of columns
    monkeypatch.setattr(im2col, "_last_level_cache_bytes", lambda: 32 * 2**20)
    assert im2col.block_bytes(small) == im2col._CACHE_BLOCK_BYTES
    assert im2col.block_bytes(wide) == 7744 * 4 * im2col._MIN_BLOCK_COLUMNS  # 512 columns: 15.1 MiB
    monkeypatch.setattr(im2col, "_last_level_cache_bytes", lambda: 8 * 2**20)
    assert im2col.block_bytes(wide) == 4 * 2**20  # at most half the cache
    monkeypatch.setattr(im2col, "_last_level_cache_bytes", lambda: None)
    assert im2col.block_bytes(wide) == 7744 * 4 * im2col._MIN_BLOCK_COLUMNS  # unknown: at most half of 32 MB


def test_budget_from_environment(monkeypatch):
    monkeypatch.setattr(im2col, "BUDGET_MB", None)
    monkeypatch.setenv("CONVBENCH_IM2COL_BUDGET_MB", "3")
    assert im2col.budget_bytes() == 3 * 2**20
    monkeypatch.setenv("CONVBENCH_IM2COL_BUDGET_MB", "0")
    with pytest.raises(ValueError, match="budget"):
        im2col.budget_bytes()


def test_deterministic_for_any_thread_count_and_inputs_unchanged():
    from threadpoolctl import threadpool_limits

    x, w, b, kwargs = make(CASES[0], "float32")
    copies = [a.copy() for a in (x, w, b)]
    spec, _ = harness.conv2d_spec(x, w, b, **kwargs)
    first = im2col.conv2d(x, w, b, spec)  # writeable arrays straight to the backend
    for before, after in zip(copies, (x, w, b)):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(im2col.conv2d(x, w, b, spec), first)
    with threadpool_limits(1):
        np.testing.assert_array_equal(im2col.conv2d(x, w, b, spec), first)


def test_verify_passes():
    verify = getattr(harness, "verify", None)
    if verify is None:
        pytest.skip("harness.verify is not available yet")
    report = verify(BACKEND, cases=150, seed=0)
    failed = report[report["status"].isin(["failed", "error"])]
    assert failed.empty, failed[["message"]].to_string()
