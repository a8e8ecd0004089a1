"""winograd against torch for every tile size, what it refuses, and its error model."""

import numpy as np
import pytest

import harness
from impls import winograd

from conftest import assert_close, case_id as ids, make_case as make

BACKEND = "winograd"

# (x_shape, w_shape, bias, kwargs): 3x3 stride 1 with every declared feature; odd sizes
# leave partial last tiles, and a block test below forces several row / channel blocks
CASES = [
    ((2, 4, 9, 10), (6, 4, 3, 3), True, dict(padding=1)),
    ((1, 4, 10, 9), (6, 2, 3, 3), True, dict(groups=2, padding=(2, 0))),
    ((2, 4, 8, 8), (8, 1, 3, 3), True, dict(groups=4, padding=1, padding_mode="reflect")),
    ((1, 3, 7, 6), (5, 3, 3, 3), False, dict(padding=(2, 1), padding_mode="replicate")),
    ((2, 3, 6, 7), (4, 3, 3, 3), True, dict(padding="same", padding_mode="circular")),
    ((1, 16, 3, 3), (8, 16, 3, 3), False, {}),  # one output: a single, mostly empty tile
    ((1, 32, 14, 14), (16, 32, 3, 3), True, dict(padding=1)),
]


@pytest.mark.parametrize("tile", [2, 4, 6])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=ids)
def test_matches_torch(monkeypatch, case, dtype, tile):
    monkeypatch.setattr(winograd, "TILE", tile)
    x, w, b, kwargs = make(case, dtype)
    assert_close(harness.conv2d(x, w, b, backend=BACKEND, **kwargs), x, w, b, error_model="winograd", **kwargs)


@pytest.mark.parametrize("block_tiles, products", [(1, 1), (7, 2**10), (10**6, 2**30)])
def test_image_row_and_channel_blocks(monkeypatch, block_tiles, products):
    # tile rows of one image / several images / all at once; one, a few or all channels a job
    monkeypatch.setattr(winograd, "_BLOCK_TILES", block_tiles)
    monkeypatch.setattr(winograd, "_PRODUCT_BYTES", products)
    case = ((3, 6, 21, 18), (12, 3, 3, 3), True, dict(groups=2, padding=1))
    x, w, b, kwargs = make(case, "float64")
    spec, _ = harness.conv2d_spec(x, w, b, **kwargs)
    images, rows = winograd._blocks(spec, winograd.TRANSFORMS[winograd.choose_tile(spec)])
    assert len(images) * len(rows) > 1 or block_tiles == 10**6
    assert_close(harness.conv2d(x, w, b, backend=BACKEND, **kwargs), x, w, b, error_model="winograd", **kwargs)


@pytest.mark.parametrize("wide_channels", [128, 48])
def test_wide_blocks_take_wider_channel_jobs_and_stay_correct(monkeypatch, wide_channels):
    # 2 images of 28x28: 98 F(4x4) tiles, a wide block; 256 output channels: jobs of 128 (or 48, the
    # last one 16 wide) instead of 32
    monkeypatch.setattr(winograd, "_WIDE_CHUNK_CHANNELS", wide_channels)
    monkeypatch.setattr(winograd, "TILE", 4)
    case = ((2, 3, 28, 28), (256, 3, 3, 3), True, dict(padding=1))
    x, w, b, kwargs = make(case, "float64")
    assert winograd._channel_chunk(256, 36 * 98 * 8, 98) == wide_channels
    assert winograd._channel_chunk(256, 36 * 32 * 8, 32) == winograd._CHUNK_CHANNELS  # narrow: as before
    assert_close(harness.conv2d(x, w, b, backend=BACKEND, **kwargs), x, w, b, error_model="winograd", **kwargs)


@pytest.mark.parametrize("m", sorted(winograd.TRANSFORMS))
def test_each_transform_is_a_correlation_and_states_its_growth(m):
    t = winograd.TRANSFORMS[m]
    rng = np.random.default_rng(m)
    d, g = rng.standard_normal(t.alpha), rng.standard_normal(3)
    direct = np.array([d[i:i + 3] @ g for i in range(m)])
    np.testing.assert_allclose(t.AT @ ((t.G @ g) * (t.BT @ d)), direct, rtol=1e-12, atol=1e-12)
    assert t.growth == pytest.approx({2: 64 / 9, 4: 256.0, 6: 508.753}[m], rel=1e-5)


