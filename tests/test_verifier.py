"""The verifier passes correct backends and catches each common kind of wrong one."""

import ast
import numpy as np
import pytest

import harness
from harness.ops.cases.conv2d import Conv2dCase, exact_term_limit, random_cases
from harness.ops.conv_spec import CONV2D_FEATURES
from harness.ops.padding import pad_input
from harness.verify.verifier import check_case, shrink
from impls.torch import conv2d_on

torch_conv2d = conv2d_on("cpu")


# CI checks one seed (the default budget's 500 cases, ~25 s for both); the other seeds are a sweep.
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)])
@pytest.mark.parametrize("backend", ["naive", "torch"])
def test_reference_backends_pass_500_cases(backend, seed):
    report = harness.verify(backend, cases=500, seed=seed, scale=False)  # the tier: tests/test_scale.py
    assert len(report) >= 500
    failed = report[report.status == "failed"]
    assert failed.empty, failed[["case", "message"]].to_string()
    assert (report.status == "passed").mean() > 0.95
    assert report.exact.sum() > 50  # the exact-integer mode really ran, bit for bit


def test_default_budget_reaches_every_feature_dtype_and_argument_form():
    cases = random_cases(CONV2D_FEATURES, ["float32", "float64"], 300, seed=0)
    hits = {f: sum(f in c.spec.features for c in cases) for f in CONV2D_FEATURES}
    assert min(hits.values()) >= 10, hits
    assert {c.dtype for c in cases} == {"float32", "float64"}
    for arg in ("stride", "dilation", "padding"):
        forms = {type(getattr(c, arg)).__name__ for c in cases}
        assert {"int", "tuple"} <= forms, (arg, forms)
    assert {c.padding for c in cases if isinstance(c.padding, str)} == {"same", "same_lower", "valid", "full"}
    assert any(isinstance(c.padding, tuple) and isinstance(c.padding[0], tuple) for c in cases)  # per side
    assert {c.fill for c in cases} == {"normal", "exact", "nan", "inf", "huge", "near_max", "tiny", "subnormal"}
    assert {c.layout for c in cases} == {"contiguous", "channels_last", "strided"}
    assert any(not c.batched for c in cases) and any(c.x_shape[0] == 0 for c in cases if c.batched)


def test_same_seed_same_cases_and_data():
    a = random_cases(CONV2D_FEATURES, ["float32"], 20, seed=7)
    b = random_cases(CONV2D_FEATURES, ["float32"], 20, seed=7)
    assert a == b
    for x, y in zip(a[3].arrays(), b[3].arrays()):
        np.testing.assert_array_equal(x, y)


def test_repr_is_a_reproducer():
    case = random_cases(CONV2D_FEATURES, ["float64"], 5, seed=3)[4]
    assert eval(repr(case), {"Conv2dCase": Conv2dCase}) == case


def test_exact_fill_sparsifies_long_reductions():
    spec_case = Conv2dCase((1, 2048, 3, 3), (2, 2048, 3, 3), fill="exact")
    x, w, b = spec_case.arrays()
    limit = exact_term_limit("float32")
    assert limit < 2048 * 9
    assert (np.count_nonzero(w.reshape(2, -1), axis=1) <= limit).all()
    bound = limit * 32 * 32 + 1024
    assert bound <= 2**24  # every partial sum stays exactly representable in float32


# -- mutants: plausible bugs planted in a correct backend -----------------------------------
def flipped_kernel(x, w, b, spec):
    return torch_conv2d(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), b, spec)


def padding_off_by_one(x, w, b, spec):
    xp = pad_input(x, spec)
    shifted = np.pad(xp, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]  # one row too many on top
    return torch_conv2d(shifted, w, b, spec.with_(padding=(0, 0, 0, 0), padding_mode="zeros",
                                                  H=xp.shape[2], W=xp.shape[3]))


def groups_mapped_wrongly(x, w, b, spec):
    g = spec.groups
    rolled = np.roll(w.reshape((g, -1) + w.shape[1:]), 1, axis=0).reshape(w.shape)
    return torch_conv2d(x, rolled, b, spec)


def bias_dropped(x, w, b, spec):
    return torch_conv2d(x, w, None, spec.with_(bias=False))


def stride_on_height_only(x, w, b, spec):
    sh, sw = spec.stride
    y = torch_conv2d(x, w, b, spec.with_(stride=(sh, 1)))
    return np.ascontiguousarray(y[..., : spec.OW])


def nan_to_zero(x, w, b, spec):
    return torch_conv2d(np.nan_to_num(x, nan=0.0), w, b, spec)


def last_row_cropped(x, w, b, spec):
    y = torch_conv2d(x, w, b, spec)
    y[:, :, -1:] = 0
    return y


MUTANTS = [flipped_kernel, padding_off_by_one, groups_mapped_wrongly, bias_dropped, stride_on_height_only,
           nan_to_zero, last_row_cropped]


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.__name__ for m in MUTANTS])
def test_verifier_catches_mutant(mutant):
    name = f"mutant_{mutant.__name__}"
    harness.register_backend(name, conv2d=mutant, replace=True)
    try:
        report = harness.verify(name, cases=100, seed=0)
        failed = report[report.status == "failed"]
        assert len(failed) > 0, f"{name} went undetected"
        assert failed.iloc[0].reproducer.startswith('python -c "import harness')
    finally:
        harness.unregister_backend(name)


