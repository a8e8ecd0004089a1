"""fft against torch on every declared feature, its overlap-save tiling, and its error model."""

import numpy as np
import pytest

import harness
from impls import fft

from conftest import assert_close, case_id as ids, make_case as make

BACKEND = "fft"

# (x_shape, w_shape, bias, kwargs): every declared feature, small and large kernels
CASES = [
    ((2, 4, 9, 10), (6, 4, 3, 3), True, dict(padding=1)),
    ((2, 4, 11, 10), (6, 4, 3, 2), False, dict(stride=(2, 3), padding=(1, 2), dilation=(2, 1))),
    ((1, 4, 10, 9), (6, 2, 2, 3), True, dict(groups=2, padding="same", dilation=(3, 1))),
    ((2, 4, 8, 8), (8, 1, 3, 3), True, dict(groups=4, padding=1, padding_mode="reflect")),
    ((1, 3, 7, 6), (5, 3, 3, 3), False, dict(padding=(2, 1), padding_mode="replicate")),
    ((2, 3, 6, 7), (4, 3, 3, 3), True, dict(padding=2, padding_mode="circular", stride=2)),
    ((3, 8, 5, 6), (4, 8, 1, 1), True, {}),
    ((1, 4, 24, 20), (4, 4, 15, 15), True, dict(padding=7)),
    ((2, 2, 40, 40), (3, 2, 21, 9), False, dict(padding=(10, 4), stride=(1, 2))),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=ids)
def test_matches_torch(case, dtype):
    x, w, b, kwargs = make(case, dtype)
    y = harness.conv2d(x, w, b, backend=BACKEND, **kwargs)
    assert_close(y, x, w, b, error_model="fft", **kwargs)


@pytest.mark.parametrize("case", [CASES[0], CASES[7]], ids=ids)
def test_error_model_rejects_a_flipped_kernel_and_a_shift(case):
    x, w, b, kwargs = make(case, "float32")
    flipped = harness.conv2d(x, np.ascontiguousarray(w[..., ::-1, ::-1]), b, backend=BACKEND, **kwargs)
    with pytest.raises(AssertionError, match="out of bound"):
        assert_close(flipped, x, w, b, error_model="fft", **kwargs)
    shifted = np.roll(harness.conv2d(x, w, b, backend=BACKEND, **kwargs), 1, axis=-1)
    with pytest.raises(AssertionError, match="out of bound"):
        assert_close(shifted, x, w, b, error_model="fft", **kwargs)


@pytest.mark.parametrize("budget_mb", [0.003, 0.05])
def test_overlap_save_tiles_within_budget(monkeypatch, budget_mb):
    case = ((2, 3, 70, 65), (4, 3, 5, 5), True, dict(padding=2, stride=(1, 2), dilation=(1, 2)))
    x, w, b, kwargs = make(case, "float64")
    monkeypatch.setattr(fft, "BUDGET_MB", budget_mb)
    spec, _ = harness.conv2d_spec(x, w, b, **kwargs)
    p = fft.plan(fft.polyphase(np.zeros(spec.x_shape), w, spec)[2])
    assert p.nth * p.ntw > 1  # really tiled
    assert_close(harness.conv2d(x, w, b, backend=BACKEND, **kwargs), x, w, b, error_model="fft", **kwargs)


def test_large_image_is_tiled_even_without_a_budget():
    spec = harness.Conv2dSpec.from_shapes((1, 16, 512, 512), (16, 16, 3, 3), padding=1)
    p = fft.plan(spec)
    assert p.nth * p.ntw > 1 and p.Lh <= 256


def test_non_contiguous_empty_and_unbatched():
    x, w, b, kwargs = make(CASES[1], "float32")
    x_nc = np.asfortranarray(x)
    np.testing.assert_array_equal(
        harness.conv2d(x_nc, w, b, backend=BACKEND, **kwargs), harness.conv2d(x, w, b, backend=BACKEND, **kwargs)
    )
    assert harness.conv2d(x[:0], w, b, backend=BACKEND, **kwargs).shape[0] == 0
    y = harness.conv2d(x[0], w, b, backend=BACKEND, **kwargs)
    assert_close(y, x[0], w, b, error_model="fft", **kwargs)


def test_deterministic_and_inputs_unchanged():
    x, w, b, kwargs = make(CASES[0], "float32")
    copies = [a.copy() for a in (x, w, b)]
    spec, _ = harness.conv2d_spec(x, w, b, **kwargs)
    first = fft.conv2d(x, w, b, spec)  # writeable arrays straight to the backend
    for before, after in zip(copies, (x, w, b)):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(fft.conv2d(x, w, b, spec), first)


def test_verify_passes():
    report = harness.verify(BACKEND, cases=150, seed=0)
    failed = report[report["status"].isin(["failed", "error"])]
    assert failed.empty, failed[["message"]].to_string()


def test_a_weight_spectrum_too_big_for_memory_is_refused_up_front():
    # DeepLab's ASPP at output stride 8 (rate 24): a 49x49 dilated kernel on 2048 channels needs
    # a weight spectrum far beyond the budget; the call is refused before anything is allocated
    from impls import fft

    spec = harness.Conv2dSpec.from_shapes((1, 2048, 65, 65), (256, 2048, 3, 3), padding=24, dilation=24)
    assert fft.workspace_bytes("conv2d", spec) > 24 * 2**30
    x, w = np.ones(spec.x_shape, np.float32), np.ones(spec.w_shape, np.float32)
    with pytest.raises(harness.ResourceLimit, match="would need about"):
        harness.conv2d(x, w, padding=24, dilation=24, backend="fft")
    small = harness.Conv2dSpec.from_shapes((1, 64, 64, 64), (64, 64, 15, 15), padding=7)
    assert 0 < fft.workspace_bytes("conv2d", small) <= 2 * fft.budget_bytes()
