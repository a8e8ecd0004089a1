"""The scale tier: production sizes for every op, checked cheaply, skipped for time with the reason."""

import numpy as np
import pandas as pd
import pytest

import harness
from harness.verify import scale
from harness import suites
from harness.ops.cases.conv2d import Conv2dCase
from harness.ops.conv_spec import conv2d_spec
from harness.verify.coverage import sizes_line
from harness.ops.table import OPS
from harness.verify.sampled_check import conv2d_at, sample_outputs
from harness.verify.verifier import check_case_sampled
from impls.torch import conv2d_on

torch_conv2d = conv2d_on("cpu")


def test_every_op_has_a_scale_tier():
    assert {op for op in OPS if scale.tier_cases(op)} == set(OPS)


def test_conv2d_tier_reaches_production_sizes():
    cases = scale.tier_cases("conv2d", seed=0)
    reached = scale.largest(cases)
    assert reached["N"] >= 32 and reached["C_per_group"] >= 2048 and reached["n_acc"] > 4608
    assert reached["plane"][0] * reached["plane"][1] >= 224 * 224
    specs = [c.spec for c in cases]
    assert any(s.groups >= 64 and s.C // s.groups >= 4 for s in specs)  # ResNeXt-style, not depthwise
    assert any(s.is_depthwise and s.C >= 960 for s in specs)
    assert any(s.OH * s.OW >= 112 * 112 for s in specs)
    assert {c.fill for c in cases} >= {"exact", "normal"} and {c.dtype for c in cases} == {"float32", "float64"}


def test_family_tiers_reach_batch_32_or_hundreds_of_channels():
    for op in OPS:
        reached = scale.largest(scale.tier_cases(op))
        assert reached["N"] >= 32 or reached["C_per_group"] >= 512 or reached["plane"][0] >= 112, (op, reached)


def test_suite_layers_join_the_tier_within_the_cost_cap():
    layers = scale.suite_layer_cases(seed=0)
    assert len(layers) == scale.LAYERS_PER_SUITE * len(scale.SCALE_SUITES)
    other = scale.suite_layer_cases(seed=1)
    assert layers != other  # another seed verifies other layers
    for case in layers + other:
        s = case.spec
        assert s.N * s.O * s.OH * s.OW * s.n_acc <= scale.MAX_CASE_MACS
    specs = [spec for _, spec in suites.load("resnet50")]
    macs = lambda s: s.O * s.OH * s.OW * s.n_acc  # noqa: E731
    small, big = min(specs, key=macs), max(specs, key=macs)
    case = scale.layer_case(small)  # fits as it is: only the batch grows
    assert case.w_shape == small.w_shape and case.x_shape[1:] == small.x_shape[1:] and case.x_shape[0] > 1
    case = scale.layer_case(big)  # too big: the plane is cropped, channels and kernel kept
    assert case.w_shape == big.w_shape and case.x_shape[2] < big.H and case.spec.stride == big.stride


def test_resnext_suite_has_a_source_and_grouped_layers():
    assert "Aggregated Residual Transformations" in suites.source("resnext")
    specs = [s for _, s in suites.load("resnext")]
    assert {s.groups for s in specs} == {32, 64} and min(s.C // s.groups for s in specs) == 4


def test_the_sample_holds_every_image_channel_row_and_column():
    rng = np.random.default_rng(0)
    shape = (32, 7, 112, 5)
    index = sample_outputs(shape, rng)
    assert len(index[0]) == max(shape) + 256
    for axis, n in enumerate(shape):
        assert set(index[axis]) == set(range(n))
    # so a bug corrupting one whole image, channel, row or column is always detected
    for axis, n in enumerate(shape):
        for k in range(n):
            corrupted = np.zeros(shape, bool)
            corrupted[(slice(None),) * axis + (k,)] = True
            assert corrupted[index].any()


def test_sampled_reference_equals_torch_float64():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 6, 11, 9)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    spec, _ = conv2d_spec(x, w, b, stride=(2, 1), padding=(2, 1), dilation=(1, 2), groups=2,
                                  padding_mode="reflect")
    full = torch_conv2d(x, w, b, spec.with_(dtype="float64"))
    A = torch_conv2d(np.abs(x), np.abs(w), np.abs(b), spec.with_(dtype="float64"))
    index = sample_outputs(full.shape, rng)
    y, a = conv2d_at(x, w, b, spec, index)
    np.testing.assert_allclose(y, full[index], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a, A[index], rtol=1e-12)


def test_sampled_check_passes_torch_and_catches_a_corrupted_column():
    case = Conv2dCase((2, 64, 40, 40), (32, 64, 3, 3), bias=True, padding=1, fill="exact", seed=3)
    assert check_case_sampled("torch", case).status == "passed"
    assert check_case_sampled("torch", case).message.startswith("bit-exact (sampled")

    def one_column_wrong(x, w, b, spec):
        y = torch_conv2d(x, w, b, spec)
        y[..., 17] += 1
        return y

    harness.register_backend("column_bug", conv2d=one_column_wrong, replace=True)
    try:
        result = check_case_sampled("column_bug", case)
        assert result.status == "failed" and "sampled" in result.message
    finally:
        harness.unregister_backend("column_bug")


def test_planner_skips_cases_estimated_above_the_limit_with_the_reason():
    grouped = [c for c in scale.tier_cases("conv2d") if c.groups > 1]
    cases = [c for c in scale.tier_cases("conv2d") if c.groups == 1]
    planner = scale.TimePlanner("slowpoke", limit_s=1.0)
    assert planner.skip_reason(cases[-1]) is None  # nothing measured yet
    planner.observe(grouped[0], 100.0)  # a grouped call's time says how it loops over groups: ignored
    assert planner.rate is None
    planner.observe(cases[0], scale.work(cases[0]) / 1e6)  # 1 M/s
    why = planner.skip_reason(cases[-1])
    assert why.startswith("skipped for time: estimated") and "slowpoke" in why
    planner.observe(cases[1], 1e-6)  # a faster measurement wins
    assert planner.skip_reason(cases[-1]) is None
    planner.ran_out_of_time(cases[2])  # then every case at least as large is skipped
    assert "ran past the per-case limit" in planner.skip_reason(cases[-1])
    assert planner.skip_reason(cases[0]) is None


def test_tier_skips_a_slow_backend_for_time_and_reports_it(monkeypatch):
    def slow(x, w, b, spec):  # correct, and far too slow per multiply-add to take the tier
        import time

        time.sleep(0.05 + spec.N * spec.O * spec.OH * spec.OW * spec.n_acc / 2e8)
        return torch_conv2d(x, w, b, spec)

    few = [c for c in scale.tier_cases("conv2d") if c.groups == 1][:3]  # the smallest few keep the test short
    monkeypatch.setattr(scale, "tier_cases", lambda op, seed=0: few)
    monkeypatch.setattr(scale, "CASE_SECONDS", 0.1)
    harness.register_backend("slow_conv", conv2d=slow, replace=True)
    try:
        report = harness.verify("slow_conv", cases=0, table=False, scale=True)
    finally:
        harness.unregister_backend("slow_conv")
    assert (report.source == "scale").all() and not (report.status == "failed").any()
    skipped = report[report.status == "skipped"]
    assert len(skipped) > 0 and skipped.message.str.startswith("skipped for time").all()
    assert (report.status == "passed").any()
    line = sizes_line(report)
    assert line.startswith("sizes reached: N ") and "scale case(s) for time" in line


def test_torch_is_checked_at_scale_by_sampling(monkeypatch):
    case = scale.tier_cases("conv2d")[0]
    monkeypatch.setattr(scale, "tier_cases", lambda op, seed=0: [case])
    report = harness.verify("torch", cases=0, table=False, scale=True)
    checked = report[report.status == "passed"]
    assert len(checked) >= 1 and checked.message.str.contains("sampled").all()
    assert report.case.iloc[0] == repr(case)


def test_default_budget_includes_the_tier_and_small_budgets_do_not():
    small = harness.verify("naive", op="adaptive_avg_pool2d", cases=5, table=False)
    assert "scale" not in set(small.source)
    assert "scale tier (not run" in sizes_line(small)


def test_budget_seconds_runs_small_cases_first_and_reports_what_it_did_not_reach():
    report = harness.verify("naive", op="adaptive_avg_pool2d", budget_s=0.5, seed=0)
    assert report.source.iloc[0] == "table"
    not_reached = report[report.message.str.startswith("not reached within the budget")]
    assert (not_reached.status == "skipped").all()
    assert len(report) >= 1
    with pytest.raises(ValueError, match="budget_s"):
        harness.verify("im2col", budget_s=0)


def test_sizes_line_names_the_largest_sizes_checked():
    report = pd.DataFrame({
        "source": ["random", "scale", "scale"], "status": ["passed", "passed", "skipped"],
        "message": ["", "", "skipped for time: estimated 9 s"],
        "reach_N": [3, 32, 8], "reach_C_per_group": [5, 2048, 960], "reach_groups": [2, 64, 1],
        "reach_plane": ["9x9", "112x112", "7x7"], "reach_n_acc": [45, 18432, 9]})
    line = sizes_line(report)
    assert line.startswith("sizes reached: N 32, C/groups 2048, groups 64, plane 112x112, reduction 18432")
    assert "1 scale case(s) for time (e.g. N 8, C/groups 960, plane 7x7)" in line


def test_cli_budget_seconds_and_cases_are_alternatives(tmp_path, capsys):
    from harness.cli import main

    out = tmp_path / "v.csv"
    code = main(["verify", "--backend", "naive", "--op", "adaptive_avg_pool2d", "--budget-seconds", "1",
                 "--out", str(out), "--no-progress"])
    assert code == 0 and out.exists()
    printed = capsys.readouterr().out
    assert "sizes reached: N" in printed
    with pytest.raises(SystemExit):
        main(["verify", "--backend", "im2col", "--cases", "3", "--budget-seconds", "1"])
    with pytest.raises(SystemExit) as refused:  # one argparse error line, exit status 2
        main(["verify", "--backend", "im2col", "--budget-seconds", "-1"])
    assert refused.value.code == 2


@pytest.mark.slow
@pytest.mark.parametrize("op", list(OPS))
def test_builtin_backends_pass_the_tier(op):
    for declared in harness.backends():
        if not declared.available or op not in declared.ops:
            continue
        report = harness.verify(declared.name, op=op, cases=0, table=False, scale=True)
        failed = report[report.status == "failed"]
        assert failed.empty, (declared.name, failed[["case", "message"]].to_string())
