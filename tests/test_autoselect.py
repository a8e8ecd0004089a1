"""backend='auto': the cost-model estimate, the measured choice and its cache, bench's 'auto'."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

import harness
from harness import autoselect
from harness.bench import runner as bench
from harness.api.resolve import resolve_backend
from harness.ops.conv_spec import Conv2dSpec

SMALL = Conv2dSpec.from_shapes((1, 2, 6, 6), (3, 2, 3, 3), padding=1)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No calibration file, an empty cache folder and an empty memory cache for every test."""
    monkeypatch.setattr(autoselect, "CALIBRATION_PATH", tmp_path / "no-calibration.json")
    monkeypatch.setenv("CONVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(autoselect, "_MEMORY", {})
    monkeypatch.setattr(autoselect, "_DECISIONS", {})
    monkeypatch.setattr(autoselect, "_TIES", {})


def test_candidates_leave_out_the_reference_and_torch_unless_asked():
    plain = autoselect.candidates("conv2d", SMALL)
    assert "naive" not in plain and "torch" not in plain and "im2col" in plain
    assert "torch" in autoselect.candidates("conv2d", SMALL, include_torch=True)
    strided = SMALL.with_(stride=(2, 2))
    assert "winograd" not in autoselect.candidates("conv2d", strided)  # undeclared feature: stride


def test_estimate_picks_the_smallest_prediction_among_modelled_candidates():
    spec = Conv2dSpec.from_shapes((1, 64, 56, 56), (64, 64, 3, 3), padding=1)
    choice = autoselect.estimate("conv2d", spec)
    assert choice.method == "estimate" and not choice.cached
    assert set(choice.seconds) <= set(autoselect.candidates("conv2d", spec))
    assert choice.backend == min(choice.seconds, key=choice.seconds.get)
    assert all(t > 0 for t in choice.seconds.values())


def test_estimate_models_the_kernel_size_limits_and_the_big_kernel_advantage():
    five = Conv2dSpec.from_shapes((1, 8, 16, 16), (8, 8, 5, 5), padding=2)
    assert "winograd" not in autoselect.estimate("conv2d", five).seconds  # 3x3 only: no model applies
    huge = Conv2dSpec.from_shapes((1, 64, 64, 64), (64, 64, 31, 31), padding=15)
    assert autoselect.estimate("conv2d", huge).backend == "fft"  # kernel-size-independent cost


def test_estimate_is_none_without_a_model_and_auto_falls_back_to_rank(monkeypatch):
    monkeypatch.setattr(autoselect, "default_constants", lambda: {})
    assert autoselect.estimate("conv2d", SMALL) is None
    ranked = min((b for b in harness.backends() if b.available and b.unsupported_reason("conv2d", SMALL) is None),
                 key=lambda b: (b.auto_rank, b.name))
    assert resolve_backend("auto", "conv2d", SMALL).name == ranked.name


def test_auto_in_the_api_is_choose():
    assert resolve_backend("auto", "conv2d", SMALL).name == autoselect.choose("conv2d", SMALL).backend
    x = np.arange(72, dtype=np.float64).reshape(1, 2, 6, 6)
    w = np.ones((3, 2, 3, 3))
    np.testing.assert_allclose(harness.conv2d(x, w, padding=1), harness.conv2d(x, w, padding=1, backend="naive"))


def _estimating(monkeypatch, seconds, timed):
    """Stand-ins: the estimate predicts ``seconds``; a tie-break measures ``timed`` and records what it timed."""
    calls = []
    monkeypatch.setattr(autoselect, "estimate", lambda op, spec, include_torch=False: autoselect.Choice(
        min(seconds, key=seconds.get), dict(seconds)))
    monkeypatch.setattr(autoselect, "time_close_calls", lambda op, spec, names: calls.append(list(names)) or
                        autoselect.TieTiming({n: timed[n] for n in names}))
    return calls


def test_choose_times_only_the_candidates_predicted_close_and_takes_the_fastest(monkeypatch):
    calls = _estimating(monkeypatch, {"im2col": 1e-3, "numba_cpu": 1.9e-3, "fft": 2.1e-3},
                        {"im2col": 2e-3, "numba_cpu": 1e-3, "fft": 0.5e-3})
    choice = autoselect.choose("conv2d", SMALL)
    assert calls == [["im2col", "numba_cpu"]]  # fft is predicted over TIE_MARGIN (2x) slower: not timed
    assert choice.backend == "numba_cpu" and choice.method == "estimate+measure" and not choice.cached
    assert choice.seconds == {"im2col": 2e-3, "numba_cpu": 1e-3}
    assert autoselect.choose("conv2d", SMALL) is choice and len(calls) == 1  # remembered for the spec
    autoselect._TIES.clear()
    autoselect._MEMORY.clear()  # as a new process: read back from the disk cache, not timed again
    again = autoselect.choose("conv2d", SMALL)
    assert again.backend == "numba_cpu" and again.cached and len(calls) == 1


@pytest.mark.parametrize("why", ["alone", "off", "slow", "no memory"])
def test_choose_keeps_the_estimate_when_there_is_no_tie_to_break_or_it_may_not_be_timed(monkeypatch, why):
    seconds = {"im2col": 1e-3, "numba_cpu": (3e-3 if why == "alone" else 1.5e-3)}
    calls = _estimating(monkeypatch, {n: t * (1000 if why == "slow" else 1) for n, t in seconds.items()},
                        {"im2col": 2e-3, "numba_cpu": 1e-3})
    if why == "off":
        monkeypatch.setattr(autoselect, "TIE_BREAK", False)
    choice = autoselect.choose("conv2d", SMALL, may_time=lambda: why != "no memory")
    assert choice.backend == "im2col" and choice.method == "estimate" and calls == []


def test_a_call_too_large_to_time_twice_keeps_the_estimate(monkeypatch):
    from harness.api import resolve

    calls = _estimating(monkeypatch, {"im2col": 1e-3, "numba_cpu": 1.2e-3}, {"im2col": 2e-3, "numba_cpu": 1e-3})
    monkeypatch.setattr(resolve, "available_memory_bytes", lambda: 1)  # nothing to spare for a tie-break
    assert not resolve._fits_timing("conv2d", SMALL)
    assert resolve_backend("auto", "conv2d", SMALL).name == "im2col" and calls == []


def test_a_tie_break_times_the_close_calls_in_both_orders_and_keeps_each_ones_best(monkeypatch):
    orders, spoiled = [], {"numba_cpu": 16e-3}  # the first round's numba_cpu ran right after im2col's pool
    monkeypatch.setattr(autoselect, "TIE_ROUNDS", 2)
    def timed(op, spec, names, budget_s, min_runs=3, settle_s=0.1, wake_winner=True, quiet=False, watch=None):
        assert not wake_winner  # woken between rounds, the winner would precede the next round's first
        assert quiet  # each candidate waits for the others' pools to go idle
        orders.append(list(names))
        return {n: spoiled.pop(n, 1e-3 if n == "numba_cpu" else 1.5e-3) for n in names}
    woken = []
    monkeypatch.setattr(autoselect, "_time_candidates", timed)
    monkeypatch.setattr(autoselect, "prepare", lambda backend, op, spec, seed=0: SimpleNamespace(
        fn=backend.name, args=(), sync=None))
    monkeypatch.setattr(autoselect, "call_for", lambda fn, args, sync, seconds: woken.append(fn))
    monkeypatch.setattr(autoselect.core_speed, "speeds", lambda: {0: 1.0, 1: 1.0})
    monkeypatch.setattr(autoselect.core_speed.machine_state, "oversubscription", lambda window, threads: None)
    timed_ = autoselect.time_close_calls("conv2d", SMALL, ["im2col", "numba_cpu"])
    # numba_cpu overturns the estimate's pick (named first): the two are timed once more to confirm it
    assert orders == [["im2col", "numba_cpu"], ["numba_cpu", "im2col"]] * 2
    assert timed_.seconds == {"im2col": 1.5e-3, "numba_cpu": 1e-3} and timed_.contended is None
    assert woken == ["numba_cpu"]  # after the rounds, the winner runs last


def _tie_timing(monkeypatch, speeds_per_attempt, times_per_attempt):
    """Stand-ins for a tie-break's timing: each attempt's candidate times, and the cores' speeds its
    probes read (one per candidate, one after the last). Returns the recorded attempts."""
    attempts, speeds = [], iter(speeds_per_attempt)
    times = iter(times_per_attempt)

    def timed(op, spec, names, budget_s, min_runs=3, settle_s=0.1, wake_winner=True, quiet=False, watch=None):
        assert quiet and watch is not None
        attempts.append(list(names))
        for _ in names[1:]:  # the watch's start probes before the first candidate
            watch.probe()
        return dict(next(times))

    monkeypatch.setattr(autoselect, "_time_candidates", timed)
    monkeypatch.setattr(autoselect.core_speed, "speeds", lambda: next(speeds))
    monkeypatch.setattr(autoselect.core_speed.machine_state, "oversubscription", lambda window, threads: None)
    monkeypatch.setattr(autoselect, "prepare", lambda backend, op, spec, seed=0: SimpleNamespace(
        fn=backend.name, args=(), sync=None))
    monkeypatch.setattr(autoselect, "call_for", lambda fn, args, sync, seconds: None)
    return attempts


FREE, SLOW = {0: 1.0, 1: 1.0}, {0: 0.6, 1: 0.6}  # both slow: contended for any thread count


def test_a_tie_break_on_a_contended_core_is_timed_again_and_keeps_each_ones_best(monkeypatch):
    # the first attempt's numba_cpu ran while CPU 1 was contended (probed after it): timed again
    attempts = _tie_timing(monkeypatch, [FREE, FREE, SLOW, FREE, FREE, FREE] + [FREE] * 3,
                           [{"im2col": 1.5e-3, "numba_cpu": 2.4e-3}, {"im2col": 1.6e-3, "numba_cpu": 1e-3},
                            {"im2col": 1.7e-3, "numba_cpu": 1.1e-3}])
    timed = autoselect.time_close_calls("conv2d", SMALL, ["im2col", "numba_cpu"])
    assert len(attempts) == 3  # two attempts, then the confirmation of numba_cpu over the estimate's pick
    assert timed.seconds == {"im2col": 1.5e-3, "numba_cpu": 1e-3} and timed.contended is None


def test_a_tie_break_crowded_by_other_processes_counts_as_contended(monkeypatch):
    # the probes dodge other processes' time slices; the machine's CPU accounting does not
    n = autoselect.TIE_ATTEMPTS
    attempts = _tie_timing(monkeypatch, [FREE] * (3 * n), [{"im2col": 1e-3, "numba_cpu": 2e-3}] * n)
    monkeypatch.setattr(autoselect.core_speed.machine_state, "oversubscription",
                        lambda window, threads: "oversubscribed: other processes wanted 1.8 of 2 cores")
    timed = autoselect.time_close_calls("conv2d", SMALL, ["im2col", "numba_cpu"])
    assert len(attempts) == n and timed.contended.startswith("oversubscribed")


def test_a_tie_break_overturns_the_estimates_pick_only_when_a_second_timing_agrees(monkeypatch):
    # the first timing of the pick (im2col) was slowed between two probes; its confirmation was not
    attempts = _tie_timing(monkeypatch, [FREE] * 6, [{"im2col": 3e-3, "numba_cpu": 2e-3}, {"im2col": 1e-3, "numba_cpu": 2e-3}])
    timed = autoselect.time_close_calls("conv2d", SMALL, ["im2col", "numba_cpu"])
    assert attempts == [["im2col", "numba_cpu"], ["im2col", "numba_cpu"]]
    assert timed.seconds == {"im2col": 1e-3, "numba_cpu": 2e-3}
    attempts = _tie_timing(monkeypatch, [FREE] * 3, [{"im2col": 1e-3, "numba_cpu": 2e-3}])
    autoselect.time_close_calls("conv2d", SMALL, ["im2col", "numba_cpu"])
    assert len(attempts) == 1  # the timing agreed with the estimate: nothing to confirm


def test_a_tie_break_contended_throughout_decides_for_this_process_only(monkeypatch):
    n = autoselect.TIE_ATTEMPTS
    attempts = _tie_timing(monkeypatch, [SLOW] * (3 * n + 3), [{"im2col": 2e-3, "numba_cpu": 1e-3}] * (n + 1))
    timed = autoselect.time_close_calls("conv2d", SMALL, ["im2col", "numba_cpu"])
    assert len(attempts) == n + 1 and "CPU 1 at 60%" in timed.contended
    monkeypatch.setattr(autoselect, "estimate", lambda op, spec, include_torch=False: autoselect.Choice(
        "im2col", {"im2col": 1e-3, "numba_cpu": 1.2e-3}))
    monkeypatch.setattr(autoselect, "time_close_calls", lambda op, spec, names: timed)
    choice = autoselect.choose("conv2d", SMALL)
    assert choice.backend == "numba_cpu" and choice.method == "estimate+measure"
    assert not list(autoselect.cache_dir().glob("autoselect-*.json"))  # nothing on disk for a later process
    autoselect._TIES.clear()
    assert autoselect.choose("conv2d", SMALL).cached  # this process remembers it


def test_a_quiet_timing_lets_the_pools_sleep_before_timing_each_candidate(monkeypatch):
    events = []
    monkeypatch.setattr(autoselect, "let_pools_sleep", lambda: events.append("sleep"))
    monkeypatch.setattr(autoselect, "prepare", lambda backend, op, spec, seed=0: SimpleNamespace(
        fn=lambda: events.append(backend.name), args=(), sync=None))
    seconds = autoselect._time_candidates("conv2d", SMALL, ["im2col", "numba_cpu"], 1e-3, min_runs=1,
                                          settle_s=0, wake_winner=False, quiet=True)
    assert set(seconds) == {"im2col", "numba_cpu"}
    runs = [e for i, e in enumerate(events) if i == 0 or e != events[i - 1]]
    # each candidate: one untimed call (its compile, first touch), the sleep, then its timed calls
    assert runs == ["im2col", "sleep", "im2col", "numba_cpu", "sleep", "numba_cpu"]


def test_fit_recovers_constants_from_exact_times():
    truth = {"call": 2e-5, "macs": 3e-11, "thin_macs": 9e-11, "inputs": 4e-10}
    specs = [Conv2dSpec.from_shapes((1, c, h, h), (o, c // g, k, k), padding=k // 2, groups=g)
             for c, o, h, k, g in [(16, 32, 28, 3, 1), (64, 64, 14, 1, 1), (32, 32, 56, 3, 32),
                                   (8, 16, 112, 3, 1), (128, 128, 7, 3, 1), (96, 96, 28, 5, 96)]]
    samples = [("numba_cpu", "conv2d", s, autoselect.predict("numba_cpu", "conv2d", s, {"numba_cpu": truth}))
               for s in specs]
    fitted = autoselect.fit(samples, prior_weight=0)["numba_cpu"]
    for _, op, spec, seconds in samples:
        assert autoselect.predict("numba_cpu", op, spec, {"numba_cpu": fitted}) == pytest.approx(seconds, rel=1e-3)


def test_measure_caches_the_winner_in_memory_and_on_disk(monkeypatch):
    monkeypatch.setattr(autoselect, "candidates", lambda op, spec, include_torch=False: ["im2col", "fft"])
    first = autoselect.measure("conv2d", SMALL, budget_s=0.001)
    assert first.method == "measure" and not first.cached
    assert set(first.seconds) == {"im2col", "fft"}
    assert first.backend == min(first.seconds, key=first.seconds.get)
    again = autoselect.measure("conv2d", SMALL)
    assert again.cached and again.backend == first.backend
    files = list(autoselect.cache_dir().glob("autoselect-*.json"))
    assert len(files) == 1
    monkeypatch.setattr(autoselect, "_MEMORY", {})
    from_disk = autoselect.measure("conv2d", SMALL)
    assert from_disk.cached and from_disk.seconds == pytest.approx(first.seconds)


def test_measure_never_trusts_a_cache_from_another_machine(monkeypatch):
    monkeypatch.setattr(autoselect, "candidates", lambda op, spec, include_torch=False: ["im2col"])
    key = autoselect.cache_key()
    spec_key = autoselect._spec_key("conv2d", SMALL, False)
    path = autoselect.cache_dir() / f"autoselect-{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": "another-machine", "entries": {spec_key: {"backend": "fft", "seconds": {}}}}))
    choice = autoselect.measure("conv2d", SMALL, budget_s=0.001)
    assert choice.backend == "im2col" and not choice.cached
    import harness.support.machine

    real = harness.support.machine.fingerprint
    monkeypatch.setattr(harness.support.machine, "fingerprint", lambda: {**real(), "cpu": "some other CPU"})
    assert autoselect.cache_key() != key


