"""The 1-D and 3-D ops: torch semantics, every serving path (native and lowered), the verifier
catching a planted bug, counts, and the new suites. Small shapes; the sweeps are the verifier's.
"""

import dataclasses

import numpy as np
import pytest

import harness
from harness.bench.runner import op_spec, prepare
from harness.ops.metrics_nd import stack_receptive_field
from harness.ops.table import OPS, op_info
from harness.suites import layers

torch = pytest.importorskip("torch")
F = torch.nn.functional

ND_OPS = [name for name in OPS if any(tag in name for tag in ("1d", "3d"))]


def _rng_arrays(*shapes, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def test_there_are_fourteen_new_ops_and_every_one_is_a_public_function():
    assert len(ND_OPS) == 14
    assert all(callable(getattr(harness, name)) for name in ND_OPS)


@pytest.mark.parametrize("backend", ["naive", "im2col", "torch", "fft"])
def test_conv1d_and_conv3d_match_torch_on_every_path(backend):
    x1, w1, b1 = _rng_arrays((2, 3, 19), (4, 3, 3), (4,))
    y = harness.conv1d(x1, w1, b1, padding="same", dilation=2, padding_mode="reflect", backend=backend)
    want = F.conv1d(F.pad(torch.tensor(x1), (2, 2), mode="reflect"), torch.tensor(w1), torch.tensor(b1), dilation=2)
    np.testing.assert_allclose(y, want.numpy(), rtol=1e-10, atol=1e-10)
    x3, w3 = _rng_arrays((1, 4, 5, 6, 7), (6, 2, 3, 2, 3), seed=1)
    y = harness.conv3d(x3, w3, stride=(1, 2, 1), padding=(1, 0, 2), groups=2, backend=backend)
    want = F.conv3d(torch.tensor(x3), torch.tensor(w3), stride=(1, 2, 1), padding=(1, 0, 2), groups=2)
    np.testing.assert_allclose(y, want.numpy(), rtol=1e-10, atol=1e-10)


def test_transposed_backward_and_pooling_match_torch_unbatched_too():
    x, w = _rng_arrays((3, 4, 5, 5), (3, 2, 2, 3, 3))  # unbatched 3-D input
    y = harness.conv_transpose3d(x, w, stride=2, padding=1, output_padding=1, backend="im2col")
    want = F.conv_transpose3d(torch.tensor(x)[None], torch.tensor(w), stride=2, padding=1, output_padding=1)[0]
    np.testing.assert_allclose(y, want.numpy(), rtol=1e-10, atol=1e-10)
    x1 = _rng_arrays((2, 3, 11))[0]
    values, index = harness.max_pool1d(x1, 3, 2, 1, ceil_mode=True, return_indices=True, backend="naive")
    tv, ti = F.max_pool1d(torch.tensor(x1), 3, 2, 1, ceil_mode=True, return_indices=True)
    assert np.array_equal(values, tv.numpy()) and np.array_equal(index, ti.numpy())
    x3 = _rng_arrays((1, 2, 5, 6, 7))[0]
    go = np.ones((1, 2, 3, 4, 4))
    grad = harness.avg_pool3d_backward(x3, go, 3, 2, 1, ceil_mode=True, count_include_pad=False, backend="naive")
    xt = torch.tensor(x3, requires_grad=True)
    F.avg_pool3d(xt, 3, 2, 1, ceil_mode=True, count_include_pad=False).backward(torch.tensor(go))
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-12)
    gi, gw, gb = harness.conv1d_backward(x1, _rng_arrays((4, 3, 3))[0], np.ones((2, 4, 9)), backend="fft")
    assert gi.shape == x1.shape and gw.shape == (4, 3, 3) and gb is None


def test_one_and_three_d_ops_are_native_or_lowered_as_documented():
    native, lowered = "native", "lowered"
    assert {harness.get_backend("naive").op_impl(op) for op in ND_OPS} == {native}
    assert {harness.get_backend("torch").op_impl(op) for op in ND_OPS} == {native}
    im2col = harness.get_backend("im2col")
    assert im2col.op_impl("conv3d") == native and im2col.op_impl("conv1d") == lowered
    fft = harness.get_backend("fft")
    assert {fft.op_impl(op) for op in ("conv1d", "conv3d", "conv_transpose3d", "conv3d_backward")} == {lowered}
    assert fft.op_impl("max_pool3d") is None  # no 2-D pooling to lower onto
    assert {harness.get_backend("numba_cpu").op_impl(op) for op in ND_OPS if "pool" in op} == {lowered}


@pytest.mark.parametrize("op", ND_OPS)
def test_the_verifier_passes_the_reference_on_every_new_op(op):
    report = harness.verify("naive", op=op, cases=4, seed=1, table=False, scale=False)
    assert len(report) == 4 and set(report.status) <= {"passed", "mistrusted"}


