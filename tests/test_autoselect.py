"""backend='auto': the cost-model estimate, the measured choice and its cache, bench's 'auto'."""

import json
import math

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


def test_auto_in_the_api_is_the_estimate():
    assert resolve_backend("auto", "conv2d", SMALL).name == autoselect.estimate("conv2d", SMALL).backend
    x = np.arange(72, dtype=np.float64).reshape(1, 2, 6, 6)
    w = np.ones((3, 2, 3, 3))
    np.testing.assert_allclose(harness.conv2d(x, w, padding=1), harness.conv2d(x, w, padding=1, backend="naive"))


def test_fit_recovers_constants_from_exact_times():
    truth = {"call": 2e-5, "macs": 3e-11, "thin_macs": 9e-11, "inputs": 4e-10}
    specs = [Conv2dSpec.from_shapes((1, c, h, h), (o, c // g, k, k), padding=k // 2, groups=g)
             for c, o, h, k, g in [(16, 32, 28, 3, 1), (64, 64, 14, 1, 1), (32, 32, 56, 3, 32),
                                   (8, 16, 112, 3, 1), (128, 128, 7, 3, 1), (96, 96, 28, 5, 96)]]
    samples = [("numba_cpu", "conv2d", s, autoselect.predict("numba_cpu", "conv2d", s, {"numba_cpu": truth}))
               for s in specs]
    fitted = autoselect.fit(samples)["numba_cpu"]
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
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"key": "another-machine", "entries": {spec_key: {"backend": "fft", "seconds": {}}}}))
    choice = autoselect.measure("conv2d", SMALL, budget_s=0.001)
    assert choice.backend == "im2col" and not choice.cached
    real = autoselect.fingerprint
    monkeypatch.setattr(autoselect, "fingerprint", lambda: {**real(), "cpu": "some other CPU"})
    assert autoselect.cache_key() != key


def test_bench_times_auto_under_the_backend_it_chose(monkeypatch):
    # two quick candidates keep the test short (numba compilation is another test's cost)
    monkeypatch.setattr(autoselect, "candidates", lambda op, spec, include_torch=False: ["im2col", "fft"])
    cases = bench.plan(["smoke"], batches=[1])[:2]
    results = bench.run(cases, ["auto", "auto:estimate", "im2col"], threads=1, budget_s=0.001, min_runs=1,
                        progress=False)
    auto = results[(results.backend == "auto") & (results.metric == "time_min")]
    assert len(auto) == 2 and auto.reason.str.fullmatch(r"chose \w+ \(measure\)").all()
    estimated = results[(results.backend == "auto:estimate") & (results.metric == "time_min")]
    assert estimated.reason.str.endswith("(estimate)").all()
    assert math.isfinite(results[(results.backend == "auto") & (results.metric == "gflops")].value.iloc[0])


def test_a_calibration_file_applies_only_on_the_machine_that_wrote_it(tmp_path, monkeypatch):
    path = tmp_path / "calibration.json"
    monkeypatch.setattr(autoselect, "CALIBRATION_PATH", path)
    only_fft = {"fft": {"call": 1e-6}}
    path.write_text(json.dumps({"key": "another machine", "constants": only_fft}))
    assert autoselect.model()["constants"] == autoselect.default_constants()
    path.write_text(json.dumps({"key": autoselect.cache_key(threads=False), "constants": only_fft}))
    assert autoselect.model()["constants"]["fft"] == only_fft["fft"]  # the others keep their defaults
    assert autoselect.model()["constants"]["im2col"] == autoselect.default_constants()["im2col"]
    assert autoselect.estimate("conv2d", SMALL).seconds["fft"] == 1e-6