def test_bench_times_auto_under_the_backend_it_chose(monkeypatch):
    # two quick candidates keep the test short (numba compilation is another test's cost)
    monkeypatch.setattr(autoselect, "candidates", lambda op, spec, include_torch=False: ["im2col", "fft"])
    cases = bench.plan(["smoke"], batches=[1])[:2]
    results = bench.run(cases, ["auto", "auto:measure", "auto:estimate", "im2col"], threads=1, budget_s=0.001,
                        min_runs=1, progress=False)
    auto = results[(results.backend == "auto") & (results.metric == "time_min")]
    assert len(auto) == 2 and auto.reason.str.fullmatch(r"chose \w+ \(estimate(\+measure)?\)").all()
    measured = results[(results.backend == "auto:measure") & (results.metric == "time_min")]
    assert len(measured) == 2 and measured.reason.str.fullmatch(r"chose \w+ \(measure\)").all()
    estimated = results[(results.backend == "auto:estimate") & (results.metric == "time_min")]
    assert estimated.reason.str.endswith("(estimate)").all()
    assert math.isfinite(results[(results.backend == "auto") & (results.metric == "gflops")].value.iloc[0])


def test_the_key_does_not_depend_on_the_order_the_blas_libraries_were_loaded_in(monkeypatch):
    import harness.support.machine

    real = harness.support.machine.fingerprint()
    two = [("openblas", "0.3.30", "SkylakeX", 2), ("openblas", "0.3.31", "SkylakeX", 2)]
    keys = set()
    for order in (two, two[::-1]):  # numpy's first or scipy's first: what the process imported before
        monkeypatch.setattr(harness.support.machine, "fingerprint", lambda order=order: {**real, "blas": list(order)})
        keys.add((autoselect.cache_key(), autoselect.calibration_key()))
    assert len(keys) == 1


