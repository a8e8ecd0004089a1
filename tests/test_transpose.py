"""conv_transpose2d: torch's semantics and rules, the lowering onto conv2d, and the registry's record of it."""

import numpy as np
import pytest

import harness
from harness.ops import metrics
from harness.ops.cases.transpose import ConvTranspose2dCase
from harness.ops.table import OPS
from harness.backend.registry import register_backend, unregister_backend
from harness.ops.transpose_spec import ConvTranspose2dSpec
from impls.torch import load_torch

from conftest import backend_params


def test_worked_example_scatters_the_kernel():
    # each input pixel pastes the kernel, scaled by itself, at stride-2 steps
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    w = np.array([[[[1.0, 10.0], [100.0, 1000.0]]]])
    expected = np.array([[1, 10, 2, 20], [100, 1000, 200, 2000], [3, 30, 4, 40], [300, 3000, 400, 4000]])
    for backend in ("naive", "torch", "naive:lowered", "torch:lowered"):
        y = harness.conv_transpose2d(x, w, stride=2, backend=backend)
        np.testing.assert_array_equal(y[0, 0], expected, err_msg=backend)


@pytest.mark.parametrize("backend", backend_params())
def test_every_backend_passes_the_table_and_random_cases(backend):
    report = harness.verify(backend, op="conv_transpose2d", cases=12, seed=5)
    failed = report[report.status == "failed"]
    assert failed.empty, failed[["case", "message"]].to_string()
    declared = harness.get_backend(backend)
    if declared.exact:  # the exact-integer cases ran bit for bit
        assert report.exact.any()


@pytest.mark.parametrize("backend", ["naive", "torch"])
def test_lowered_path_is_verified_too(backend):
    report = harness.verify(f"{backend}:lowered", op="conv_transpose2d", cases=25, seed=2, table=False)
    assert (report.status == "passed").mean() > 0.9, report.status.value_counts()
    assert not (report.status == "failed").any()


@pytest.mark.parametrize("H,K,s,p,op,d", [(5, 3, 2, 1, 1, 1), (4, 2, 2, 0, 0, 1), (3, 3, 3, 2, 2, 1),
                                          (6, 3, 1, 0, 1, 2), (1, 1, 1, 0, 0, 1), (7, 4, 3, 3, 0, 2)])
def test_output_size_formula_matches_torch(H, K, s, p, op, d):
    torch = load_torch()
    x, w = torch.zeros(1, 2, H, H + 1), torch.zeros(2, 3, K, K)
    want = torch.nn.functional.conv_transpose2d(x, w, stride=s, padding=p, output_padding=op, dilation=d).shape
    spec = ConvTranspose2dSpec.from_shapes((1, 2, H, H + 1), (2, 3, K, K), stride=s, padding=p,
                                           output_padding=op, dilation=d)
    assert spec.out_shape == tuple(want)


ERRORS = [
    (dict(stride=2, output_padding=2), ValueError, "output_padding must be smaller than stride or dilation"),
    (dict(stride=1, dilation=1, output_padding=1), ValueError, "output_padding must be smaller"),
    (dict(padding=5), ValueError, "too small"),
    (dict(padding=-1), ValueError, "padding must be non-negative"),
    (dict(stride=0), ValueError, "stride must be positive"),
    (dict(groups=3), ValueError, "not divisible by groups"),
    (dict(groups=0), ValueError, "groups must be a positive integer"),
    (dict(stride=1.5), TypeError, "stride must be an int"),
]


@pytest.mark.parametrize("kwargs,error,match", ERRORS, ids=[e[2][:30] for e in ERRORS])
def test_invalid_arguments_fail_with_actionable_errors(kwargs, error, match):
    x, w = np.zeros((1, 4, 4, 4)), np.zeros((4, 2, 3, 3))
    with pytest.raises(error, match=match):
        harness.conv_transpose2d(x, w, **kwargs)


def test_weight_layout_and_bias_are_checked():
    x = np.zeros((1, 4, 4, 4))
    with pytest.raises(ValueError, match="C=4 input channels first"):
        harness.conv_transpose2d(x, np.zeros((3, 4, 3, 3)))
    with pytest.raises(ValueError, match=r"bias must have shape \(6,\)"):
        harness.conv_transpose2d(x, np.zeros((4, 3, 3, 3)), np.zeros(3), groups=2)
    with pytest.raises(TypeError, match="same dtype"):
        harness.conv_transpose2d(x, np.zeros((4, 3, 3, 3), np.float32))


def test_inputs_are_never_modified_and_unbatched_works():
    case = ConvTranspose2dCase((3, 5, 5), (3, 2, 3, 3), bias=True, stride=2, layout="strided")
    x, w, b = case.arrays()
    saved = [a.copy() for a in (x, w, b)]
    for backend in ("naive", "torch", "torch:lowered"):
        y = harness.conv_transpose2d(x, w, b, stride=2, backend=backend)
        assert y.shape == (2, 11, 11)
    for now, before in zip((x, w, b), saved):
        np.testing.assert_array_equal(now, before)


def test_transposed_conv_has_the_macs_of_its_forward_pair():
    spec = ConvTranspose2dSpec.from_shapes((2, 8, 5, 6), (8, 3, 3, 3), stride=2, padding=1, output_padding=1,
                                           groups=2, bias=True)
    pair = metrics.transpose_forward_pair(spec)
    assert pair.out_shape == (2, 8, 5, 6)  # the forward conv maps the transposed output back to x's shape
    assert metrics.transpose_macs(spec) == metrics.macs(pair) == 2 * 8 * 5 * 6 * 3 * 9
    assert metrics.transpose_flops(spec) == 2 * metrics.macs(pair) + 2 * 6 * spec.OH * spec.OW
    assert metrics.transpose_params(spec) == 8 * 3 * 9 + 6


