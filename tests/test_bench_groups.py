"""harness.bench.groups: which layers go in which group, and the table's arithmetic (synthetic times)."""

import math

import pytest

from harness.support import core_speed

from harness import suites
from harness.bench import groups, paired
from harness.ops.table import op_info


def test_every_group_has_layers_and_each_layer_is_in_one_group_once():
    layers = groups.group_layers()
    assert {g for g, _ in layers} == set(groups.GROUPS)
    specs = [l.spec for _, l in layers]
    assert len(specs) == len(set(specs))
    for group, layer in layers:
        assert groups.GROUPS[group][2](layer.spec), (group, layer.label)
    three = [l for g, l in layers if g == "3x3 s1"]
    assert {l.spec.N for l in three} == {1, 8} and any(l.label.startswith("regnetx_400mf.") for l in three)
    assert all(l.spec.N == 1 for _, l in groups.group_layers(quick=True))
    assert {g for g, _ in groups.group_layers(["1x1"])} == {"1x1"}


def test_the_table_reports_ratios_peak_and_auto_against_the_best():
    layer = next(l for l in suites.layers("resnet50", 1) if l.label == "resnet50.res2_3x3")
    base = groups.bench.baseline_name() or "torch"
    times = {base: {"rounds": [2e-3, 3e-3]}, "im2col": {"rounds": [1e-3, 1e-3]}, "numba_cpu": {"rounds": [1.5e-3, 1.6e-3]}}
    measured = {"spec": layer.spec, "times": times, "baseline": base, "best": "im2col", "picked": "numba_cpu",
                "best_time": {n: min(t["rounds"]) for n, t in times.items()}}
    text = groups.report([("3x3 s1", layer, measured)], peak=400.0)
    flops = op_info("conv2d").counts(layer.spec)["flops_dense"]  # the one FLOP definition
    row = next(line for line in text.splitlines() if "res2_3x3" in line)
    assert f"{flops / 1e-3 / 1e9:.1f}" in row  # best's GFLOP/s
    assert "2.00 [ 2.00- 3.00]" in row  # ratio of the best rounds, range of the paired per-round ratios
    assert f"{100 * flops / 1e-3 / 1e9 / 400:.0f}" in row
    assert "1.33  1.50" in row  # auto's pick: x torch, / best
    assert "auto within 10% of the best on 0/1 layers" in text
    # per batch: the geomean with its interval (a layer's paired range read as its 95% interval, in log space)
    assert f"batch {layer.spec.N} (1 layers): best candidate 2.00x [1.63, 2.45], auto 1.33x [1.12, 1.58]" in text
    assert "%peak is wrong" not in text
    stale = groups.report([("3x3 s1", layer, measured)], peak=flops / 1e-3 / 1e9 / 2)  # best ran at 2x the "peak"
    assert "%peak is wrong: 1 layer(s) ran faster than the stored SGEMM peak (resnet50.res2_3x3 N=" in stale
    at_peak = groups.report([("3x3 s1", layer, measured)], peak=flops / 1e-3 / 1e9 / 1.02)  # 2% over: noise
    assert "%peak is wrong" not in at_peak
    # Winograd does fewer multiplies than counted: its effective GFLOP/s may pass the peak
    fast = dict(measured, times={("winograd" if n == "im2col" else n): t for n, t in times.items()}, best="winograd")
    fast["best_time"] = {n: min(t["rounds"]) for n, t in fast["times"].items()}
    assert "%peak is wrong" not in groups.report([("3x3 s1", layer, fast)], peak=flops / 1e-3 / 1e9 / 2)


def test_paired_ratio_range_pairs_rounds():
    times = {"t": {"rounds": [1.0, 4.0]}, "x": {"rounds": [2.0, 2.0]}}
    assert groups._ratio_range(times, "t", "x") == (0.5, 2.0)
    assert math.isnan(paired.geomean([])) and paired.geomean([2, 8]) == pytest.approx(4.0)


def test_rounds_on_contended_cores_are_left_out_and_a_layer_without_a_free_round_is_not_a_figure():
    times = {"t": {"rounds": [1.0, 4.0, 9.0], "free": [True, True, False]},
             "x": {"rounds": [2.0, 2.0, 1.0], "free": [True, True, False]}}
    assert groups.free_rounds(times["x"]) == [2.0, 2.0]  # the contended round's 1.0 is not the best
    assert groups._ratio_range(times, "t", "x") == (0.5, 2.0)
    assert groups.free_rounds({"rounds": [3.0, 2.0], "free": [False, False]}) == [3.0, 2.0]
    layer = next(l for l in suites.layers("resnet50", 1) if l.label == "resnet50.res2_3x3")
    busy = {"t": {"rounds": [2e-3], "free": [False]}, "x": {"rounds": [1e-3], "free": [False]}}
    measured = {"spec": layer.spec, "times": busy, "baseline": "t", "best": "x", "picked": "x",
                "best_time": {"t": 2e-3, "x": 1e-3}, "contended": True}
    text = groups.report([("3x3 s1", layer, measured)], peak=400.0)
    assert "contended core in every round: left out" in text
    assert "on 0/0 layers (1 more timed only on contended cores, left out)" in text


def test_time_paired_marks_each_round_by_the_probes_at_its_ends(monkeypatch):
    spec = next(l for l in suites.layers("resnet50", 1) if l.label == "resnet50.res2_3x3").spec
    small = type(spec).from_shapes((1, 4, 8, 8), (4, 4, 3, 3), padding=1)
    seen = iter([{0: 1.0}, {0: 1.0}, {0: 0.5}, {0: 1.0}])  # before round 1, after rounds 1, 2, 3
    monkeypatch.setattr(core_speed, "speeds", lambda: next(seen))
    monkeypatch.setattr(core_speed.machine_state, "oversubscription", lambda window, threads: None)  # no other load
    monkeypatch.setattr(groups, "ROUND_SETTLE_S", 0.0)
    times = groups.time_paired(small, ["im2col", "numba_cpu"], rounds=3, round_s=1e-4, keep=("im2col", "numba_cpu"))
    assert all(t["free"] == [True, False, False] for t in times.values())


def test_a_paired_timing_leaves_nothing_in_winograds_weight_cache():
    from impls import winograd

    spec = next(l for l in suites.layers("resnet50", 1) if l.label == "resnet50.res2_3x3").spec
    small = type(spec).from_shapes((1, 8, 8, 8), (8, 8, 3, 3), padding=1)
    before = len(winograd.WEIGHT_CACHE)
    times = groups.time_paired(small, ["winograd", "im2col"], rounds=1, round_s=1e-4, keep=("winograd", "im2col"),
                               probe=False)
    assert set(times) == {"winograd", "im2col"} and len(winograd.WEIGHT_CACHE) == before


def test_free_indices_keep_the_free_rounds_or_all_when_none_ran_free():
    assert paired.free_indices([True, False, True], 3) == [0, 2]
    assert paired.free_indices([False, False], 2) == [0, 1]
    assert paired.free_indices(None, 3) == [0, 1, 2] and paired.free_indices([], 2) == [0, 1]
