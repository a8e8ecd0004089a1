"""harness.bench.network: a network's convolutions in sequence, per policy (LeNet-5: three small layers)."""

from collections import Counter

import numpy as np
import pytest

from harness.support import core_speed

from harness.bench import network
from harness.ops.table import op_info


def test_the_passes_hold_every_convolution_in_order_and_compute_what_harness_conv2d_does():
    layers = network.conv_layers("lenet5", 1)
    assert [l.name for l in layers] == ["c1", "c3", "c5"]  # pooling and fully connected layers left out
    passes = network.policies(layers, ["im2col", "winograd"])
    assert {"torch", "auto", "auto:estimate", "auto:plan", "im2col"} <= set(passes)
    assert "winograd" not in passes  # 5x5 kernels: a policy must run every layer
    assert all(len(calls) == 3 for calls in passes.values())
    y = passes["im2col"][0]()
    assert y.shape == layers[0].spec.out_shape
    np.testing.assert_allclose(y, passes["torch"][0](), rtol=1e-4, atol=1e-4)  # same seeded inputs


def test_rounds_time_every_policy_once_each_with_a_first_pass_apart():
    ran = []
    passes = {name: [lambda name=name: ran.append(name)] for name in ("torch", "auto", "im2col")}
    times = network.measure(passes, rounds=3)
    assert ran[:3] == ["torch", "auto", "im2col"]  # the untimed first passes
    order = ["torch", "auto", "im2col", "auto", "im2col", "torch", "im2col", "torch", "auto"]  # rotated
    assert ran[3:] == [name for name in order for _ in range(2)]  # each timed pass after one of its own
    assert all(len(t["rounds"]) == 3 and t["first"] >= 0 for t in times.values())


def test_the_report_gives_gflops_and_the_paired_ratio_to_torch():
    layers = network.conv_layers("lenet5", 1)
    times = {"torch": {"first": 0.01, "rounds": [2e-3, 2e-3, 2e-3]},
             "auto": {"first": 0.5, "rounds": [1e-3, 1e-3, 1e-3]}}
    text = network.report("lenet5", 1, layers, times, Counter(im2col=3))
    flops = sum(op_info("conv2d").counts(l.spec)["flops_dense"] for l in layers)
    row = next(line for line in text.splitlines() if line.startswith("auto "))
    assert f"{flops / 1e-3 / 1e9:.1f}" in row and "2.00x" in row and "500.0" in row
    assert "3 convolutions" in text


def test_rounds_with_a_contended_core_are_left_out_of_the_network_figures(monkeypatch):
    seen = iter([{0: 1.0}, {0: 0.5}, {0: 1.0}, {0: 1.0}])  # round 1 ends contended, round 2 starts so
    monkeypatch.setattr(core_speed, "speeds", lambda: next(seen))
    monkeypatch.setattr(core_speed.machine_state, "oversubscription", lambda window, threads: None)  # no other load
    passes = {name: [lambda: None] for name in ("torch", "auto")}
    times = network.measure(passes, rounds=3)
    assert all(t["free"] == [False, False, True] for t in times.values())
    times = {"torch": {"first": 0.01, "rounds": [9e-3, 9e-3, 2e-3], "free": [False, False, True]},
             "auto": {"first": 0.5, "rounds": [1e-3, 1e-3, 1e-3], "free": [False, False, True]}}
    text = network.report("lenet5", 1, network.conv_layers("lenet5", 1), times, Counter(im2col=3))
    assert "1 of 3 rounds ran on free cores" in text
    assert "2.00x" in next(line for line in text.splitlines() if line.startswith("auto "))
    busy = {n: dict(t, free=[False] * 3) for n, t in times.items()}
    assert "no round of 3 ran on free cores" in network.report("lenet5", 1, network.conv_layers("lenet5", 1),
                                                              busy, Counter(im2col=3))


def test_the_command_line_refuses_nonsense_and_runs_a_small_network(capsys):
    with pytest.raises(SystemExit):
        network.main(["--rounds", "0"])
    with pytest.raises(SystemExit):
        network.main(["--network", "nope"])
    assert network.main(["--network", "lenet5", "--rounds", "1", "--threads", "1", "--backends", "im2col"]) == 0
    out = capsys.readouterr().out
    assert "lenet5, batch 1: 3 convolutions" in out and "auto ran:" in out and "auto:plan ran" in out