def test_a_calibration_file_applies_only_on_the_machine_that_wrote_it(tmp_path, monkeypatch):
    path = tmp_path / "calibration.json"
    monkeypatch.setattr(autoselect, "CALIBRATION_PATH", path)
    only_fft = {"fft": {"call": 1e-9}}
    path.write_text(json.dumps({"key": "another machine", "constants": only_fft}))
    assert autoselect.model()["constants"] == autoselect.default_constants()
    path.write_text(json.dumps({"key": autoselect.calibration_key(), "constants": only_fft}))
    assert autoselect.model()["constants"]["fft"] == only_fft["fft"]  # the others keep their defaults
    assert autoselect.model()["constants"]["im2col"] == autoselect.default_constants()["im2col"]
    choice = autoselect.estimate("conv2d", SMALL)
    assert choice.seconds["fft"] == 1e-9 and choice.backend == "fft"  # fft from the file, the others' defaults


# -- calibration in the cache directory, decisions remembered, leave-one-suite-out -----------------
from harness.bench import calibration  # noqa: E402


def test_the_default_calibration_lives_in_the_cache_directory(monkeypatch, tmp_path):
    monkeypatch.setattr(autoselect, "CALIBRATION_PATH", None)
    assert autoselect.calibration_path() == tmp_path / "cache" / "calibration.json"
    assert autoselect.needs_calibration()
    saved = autoselect.save_calibration({"constants": {"fft": {"call": 1e-6}}, "note": "test"})
    assert saved == autoselect.calibration_path()
    stored = json.loads(saved.read_text())
    assert stored["key"] == autoselect.calibration_key() and stored["note"] == "test"
    assert not autoselect.needs_calibration()
    assert autoselect.model()["constants"]["fft"] == {"call": 1e-6}
    with pytest.raises(ValueError, match="constants"):
        autoselect.save_calibration({"constants": {"fft": {"call": -1.0}}})


