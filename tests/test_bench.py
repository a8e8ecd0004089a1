"""Timing rules, the in-process benchmark run, and `convbench bench` / `env` end to end (tiny)."""

import json

import time

import numpy as np
import pandas as pd
import pytest

import harness
from harness.bench.terminal import results_table
from harness.bench import runner as bench
from harness.support import machine
from harness.support import timing
from harness.suites import Layer, load

FAKE_MACHINE = {
    "cpu": {"usable_cpus": 1},
    "peak": {"sgemm": {"gflops": 100.0}, "dgemm": {"gflops": 50.0}, "threads": 1},
    "bandwidth": {"gbs": 10.0},
}


def test_time_call_statistics_and_compile_time():
    calls = []

    def fn(x):
        calls.append(x)
        if len(calls) == 1:  # a "JIT compile" on the first call only
            sum(range(200_000))

    t = timing.time_call(fn, (1,), budget_s=0.0, min_runs=4, warmup=1, settle_s=0.0)
    assert t.runs == 4 and len(calls) == 1 + 1 + 4
    assert t.min <= t.median and t.iqr >= 0
    assert t.first_call > t.median and t.compile == pytest.approx(t.first_call - t.median)


def test_warm_up_lasts_until_other_thread_pools_settle():
    calls = []
    t = timing.time_call(lambda: calls.append(time.perf_counter()), budget_s=0.0, min_runs=2, warmup=1,
                         settle_s=0.05)
    warm_up = calls[: len(calls) - t.runs]
    assert len(warm_up) > 2 and warm_up[-1] - warm_up[0] >= 0.04


def test_cold_cache_gives_fresh_buffers_and_sync_runs_every_call():
    seen, synced = [], []
    x = np.zeros(8)
    x.flags.writeable = False
    timing.time_call(lambda a: seen.append(a), (x,), sync=lambda: synced.append(1),
                     budget_s=0.0, min_runs=3, cache="cold", settle_s=0.0)
    assert seen[0] is x and all(a is not x and not a.flags.writeable for a in seen[2:])
    assert len(synced) == len(seen)
    with pytest.raises(ValueError):
        timing.time_call(lambda: None, cache="lukewarm")


def test_pinned_threads_sets_and_restores_every_library():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    with timing.pinned_threads(1) as counts:
        assert counts["torch"] == 1 and counts.get("blas", 1) == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_guard_skips_what_naive_cannot_finish():
    big = dict(load("vgg16"))["vgg16.conv1_2"]
    assert bench.estimate_seconds("naive", big) > 1
    assert bench.estimate_seconds("torch", big) < 1  # a candidate's own cost model: far inside the limit
    with pytest.raises(harness.Unsupported, match="per-case limit"):
        bench.prepare("naive", "conv2d", big, limit_s=1)


def test_smoke_run_is_well_formed():
    cases = bench.plan(["smoke"], batches=[1])[:2]
    cases.append(("unet_decoder", next(l for l in harness.suites.layers("unet_decoder", 1) if l.op != "conv2d")))
    results = bench.run(cases, ["naive", "torch_cuda"], threads=1, budget_s=0.0, min_runs=2,
                        machine=FAKE_MACHINE, progress=False, limit_s=2)
    assert list(results.columns) == list(bench.COLUMNS)
    assert set(results.threads) == {1}
    timed = results[(results.backend == "naive") & (results.metric == "gflops")]
    assert len(timed) == 2 and (timed.value > 0).all()
    ratio = results[(results.backend == "torch") & (results.metric == "ratio_to_torch")]
    assert len(ratio) == 3 and (ratio.value == 1.0).all()  # torch was added as the baseline
    assert {"time_min", "time_median", "time_iqr", "compile_s", "gflops_useful", "pct_peak", "cpr",
            "intensity"} <= set(results.metric)
    skipped = results[results.metric == "skipped"]
    assert skipped.reason.str.contains("torch_cuda").any()  # unavailable here, recorded with why
    assert skipped.reason.str.contains("per-case limit").any()  # naive's up-conv: guarded, recorded
    up = results[(results.op == "conv_transpose2d") & (results.metric == "gflops")]
    assert list(up.backend) == ["torch"] and list(up.impl) == ["native"]  # the U-Net row now runs
    assert (skipped.reason != "").all()
    text = results_table(results)
    assert "geomean smoke" in text and "skipped" in text


def test_convbench_bench_writes_csv_and_json(tmp_path, monkeypatch, capsys):
    from harness.cli import main
    from harness.cli.commands import bench as bench_command

    monkeypatch.setattr(bench_command, "record", lambda: FAKE_MACHINE)
    shapes = tmp_path / "mine.benchdnn"
    shapes.write_text('mb1ic8ih12oc8oh12kh3n"one"\n')
    out = tmp_path / "bench.csv"
    code = main(["bench", "--suite", "smoke", "--shapes", str(shapes), "--backends", "torch", "--batch", "1",
                 "--threads", "1", "--repeat", "1", "--budget", "0", "--no-progress", "--out", str(out)])
    assert code == 0
    frame = pd.read_csv(out)
    assert set(frame.suite) == {"smoke", "mine"} and set(frame.batch) == {1}
    payload = json.loads(out.with_suffix(".json").read_text())
    assert payload["settings"]["threads"] == 1 and len(payload["results"]) == len(frame)
    captured = capsys.readouterr()
    assert "GFLOP/s" in captured.out and "x torch [95% interval]" in captured.out
    # one round per layer (--repeat 1) is too few to bound a ratio: every layer is flagged, once
    assert {"stable", "unstable_reason", "ratio_lo", "ratio_hi", "rel_spread"} <= set(frame.columns) | set(frame.metric)
    assert not frame.stable.any()
    warnings = [l for l in captured.err.splitlines() if l.startswith("warning:") and "unstable timing" in l]
    assert len(warnings) == frame.layer.nunique() and all("only 1 round" in l for l in warnings)