def test_failure_shrinks_to_a_small_reproducer():
    harness.register_backend("mutant_flip", conv2d=flipped_kernel, replace=True)
    try:
        big = Conv2dCase((3, 6, 11, 9), (4, 3, 3, 3), bias=True, stride=2, padding=1, groups=2, layout="strided")
        assert check_case("mutant_flip", big).status == "failed"
        small = shrink("mutant_flip", big)
        assert check_case("mutant_flip", small).status == "failed"
        assert small.x_shape[0] == 1 and small.groups == 1 and not small.bias and small.layout == "contiguous"
        assert np.prod(small.x_shape) < np.prod(big.x_shape) / 10
    finally:
        harness.unregister_backend("mutant_flip")


def test_exact_claim_is_held_to_bit_exactness():
    def almost(x, w, b, spec):  # within any rounding bound, but not bit-exact
        y = torch_conv2d(x, w, b, spec)
        return y + np.where(y != 0, np.spacing(y), 0).astype(y.dtype)

    case = Conv2dCase((1, 3, 6, 6), (2, 3, 3, 3), padding=1, fill="exact")
    harness.register_backend("almost_exact", conv2d=almost, exact=True)
    harness.register_backend("almost_inexact", conv2d=almost, exact=False)
    try:
        assert check_case("almost_exact", case).status == "failed"
        assert check_case("almost_inexact", case).status == "passed"
    finally:
        harness.unregister_backend("almost_exact")
        harness.unregister_backend("almost_inexact")


def test_mostly_zero_output_is_mistrusted_not_passed():
    case = Conv2dCase((1, 1, 2, 2), (1, 1, 1, 1), padding=3)  # most outputs see only padding
    assert check_case("torch", case).status == "mistrusted"


def test_a_raising_backend_fails_with_the_exception_named():
    def broken(x, w, b, spec):
        raise ZeroDivisionError("oops")

    harness.register_backend("broken", conv2d=broken)
    try:
        result = check_case("broken", Conv2dCase((1, 1, 3, 3), (1, 1, 1, 1)))
        assert result.status == "failed" and "ZeroDivisionError: oops" in result.message
    finally:
        harness.unregister_backend("broken")


def test_undeclared_features_are_never_drawn():
    harness.register_backend("plain_only", conv2d=torch_conv2d, features=[], dtypes=["float64"])
    try:
        report = harness.verify("plain_only", cases=60, seed=0)
        random_rows = report[report.source == "random"]
        assert (random_rows.features == "").all() and (random_rows.dtype == "float64").all()
        assert (random_rows.status != "unsupported").all()
        table_rows = report[report.source == "table"]
        assert (table_rows.status == "unsupported").any()  # shown, with the reason
        assert (report.status != "failed").all()
    finally:
        harness.unregister_backend("plain_only")


def test_a_backend_that_hangs_is_skipped_after_the_time_limit():
    import time as _time

    def stuck(x, w, b, spec):
        while True:
            _time.sleep(0.01)

    harness.register_backend("stuck", conv2d=stuck)
    try:
        result = check_case("stuck", Conv2dCase((1, 1, 3, 3), (1, 1, 1, 1)), time_limit_s=0.3)
        assert result.status == "skipped" and "per-case limit of 0.3 s" in result.message
    finally:
        harness.unregister_backend("stuck")


def test_default_budget_reaches_every_possible_feature_pair():
    from harness.verify.coverage import coverage, coverage_line

    report = coverage(CONV2D_FEATURES, ["float32", "float64"], cases=300, seed=0)
    never = report[report.cases == 0].combination.tolist()
    assert not never, coverage_line(report)
    assert report[report["size"] == 1].cases.min() >= 10


def test_random_cases_are_drawn_within_declared_limits():
    def square_odd_only(op, spec):
        return None if spec.KH == spec.KW and spec.KH % 2 else f"kernel {spec.KH}x{spec.KW}: square and odd only"

    harness.register_backend("odd_squares", conv2d=torch_conv2d, limits=square_odd_only, replace=True)
    try:
        report = harness.verify("odd_squares", cases=60, seed=0, table=False)
        kernels = {tuple(ast.literal_eval(w)[2:]) for w in report.w_shape}
        assert len(report) == 60 and (report.status != "unsupported").all()
        assert all(kh == kw and kh % 2 for kh, kw in kernels) and len(kernels) > 1
        even = np.ones((1, 1, 4, 4), np.float32), np.ones((1, 1, 2, 2), np.float32)
        with pytest.raises(harness.Unsupported, match="square and odd only"):  # a direct call: refused
            harness.conv2d(*even, backend="odd_squares")
        from harness.verify.verifier import random_cases_within_limits

        declared = harness.get_backend("odd_squares")
        plain = harness.ops.table.op_info("conv2d").random_cases(declared.features["conv2d"], declared.dtypes,
                                                               600, 0, nonfinite=True)
        within = random_cases_within_limits(declared, "conv2d", 60, 0, nonfinite=True)
        assert [repr(c) for c in within] == [repr(c) for c in plain if square_odd_only("conv2d", c.spec) is None][:60]
    finally:
        harness.unregister_backend("odd_squares")