@pytest.mark.parametrize("backend, op", [("naive:lowered", "conv1d"), ("im2col:lowered", "conv3d"),
                                         ("im2col:lowered", "conv_transpose3d"), ("im2col:lowered", "conv3d_backward"),
                                         ("naive:lowered", "max_pool1d"), ("naive:lowered", "avg_pool1d_backward"),
                                         ("naive:lowered", "max_pool3d"), ("naive:lowered", "max_pool3d_backward"),
                                         ("naive:lowered", "avg_pool3d"), ("naive:lowered", "avg_pool3d_backward")])
def test_the_lowered_paths_pass(backend, op):
    report = harness.verify(backend, op=op, cases=5, seed=2, table=False, scale=False)
    assert (report.status == "passed").sum() >= 4 and not (report.status == "failed").any()


def test_a_depth_axis_bug_in_a_3d_kernel_is_caught_with_a_reproducer():
    naive_conv3d = harness.get_backend("naive").ops["conv3d"]

    def flipped_depth(x, w, bias, spec):  # a plausible bug: the kernel's depth taps reversed
        return naive_conv3d(x, np.ascontiguousarray(w[:, :, ::-1]), bias, spec)

    harness.register_backend("nd_buggy", conv3d=flipped_depth)
    try:
        report = harness.verify("nd_buggy", op="conv3d", cases=4, seed=0)
    finally:
        harness.unregister_backend("nd_buggy")
    assert (report.status == "failed").sum() > len(report) // 2
    assert "Conv3dCase" in report.reproducer[report.minimal].iloc[0]


def test_counts_follow_the_seed_definition_per_axis():
    conv = op_info("conv1d")
    spec, _ = conv.make_spec(np.ones((1, 2, 10), np.float32), np.ones((3, 2, 3), np.float32), np.ones(3, np.float32),
                             padding=1)
    counts = conv.counts(spec)
    assert counts["macs"] == 3 * 10 * 6 and counts["flops_dense"] == 3 * 10 * (2 * 6 - 1 + 1)
    assert counts["flops_useful"] == counts["flops_dense"] - 2 * 3 * 2 * 2  # one tap in the padding at each end
    assert counts["params"] == 3 * 2 * 3 + 3 and counts["receptive_field"] == "3"
    spec3 = op_info("conv3d").from_layer(layers("c3d", batch=1)[1].spec)
    assert op_info("conv3d").counts(spec3)["cpr"] == pytest.approx(16 * 56 * 56)  # no bias: outputs per weight
    pool = op_info("max_pool3d").counts(harness.ops.pool_nd_spec.pool_nd_spec("max", 3, np.ones((1, 2, 4, 4, 4)), 2)[0])
    assert pool["flops_dense"] == 2 * 8 * 7 and pool["receptive_field"] == "2x2x2"


def test_the_new_suites_hold_real_layers_that_the_benchmark_runner_takes():
    tcn = [op_spec(l.op, l.spec) for l in layers("wavenet_tcn", batch=1) if l.label.startswith("wavenet_tcn.tcn")]
    assert {s.out_dims for s in tcn} == {(784,)}  # causal: every level keeps the sequence length
    (field,) = stack_receptive_field(tcn)
    assert field.size == 1 + 6 * 255
    wav2vec = [op_spec(l.op, l.spec) for l in layers("wav2vec2_encoder", batch=1)]
    assert wav2vec[-1].out_dims == (49,) and [s.O for s in wav2vec] == [512] * 7
    up = [l for l in layers("unet3d", batch=1) if l.op == "conv_transpose3d"]
    assert [op_spec(l.op, l.spec).out_dims for l in up] == [(14, 18, 18), (20, 28, 28), (32, 48, 48)]
    small = dataclasses.replace(op_spec("conv3d", layers("c3d", batch=1)[-1].spec), C=4, O=4)
    prepared = prepare("im2col", "conv3d", small)
    assert prepared.fn(*prepared.args).shape == (1, 4, 2, 7, 7)


def test_a_bad_3d_suite_row_names_the_file_and_row(tmp_path):
    from harness.suites.shape_files import read_rows

    bad = tmp_path / "vol.csv"
    bad.write_text("name,N,C,D,H,W,O,KD,KH,KW,stride,padding,dilation,groups,op,notes\n"
                   "a,,3,4,4,4,8,3,3,3,1x2,0,1,1,conv3d,\n")
    with pytest.raises(ValueError, match=r"vol.csv, data row 1: expected k or dxhxw"):
        read_rows(bad)


@pytest.mark.parametrize("op, as_2d", [("conv1d", "as_conv2d"), ("conv_transpose1d", "as_conv_transpose2d"),
                                       ("max_pool1d", "as_pool2d"), ("avg_pool1d_backward", "as_pool2d")])
def test_a_1d_call_needs_exactly_the_features_of_its_2d_equivalent(op, as_2d):
    info = op_info(op)
    for case in info.table_cases() + info.random_cases(info.features, ["float32"], 30, 0):
        assert case.spec.features == getattr(case.spec, as_2d)().features, case
