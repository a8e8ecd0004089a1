"""numba_cuda without a GPU, twice over: compiled for real to PTX (sm_90), and run for
correctness on Numba's CUDA simulator in a subprocess (this process stays on the real target)."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import harness

BACKEND = harness.get_backend("numba_cuda")

# Tiny cases covering every feature path and tile edge (tiles: 64 channels x 64 pixels x 16 k).
SIM_CASES = [
    dict(x_shape=(2, 3, 5, 7), w_shape=(4, 3, 3, 3), bias=True, padding=1),
    dict(x_shape=(1, 20, 9, 9), w_shape=(70, 20, 1, 1), bias=True),  # 2 channel, 2 pixel, 2 k tiles
    dict(x_shape=(1, 6, 9, 10), w_shape=(6, 3, 3, 2), stride=(2, 3), padding=(1, 2), dilation=(2, 1), groups=2),
    dict(x_shape=(1, 4, 6, 7), w_shape=(8, 1, 3, 3), groups=4, padding=1, padding_mode="reflect"),  # depthwise x2
    dict(x_shape=(1, 2, 5, 5), w_shape=(2, 2, 2, 3), padding="same", padding_mode="circular", dtype="float64"),
    dict(x_shape=(1, 3, 6, 5), w_shape=(5, 3, 3, 3), padding=2, padding_mode="replicate", layout="strided"),
    dict(x_shape=(0, 3, 5, 5), w_shape=(4, 3, 3, 3), padding=1),
    dict(x_shape=(1, 5, 7, 6), w_shape=(6, 5, 3, 3), bias=True, padding=1, fill="exact"),
    dict(x_shape=(1, 5, 7, 6), w_shape=(6, 5, 3, 3), bias=True, padding=1, fill="exact", dtype="float64"),
]

_SIM_SCRIPT = """
import json, sys
import harness
from harness.ops.cases.conv2d import Conv2dCase
from harness.verify.verifier import check_case
backend = harness.get_backend("numba_cuda")
out = {"reason": backend.reason, "description": backend.description, "results": []}
for kwargs in json.loads(sys.argv[1]):
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    r = check_case("numba_cuda", Conv2dCase(**kwargs))
    out["results"].append({"case": repr(r.case), "status": r.status, "max_units": r.max_units,
                           "message": r.message})
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def simulated():
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    done = subprocess.run([sys.executable, "-c", _SIM_SCRIPT, json.dumps(SIM_CASES)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_simulator_backend_is_available_and_labelled(simulated):
    assert simulated["reason"] is None
    assert "SIMULATED" in simulated["description"]


@pytest.mark.parametrize("index", range(len(SIM_CASES)), ids=[str(i) for i in range(len(SIM_CASES))])
def test_simulator_agrees_with_reference(simulated, index):
    result = simulated["results"][index]
    assert result["status"] in ("passed", "mistrusted"), result
    if SIM_CASES[index].get("fill") == "exact":
        assert result["max_units"] == 0, result  # exact=True is claimed


def test_probe_gives_a_reason_or_none():
    from numba import cuda

    if cuda.is_available():
        assert BACKEND.reason is None
    else:
        assert BACKEND.reason and "CUDA" in BACKEND.reason


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiles_to_ptx_for_sm90(dtype):
    from impls import _numba_cuda_kernels as k

    ptx = k.compile_ptx(dtype, cc=(9, 0))
    assert re.search(r"^\.target sm_90", ptx, re.M)
    itemsize = np.dtype(dtype).itemsize
    assert k.ptx_shared_bytes(ptx) == k.TILE_K * (k.TILE_P + k.TILE_O) * itemsize
    usage = k.ptxas_usage(ptx)
    if usage is not None:
        assert usage["spill_stores"] == 0 and usage["spill_loads"] == 0, usage
        assert usage["registers"] * k.THREADS[0] * k.THREADS[1] <= 65536, usage  # one block fits an SM


@pytest.mark.skipif(not BACKEND.available, reason=f"numba_cuda unavailable: {BACKEND.reason}")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_real_gpu_agrees_and_prepare_matches_conv2d(dtype, rng):
    from impls import numba_cuda

    from conftest import assert_close

    x = rng.standard_normal((2, 24, 19, 17)).astype(dtype)
    w = rng.standard_normal((70, 12, 3, 3)).astype(dtype)
    b = rng.standard_normal(70).astype(dtype)
    kwargs = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    y = harness.conv2d(x, w, b, backend="numba_cuda", **kwargs)
    assert_close(y, x, w, b, **kwargs)
    spec, _ = harness.conv2d_spec(x, w, b, **kwargs)
    launch = numba_cuda.prepare(x, w, b, spec)
    launch()
    numba_cuda.sync()
    np.testing.assert_array_equal(launch.result(), y)


@pytest.mark.skipif(not BACKEND.available, reason=f"numba_cuda unavailable: {BACKEND.reason}")
def test_real_gpu_verify_has_no_failures():
    report = harness.verify("numba_cuda", cases=100, seed=0)
    bad = report[report.status.isin(["failed", "error"])]
    assert bad.empty, bad[["status", "message", "reproducer"]].to_string()


_EVENT_SCRIPT = """
import json
import numpy as np
from harness.ops.conv_spec import conv2d_spec
from impls import numba_cuda
from impls._numba_cuda_timing import event_times
x = np.ones((1, 2, 4, 4), np.float32); w = np.ones((2, 2, 3, 3), np.float32)
spec, _ = conv2d_spec(x, w, None, padding=1)
launch = numba_cuda.prepare(x, w, None, spec)
launch()
hot = event_times(launch, runs=2)
cold = event_times(launch, runs=2, cold=True, flush_bytes=4096)
print(json.dumps({"hot": hot, "cold": cold}))
"""


def test_event_timing_hot_and_cold_runs_on_the_simulator():
    """Tiny: two event-timed runs each way on Numba's simulator (a real GPU is checked by
    python -m harness.bench.cuda_events). Checks the mechanism, never a speed."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    done = subprocess.run([sys.executable, "-c", _EVENT_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(out["hot"]) == 2 and len(out["cold"]) == 2
    assert all(t > 0 for t in out["hot"] + out["cold"])