def test_the_rule_never_picks_a_tile_outside_auto_tiles():
    for n, c, h in [(1, 64, 224), (8, 64, 112), (1, 8, 4), (1, 512, 7)]:
        spec = harness.Conv2dSpec.from_shapes((n, c, h, h), (c, c, 3, 3), padding=1)
        assert winograd.choose_tile(spec) in winograd.AUTO_TILES


def test_tile_choice():
    def tile(n, c, h):
        return winograd.choose_tile(harness.Conv2dSpec.from_shapes((n, c, h, h), (c, c, 3, 3), padding=1))

    assert tile(1, 64, 56) == 4  # ResNet-50 res2: many tiles, weights cheap
    assert tile(8, 128, 28) == 4
    assert tile(1, 256, 14) == 4
    assert tile(1, 512, 7) == 2  # 4 tiles: the GEMMs would mostly stream 36/16 as many weights
    assert tile(1, 8, 4) == 2  # F(4x4) would compute one tile for 16 outputs


def test_error_model_separates_tiles_and_rejects_a_flipped_kernel(monkeypatch):
    x, w, b, kwargs = make(CASES[6], "float32")
    errors = {}
    for tile in (2, 4, 6):
        monkeypatch.setattr(winograd, "TILE", tile)
        y = harness.conv2d(x, w, b, backend=BACKEND, **kwargs)
        errors[tile] = np.abs(y - harness.conv2d(*(a.astype(np.float64) for a in (x, w, b)), **kwargs)).max()
        flipped = harness.conv2d(x, np.ascontiguousarray(w[..., ::-1, ::-1]), b, backend=BACKEND, **kwargs)
        with pytest.raises(AssertionError, match="out of bound"):
            assert_close(flipped, x, w, b, error_model="winograd", **kwargs)
    assert errors[4] > 2 * errors[2]  # F(4x4, 3x3) rounds worse, as the model says


@pytest.mark.parametrize(
    "w_shape, kwargs, match",
    [
        ((4, 3, 5, 3), {}, "winograd needs a 3x3 kernel, got 5x3"),
        ((4, 3, 1, 1), {}, "winograd needs a 3x3 kernel, got 1x1"),
        ((4, 3, 3, 3), dict(stride=2), "stride"),
        ((4, 3, 3, 3), dict(dilation=(1, 2)), "dilation"),
    ],
)
def test_unsupported_calls_name_the_feature(w_shape, kwargs, match):
    x = np.zeros((1, 3, 9, 9), np.float32)
    w = np.zeros(w_shape, np.float32)
    with pytest.raises(harness.Unsupported, match=match):
        harness.conv2d(x, w, backend=BACKEND, **kwargs)
    spec, _ = harness.conv2d_spec(x, w, **kwargs)
    with pytest.raises(harness.Unsupported, match=match):  # also when called directly
        winograd.conv2d(x, w, None, spec)


def test_non_contiguous_empty_and_unbatched():
    x, w, b, kwargs = make(CASES[0], "float32")
    x_nc = np.asfortranarray(x)
    np.testing.assert_array_equal(
        harness.conv2d(x_nc, w, b, backend=BACKEND, **kwargs), harness.conv2d(x, w, b, backend=BACKEND, **kwargs)
    )
    assert harness.conv2d(x[:0], w, b, backend=BACKEND, **kwargs).shape == (0, 6, 9, 10)
    assert_close(harness.conv2d(x[0], w, b, backend=BACKEND, **kwargs), x[0], w, b, error_model="winograd", **kwargs)


def test_deterministic_and_inputs_unchanged():
    x, w, b, kwargs = make(CASES[1], "float32")
    copies = [a.copy() for a in (x, w, b)]
    spec, _ = harness.conv2d_spec(x, w, b, **kwargs)
    first = winograd.conv2d(x, w, b, spec)  # writeable arrays straight to the backend
    for before, after in zip(copies, (x, w, b)):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(winograd.conv2d(x, w, b, spec), first)


def test_verify_passes():
    report = harness.verify(BACKEND, cases=150, seed=0)
    assert (report["status"] == "passed").sum() > 0
    failed = report[report["status"].isin(["failed", "error"])]
    assert failed.empty, failed[["message"]].to_string()