def test_receptive_field_through_pooling_and_transposed_layers():
    two_convs_and_pool = [("conv", 3, 1, 1, 1), ("pool", 2, 2, 1, 0), ("conv", 3, 1, 1, 1)]
    assert metrics.receptive_field_through(two_convs_and_pool) == \
        metrics.receptive_field([(3, 1, 1, 1), (2, 2, 1, 0), (3, 1, 1, 1)])
    up = metrics.receptive_field_through([("pool", 2, 2, 1, 0), ("transpose", 2, 2, 1, 0)])
    assert up.size == 2 and up.jump == 1  # down then up: back on the input grid, 2 pixels per unit
    from fractions import Fraction

    assert metrics.receptive_field_through([("transpose", 3, 2, 1, 1)]).jump == Fraction(1, 2)


# -- the registry's record of lowerings -----------------------------------------------------------------
def test_every_backend_with_conv2d_has_every_lowered_op():
    for b in harness.backends():
        if "conv2d" not in b.ops:
            continue
        for op in ("conv_transpose2d", "conv2d_backward", "spatially_separable_conv2d"):
            assert b.op_impl(op) in ("native", "lowered"), (b.name, op)
    assert harness.get_backend("torch").op_impl("conv_transpose2d") == "native"
    assert harness.get_backend("torch:lowered").op_impl("conv_transpose2d") == "lowered"
    assert harness.get_backend("naive").op_impl("max_pool2d") == "native"
    # native kernels where they pay: col2im (im2col), FFT grad_weight (fft)
    assert harness.get_backend("im2col").op_impl("conv_transpose2d") == "native"
    assert harness.get_backend("im2col:lowered").op_impl("conv_transpose2d") == "lowered"
    assert harness.get_backend("fft").op_impl("conv2d_backward") == "native"


def test_a_user_backend_with_only_conv2d_gets_the_family():
    from impls.naive import conv2d

    declared = register_backend("only_conv", conv2d=conv2d, features={"conv2d": {"stride", "dilation", "bias"}})
    try:
        assert declared.lowered >= {"conv_transpose2d", "conv2d_backward"}
        assert "depthwise_separable_conv2d" not in declared.ops  # it needs a depthwise conv2d
        # lowered features follow from what the conv2d declares
        assert declared.features["conv_transpose2d"] == {"stride", "padding", "asymmetric_padding", "output_padding",
                                                         "dilation", "bias"}
        x, w = np.ones((1, 2, 3, 3)), np.ones((2, 2, 2, 2))
        np.testing.assert_allclose(harness.conv_transpose2d(x, w, stride=2, backend="only_conv"),
                                   harness.conv_transpose2d(x, w, stride=2, backend="torch"))
        with pytest.raises(harness.Unsupported, match="groups"):
            harness.conv_transpose2d(np.ones((1, 4, 3, 3)), np.ones((4, 1, 2, 2)), groups=2, backend="only_conv")
    finally:
        unregister_backend("only_conv")
    assert {name for name, op in OPS.items() if op.lowering} <= set(harness.backend.registry.OP_FEATURES)


def test_convbench_backends_shows_native_and_lowered(capsys):
    from harness.cli import main

    assert main(["backends", "--op", "conv_transpose2d"]) == 0
    out = capsys.readouterr().out
    assert "ops, native or lowered" in out and "implementation" in out
    # the op matrix's row, over every block the table is split into to fit the terminal
    marks = [mark for line in out.split("ops, native or lowered")[-1].splitlines()
             if line.startswith("conv_transpose2d ") for mark in line.split()[1:]]
    assert set(marks) == {"N", "L"}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("backend", ["naive", "torch", "torch:lowered", "im2col", "im2col:lowered"])
def test_large_sweep(backend, seed):
    report = harness.verify(backend, op="conv_transpose2d", cases=400, seed=seed)
    failed = report[report.status == "failed"]
    assert failed.empty, failed[["case", "message"]].to_string()


def test_verifier_catches_a_wrong_transposed_conv():
    from impls._naive_ops import conv_transpose2d as right

    def unflipped(x, w, bias, spec):  # a classic slip: correlate instead of scattering the kernel
        return right(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), bias, spec)

    register_backend("mutant_transpose", conv_transpose2d=unflipped, exact=True)
    try:
        report = harness.verify("mutant_transpose", op="conv_transpose2d", cases=10, seed=0)
        assert (report.status == "failed").sum() > 10
        assert report.minimal.any() and "ConvTranspose2dCase" in report[report.minimal].reproducer.iloc[0]
    finally:
        unregister_backend("mutant_transpose")


def test_convbench_verify_op_checks_native_and_lowered_paths(tmp_path, capsys):
    import pandas as pd

    from harness.cli import main

    out = tmp_path / "v.csv"
    code = main(["verify", "--backend", "torch", "--op", "conv_transpose2d", "--lowered", "--cases", "2",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    report = pd.read_csv(out)
    assert set(report.backend) == {"torch", "torch:lowered"} and set(report.op) == {"conv_transpose2d"}
    assert (report.status == "passed").all()
    assert main(["verify", "--backend", "torch", "--op", "no_such_op", "--out", str(out)]) == 2
    assert "known ops" in capsys.readouterr().err