def test_a_calibration_of_another_machine_or_a_malformed_one_means_calibrating_again(monkeypatch, tmp_path):
    path = tmp_path / "calibration.json"
    monkeypatch.setattr(autoselect, "CALIBRATION_PATH", path)
    path.write_text(json.dumps({"key": "another machine", "constants": {"fft": {"call": 1e-6}}}))
    assert autoselect.needs_calibration()
    path.write_text("{not json")
    with pytest.warns(UserWarning, match="calibration"):
        assert autoselect.needs_calibration()


def test_estimate_remembers_its_decision_per_spec_until_the_model_changes(monkeypatch, tmp_path):
    calls = []
    real = autoselect._estimate
    monkeypatch.setattr(autoselect, "_estimate", lambda *a: calls.append(a) or real(*a))
    first = autoselect.estimate("conv2d", SMALL)
    assert autoselect.estimate("conv2d", SMALL) is first and len(calls) == 1
    assert autoselect.estimate("conv2d", SMALL, include_torch=True) is not None and len(calls) == 2
    autoselect.estimate("conv2d", SMALL.with_(N=2))
    assert len(calls) == 3  # another spec: decided afresh
    # a new calibration is a new model: decided afresh, with its constants
    monkeypatch.setattr(autoselect, "CALIBRATION_PATH", tmp_path / "calibration.json")
    autoselect.save_calibration({"constants": {"fft": {"call": 1e-9}}})
    assert autoselect.estimate("conv2d", SMALL).seconds["fft"] == pytest.approx(1e-9)
    assert len(calls) == 4


def test_a_decision_is_keyed_by_the_thread_counts(monkeypatch):
    counts = [(1,)]
    monkeypatch.setattr(autoselect, "_thread_token", lambda: counts[0])
    autoselect.estimate("conv2d", SMALL)
    counts[0] = (2,)
    autoselect.estimate("conv2d", SMALL)
    assert {key[-1] for key in autoselect._DECISIONS} == {(1,), (2,)}


def test_registering_a_backend_invalidates_remembered_decisions(monkeypatch):
    autoselect.estimate("conv2d", SMALL)
    from harness.backend.registry import CostModel

    fast = CostModel(lambda op, spec: {"call": 1.0} if op == "conv2d" else None, {"call": 1e-12})
    harness.register_backend("instant_test", conv2d=harness.get_backend("im2col").ops["conv2d"],
                             features=harness.get_backend("im2col").features["conv2d"], cost=fast)
    try:
        assert autoselect.estimate("conv2d", SMALL).backend == "instant_test"
    finally:
        harness.unregister_backend("instant_test")
    assert autoselect.estimate("conv2d", SMALL).backend != "instant_test"


def _synthetic_samples():
    """Times that follow im2col's and fft's cost models exactly, with known constants."""
    truth = {"im2col": {"macs": 2e-11, "cols": 3e-10, "groups": 4e-7},
             "fft": {"call": 1e-4, "cmacs": 3e-10, "fft": 5e-10, "groups": 3e-10, "outputs": 8e-10}}
    suite_layers = {
        "a": [("conv1", (1, 16, 32, 32), (32, 16, 3, 3), 1), ("big", (1, 8, 64, 64), (8, 8, 15, 15), 7)],
        "b": [("pw", (1, 64, 28, 28), (64, 64, 1, 1), 0), ("k11", (1, 16, 32, 32), (16, 16, 11, 11), 5)],
        "c": [("k3", (1, 32, 14, 14), (32, 32, 3, 3), 1), ("k13", (1, 8, 48, 48), (8, 8, 13, 13), 6)],
    }
    out = []
    for suite, rows in suite_layers.items():
        for layer, xs, ws, pad in rows:
            spec = Conv2dSpec.from_shapes(xs, ws, padding=pad)
            for backend in truth:
                t = autoselect.predict(backend, "conv2d", spec, truth)
                out.append(calibration.Sample(suite, f"{suite}.{layer}", 1, backend, "conv2d", spec, t))
    return out, truth


def test_leave_one_suite_out_judges_each_suite_with_a_model_fitted_on_the_others(monkeypatch):
    samples, truth = _synthetic_samples()
    fitted_on = []
    real_fit = calibration.fit
    monkeypatch.setattr(calibration, "fit", lambda s: fitted_on.append({x.suite for x in s}) or real_fit(s))
    rows = calibration.held_out(samples)
    assert fitted_on == [{"b", "c"}, {"a", "c"}, {"a", "b"}]
    assert sorted(r["layer"] for r in rows) == sorted({s.layer for s in samples})
    for r in rows:  # exact times: every fold recovers the model, so every pick is the best
        assert r["picked"] == r["best"] and r["ratio"] == pytest.approx(1.0) and r["within"]
    summary = calibration.summary(rows)
    assert summary["layers"] == 6 and summary["within"] == 6 and summary["worst"] == pytest.approx(1.0)
    assert "6/6 held-out layers" in calibration.table(rows)


def test_rows_timed_on_a_contended_core_are_counted_but_left_out_of_the_figures():
    rows = [{"suite": "a", "layer": f"a.l{i}", "batch": 1, "picked": "im2col", "best": "im2col", "ratio": 1.0,
             "contended": ""} for i in range(9)]
    rows.append(dict(rows[0], layer="a.busy", picked="fft", ratio=1.6, contended="contended cores: CPU 1 at 60%"))
    s = calibration.summary(rows)
    assert (s["layers"], s["within"], s["worst"], s["contended"]) == (9, 9, 1.0, 1)
    assert (s["layers_all"], s["within_all"], s["worst_all"]) == (10, 9, pytest.approx(1.6))
    text = calibration.table(rows)
    assert "a.busy" in text and "(contended core)" in text
    assert "9/9 held-out layers; worst 1.00x" in text and "1 more timed on a contended core" in text