def test_weight_cache_reuses_only_identical_weights(monkeypatch):
    monkeypatch.setattr(winograd, "WEIGHT_CACHE", winograd._WeightCache())
    cache = winograd.WEIGHT_CACHE
    x, w, b, kwargs = make(CASES[6], "float32")
    w = w.copy()
    first = harness.conv2d(x, w, b, backend=BACKEND, **kwargs)
    assert (cache.hits, cache.misses) == (0, 1)
    np.testing.assert_array_equal(harness.conv2d(x, w.copy(), b, backend=BACKEND, **kwargs), first)
    assert (cache.hits, cache.misses) == (1, 1)  # same values in a new array: reused
    w[3, 5, 1, 2] = np.nextafter(w[3, 5, 1, 2], np.float32(np.inf))  # one bit, in place
    changed = harness.conv2d(x, w, b, backend=BACKEND, **kwargs)
    assert (cache.hits, cache.misses) == (1, 2)
    assert_close(changed, x, w, b, error_model="winograd", **kwargs)
    w[0], w[1] = w[1].copy(), w[0].copy()  # same values, other places
    assert_close(harness.conv2d(x, w, b, backend=BACKEND, **kwargs), x, w, b, error_model="winograd", **kwargs)
    assert cache.misses == 3
    for entry in cache._entries.values():
        assert not entry[0].flags.writeable  # (transformed weights, exponent)


def test_weight_cache_keeps_the_range_check_and_any_alignment(monkeypatch):
    # a hit skips the pass over the weights for their exponent: extreme inputs must still scale,
    # and weights at an address that is not 8-byte aligned are digested as 4-byte words
    monkeypatch.setattr(winograd, "WEIGHT_CACHE", winograd._WeightCache())
    cache = winograd.WEIGHT_CACHE
    x, w, b, kwargs = make(CASES[6], "float32")
    first = harness.conv2d(x, w, b, backend=BACKEND, **kwargs)
    huge = x * np.float32(2.0**100)  # the transforms would overflow float32 unscaled
    y = harness.conv2d(huge, w, b, backend=BACKEND, **kwargs)
    assert (cache.hits, cache.misses) == (1, 1) and np.isfinite(y).all()
    assert_close(y, huge, w, b, error_model="winograd", **kwargs)
    shifted = np.empty(w.size + 1, np.float32)[1:].reshape(w.shape)
    shifted[...] = w
    assert shifted.ctypes.data % 8 == 4
    for _ in range(2):
        np.testing.assert_array_equal(harness.conv2d(x, shifted, b, backend=BACKEND, **kwargs), first)
    assert (cache.hits, cache.misses) == (2, 2)


def test_weight_cache_is_bounded_and_can_be_switched_off(monkeypatch):
    monkeypatch.setattr(winograd, "WEIGHT_CACHE", winograd._WeightCache())
    t = winograd.TRANSFORMS[2]
    ws = [np.full((4, 4, 3, 3), i, np.float64) for i in range(3)]
    one = 16 * 4 * 4 * 8  # bytes of one transformed set
    monkeypatch.setattr(winograd, "WEIGHT_CACHE_BYTES", 2 * one)
    for w in ws:
        winograd.transformed_weights(w, t)
    assert len(winograd.WEIGHT_CACHE._entries) == 2  # the oldest was dropped
    winograd.transformed_weights(ws[0], t)
    assert winograd.WEIGHT_CACHE.misses == 4
    monkeypatch.setattr(winograd, "WEIGHT_CACHE_BYTES", 0)
    U = winograd.transformed_weights(ws[1], t)
    assert U.flags.writeable and winograd.WEIGHT_CACHE.hits == 0  # off: transformed afresh


def test_fingerprint_sees_every_word_and_its_place():
    from impls._winograd_kernels import fingerprint

    words = np.random.default_rng(0).integers(0, 2**32, 200_003, dtype=np.uint64).astype(np.uint32)
    base = fingerprint(words)
    assert fingerprint(words.copy()) == base
    for i in (0, 65_535, 65_536, 200_002):  # chunk edges too
        changed = words.copy()
        changed[i] ^= 1
        assert fingerprint(changed) != base
    swapped = words.copy()
    swapped[[10, 20]] = swapped[[20, 10]]
    assert fingerprint(swapped) != base


def test_blas_threads_restored_after_a_call():
    from threadpoolctl import threadpool_info, threadpool_limits

    x, w, b, kwargs = make(CASES[6], "float32")
    with threadpool_limits(2, user_api="blas"):
        harness.conv2d(x, w, b, backend=BACKEND, **kwargs)
        assert {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"} == {2}
