"""asv configuration and benchmark discovery (fast: `asv check`, no benchmark is run by asv)."""

import argparse
import importlib
import inspect
import json
import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import harness
from harness.support import timing
from harness.cli.commands.asv import asv_command, asv_env, suite_names

ROOT = Path(__file__).resolve().parents[1]


def _conf():
    text = (ROOT / "asv.conf.json").read_text()
    return json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))


def _bench_module(monkeypatch, **env):
    """benchmarks/bench_conv2d.py imported afresh with ``CONVBENCH_ASV_*`` set from ``env``."""
    for name in ("SUITES", "BATCHES", "DTYPES", "THREADS", "LIMIT"):
        monkeypatch.delenv(f"CONVBENCH_ASV_{name}", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(f"CONVBENCH_ASV_{name.upper()}", value)
    sys.path.insert(0, str(ROOT))
    try:
        return importlib.reload(importlib.import_module("benchmarks.bench_conv2d"))
    finally:
        sys.path.remove(str(ROOT))


@pytest.fixture
def smoke(monkeypatch):
    return _bench_module(monkeypatch, suites="smoke")


def _benchmark_names(module):
    """asv's names (``bench_conv2d.Class.method``) of the module's benchmarks, by kind prefix."""
    names = []
    for cls_name, cls in vars(module).items():
        if inspect.isclass(cls) and not cls_name.startswith("_") and cls.__module__ == module.__name__:
            names += [f"bench_conv2d.{cls_name}.{attr}" for attr in dir(cls)
                      if attr.startswith(("time_", "track_", "peakmem_", "mem_"))]
    return names


def test_conf_uses_the_existing_environment_and_ignored_dirs():
    conf = _conf()
    assert conf["environment_type"] == "existing"
    for key in ("results_dir", "html_dir", "env_dir"):
        assert conf[key].startswith(".asv/")
    assert ".asv/" in (ROOT / ".gitignore").read_text().split()
    # higher GFLOP/s is better: asv must not report rises as regressions
    assert conf["regressions_first_commits"][".*track_gflops"] is None
    # one process per benchmark and combination: forked from one import, not a fresh interpreter
    assert conf["launch_method"] == "forkserver"


def test_regression_detection_is_off_for_every_track_benchmark(smoke):
    """Track values that are GFLOP/s (rises are good) or layer properties may raise no alarm; the
    traced peak memory is a cost, where asv's default (a rise is a regression) is right."""
    patterns = {p for p, first in _conf()["regressions_first_commits"].items() if first is None}
    tracks = [name for name in _benchmark_names(smoke) if ".track_" in name]
    assert sorted(tracks) == ["bench_conv2d.Conv2d.track_gflops", "bench_conv2d.Conv2dTracedMemory.track_peak_bytes",
                              "bench_conv2d.Layer.track_cpr",
                              "bench_conv2d.MachineState.track_busy_cores", "bench_conv2d.MachineState.track_cpu_mhz",
                              "bench_conv2d.MachineState.track_load1", "bench_conv2d.MachineState.track_steal_pct"]
    for name in tracks:
        silenced = any(re.match(p, name) for p in patterns)
        assert silenced == (not name.endswith("track_peak_bytes")), name


def test_run_passes_the_flags_asv_06_needs():
    machine, run = asv_command("run", quick=True)
    assert machine[1:] == ["machine", "--yes"]
    assert "--python=same" in run and "--quick" in run
    commit = run[run.index("--set-commit-hash") + 1]
    assert re.fullmatch(r"[0-9a-f]{40}", commit)


def test_asv_check_passes():
    asv = Path(sys.executable).with_name("asv")
    done = subprocess.run([str(asv), "check", "--python=same"], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": str(asv.parent) + ":/usr/bin:/bin", "CONVBENCH_ASV_SUITES": "smoke",
                               "HOME": str(Path.home())}, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No problems found" in done.stdout


def test_benchmark_grid_comes_from_the_registry_and_suites(smoke):
    backends, layers, batches, dtypes, threads = smoke.Conv2d.params
    assert smoke.Conv2d.param_names == ["backend", "layer", "batch", "dtype", "threads"]
    assert smoke.Conv2dMemory.params == smoke.Conv2d.params
    assert backends == [b.name for b in harness.backends()]
    assert layers == [label for label, _ in harness.suites.load("smoke")]
    assert (batches, dtypes, threads) == ([1], ["float32"], [len(os.sched_getaffinity(0))])
    assert smoke.Conv2d.track_gflops.unit == "GFLOP/s"
    # CPR is the layer's: parameterised by layer and batch only
    assert smoke.Layer.params == [layers, [1]]
    assert smoke.Layer().track_cpr(layers[0], 1) == 16 * 16
    assert smoke.Layer().track_cpr(layers[0], 8) == 8 * 16 * 16  # MACs grow with the batch


def test_suites_all_is_every_suite(monkeypatch):
    everything = _bench_module(monkeypatch, suites="all")
    assert everything.SUITES == harness.suites.names()
    expected = [layer.label for name in harness.suites.names() for layer in harness.suites.layers(name, batch=1)]
    assert everything.Conv2d.params[1] == expected
    assert len(set(expected)) == len(expected)  # one layer per parameter value


def test_cli_grid_options_reach_the_environment():
    args = argparse.Namespace(suites="all", batches="1,8", threads="1")
    env = asv_env(args, base={"PATH": "/bin"})
    assert env["CONVBENCH_ASV_SUITES"].split(",") == harness.suites.names()
    assert (env["CONVBENCH_ASV_BATCHES"], env["CONVBENCH_ASV_THREADS"], env["PATH"]) == ("1,8", "1", "/bin")
    assert suite_names("smoke, resnet50") == ["smoke", "resnet50"]
    with pytest.raises(ValueError, match="unknown suite.*nosuch"):
        suite_names("smoke,nosuch")


def test_threads_are_a_parameter_and_pinned_in_setup(monkeypatch):
    module = _bench_module(monkeypatch, suites="smoke", threads="1")
    assert module.Conv2d.params[-1] == [1]
    layer = module.Conv2d.params[1][0]
    with timing.pinned_threads(2):
        module.Conv2d().setup("torch", layer, 1, "float32", 1)
        counts, _ = timing.set_threads(None)
    assert set(counts.values()) == {1}


def test_timing_uses_asv_rounds_and_the_machine_state_is_recorded(smoke):
    # several interleaved rounds of several samples: asv compare's intervals rest on them
    assert smoke.Conv2d.rounds >= 2 and smoke.Conv2d.repeat[0] >= 2 and smoke.Conv2d.number == 1
    state = smoke.MachineState()
    state.setup()
    assert state.track_busy_cores() >= 0 or math.isnan(state.track_busy_cores())
    assert smoke.MachineState.track_busy_cores.unit == "cores"


def test_traced_peak_counts_the_calls_own_allocations(smoke):
    bench = smoke.Conv2dTracedMemory()
    args = ("im2col", "smoke.conv3x3", 1, "float32", 1)
    bench.setup(*args)
    peak = bench.track_peak_bytes(*args)
    spec = bench.case.args[-1]
    out_bytes = 4 * int(np.prod(spec.out_shape))  # 1x8x16x16 float32: 8 kB
    assert peak >= out_bytes  # at least the output is allocated in the call (im2col's columns too)
    assert peak < 100 * out_bytes  # and not the interpreter's baseline, as the process-RSS peak is


def test_setup_warms_up_once_and_benchmarks_run(smoke):
    layer = smoke.Conv2d.params[1][0]
    bench = smoke.Conv2d()
    bench.setup("naive", layer, 1, "float32", 1)
    case = bench.case
    assert bench.first_call_s > 0
    bench.setup("naive", layer, 1, "float32", 1)  # asv re-runs setup between samples
    assert bench.case is case
    bench.time_conv2d("naive", layer, 1, "float32", 1)
    assert bench.track_gflops("naive", layer, 1, "float32", 1) > 0
    memory = smoke.Conv2dMemory()
    memory.setup("naive", layer, 1, "float32", 1)
    memory.peakmem_conv2d("naive", layer, 1, "float32", 1)


def test_skipped_combinations_say_why(smoke, monkeypatch):
    plain, strided = "smoke.conv3x3", "smoke.conv3x3_s2"
    monkeypatch.setitem(smoke.UNAVAILABLE, "naive", "no such device here")
    for cls in (smoke.Conv2d, smoke.Conv2dMemory):
        with pytest.raises(NotImplementedError, match="'naive' is unavailable: no such device here"):
            cls().setup("naive", plain, 1, "float32", 1)
        with pytest.raises(NotImplementedError, match="winograd.*stride"):
            cls().setup("winograd", strided, 1, "float32", 1)


def test_a_limit_found_only_by_calling_skips_too(smoke):
    """Conv2d's warm-up finds it in setup; peakmem (no warm-up) skips at the call, with the reason."""
    from asv_runner.benchmarks.mark import SkipNotImplemented

    def picky_conv2d(x, w, bias, spec):
        raise harness.Unsupported("picky: only on Tuesdays")

    harness.register_backend("asv_test_picky", conv2d=picky_conv2d)
    try:
        with pytest.raises(NotImplementedError, match="only on Tuesdays"):
            smoke.Conv2d().setup("asv_test_picky", "smoke.conv3x3", 1, "float32", 1)
        memory = smoke.Conv2dMemory()
        memory.setup("asv_test_picky", "smoke.conv3x3", 1, "float32", 1)
        with pytest.raises(SkipNotImplemented, match="only on Tuesdays"):
            memory.peakmem_conv2d("asv_test_picky", "smoke.conv3x3", 1, "float32", 1)
    finally:
        harness.unregister_backend("asv_test_picky")


def test_backends_probed_at_import_match_probing_here(smoke):
    """GPU backends are probed in a child process at import; the reasons are the real ones."""
    assert smoke.UNAVAILABLE == {b.name: b.reason for b in harness.backends() if b.reason}


def test_forked_benchmark_processes_can_run_every_threaded_backend():
    """What asv's forkserver does: import once, fork per benchmark. Nothing at import may start
    a thread pool (GNU OpenMP, used by numba and torch, aborts in a child once the parent used it)."""
    script = textwrap.dedent("""
        import os, sys
        sys.path.insert(0, sys.argv[1])
        import benchmarks.bench_conv2d as m
        layer = m.Conv2d.params[1][0]
        for backend in ("numba_cpu", "torch"):
            pid = os.fork()
            if pid == 0:
                bench = m.Conv2d()
                bench.setup(backend, layer, 1, "float32", 2)
                ok = bench.track_gflops(backend, layer, 1, "float32", 2) > 0
                os._exit(0 if ok else 3)
            _, status = os.waitpid(pid, 0)
            print(backend, os.waitstatus_to_exitcode(status))
    """)
    done = subprocess.run([sys.executable, "-c", script, str(ROOT)], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, CONVBENCH_ASV_SUITES="smoke"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == ["numba_cpu", "0", "torch", "0"], done.stdout + done.stderr