def test_samples_timed_on_a_contended_core_are_timed_again_until_one_runs_free(monkeypatch):
    samples, _ = _synthetic_samples()
    busy = "contended cores: CPU 0 at 55%"
    samples = [s._replace(seconds=s.seconds * 1.8, contended=busy) if i in (0, 3) else s for i, s in enumerate(samples)]
    retimed = []
    outcomes = iter([busy, ""])  # the first retime is contended again, the second runs free

    def probed(name, op, spec, predicted, fastest, best, budget_s, limit_s, seed):
        retimed.append((name, spec))
        return 1e-9, None, (next(outcomes) if spec == samples[0].spec and name == samples[0].backend else "")

    monkeypatch.setattr(calibration, "_time_probed", probed)
    out = calibration.retime_contended(samples)
    assert retimed == [(samples[0].backend, samples[0].spec), (samples[3].backend, samples[3].spec),
                       (samples[0].backend, samples[0].spec)]  # the one still contended, once more
    assert not out[0].contended and not out[3].contended and out[0].seconds == 1e-9
    assert out[1:3] == samples[1:3]


def test_a_wrong_pick_is_reported_with_its_ratio_to_the_best():
    samples, _ = _synthetic_samples()
    layer = samples[0].layer
    # make the estimate's pick on one layer twice as slow as measured: the row says so
    rows = calibration.judge(samples, autoselect.default_constants())
    target = next(r for r in rows if r["layer"] == layer)
    other = "fft" if target["picked"] == "im2col" else "im2col"
    slowed = [s._replace(seconds=s.seconds * 10) if s.layer == layer and s.backend == target["picked"] else s
              for s in samples]
    row = next(r for r in calibration.judge(slowed, autoselect.default_constants()) if r["layer"] == layer)
    assert row["picked"] == target["picked"] and row["best"] == other
    times = {s.backend: s.seconds for s in slowed if s.layer == layer}
    assert row["ratio"] == pytest.approx(times[row["picked"]] / times[other])
    assert calibration.held_out([s for s in samples if s.suite == "a"]) == []  # one suite: nothing held out


def test_held_out_judges_auto_as_it_runs_with_the_tie_break_timed_apart_from_the_samples(monkeypatch):
    samples, _ = _synthetic_samples()
    layer = samples[0].layer
    target = next(r for r in calibration.judge(samples, autoselect.default_constants()) if r["layer"] == layer)
    other = "fft" if target["picked"] == "im2col" else "im2col"
    # the samples make the estimate's pick 10x slower than it is predicted; predictions stay exact
    slowed = [s._replace(seconds=s.seconds * 10) if s.layer == layer and s.backend == target["picked"] else s
              for s in samples]
    times = {s.backend: s.seconds for s in slowed if s.layer == layer}
    timed = []
    monkeypatch.setattr(autoselect, "TIE_MARGIN", 1e9)  # every candidate is a close call
    monkeypatch.setattr(autoselect, "time_close_calls", lambda op, spec, names: timed.append(sorted(names)) or
                        autoselect.TieTiming({n: (1.0 if n == other else 2.0) for n in names}))  # agrees with the samples
    # a pick more than 10% off is timed again (test_a_disputed_pick_is_settled_...): here nothing new is learnt
    monkeypatch.setattr(calibration, "retime_disputed", lambda op, spec, names: ({}, ""))
    rows = {r["layer"]: r for r in calibration.judge(slowed, autoselect.default_constants(), tie_break=True)}
    row = rows[layer]
    assert row["estimate_picked"] == target["picked"]
    assert row["estimate_ratio"] == pytest.approx(times[target["picked"]] / times[other])
    assert row["estimate_ratio"] > 1.0
    assert row["picked"] == other == row["best"] and row["ratio"] == pytest.approx(1.0)
    assert row["timed"] == sorted([other, target["picked"]]) and len(timed) == len(rows)
    text = calibration.table(list(rows.values()))
    assert "the estimate alone (no tie-break)" in text and "estimate" in text.splitlines()[0]


def test_a_disputed_pick_is_settled_by_timing_the_picks_and_the_best_again(monkeypatch):
    samples, _ = _synthetic_samples()
    layer = samples[0].layer
    target = next(r for r in calibration.judge(samples, autoselect.default_constants()) if r["layer"] == layer)
    other = "fft" if target["picked"] == "im2col" else "im2col"
    # one slowed sample made the estimate's (right) pick look 3x slower than the other candidate
    truth = {s.backend: s.seconds for s in samples if s.layer == layer}
    slowed = [s._replace(seconds=truth[other] * 3) if s.layer == layer and s.backend == target["picked"] else s
              for s in samples]
    monkeypatch.setattr(autoselect, "tie_to_break", lambda choice: [])  # auto runs the estimate's pick
    calls = []

    def probed(name, op, spec, predicted, fastest, best, budget_s, limit_s, seed):
        calls.append(name)
        return truth[name] if spec == samples[0].spec else None, None, ""

    monkeypatch.setattr(calibration, "_time_probed", probed)
    rows = {r["layer"]: r for r in calibration.judge(slowed, autoselect.default_constants(), tie_break=True)}
    row = rows[layer]
    assert sorted(calls) == sorted([target["picked"], other] * calibration.DISPUTE_TIMINGS)  # in turn, twice each
    assert row["picked"] == target["picked"] == row["best"] and row["ratio"] == pytest.approx(1.0)
    assert row["retimed"] == sorted([target["picked"], other]) and not row["contended"]


def test_ensure_calibrates_once_and_saves_where_the_model_reads(monkeypatch, tmp_path):
    monkeypatch.setattr(autoselect, "CALIBRATION_PATH", tmp_path / "calibration.json")
    monkeypatch.setattr(calibration, "PROBE", ("smoke.conv3x3@1", "smoke.pointwise@1"))
    monkeypatch.setattr(calibration, "modelled", lambda: ["im2col", "fft"])
    monkeypatch.setattr(bench, "baseline_name", lambda: None)  # torch is not needed to fit
    logged = []
    saved = calibration.ensure(threads=1, log=logged.append)
    assert saved is not None and set(saved["constants"]) <= {"im2col", "fft"} and saved["layers"] == 2
    assert autoselect.model()["constants"]["im2col"] == saved["constants"]["im2col"]
    assert calibration.ensure(threads=1, log=logged.append) is None  # calibrated: nothing to do
    assert len(logged) == 2


def test_probe_layers_exist_and_unknown_ones_are_named():
    cases = calibration.probe_cases()
    assert len(cases) == len(calibration.PROBE)
    assert {suite for suite, _ in cases} >= {"resnet50", "mobilenetv2", "large_kernels"}
    with pytest.raises(ValueError, match="resnet50.res9"):
        calibration.probe_cases(["resnet50.res9@1"])