def test_machine_record_is_cached_and_reused(tmp_path, monkeypatch):
    calls = []
    quiet_peak = {"busy": None, "threads": 2}
    monkeypatch.setattr(machine, "measure",
                        lambda: calls.append(1) or {"fingerprint": machine.fingerprint(), "x": 1, "peak": quiet_peak})
    path = tmp_path / "machine.json"
    assert machine.record(path)["x"] == 1 and machine.record(path)["x"] == 1
    assert len(calls) == 1
    machine.record(path, remeasure=True)
    assert len(calls) == 2


@pytest.mark.parametrize("busy_now", [True, False])
def test_a_peak_measured_on_a_busy_machine_is_replaced_once_the_machine_is_quiet(tmp_path, monkeypatch, busy_now):
    path = tmp_path / "machine.json"
    busy = {"fingerprint": machine.fingerprint(), "x": "busy",
            "peak": {"sgemm": {"gflops": 50.0, "n": 2048}, "dgemm": {"gflops": 26.0, "n": 2048}, "threads": 2,
                     "busy": "oversubscribed: other processes wanted 3.0 of 2 cores beside our 2 thread(s)"}}
    path.write_text(json.dumps(busy))
    monkeypatch.setattr(machine, "_machine_busy_now", lambda threads: busy_now)
    monkeypatch.setattr(machine, "measure", lambda: {"fingerprint": machine.fingerprint(), "x": "quiet",
                                                     "peak": {"busy": None, "threads": 2}})
    assert not machine.peak_is_trusted(busy) and "x" not in {k for k in busy["peak"]}
    assert machine.record(path)["x"] == ("busy" if busy_now else "quiet")
    cpu = {"model": "m", "usable_cpus": 2, "physical_cores": 2, "logical_cpus": 2, "flags": []}
    summary = machine.summary_lines({**busy, "cpu": cpu, "software": {"numpy": "2", "python": "3.11"}, "blas": [],
                                     "bandwidth": {"gbs": 1, "mib": 1}, "measured_at": "then"})
    assert any("NOT TRUSTED: oversubscribed" in line for line in summary)


def test_measured_peaks_say_whether_the_machine_was_busy(monkeypatch):
    monkeypatch.setattr(machine, "measure_gemm_gflops", lambda dtype: {"gflops": 1.0, "n": 256})
    monkeypatch.setattr(machine.machine_state, "oversubscription", lambda window, threads: "oversubscribed: test")
    assert machine.measure_peaks(2)["busy"] == "oversubscribed: test"
    monkeypatch.setattr(machine.machine_state, "oversubscription", lambda window, threads: None)
    assert machine.measure_peaks(2) == {"sgemm": {"gflops": 1.0, "n": 256}, "dgemm": {"gflops": 1.0, "n": 256},
                                        "threads": 2, "busy": None}


def test_blas_override_warning_names_the_variable(monkeypatch):
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "123")
    monkeypatch.setattr(machine, "_native_blas", lambda: [])
    lines = machine.blas_warnings(blas=[])
    assert any(l.startswith("WARNING: OPENBLAS_L2_SIZE=123") for l in lines)


def test_saved_results_carry_their_own_run_settings(tmp_path):
    from harness.report.data import read_bench_settings

    out = tmp_path / "bench.csv"
    rows = pd.DataFrame({"backend": ["torch"], "layer": ["smoke.a"], "time_min": [0.5]})
    bench.save(rows, out, {"suites": ["smoke"], "threads": 2}, started=time.time() - 1.0)
    settings = read_bench_settings(out)
    assert settings["suites"] == ["smoke"] and settings["threads"] == 2 and settings["wall_s"] >= 1.0
    assert settings["command"] and json.loads(out.with_suffix(".json").read_text())["results"][0]["layer"] == "smoke.a"
    assert pd.read_csv(out).time_min.tolist() == [0.5]


def test_a_benchmark_run_leaves_nothing_in_winograds_weight_cache():
    from impls import winograd

    cases = [c for c in bench.plan(["smoke"], batches=[1]) if c[1].spec.KH == 3 and c[1].spec.stride == (1, 1)][:1]
    assert cases, "the smoke suite has a 3x3 stride-1 layer"
    before = len(winograd.WEIGHT_CACHE)
    results = bench.run(cases, ["winograd"], threads=1, budget_s=0.0, min_runs=2, machine=FAKE_MACHINE,
                        progress=False, limit_s=2)
    assert (results[(results.backend == "winograd") & (results.metric == "time_min")].value > 0).all()
    assert len(winograd.WEIGHT_CACHE) == before  # the seeded weights' transforms were forgotten
