"""float16 and bfloat16: declared per backend, summed in float32 and rounded once, held to the
mixed-precision bound, and a half-precision accumulator is caught."""

import ml_dtypes
import numpy as np
import pytest

import harness
from harness.cli import main
from harness.ops.args import HALF_DTYPES, accumulation_dtype
from harness.ops.cases.conv2d import Conv2dCase
from harness.ops.tolerance import UNIT_ROUNDOFF, gamma, half_output_bound, unit
from harness.verify.mutants import kill_report

HALF_BACKENDS = ["naive", "im2col", "torch", "numba_cpu", "fft"]


def _arrays(dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 16, 7, 6)).astype(dtype)
    w = rng.standard_normal((5, 16, 3, 3)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    return x, w, b


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("backend", HALF_BACKENDS)
def test_half_precision_conv2d_is_the_float32_sum_rounded_once(backend, dtype):
    declared = harness.get_backend(backend)
    if not declared.available:
        pytest.skip(declared.reason)
    x, w, b = _arrays(dtype)
    y = harness.conv2d(x, w, b, padding=1, backend=backend)
    assert y.dtype == np.dtype(dtype)
    exact = harness.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), padding=1,
                           backend="naive")
    magnitude = harness.conv2d(np.abs(x).astype(np.float64), np.abs(w).astype(np.float64),
                               np.abs(b).astype(np.float64), padding=1, backend="naive")
    bound = half_output_bound(dtype, gamma(dtype, 16 * 9 + 1, magnitude), exact)
    assert np.all(np.abs(y.astype(np.float64) - exact) <= bound)


def test_a_backend_that_does_not_declare_a_dtype_refuses_it():
    harness.register_backend("f32_only", conv2d=lambda x, w, b, spec: np.zeros(spec.out_shape, spec.dtype))
    try:
        x, w, _ = _arrays("float16")
        with pytest.raises(harness.Unsupported, match="does not support dtype float16"):
            harness.conv2d(x, w, backend="f32_only")
    finally:
        harness.unregister_backend("f32_only")
    assert "float16" not in harness.get_backend("winograd").dtypes  # winograd declares none


def test_half_bound_is_the_float32_sum_plus_one_rounding_of_the_output():
    assert accumulation_dtype("bfloat16") == "float32" and unit("float16") == unit("float32")
    A, y = np.array([10.0]), np.array([-3.0])
    assert half_output_bound("float32", gamma("float32", 9, A), y) == gamma("float32", 9, A)
    extra = half_output_bound("bfloat16", gamma("bfloat16", 9, A), y) - gamma("bfloat16", 9, A)
    assert extra[0] == pytest.approx(UNIT_ROUNDOFF["bfloat16"] * 3.0, rel=1e-6)
    assert half_output_bound("float16", 0.0, y) == 0.0  # exact ops (maxima) round nothing


def test_torch_backend_takes_bfloat16_bit_for_bit():
    pytest.importorskip("torch")
    from impls._torch_ops import to_numpy, to_tensor

    a = np.random.default_rng(1).standard_normal((3, 4)).astype(ml_dtypes.bfloat16)
    back = to_numpy(to_tensor(a[:, ::2]))
    assert back.dtype == a.dtype and np.array_equal(back.view(np.uint16), a[:, ::2].view(np.uint16))


def test_verifier_draws_half_cases_and_correct_backends_pass():
    report = harness.verify("im2col", cases=16, seed=3, table=False, scale=False, dtypes=HALF_DTYPES)
    assert set(report.dtype) == set(HALF_DTYPES)
    assert (report.status != "failed").all(), report[report.status == "failed"].message.tolist()


def test_exact_fill_is_bit_exact_in_half_precision():
    case = Conv2dCase((1, 130, 4, 4), (3, 130, 3, 3), bias=True, padding=1, fill="exact", dtype="bfloat16")
    result = harness.check_case("im2col", case)
    assert result.status == "passed" and result.message == "bit-exact"


def test_half_precision_accumulation_mutant_is_caught():
    report = kill_report(cases=20, names=["half_precision_accumulation"], table=False, scale=False)
    assert report.killed.all(), report.to_string()
    assert "out of bound" in report.first_failure.iloc[0]


def test_verify_command_selects_dtypes(tmp_path, capsys):
    out = tmp_path / "v.csv"
    code = main(["verify", "--backend", "naive", "--dtype", "bfloat16", "--cases", "4", "--no-scale",
                 "--no-progress", "--out", str(out)])
    assert code == 0
    import pandas as pd

    assert set(pd.read_csv(out).dtype) == {"bfloat16"}