def test_the_report_reads_the_held_out_rows_of_this_machines_calibration_only(monkeypatch, tmp_path):
    path = tmp_path / "calibration.json"
    monkeypatch.setattr(autoselect, "CALIBRATION_PATH", path)
    assert calibration.saved_held_out() == []  # none yet
    rows = [{"suite": "a", "layer": "a.x", "batch": 1, "picked": "fft", "best": "im2col", "ratio": 1.3, "within": False}]
    autoselect.save_calibration({"constants": {"fft": {"call": 1e-6}}, "held_out": rows})
    assert calibration.saved_held_out() == rows
    assert "0/1 held-out layers" in calibration.table(rows) and "> 10% off" in calibration.table(rows)
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "held_out": [{"layer": 3}]}))  # malformed rows: nothing shown
    assert calibration.saved_held_out() == []


def test_an_unwritable_calibration_leaves_the_defaults_without_a_traceback(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr(autoselect, "CALIBRATION_PATH", blocker / "calibration.json")  # its parent is a file
    monkeypatch.setattr(calibration, "calibrate", lambda **kw: autoselect.save_calibration({"constants": {}}))
    logged = []
    assert calibration.ensure(threads=1, log=logged.append) is None
    assert "not saved" in logged[-1] and autoselect.model()["constants"] == autoselect.default_constants()


# -- grouped and depthwise terms --------------------------------------------------------
GROUPED = Conv2dSpec.from_shapes((1, 32, 14, 14), (32, 8, 3, 3), padding=1, groups=4)
DEPTHWISE = Conv2dSpec.from_shapes((1, 32, 14, 14), (32, 1, 3, 3), padding=1, groups=32)
DENSE = Conv2dSpec.from_shapes((1, 32, 14, 14), (32, 32, 3, 3), padding=1)


def test_grouped_and_depthwise_calls_get_their_own_terms_in_every_backends_model():
    assert autoselect.group_features("conv2d", DENSE) == {}
    macs = 32 * 14 * 14 * 8 * 9
    assert autoselect.group_features("conv2d", GROUPED) == {"group_calls": 4.0, "group_macs": float(macs)}
    assert autoselect.group_features("conv2d", DEPTHWISE) == {"group_calls": 32.0, "depthwise_macs": 32 * 14 * 14 * 9.0}
    for name in ("im2col", "numba_cpu", "fft", "torch"):
        counts = autoselect.features(name, "conv2d", GROUPED)
        assert counts["group_macs"] == macs and "group_macs" not in autoselect.features(name, "conv2d", DENSE)


def test_the_prior_keeps_a_constant_the_samples_cannot_tell_apart():
    # two samples, three features: least squares alone can put all the time on one feature; the
    # shipped constants (scaled to this machine) keep each near its share
    shipped = dict(harness.get_backend("numba_cpu").cost.defaults)
    truth = {n: 3 * c for n, c in shipped.items()}  # a machine 3x slower than the shipped one
    specs = [Conv2dSpec.from_shapes((1, 16, 28, 28), (32, 16, 3, 3), padding=1),
             Conv2dSpec.from_shapes((1, 64, 14, 14), (64, 64, 3, 3), padding=1)]
    samples = [("numba_cpu", "conv2d", s, autoselect.predict("numba_cpu", "conv2d", s, {"numba_cpu": truth}))
               for s in specs]
    fitted = autoselect.fit(samples)["numba_cpu"]
    for name, value in truth.items():
        assert fitted[name] == pytest.approx(value, rel=0.05), name
    held_out = Conv2dSpec.from_shapes((1, 3, 224, 224), (16, 3, 3, 3), padding=1)  # inputs-heavy, unlike both
    assert autoselect.predict("numba_cpu", "conv2d", held_out, {"numba_cpu": fitted}) == pytest.approx(
        autoselect.predict("numba_cpu", "conv2d", held_out, {"numba_cpu": truth}), rel=0.05)


def test_a_backend_slow_on_groups_only_is_avoided_on_grouped_layers_once_fitted():
    # numba_cpu: the faster on dense layers, 50x slower per multiply-add on grouped ones
    truth = {"numba_cpu": {"call": 1e-5, "macs": 1e-11, "group_macs": 5e-10},
             "im2col": {"macs": 2e-11, "groups": 1e-6}}
    specs = [Conv2dSpec.from_shapes((1, c, h, h), (c, c // g, 3, 3), padding=1, groups=g)
             for c, h, g in [(32, 28, 1), (64, 14, 1), (64, 28, 4), (128, 14, 8), (32, 56, 2), (96, 14, 1)]]
    samples = [(b, "conv2d", s, autoselect.predict(b, "conv2d", s, truth)) for s in specs for b in truth]
    fitted = autoselect.fit(samples, prior_weight=0)
    assert fitted["numba_cpu"]["group_macs"] == pytest.approx(5e-10, rel=1e-3)
    pick = {s: min(truth, key=lambda b: autoselect.predict(b, "conv2d", s, fitted)) for s in (DENSE, GROUPED)}
    assert pick == {DENSE: "numba_cpu", GROUPED: "im2col"}


def test_the_probe_set_has_grouped_and_depthwise_layers_in_several_suites():
    # leave-one-suite-out: every fold must still see each regime to fit its term
    kinds = {"grouped": set(), "depthwise": set()}
    for suite, layer in calibration.probe_cases():
        s = layer.spec
        if 1 < s.groups < s.C:
            kinds["grouped"].add(suite)
        elif s.groups == s.C > 1:
            kinds["depthwise"].add(suite)
    assert len(kinds["grouped"]) >= 2 and len(kinds["depthwise"]) >= 2


# -- the cached decision ----------------------------------------------------------------
def test_a_calibration_of_an_older_model_form_is_made_again(monkeypatch, tmp_path):
    path = tmp_path / "calibration.json"
    monkeypatch.setattr(autoselect, "CALIBRATION_PATH", path)
    path.write_text(json.dumps({"key": autoselect.cache_key(threads=False), "constants": {"fft": {"call": 1e-9}}}))
    assert autoselect.needs_calibration()  # same machine and code, but fitted without the group terms


def test_a_cached_decision_is_the_same_object_until_a_backend_is_registered(monkeypatch):
    first = autoselect.estimate("conv2d", DENSE)
    assert autoselect.estimate("conv2d", DENSE.with_()) is first  # an equal spec: the same entry
    harness.register_backend("decision_test", conv2d=harness.get_backend("im2col").ops["conv2d"],
                             features=harness.get_backend("im2col").features["conv2d"])
    try:
        assert autoselect.estimate("conv2d", DENSE) is not first  # the registry changed: decided afresh
    finally:
        harness.unregister_backend("decision_test")


# -- calibration's timing ---------------------------------------------------------------
def _smoke_cases():
    return [(suite, layer) for suite, layer in bench.plan(["smoke"], batches=[1]) if layer.op == "conv2d"][:2]


def test_time_probes_times_each_backend_once_per_layer_and_skips_ruled_out_ones(monkeypatch):
    cases = _smoke_cases()
    real = autoselect.predict
    # fft predicted 100x im2col's time: ruled out without a call
    monkeypatch.setattr(autoselect, "predict", lambda b, op, spec, constants=None:
                        real("im2col", op, spec, constants) * (100 if b == "fft" else 1))
    monkeypatch.setattr(calibration, "REGIME_MIN", 0)
    samples, skipped = calibration.time_probes(cases, ["im2col", "fft"], threads=1, budget_s=0.001)
    assert [(s.layer, s.backend) for s in samples] == [(layer.label, "im2col") for _, layer in cases]
    assert all(s.seconds > 0 for s in samples)
    assert [(r["backend"], r["reason"].split(" ")[0]) for r in skipped] == [("fft", "predicted")] * len(cases)


def test_time_probes_times_a_ruled_out_backend_on_the_first_layers_of_a_regime(monkeypatch):
    cases = _smoke_cases()  # two dense layers
    assert {autoselect.regime(bench.op_spec(l.op, l.spec)) for _, l in cases} == {"dense"}
    real = autoselect.predict
    monkeypatch.setattr(autoselect, "predict", lambda b, op, spec, constants=None:
                        real("im2col", op, spec, constants) * (100 if b == "fft" else 1))
    monkeypatch.setattr(calibration, "REGIME_MIN", 1)
    samples, skipped = calibration.time_probes(cases, ["im2col", "fft"], threads=1, budget_s=0.001)
    # without a sample of the regime, its constants would be fitted as zero: fft is timed once anyway
    assert [(s.layer, s.backend) for s in samples if s.backend == "fft"] == [(cases[0][1].label, "fft")]
    assert [(r["layer"], r["backend"]) for r in skipped] == [(cases[1][1].label, "fft")]


def test_regimes_are_dense_grouped_and_depthwise():
    def spec(C, O, groups):
        return Conv2dSpec.from_shapes((1, C, 8, 8), (O, C // groups, 3, 3), padding=1, groups=groups)

    assert [autoselect.regime(spec(*a)) for a in ((8, 8, 1), (8, 8, 2), (8, 8, 8), (8, 16, 8))] == \
        ["dense", "grouped", "depthwise", "depthwise"]


def test_time_probes_keeps_two_calls_of_a_backend_far_slower_than_one_already_timed(monkeypatch):
    import time as _time

    calls = []

    def sluggish(x, w, b, spec):
        calls.append(spec)
        _time.sleep(0.05)  # far over im2col's time on a smoke layer
        return harness.get_backend("im2col").ops["conv2d"](x, w, b, spec)

    harness.register_backend("sluggish_test", conv2d=sluggish, features=harness.get_backend("im2col").features["conv2d"],
                             cost=harness.get_backend("im2col").cost)
    monkeypatch.setattr(autoselect, "predict", lambda b, op, spec, constants=None: 2.0 if b == "sluggish_test" else 1.0)
    try:
        samples, skipped = calibration.time_probes(_smoke_cases()[:1], ["im2col", "sluggish_test"], threads=1,
                                                   budget_s=0.001)
    finally:
        harness.unregister_backend("sluggish_test")
    assert not skipped and [s.backend for s in samples] == ["im2col", "sluggish_test"]
    assert len(calls) == 3  # the untimed first call and two timed calls (a burst can slow one), nothing more
    assert samples[1].seconds >= 0.05


def test_a_bench_results_file_with_auto_rows_fits_the_real_backends_only():
    import pandas as pd

    layer = bench.plan(["smoke"], batches=[1])[0][1]
    rows = [{"backend": b, "op": layer.op, "suite": "smoke", "layer": layer.label, "batch": 1, "dtype": "float32",
             "threads": 1, "metric": "time_min", "value": t} for b, t in (("im2col", 1e-4), ("auto", 1e-4), ("fft", 2e-4))]
    samples = calibration.samples_from(pd.DataFrame(rows))
    assert sorted(s.backend for s in samples) == ["fft", "im2col"]
    assert set(calibration.fit(samples)) == {"fft", "im2col"}


def test_a_sample_far_above_its_fit_is_timed_again_and_keeps_the_smaller_time(monkeypatch):
    monkeypatch.setattr(autoselect, "PRIOR_WEIGHT", 0.0)  # two samples: the plain fit predicts both as measured
    cases = _smoke_cases()
    samples, _ = calibration.time_probes(cases, ["im2col"], threads=1, budget_s=0.001)
    constants = calibration.fit(samples)
    burst = [samples[0]._replace(seconds=10.0), *samples[1:]]  # as if a load burst hit the first one
    again = calibration.retime_outliers(burst, constants, threads=1, budget_s=0.001)
    # the retimed sample keeps its identity; its contention is its new timing's (this machine's cores, now)
    assert again[0].seconds < 10.0 and again[0]._replace(seconds=0, contended="") == samples[0]._replace(
        seconds=0, contended="")
    assert again[1:] == samples[1:]  # the others were not timed again


def test_time_probes_starts_no_layer_after_its_time_limit_and_takes_suites_in_turn():
    cases = calibration.probe_cases(["resnet50.res2_3x3@1", "resnet50.res4_3x3@1", "vgg16.conv5_1@1"])
    assert [layer.label for _, layer in calibration._round_robin(cases)] == [
        "resnet50.res2_3x3", "vgg16.conv5_1", "resnet50.res4_3x3"]
    samples, skipped = calibration.time_probes(cases, ["im2col"], threads=1, total_s=0.0)
    assert samples == [] and len(skipped) == 3 and all("time limit" in r["reason"] for r in skipped)


def test_auto_stays_on_the_previous_calls_backend_when_it_is_within_the_switch_charge(monkeypatch):
    from harness.api import resolve

    monkeypatch.setattr(resolve, "_AUTO_PLANS", {})
    monkeypatch.setattr(resolve, "_LAST_AUTO", [None])
    monkeypatch.setattr(resolve, "choose", lambda op, spec, include_torch=False, may_time=None: autoselect.Choice(
        "im2col", {"im2col": 1e-3, "winograd": 1e-3 + resolve.SWITCH_S / 2}, "estimate+measure"))
    monkeypatch.setattr(resolve, "estimate", lambda op, spec: autoselect.Choice(
        "im2col", {"im2col": 1e-3, "winograd": 2e-3, "numba_cpu": 1e-3 + 2 * resolve.SWITCH_S}))
    spec = SMALL
    assert resolve.auto_backend("conv2d", spec)[0].name == "im2col" and resolve.last_auto_backend() == "im2col"
    resolve._LAST_AUTO[0] = "winograd"  # a measured time within the charge: stay
    assert resolve.auto_backend("conv2d", spec)[0].name == "winograd" and resolve.last_auto_backend() == "winograd"
    resolve._LAST_AUTO[0] = "numba_cpu"  # only an estimate, over the charge: switch
    assert resolve.auto_backend("conv2d", spec)[0].name == "im2col" and resolve.last_auto_backend() == "im2col"
    assert {key[-1] for key in resolve._AUTO_PLANS} == {None, "winograd", "numba_cpu"}  # one plan per previous
    assert resolve._staying(autoselect.Choice("im2col", {"im2col": 1e-3}), "fft") == "im2col"  # no time for it


def test_timing_seeded_inputs_leaves_nothing_in_winograds_weight_cache():
    """A tie-break's seeded weights are never a caller's: winograd forgets their transform after
    the timing (``Backend.release``), and keeps a caller's own."""
    from impls import winograd

    spec = Conv2dSpec.from_shapes((1, 8, 12, 12), (8, 8, 3, 3), padding=1)
    mine = np.random.default_rng(5).standard_normal((8, 8, 3, 3)).astype(np.float32)
    winograd.WEIGHT_CACHE.get(mine, winograd.TRANSFORMS[winograd.choose_tile(spec)])
    before = len(winograd.WEIGHT_CACHE)
    seconds = autoselect._time_candidates("conv2d", spec, ["winograd", "im2col"], 1e-3, min_runs=1, settle_s=0)
    assert set(seconds) == {"winograd", "im2col"}
    assert len(winograd.WEIGHT_CACHE) == before  # the seeded weights' entry is gone, the caller's kept
    hits = winograd.WEIGHT_CACHE.hits
    winograd.WEIGHT_CACHE.get(mine, winograd.TRANSFORMS[winograd.choose_tile(spec)])
    assert winograd.WEIGHT_CACHE.hits == hits + 1


def _plan_with(monkeypatch, times_per_layer, measured=None):
    """Specs whose estimate gives ``times_per_layer[i]`` (and ``choose`` the ``measured`` ones)."""
    specs = [Conv2dSpec.from_shapes((1, 2, 6 + i, 6), (3, 2, 3, 3), padding=1) for i in range(len(times_per_layer))]
    by_spec = dict(zip(specs, times_per_layer))
    timed = dict(zip(specs, measured or [{}] * len(specs)))
    monkeypatch.setattr(autoselect, "estimate", lambda op, spec, include_torch=False: autoselect.Choice(
        min(by_spec[spec], key=by_spec[spec].get), dict(by_spec[spec])))
    monkeypatch.setattr(autoselect, "choose", lambda op, spec, include_torch=False: autoselect.Choice(
        min(timed[spec] or by_spec[spec], key=(timed[spec] or by_spec[spec]).get), dict(timed[spec] or by_spec[spec]),
        "estimate+measure" if timed[spec] else "estimate"))
    return specs


def test_plan_stays_on_one_backend_unless_leaving_it_saves_more_than_the_switches(monkeypatch):
    small = [{"a": 1e-3, "b": 2e-3}, {"a": 3e-3, "b": 2e-3}, {"a": 1e-3, "b": 2e-3}]  # b saves 1 ms once
    specs = _plan_with(monkeypatch, small)
    assert autoselect.plan("conv2d", specs, switch_s=5e-3) == ["a", "a", "a"]
    assert autoselect.plan("conv2d", specs, switch_s=0) == ["a", "b", "a"]  # each call's own best
    large = [{"a": 1e-3, "b": 2e-3}, {"a": 50e-3, "b": 2e-3}, {"a": 50e-3, "b": 2e-3}]
    specs = _plan_with(monkeypatch, large)
    assert autoselect.plan("conv2d", specs, switch_s=5e-3) == ["b", "b", "b"]  # one switch avoided at the start
    assert autoselect.plan("conv2d", []) == []
    with pytest.raises(ValueError, match="switch_s"):
        autoselect.plan("conv2d", specs, switch_s=-1)


def test_plan_takes_the_tie_breaks_measured_times_over_the_estimate(monkeypatch):
    specs = _plan_with(monkeypatch, [{"a": 1e-3, "b": 1.5e-3}] * 2, measured=[{"a": 4e-3, "b": 1e-3}] * 2)
    assert autoselect.plan("conv2d", specs, switch_s=1e-3) == ["b", "b"]


def test_plan_compares_a_tie_breaks_measured_times_only_among_themselves(monkeypatch):
    # the tie-break timed a and b (both slower than predicted on this machine); c, predicted over 2x
    # slower than the estimate's pick, was not timed: its model time is no match for measured ones
    specs = _plan_with(monkeypatch, [{"a": 10e-3, "b": 20e-3, "c": 30e-3}], measured=[{"a": 80e-3, "b": 47e-3}])
    assert autoselect.plan("conv2d", specs) == ["b"]


def test_plan_keeps_a_call_without_a_cost_model_on_autos_fallback(monkeypatch):
    specs = _plan_with(monkeypatch, [{"a": 1e-3}, {"a": 1e-3}])
    monkeypatch.setattr(autoselect, "estimate", lambda op, spec, include_torch=False: None if spec == specs[1]
                        else autoselect.Choice("a", {"a": 1e-3}))
    route = autoselect.plan("conv2d", specs)
    assert route == ["a", autoselect.fallback("conv2d", specs[1])]
    monkeypatch.setattr(autoselect, "TIE_BREAK", False)
    from harness.api import resolve  # the same rule as auto's own, call by call
    monkeypatch.setattr(resolve, "choose", lambda op, spec, may_time=None: None)
    assert resolve_backend("auto", "conv2d", specs[1]).name == route[1]


def test_autos_fallback_is_the_lowest_rank_that_supports_the_call_and_keeps_nan_where_asked():
    def rank(names):
        return min(names, key=lambda n: (autoselect.get_backend(n).auto_rank, n))

    able = [b.name for b in harness.backends() if b.available and b.unsupported_reason("conv2d", SMALL) is None]
    assert autoselect.fallback("conv2d", SMALL) == rank(able)
    propagating = [n for n in able if autoselect.get_backend(n).propagates_nonfinite(SMALL.dtype)]
    assert autoselect.fallback("conv2d", SMALL, finite=False) == rank(propagating)
